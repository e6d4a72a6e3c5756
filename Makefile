# Every target sets itself up: a fresh machine needs only `make demo` or `make test`.
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
EXTRAS    ?= dev,distributed,parquet,digits,browser
ASSETS    := .solara-assets/.complete

.PHONY: setup assets app demo test test-extra test-all lint bench clean

$(STAMP): pyproject.toml scripts/find-python.sh
	@PYBIN=$$(scripts/find-python.sh) || exit 1; \
	  echo "using $$PYBIN ($$($$PYBIN --version))"; \
	  [ -x $(PY) ] || $$PYBIN -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

# The browser app's front-end files (JavaScript, CSS, fonts) from the npm registry, unpacked
# once into .solara-assets/<package>@<version>/ so the app never needs a CDN; idempotent.
$(ASSETS): $(STAMP) simulator/app/assets.py
	$(PY) -m simulator.app.assets --dest .solara-assets

## assets: fetch the browser app's front-end files once (npm pack; offline afterwards)
assets: $(ASSETS)

## app: set up, then open the browser app on http://127.0.0.1:8765
app: $(STAMP) $(ASSETS)
	$(PY) -m simulator app

## demo: set up, then run the gossip-learning simulation and write CSV to out/demo
demo: $(STAMP) $(ASSETS)
	$(PY) -m simulator run gossip_learning --steps 100 --seed 0 --agents-every 10 --out out/demo --force

## test: set up, then run the default (fast) suite in TEST_WORKERS processes (pytest-xdist; a
## file's tests stay in one process). Most of a first run is Numba compiling kernels, one core
## per compilation: two processes take about half the time on two cores. TEST_WORKERS=0: one.
TEST_WORKERS ?= 2
test: $(STAMP) $(ASSETS)
	$(PY) -m pytest -m "not slow and not browser" -q -n $(TEST_WORKERS) --dist loadfile

## test-extra: the slow and browser tests (CI runs them after `make test`)
test-extra: $(STAMP) $(ASSETS)
	$(PY) -m pytest -m "slow or browser" -q

## test-all: everything CI runs
test-all: test test-extra

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) -m benchmarks.train_step

## clean-cache: drop Numba's on-disk kernel cache. Numba keys a cached kernel on its own file
## only: after editing a module whose functions are inlined into kernels elsewhere
## (kernels/activations.py, optim.py, elementary.py, arrays.py, gemm.py), clear the cache.
clean-cache:
	find simulator -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf $(VENV) out .pytest_cache
