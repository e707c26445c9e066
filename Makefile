# Two commands on a fresh machine: `make up` runs the whole stack, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install up test test-unit lint bench demo contract clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,otel]'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/switchboard up

test: install
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/bus_bench.py

demo: install
	$(BIN)/switchboard demo

contract: install
	$(BIN)/switchboard contract

clean:
	rm -rf $(VENV) .switchboard .pytest_cache
