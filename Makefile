# Entry points for developers and CI. Everything runs from the repo-local .venv and .tools/bin,
# which `make setup` creates (and skips quickly when they are current).

VENV_PY := .venv/bin/python
PYTEST_ARGS ?=
# `make bench PYTHON=/path/to/python3.13`: the almanet side runs on that interpreter, from a venv
# of its own (.venv-py3.13, made by scripts/setup.sh), and its table goes to its own block.
PYTHON ?=
ifneq ($(PYTHON),)
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
BENCH_VENV := .venv-py$(PY_VERSION)
endif

.PHONY: help setup test test-pythons soak chaos lint typecheck demo bench clean ui-screenshot

help:
	@echo "make setup   build NSQ tools into .tools/bin, create .venv with almanet[dev]"
	@echo "make test    run pytest (extra args: PYTEST_ARGS='-k name -x')"
	@echo "make test-pythons  unit tests and an integration subset on the other Pythons found (3.11-3.14)"
	@echo "make soak    the fault suite (tests/faults) at full size: 50 callers x 1000 calls, long fuzzing"
	@echo "make chaos  the chaos run (scripts/chaos/run.py): faults for CHAOS_SECONDS (default 600), one summary line"
	@echo "make lint    ruff check and format --check, mypy --strict and pyright"
	@echo "make typecheck  mypy --strict and pyright on almanet/ and services/"
	@echo "make demo    quick-start demo: start nsqd if needed, serve and call the example"
	@echo "make bench   run the benchmark (bench/run.py): almanet on .venv's Python and on the newest other one found, a table each; PYTHON=/path/to/python runs almanet on that one only"
	@echo "make ui-screenshot  run the browser tests of almanet ui, writing docs/almanet-ui.png"
	@echo "make clean   remove .venv, .tools and caches (next setup rebuilds them)"

setup:
	@./scripts/setup.sh

test: setup
	$(VENV_PY) -m pytest -q $(PYTEST_ARGS)

test-pythons: setup
	./scripts/test-pythons.sh

CHAOS_SECONDS ?= 600
chaos: setup
	CHAOS_SECONDS=$(CHAOS_SECONDS) $(VENV_PY) scripts/chaos/run.py

soak: setup
	ALMANET_SOAK=1 $(VENV_PY) -m pytest -q tests/faults $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/pyright

typecheck: setup
	.venv/bin/mypy
	.venv/bin/pyright

demo: setup
	$(VENV_PY) scripts/demo.py

ifeq ($(PYTHON),)
bench: setup
	./scripts/bench.sh
else
bench:
	@test -n "$(PY_VERSION)" || { echo "bench: $(PYTHON) does not run"; exit 2; }
	@PYTHON=$(PYTHON) ALMANET_VENV=$(CURDIR)/$(BENCH_VENV) SKIP_INTEROP=1 ./scripts/setup.sh
	$(BENCH_VENV)/bin/python bench/run.py --table py$(PY_VERSION)
endif

ui-screenshot: setup
	ALMANET_UI_SCREENSHOT=$(CURDIR)/docs/almanet-ui.png $(VENV_PY) -m pytest -q tests/ui/test_browser.py

clean:
	rm -rf .venv .venv-py* .tools .pytest_cache .ruff_cache build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
