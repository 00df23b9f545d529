# ldflow — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: set up, then take sample requests through the whole lifecycle (SQLite, local mail folder)
demo: $(STAMP)
	$(VENV)/bin/ldflow demo

## test: set up, then run the whole test suite
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff on everything, mypy on the domain, the connectors and the application
lint: $(STAMP)
	$(VENV)/bin/ruff check states connectors flows tests bench
	$(VENV)/bin/mypy states connectors flows

## bench: the benchmarks in bench/ (not part of the tests)
bench: $(STAMP)
	$(PY) bench/transitions.py
	$(PY) bench/history.py
	$(PY) bench/report_pdf.py

clean:
	rm -rf $(VENV) .ldflow .ldflow-demo .pytest_cache .mypy_cache .ruff_cache
