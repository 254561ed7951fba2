# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= egl

.PHONY: install demo test lint test-ogbench
install: $(VENV)/.installed

# torch is pinned first: 2.13.0 is the CPU build on this disk; the project's range then admits it
# and pip installs nothing bigger.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	$(PY) scripts/demo.py

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

# OGBench's visual cube tasks (optional extra [ogbench]) in their own environment: ogbench brings dm_control,
# which pins mujoco exactly, so it stays apart from the main .venv (docs/ogbench.md).
VENV_OGBENCH ?= .venv-ogbench
$(VENV_OGBENCH)/.installed: pyproject.toml
	python3 -m venv $(VENV_OGBENCH)
	$(VENV_OGBENCH)/bin/python -m pip install -q torch==2.13.0
	$(VENV_OGBENCH)/bin/python -m pip install -q -e '.[dev,ogbench]'
	touch $@

test-ogbench: $(VENV_OGBENCH)/.installed
	$(VENV_OGBENCH)/bin/python -m pytest -q tests/envs/test_ogbench_actions.py tests/envs/test_ogbench_cube.py
