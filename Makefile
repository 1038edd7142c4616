# FitTwin core — two set-up commands: `make demo` and `make test`.
# Both create .venv when it is missing; nothing else needs installing by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint docs bench mutate clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "FitTwin needs Python >= 3.11: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/fittwin demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# Mutation testing of the rule modules ([tool.mutmut] in pyproject.toml; not part of `make test`):
# mutmut's mutants of every function, then the table mutants of tests/mutation/tables.py.
mutate: $(VENV)/.installed-dev
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results --all true > build/mutmut-results.txt || true
	$(BIN)/python -m tests.mutation.tables

docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict --site-dir build/site

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/fit.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/analytics.py

clean:
	rm -rf $(VENV) build mutants .mypy_cache .pytest_cache .ruff_cache .hypothesis
