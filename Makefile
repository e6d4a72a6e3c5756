# Every target sets itself up: a fresh machine needs only `make demo` or `make test`.
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
EXTRAS    ?= dev,distributed,parquet,digits,bench
ASSETS    := .solara-assets/.complete

.PHONY: setup demo test test-fast test-browser lint bench app assets clean

$(STAMP): pyproject.toml scripts/find-python.sh
	@PYBIN=$$(scripts/find-python.sh) || exit 1; \
	  echo "using $$PYBIN ($$($$PYBIN --version))"; \
	  [ -x $(PY) ] || $$PYBIN -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

## demo: set up, then run the gossip-learning simulation and write CSV to out/demo
demo: $(STAMP)
	$(PY) -m simulator run gossip_learning --steps 100 --seed 0 --agents-csv --out out/demo

## test: set up, then run the default (fast) suite
test: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser" -q

## test-all: everything CI runs (slow and browser tests included)
test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) -m benchmarks.train_step

clean:
	rm -rf $(VENV) out .pytest_cache
