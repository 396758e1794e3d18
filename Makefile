# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= $(shell $(PYTHON) -c "import os;print(os.path.join(os.environ.get('XDG_DATA_HOME') or os.path.expanduser('~/.local/share'),'soundscape-mapper','demo-world'))")

.PHONY: run test setup system-deps lint bench demo-model package clean

setup: system-deps $(STAMP)

system-deps:
	@scripts/system_deps.sh

# Re-installs only when pyproject.toml changes, so a second `make` is quick.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed"'
	$(PY) -m pip install -q --disable-pip-version-check -e ".[engine,app,dev,scale]"
	@touch $(STAMP)

run: setup
	@test -f "$(DEMO)/pairs.csv" || $(PY) -m engine.cli demo-world --out "$(DEMO)" --size default
	$(VENV)/bin/soundscape

test: setup
	$(PY) -m pytest -q

# The demo model shipped in resources/demo-bundle, made from scratch (about 7 minutes on 2 CPU cores): the
# default demo world (seed 0), the demo-cpu preset, the test split evaluated (paper protocol; the metrics
# JSON, per-query ranks and recall plot in .cache/demo-model/run/eval/), then the export. The shipped
# bundle is replaced only after the export succeeded (and passed its onnxruntime-vs-PyTorch check).
DEMO_MODEL := .cache/demo-model
demo-model: setup
	@test -f $(DEMO_MODEL)/world/world.json || \
		$(PY) -m engine.cli demo-world --out $(DEMO_MODEL)/world --size default --seed 0
	rm -rf $(DEMO_MODEL)/run $(DEMO_MODEL)/bundle
	$(PY) -m engine.cli train --data $(DEMO_MODEL)/world --preset demo-cpu --out $(DEMO_MODEL)/run \
		--cache-dir $(DEMO_MODEL)/decoded
	$(PY) -m engine.cli evaluate --run $(DEMO_MODEL)/run --data $(DEMO_MODEL)/world --split test \
		--protocol paper --out $(DEMO_MODEL)/run/eval/test.json
	$(PY) -m engine.cli export --run $(DEMO_MODEL)/run --out $(DEMO_MODEL)/bundle
	rm -rf resources/demo-bundle.previous
	if [ -d resources/demo-bundle ]; then mv resources/demo-bundle resources/demo-bundle.previous; fi
	cp -r $(DEMO_MODEL)/bundle resources/demo-bundle && rm -rf resources/demo-bundle.previous

lint: setup
	$(VENV)/bin/ruff check engine app tests bench
	$(VENV)/bin/lint-imports

# The desktop bundle dist/soundscape (PyInstaller, one folder, no PyTorch; its own build environment in
# .cache/package/venv), then its checks: no PyTorch inside, its size, a smoke run of a copy with a clean
# environment (SMOKE=quick skips the real first launch). See packaging/build.sh.
package: system-deps
	PYTHON="$(PYTHON)" SMOKE="$(SMOKE)" packaging/build.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
