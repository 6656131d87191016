# Entry points for developers and CI. Everything runs from the repo-local .venv and .tools/bin,
# which `make setup` creates (and skips quickly when they are current).

VENV_PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help setup test soak lint demo bench clean ui-screenshot

help:
	@echo "make setup   build NSQ tools into .tools/bin, create .venv with almanet[dev]"
	@echo "make test    run pytest (extra args: PYTEST_ARGS='-k name -x')"
	@echo "make soak    the fault suite (tests/faults) at full size: 50 callers x 1000 calls, long fuzzing"
	@echo "make lint    ruff check"
	@echo "make demo    quick-start demo: start nsqd if needed, serve and call the example"
	@echo "make bench   run the benchmark (bench/run.py)"
	@echo "make ui-screenshot  run the browser tests of almanet ui, writing docs/almanet-ui.png"
	@echo "make clean   remove .venv, .tools and caches (next setup rebuilds them)"

setup:
	@./scripts/setup.sh

test: setup
	$(VENV_PY) -m pytest -q $(PYTEST_ARGS)

soak: setup
	ALMANET_SOAK=1 $(VENV_PY) -m pytest -q tests/faults $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .

demo: setup
	$(VENV_PY) scripts/demo.py

bench: setup
	$(VENV_PY) bench/run.py

ui-screenshot: setup
	ALMANET_UI_SCREENSHOT=$(CURDIR)/docs/almanet-ui.png $(VENV_PY) -m pytest -q tests/ui/test_browser.py

clean:
	rm -rf .venv .tools .pytest_cache .ruff_cache build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
