# The two commands of the README:
#   make demo   - make a virtualenv, install progenitor (and bubblewrap, where it may), run 3
#                 generations of the digits example
#   make test   - install what the full suite needs (Docker engine, bubblewrap, Chromium),
#                 start the services, and run every test (what CI runs)
# and, for everyday work:
#   make test-fast - the default suite only (no docker / ray / browser / slow tests)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch for the examples. On the machines this project is built on, torch==2.13.0 resolves to
# a CPU build kept on local disk; elsewhere a plain `torch` pulls a multi-GB CUDA build, so
# point pip at PyTorch's CPU wheel index with TORCH_PIP_ARGS="--index-url <that index>".
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
DEMO_DIR ?= demo/digits
GENERATIONS ?= 3
# Extra flags for the demo's `progenitor run`, e.g. DEMO_FLAGS="--sandbox process".
DEMO_FLAGS ?=

.PHONY: install demo demo-setup test test-fast system clean

$(BIN)/progenitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[examples,dev]"
	touch $@

install: $(BIN)/progenitor

# bubblewrap where this user may install it; the run itself says which isolation it got.
demo-setup:
	bash .ci/demo-setup.sh

demo: install demo-setup
	rm -rf $(DEMO_DIR)
	$(BIN)/progenitor init --example digits $(DEMO_DIR)
	$(BIN)/progenitor run $(DEMO_DIR) --generations $(GENERATIONS) $(DEMO_FLAGS)

system:
	bash .ci/system-setup.sh

# system-setup has started the daemon, built the images and started PostgreSQL: a docker or
# postgres test that cannot run fails. Two passes, each on both cores (every test looks only at
# what it started): the default suite with the `loop` tests, then the marked tests, grouped so
# that what must not run side by side shares a worker (tests/conftest.py: Ray and the end-to-end
# trainings, the browser, each backend's red team). Both always run; either failing fails the
# target. The first pass names its own filter, `not (MARKED)`, so pyproject's default (which also
# leaves `loop` out, for `make test-fast`) does not apply: the two passes are every test, once.
MARKED := docker or ray or browser or slow or postgres
test: install system
	@status=0; \
	PROGENITOR_REQUIRE_DOCKER=1 $(BIN)/python -m pytest -m "not ($(MARKED))" -q -n 2 --durations=20 || status=$$?; \
	PROGENITOR_REQUIRE_DOCKER=1 $(BIN)/python -m pytest -m "$(MARKED)" -q -n 2 --dist loadgroup --durations=40 \
		|| status=$$?; \
	exit $$status

# The default suite on both cores (its tests look only at what they started, so they share a
# machine): every test but the marked ones and the `loop` ones, which `make test` runs.
test-fast: install
	$(BIN)/python -m pytest -q -n 2

clean:
	rm -rf $(VENV) demo .pytest_cache
