# Two commands for a newcomer: `make demo` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The Sparkplug tests' edge node encodes with pysparkplug, which pins paho-mqtt<2 for its MQTT client;
	# the tests use only its payload encoder, so it goes in without its dependencies.
	$(BIN)/python -m pip install --quiet --no-deps 'pysparkplug==0.6.1'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/servicecast demo

# The console's browser tests drive Debian's Chromium (Playwright's own download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Four pytest-xdist workers: most tests wait on brokers, servers and subprocesses rather than the CPU.
# loadscope keeps a module's tests on one worker, so a module-scoped server or demo starts once; the modules
# go out in tests/conftest.py's order (slow ones first), not xdist's (by test count). The 30 slowest tests are
# listed at the end, so each CI log says where the suite's time goes.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 4 --dist loadscope --no-loadscope-reorder --durations=30

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.ingest --messages 100000 --json

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
