#!/usr/bin/env bash
# The test tiers in order, cheapest first, stopping at the first that fails; prints each
# tier's time at the end (and on failure). `make test` (and so .ci/run) runs this after
# installing; each tier also has its own make target (lint, jvm-test, unit, component, integration).
#
#   lint         ruff, configured in pyproject.toml                          seconds
#   types        mypy on tokenpulse.core (tests/typecheck.sh)                 seconds
#   jvm          JUnit tests of stream_jobs/jvm (mvn test)                   seconds
#   unit         tests/unit: hermetic, no child process (enforced)            ~1 min
#   component    tests/component: JVMs, Chromium, child processes; fuzz,      ~1.5 min
#                property and quality runs
#   integration  tests/integration: the real Kafka, Flink jobs, loader/chDB   ~18 min
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
times=()

summary() {
    echo
    echo "test tiers:"
    printf '  %s\n' "${times[@]}"
}

tier() {
    local name=$1 started=$SECONDS status
    shift
    echo "=== tier: $name"
    "$@"
    status=$?
    times+=("$(printf '%-12s %5d s  %s' "$name" $((SECONDS - started)) "$([ $status -eq 0 ] && echo ok || echo FAILED)")")
    if [ $status -ne 0 ]; then
        summary
        exit $status
    fi
}

tier lint .venv/bin/ruff check .
tier types env PY="$PY" tests/typecheck.sh
tier jvm mvn -q -B -Dstyle.color=never -f stream_jobs/jvm/pom.xml test -Dmaven.repo.local=.cache/m2
tier unit "$PY" -m pytest tests/unit --durations=10
tier component "$PY" -m pytest tests/component --durations=10
tier integration "$PY" -m pytest tests/integration --durations=25
summary
