"""Session fixture: the real local stack (Kafka broker, loader + chDB, PyFlink job, collector)
started as processes on test-only ports with a temporary state directory."""

from __future__ import annotations

import os

import pytest
from helpers import HOOK_SECRET, PAGERDUTY_ROUTING_KEY, port, write_test_detectors, write_test_hooks, write_test_prices
from hook_receivers import RecordingServer

from tokenpulse.settings import Settings
from tokenpulse.stack import Stack

TEST_ENV = {
    "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port(29092)}",
    "TOKENPULSE_KAFKA_CONTROLLER_PORT": str(port(29093)),
    "TOKENPULSE_COLLECTOR_PORT": str(port(24318)),
    "TOKENPULSE_COLLECTOR_GRPC_PORT": str(port(24317)),
    "TOKENPULSE_COLLECTOR_KAFKA_INPUTS": '[{"topic": "it-otelcol-acme", "encoding": "otlp_proto", "tenant": "acme"}]',
    "TOKENPULSE_COLLECTOR_HEARTBEAT_INTERVAL_MS": "500",
    "TOKENPULSE_LOADER_QUERY_PORT": str(port(28124)),
    "TOKENPULSE_LOADER_BATCH_MAX_MS": "300",
    # Short out-of-orderness so 1-minute windows close ~2 s after the minute ends.
    "TOKENPULSE_STREAM_WATERMARK_DELAY_MS": "2000",
    "TOKENPULSE_STREAM_CHECKPOINT_INTERVAL_MS": "5000",
}


@pytest.fixture(scope="session")
def hook_receivers():
    """Webhook, Slack and PagerDuty stand-ins, started before the alert dispatcher."""
    servers = {"webhook": RecordingServer(), "slack": RecordingServer(), "pagerduty": RecordingServer(status=202)}
    yield servers
    for s in servers.values():
        s.close()


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory, hook_receivers):
    state = tmp_path_factory.mktemp("state")
    files = {
        "TOKENPULSE_PATHS_STATE_DIR": str(state),
        "TOKENPULSE_STREAM_PRICES_FILE": str(state / "prices.yaml"),
        "TOKENPULSE_DETECTOR_DETECTORS_FILE": str(state / "detectors.yaml"),
        "TOKENPULSE_ALERTS_HOOKS_FILE": str(state / "hooks.yaml"),
        "TOKENPULSE_IT_HOOK_SECRET": HOOK_SECRET,
        "TOKENPULSE_IT_PAGERDUTY_KEY": PAGERDUTY_ROUTING_KEY,
    }
    saved = {k: os.environ.get(k) for k in [*TEST_ENV, *files]}
    os.environ.update(TEST_ENV)
    os.environ.update(files)
    write_test_prices(state / "prices.yaml")
    write_test_detectors(state / "detectors.yaml")
    write_test_hooks(state / "hooks.yaml", {k: v.url for k, v in hook_receivers.items()})
    settings = Settings()
    stack = Stack(settings)
    try:
        stack.up(lambda m: print(f"[stack] {m}", flush=True))
        yield settings
    finally:
        stack.down()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
