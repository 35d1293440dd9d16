# Two commands for a newcomer: `make demo` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt bench clean browser strace

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

# A Debian package a group of tests drives, installed with apt when its command is missing: $(1) the command and
# the package, $(2) what needs it.
define debian_tool
@command -v $(1) >/dev/null 2>&1 || { \
  echo "installing Debian's $(1) for $(2)"; \
  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1) >/dev/null; }
endef

# The console's browser tests drive Debian's Chromium (Playwright's own download is not used).
browser:
	$(call debian_tool,chromium,the browser tests)

# The archive's durability test traces a child's fsyncs with strace.
strace:
	$(call debian_tool,strace,the archive durability test)

# Four pytest-xdist workers: most tests wait on brokers, servers and subprocesses rather than the CPU.
# loadscope keeps a module's tests on one worker, so a module-scoped server or demo starts once; the modules
# go out in tests/conftest.py's order (slow ones first), not xdist's (by test count). The 30 slowest tests are
# listed at the end, so each CI log says where the suite's time goes.
test: $(STAMP) browser strace
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
