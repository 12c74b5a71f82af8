# ldm_mini: every target sets up its own virtual environment first, so each works on a fresh clone.
# On this machine and in CI torch is pinned to the CPU build 2.13.0 before anything else;
# on a GPU machine pass another pin, e.g. `make lessons TORCH_SPEC="torch>=2.2"`.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PROFILE ?=
export PROFILE

.PHONY: lessons test test-portable test-portable-sse41 test-portable-avx2 test-browser lab notebooks pretrained bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@

## The main job: run every lesson headless, in order; executed copies + HTML go to build/lessons/.
lessons: $(VENV)/.installed
	$(PY) scripts/run_lessons.py --out build/lessons

## Unit tests, then every notebook under nbval (cells marked NBVAL_CHECK_OUTPUT must print the same).
## TEST_WORKERS pytest processes (pytest-xdist) of one thread each: on 2 cores the tests take about 60%
## of the time of one process with 2 threads (our small models gain little from a second thread).
## --dist loadfile keeps a file on one worker: a notebook in one kernel, a module's fixtures built once.
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile
test: $(VENV)/.installed
	$(PY) -m ruff check ldm_mini tests benchmarks scripts solutions
	$(PYTEST) tests
	$(NBVAL) notebooks/

## The lessons that train or sample live, under nbval again with the kernels capped to older CPUs'
## instruction sets: plain SSE4.1 (test-portable-sse41, which CI runs) and AVX2 (test-portable-avx2).
## Their checked outputs must not depend on the CPU (docs/CONVENTIONS.md, "What nbval checks").
## The nbval kernel inherits these variables.
PORTABLE_LESSONS ?= 02 02b 04 05 06 08 09 10
PORTABLE_NOTEBOOKS = $(foreach n,$(PORTABLE_LESSONS),$(wildcard notebooks/$(n)_*.ipynb))
NBVAL := $(PYTEST) --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg
test-portable: test-portable-sse41 test-portable-avx2
test-portable-sse41: $(VENV)/.installed
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(NBVAL) $(PORTABLE_NOTEBOOKS)
test-portable-avx2: $(VENV)/.installed
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(NBVAL) $(PORTABLE_NOTEBOOKS)

## Lessons 01, 02b and 06 in a real JupyterLab driven by headless Chromium: Run All, no errors, move
## each panel's control, check the figure and numbers change; screenshots in build/screenshots/.
## Installs the `browser` extra (playwright) and Debian's chromium (apt-get; needs root or sudo).
test-browser: $(VENV)/.installed-browser
	scripts/install_chromium.sh
	$(PY) -m pytest -v -p no:cacheprovider tests_browser

$(VENV)/.installed-browser: $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,browser]"
	touch $@

## JupyterLab on the notebooks.
lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/

## Authors: rebuild notebooks/*.ipynb from notebooks/src/*.py and execute them in place.
notebooks: $(VENV)/.installed
	$(PY) scripts/build_notebooks.py

## Rebuild every shipped checkpoint in data/checkpoints/ from scratch (about an hour on 2 CPU cores).
pretrained: $(VENV)/.installed
	$(PY) -m ldm_mini pretrained --profile $(or $(PROFILE),quick)

## Speed, measured side by side (latent vs pixel, ldm_mini vs diffusers, FLOP/s, speed options); ~10 min on 2 cores.
## Writes benchmarks/results/*.json, the plots and summary.md. Run it on an idle machine.
bench: $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,bench]"
	$(PY) -m benchmarks.run_all

clean:
	rm -rf build data/cache
