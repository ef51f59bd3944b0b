#!/usr/bin/env bash
# Start the local single-node Kafka broker (KRaft) on 127.0.0.1, wait until it answers,
# and create the topics from schemas/topics.py. Data: .state/kafka, log: .state/logs/kafka.log.
# Ports: TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:19092), TOKENPULSE_KAFKA_CONTROLLER_PORT (19093).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/tokenpulse up --only kafka
