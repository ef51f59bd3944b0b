#!/usr/bin/env bash
# Stop the local Kafka broker started by infra/kafka-up.sh (its data stays in .state/kafka).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/tokenpulse down --only kafka
