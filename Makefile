# Two commands on a fresh machine (needs python3 >= 3.11, Java 17+, Maven; all downloads
# are cached under .cache/, runtime state under .state/, both git-ignored):
#   make demo    install, start the local stack, run the demo workload, print a summary, stop
#   make test    install, then the test tiers in order (tests/run_tiers.sh): lint, JUnit, unit
#                (hermetic), component (JVMs, Chromium), integration (the tests start the real
#                Kafka broker, Flink jobs, loader/chDB and collector themselves)
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install jars demo test lint typecheck jvm-test unit component integration bench down clean browser drills

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --cache-dir .cache/pip --upgrade pip
	$(PY) -m pip install -q --cache-dir .cache/pip -e ".[server,dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Kafka and the Flink connector from Maven Central, and tokenpulse's own Flink functions
# (stream_jobs/jvm, packaged by Maven), all into .cache/.
jars: $(STAMP)
	$(PY) -c "from tokenpulse.jars import ensure_jars, udf_jar; from tokenpulse.settings import PathSettings; \
		ensure_jars(PathSettings()); udf_jar(PathSettings())"

demo: jars
	$(VENV)/bin/tokenpulse demo

# The tiers in order (lint, JUnit, unit, component, integration), each one's time printed.
test: jars browser
	PY=$(PY) tests/run_tiers.sh

# mypy on tokenpulse.core ([tool.mypy] in pyproject.toml); seconds.
typecheck: $(STAMP)
	PY=$(PY) tests/typecheck.sh

# The JUnit tests of the Flink functions (rules, price lookup, alert documents); seconds.
jvm-test: jars
	mvn -q -B -Dstyle.color=never -f stream_jobs/jvm/pom.xml test -Dmaven.repo.local=.cache/m2

# ruff, configured in pyproject.toml ([tool.ruff]); seconds.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Only the fault drills' test (its own stack, ~4-6 min; also part of `make test`).
drills: jars
	$(PY) -m pytest tests/integration/test_drills.py -s

# Headless Chromium for the report's rendering test (tests/unit/report); Debian's package.
browser:
	@test -x /usr/bin/chromium || command -v chromium >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Hermetic: no child process (tests/unit/conftest.py refuses them).
unit: $(STAMP)
	$(PY) -m pytest tests/unit

# Real JVMs, Chromium, child processes; no stack.
component: jars browser
	$(PY) -m pytest tests/component

integration: jars
	$(PY) -m pytest tests/integration

bench: jars
	$(PY) bench/e2e_throughput.py

down: $(STAMP)
	$(VENV)/bin/tokenpulse down

clean: down
	rm -rf .state
