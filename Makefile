# Every target sets itself up: a fresh machine needs only `make demo` or `make test`.
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
EXTRAS    ?= dev,distributed,parquet,digits,bench
ASSETS    := .solara-assets/.complete

.PHONY: setup demo test test-extra test-all lint bench clean

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
	$(PY) -m simulator run gossip_learning --steps 100 --seed 0 --agents-every 10 --out out/demo

## test: set up, then run the default (fast) suite
test: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser" -q

## test-extra: the slow and browser tests (CI runs them after `make test`)
test-extra: $(STAMP)
	$(PY) -m pytest -m "slow or browser" -q

## test-all: everything CI runs
test-all: test test-extra

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) -m benchmarks.train_step

clean:
	rm -rf $(VENV) out .pytest_cache
