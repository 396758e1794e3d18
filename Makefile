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
	$(PY) -m pip install -q --disable-pip-version-check -e ".[engine,app,dev]"
	@touch $(STAMP)

run: setup
	@test -f "$(DEMO)/pairs.csv" || $(PY) -m engine.cli demo-world --out "$(DEMO)" --size default
	$(VENV)/bin/soundscape

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check engine app tests bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
