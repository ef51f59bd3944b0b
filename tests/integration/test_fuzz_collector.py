"""Issue #8 at small scale against the real thing: ~500 hostile payloads over OTLP/HTTP and
gRPC to a real collector process writing to a real Kafka broker, then both topics read back.

It starts its own broker and collector (not the session stack: the fuzz tenants' spans would
land in the other tests' tenants), on test ports shifted by TOKENPULSE_IT_PORT_OFFSET. The
checks are bench/fuzz_collector.py's (`check`): every answer allowed for its payload, every
known-good span on the spans topic, every known-bad one on the dead-letter topic with a reason,
topic counts equal to the collector's counts and the replies' partial_success, accepted +
dead-lettered + ignored == spans sent, the collector alive and with no traceback in its log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import port, without_session_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fuzz_collector as fz  # noqa: E402
from testkit.fuzz_payloads import payload_stream  # noqa: E402

PAYLOADS = 500


@pytest.fixture
def fuzz_stack(tmp_path, monkeypatch):
    base = {"kafka": port(29192), "controller": port(29193), "http": port(24418), "grpc": port(24417)}
    # stack_environment adds TOKENPULSE_IT_PORT_OFFSET itself: hand it the unshifted ports.
    offset = port(0)
    env = fz.stack_environment(tmp_path, {k: v - offset for k, v in base.items()})
    # The session stack's settings (e.g. its Kafka inputs for tenant acme) are in this process's
    # environment: this stack gets only its own.
    for k in set(os.environ) - set(without_session_settings(dict(os.environ))):
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from tokenpulse.settings import Settings
    from tokenpulse.stack import Stack

    settings = Settings()
    stack = Stack(settings)
    try:
        stack.up(lambda m: print(f"[fuzz-stack] {m}", flush=True), only=["kafka", "collector"])
        yield settings, stack
    finally:
        stack.down(only=["kafka", "collector"])


def test_hostile_payloads_over_http_and_grpc_are_answered_and_accounted_for(fuzz_stack):
    settings, stack = fuzz_stack
    pid = stack.pid("collector")
    cfg, bootstrap = settings.collector, settings.kafka.bootstrap_servers
    topics = (fz.topics.SPANS.name, fz.topics.DEAD_LETTERS.name)
    start = {t: fz.end_offsets(bootstrap, t) for t in topics}
    before = fz._health(cfg.port)

    results = fz.send_all(list(payload_stream(seed=20, count=PAYLOADS)), http_port=cfg.port,
                          grpc_port=cfg.grpc_port, grpc_share=0.3, senders=2, seed=20, progress=print)

    assert stack.pid("collector") == pid, "the collector died:\n" + stack.tail("collector", 40)
    health = fz._health(cfg.port)
    raw = fz.read_from(bootstrap, topics[0], start[topics[0]])
    dead = fz.read_from(bootstrap, topics[1], start[topics[1]])
    report = fz.check(results, raw, dead, health, before)
    assert report.failures == [], "\n".join(report.failures[:20])
    assert len(results) == PAYLOADS and {s.transport for s in results} == {"http", "grpc"}
    # The run exercised all three fates.
    assert report.totals["on_spans_topic"] and report.totals["on_dead_letter_topic"] and report.totals["collector_ignored"]
    assert "Traceback" not in stack.log_path("collector").read_text(errors="replace")
