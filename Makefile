# Entry points of the report. `make test` and `make report` set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Exact pins; environment.yml carries the same ones (tests/test_packaging.py checks).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Data go to $$BAYESPRUNE_DATA when set, else ~/.cache/bayesprune.

.PHONY: setup data test test-slow clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name bayesprune --display-name "Python (bayesprune)"
	touch $@

data: setup
	$(VENV)/bin/bayesprune data fetch

test: setup data
	$(PY) -m pytest

test-slow: setup data
	$(PY) -m pytest -m slow

clean:
	rm -rf $(VENV) .pytest_cache
