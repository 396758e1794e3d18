# Three commands do all the set-up: `make run` (the app), `make engine` (training) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO   ?= $(shell $(PYTHON) -c "import os;print(os.path.join(os.environ.get('XDG_DATA_HOME') or os.path.expanduser('~/.local/share'),'soundscape-mapper','demo-world'))")

.PHONY: run engine test setup system-deps lint bench demo-model package clean

# One stamp per extra set, so `make run` installs the app only (no PyTorch: about 0.7 GB rather than
# about 6 GB) and a second `make run` is instant; `make engine` adds the training engine to the same
# venv; `make test` (and CI) installs everything. A set is re-installed only when pyproject.toml changes.
APP_STAMP    := $(VENV)/.installed-app
ENGINE_STAMP := $(VENV)/.installed-engine
ALL_STAMP    := $(VENV)/.installed-all
PIP_INSTALL  := $(PY) -m pip install -q --disable-pip-version-check -e

setup: system-deps $(ALL_STAMP)

system-deps:
	@scripts/system_deps.sh

$(VENV)/.created:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed"'
	@touch $@

$(APP_STAMP): pyproject.toml $(VENV)/.created
	$(PIP_INSTALL) ".[app]"
	@touch $@

$(ENGINE_STAMP): pyproject.toml $(VENV)/.created
	$(PIP_INSTALL) ".[engine]"
	@touch $@

$(ALL_STAMP): pyproject.toml $(VENV)/.created
	$(PIP_INSTALL) ".[engine,app,dev,scale]"
	@touch $(APP_STAMP) $(ENGINE_STAMP) $@

run: system-deps $(APP_STAMP)
	@test -f "$(DEMO)/pairs.csv" || $(PY) -m engine.cli demo-world --out "$(DEMO)" --size default
	$(VENV)/bin/soundscape

engine: system-deps $(ENGINE_STAMP)

# The whole suite is bounded too (each test already is: pytest-timeout, a faulthandler backstop): after
# TEST_TIMEOUT seconds pytest and its process group get SIGTERM, then SIGKILL a minute later.
TEST_TIMEOUT ?= 2400
test: setup
	timeout --kill-after=60 $(TEST_TIMEOUT) $(PY) -m pytest -q

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
		--sample-cache-dir $(DEMO_MODEL)/decoded
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
