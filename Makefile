# `make run` and `make test` create .venv on first use (python3 -m venv + pip) and reuse it after.
PYTHON ?= python3
VENV ?= .venv
# test processes (pytest-xdist); each test runs one torch thread, so one worker per core. `make test TEST_WORKERS=0`
# runs the suite in this process.
TEST_WORKERS ?= 2
BIN := $(VENV)/bin

.PHONY: run test clean

run: $(VENV)/.installed
	$(BIN)/xformer compare --overwrite

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache
