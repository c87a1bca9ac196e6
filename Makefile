# The two commands of the README, and the pieces they are made of.
#   make run    install everything, start the embedded stack, show its status
#   make test   install everything, run the test suite against real processes
# Other targets: setup, lint, typecheck, bench-stack, down.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: setup run test lint typecheck bench-stack down

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,dev]'
	touch $@

setup: $(VENV)/.installed
	bash deploy/local/install.sh

run: setup
	$(VENV)/bin/resilience up
	$(VENV)/bin/resilience status

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check resilience

typecheck: setup
	$(VENV)/bin/mypy

bench-stack: setup
	$(PY) benchmarks/stack_startup.py

down:
	$(VENV)/bin/resilience down
