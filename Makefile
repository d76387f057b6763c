# Every target sets itself up on a fresh machine: `make demo` and `make test` need nothing else.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# torch's CPU build lies on the machine's disk; a bare `torch` requirement resolved by pip on its
# own would pull a multi-GB CUDA build, so torch is always installed first and pinned here.
TORCH_SPEC ?= torch==2.13.0
# escnn is installed without its declared dependencies (lie_learn cannot install under numpy 2;
# see skastro/_escnn.py); the `equivariant` extra brings the others.
ESCNN_SPEC ?= escnn==1.0.11
STAMP := $(VENV)/.skastro-installed
BROWSER_STAMP := $(VENV)/.skastro-browser
DOCS_STAMP := $(VENV)/.skastro-docs
# two workers, tests of one module on the same worker so module fixtures are shared
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install demo test test-oldest bench lint format docs clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q --upgrade-strategy eager -e ".[dev,explorer,equivariant,distributed]"
	$(PIP) install -q --no-deps $(ESCNN_SPEC)
	@touch $@

# The oldest supported stack: every dependency at the lower bound setup.cfg declares
# (.ci/lower-bounds.txt), numpy 1 with the real lie_learn wheel; CI's second, faster leg.
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.skastro-installed
# everything but the browser tests, which need nothing of the old stack the main leg lacks
OLDEST_TESTS ?= -m "not browser"
$(OLDEST_STAMP): setup.cfg pyproject.toml .ci/lower-bounds.txt
	@[ -x $(OLDEST_VENV)/bin/python ] || python3 -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip wheel setuptools
	$(OLDEST_VENV)/bin/python -m pip install -q $(TORCH_SPEC)
	$(OLDEST_VENV)/bin/python -m pip install -q -c .ci/lower-bounds.txt -e ".[dev,explorer,equivariant]" \
		lie_learn==0.0.2
	$(OLDEST_VENV)/bin/python -m pip install -q --no-deps $(ESCNN_SPEC)
	@touch $@

# Headless Chromium for the explorer's browser tests: Debian's packages, no browser download.
$(BROWSER_STAMP):
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; }
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/skastro demo --out demo_output

test: $(STAMP) $(BROWSER_STAMP)
	SKASTRO_STACK=newest $(PY) -m pytest $(PYTEST_ARGS)

test-oldest: $(OLDEST_STAMP)
	SKASTRO_STACK=oldest $(OLDEST_VENV)/bin/python -m pytest $(PYTEST_ARGS) -p no:cacheprovider \
		$(OLDEST_TESTS)

# Sphinx, numpydoc, sphinx-gallery and the theme: the `docs` extra. The build runs every example.
$(DOCS_STAMP): $(STAMP) setup.cfg
	$(PIP) install -q -e ".[docs]"
	@touch $@

docs: $(STAMP) $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check skastro tests benchmarks examples
	$(VENV)/bin/ruff format --check skastro tests benchmarks examples

format: $(STAMP)
	$(VENV)/bin/ruff check --fix skastro tests benchmarks examples
	$(VENV)/bin/ruff format skastro tests benchmarks examples

clean:
	rm -rf $(VENV) $(OLDEST_VENV) build *.egg-info .pytest_cache demo_output
