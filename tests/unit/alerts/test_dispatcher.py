"""Delivery end to end against real local HTTP receivers; the Kafka loop with a stand-in consumer."""

import json
import logging
import time
from typing import NamedTuple

import pytest
from alert_testkit import OutcomeLog, hook_entry, hooks_config, make_alert

from tokenpulse.alerts.delivery import Deliveries
from tokenpulse.alerts.dispatcher import AlertDispatcher
from tokenpulse.alerts.outbox import Outbox
from tokenpulse.schemas import topics
from tokenpulse.schemas.alerts import AlertState, Severity
from tokenpulse.settings import AlertSettings, KafkaSettings


@pytest.fixture
def start_deliveries(tmp_path):
    """start_deliveries(*hook_entries) -> (Deliveries, OutcomeLog); stopped after the test."""
    running = []

    def start(*entries, path=tmp_path / "outbox.sqlite"):
        outcomes = OutcomeLog()
        deliveries = Deliveries(hooks_config(*entries), Outbox(path), outcomes)
        deliveries.start()
        running.append(deliveries)
        return deliveries, outcomes

    yield start
    for d in running:
        d.stop()
        d.outbox.close()


def test_same_alert_twice_is_sent_once(http_server, start_deliveries):
    server = http_server()
    deliveries, outcomes = start_deliveries(hook_entry("wh", "webhook", server.url))
    alert = make_alert()
    assert deliveries.submit(alert) == 1
    assert outcomes.wait_for(1)
    assert deliveries.submit(alert) == 0
    deliveries.submit(make_alert(session="sentinel"))  # delivered after anything queued before it
    assert outcomes.wait_for(2)
    assert [o.alert_id for o in outcomes.outcomes] == [alert.alert_id, make_alert(session="sentinel").alert_id]
    assert len(server.requests) == 2


def test_retries_until_delivered_without_waiting_for_a_failing_hook(http_server, start_deliveries):
    broken = http_server(fail_first=1000)
    flaky = http_server(fail_first=2)
    slow_retry = {"max_attempts": 4, "initial_backoff_ms": 100, "max_backoff_ms": 100, "timeout_s": 1}
    deliveries, outcomes = start_deliveries(hook_entry("broken", "webhook", broken.url, retry=slow_retry),
                                            hook_entry("flaky", "pagerduty", flaky.url))
    alert = make_alert()
    deliveries.submit(alert)
    assert outcomes.wait_for(2)

    (good,) = outcomes.for_hook("flaky")
    assert (good.outcome, good.attempts, good.http_status, good.error) == ("delivered", 3, 200, None)
    assert (good.alert_id, good.state, good.hook_kind, good.tenant) == \
        (alert.alert_id, AlertState.open, "pagerduty", "acme")
    (bad,) = outcomes.for_hook("broken")
    assert (bad.outcome, bad.attempts, bad.http_status) == ("failed", 4, 500)
    assert "HTTP 500" in bad.error and bad.first_attempt_ms <= bad.finished_ms
    assert len(flaky.requests) == 3 and len(broken.requests) == 4
    # The healthy hook got its page while the broken one was still retrying.
    assert flaky.requests[-1].at < broken.requests[-1].at
    assert [d.outcome for d in deliveries.outbox.deliveries()] == ["failed", "delivered"]


def test_non_retryable_answer_fails_after_one_attempt(http_server, start_deliveries):
    server = http_server(fail_first=1000, fail_status=400)
    deliveries, outcomes = start_deliveries(hook_entry("pd", "pagerduty", server.url))
    deliveries.submit(make_alert())
    assert outcomes.wait_for(1)
    (outcome,) = outcomes.outcomes
    assert (outcome.outcome, outcome.attempts, outcome.http_status) == ("failed", 1, 400)
    assert "nope: bad request" in outcome.error
    assert len(server.requests) == 1


def test_info_alerts_are_skipped_by_default(http_server, start_deliveries):
    server = http_server()
    deliveries, outcomes = start_deliveries(hook_entry("wh", "webhook", server.url))
    assert deliveries.submit(make_alert(severity=Severity.info, session="quiet")) == 0
    deliveries.submit(make_alert(severity=Severity.warning, session="loud"))
    assert outcomes.wait_for(1)
    assert [o.alert_id for o in outcomes.outcomes] == [make_alert(session="loud").alert_id]
    assert len(server.requests) == 1


def test_resolve_follows_its_open_and_is_not_sent_without_one(http_server, start_deliveries):
    server = http_server(ok_status=202)
    deliveries, outcomes = start_deliveries(hook_entry("pd", "pagerduty", server.url, tenants=["acme"]))
    assert deliveries.submit(make_alert(tenant="globex")) == 0  # filtered: this hook never heard of it
    assert deliveries.submit(make_alert(AlertState.resolved, tenant="globex")) == 0
    assert deliveries.submit(make_alert(AlertState.resolved, session="never-opened")) == 0
    deliveries.submit(make_alert())
    deliveries.submit(make_alert(AlertState.resolved))
    assert outcomes.wait_for(2)
    assert [(o.state, o.outcome) for o in outcomes.outcomes] == [(AlertState.open, "delivered"),
                                                                 (AlertState.resolved, "delivered")]
    assert [json.loads(r.body)["event_action"] for r in server.requests] == ["trigger", "resolve"]


def test_rows_pending_at_stop_are_delivered_by_the_next_instance(http_server, tmp_path):
    server = http_server(fail_first=1)
    patient = {"max_attempts": 5, "initial_backoff_ms": 30_000, "max_backoff_ms": 30_000, "timeout_s": 1}
    hooks = hooks_config(hook_entry("wh", "webhook", server.url, retry=patient))
    path = tmp_path / "outbox.sqlite"

    first_outcomes = OutcomeLog()
    first = Deliveries(hooks, Outbox(path), first_outcomes)
    first.start()
    first.submit(make_alert())
    assert server.wait_for(1)  # first attempt failed; the worker now backs off for 30 s
    stop_started = time.monotonic()
    first.stop()
    assert time.monotonic() - stop_started < 10  # stopping does not sit out the 30 s backoff
    first.outbox.close()
    assert first_outcomes.outcomes == []

    second_outcomes = OutcomeLog()
    second = Deliveries(hooks, Outbox(path), second_outcomes)  # a restarted dispatcher, same file
    second.start()
    try:
        assert second_outcomes.wait_for(1)
        (outcome,) = second_outcomes.outcomes
        assert (outcome.outcome, outcome.attempts) == ("delivered", 1)
        assert len(server.requests) == 2
    finally:
        second.stop()
        second.outbox.close()


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class StandInConsumer:
    """Hands out prepared batches, then calls `when_drained` on every empty poll."""

    def __init__(self, batches, when_drained):
        self.batches, self.when_drained = list(batches), when_drained
        self.subscribed, self.commits, self.closed_with_autocommit = None, [], None
        self.on_commit = lambda: None

    def subscribe(self, names):
        self.subscribed = names

    def poll(self, timeout_ms, max_records):
        if self.batches:
            return self.batches.pop(0)
        self.when_drained()
        return {}

    def commit(self):
        self.commits.append(self.on_commit())

    def close(self, autocommit):
        self.closed_with_autocommit = autocommit


def test_consumer_loop_skips_bad_records_and_commits_after_the_outbox(http_server, tmp_path, caplog):
    server = http_server()
    alert = make_alert()
    good = Record(topics.ALERTS.name, 0, 3, alert.model_dump_json().encode())
    batch = {0: [good, Record(topics.ALERTS.name, 0, 4, None)],  # a compaction tombstone
             1: [Record(topics.ALERTS.name, 1, 7, b"{not json"),
                 Record(topics.ALERTS.name, 1, 8, alert.model_dump_json().replace('"open"', '"maybe"').encode()),
                 good._replace(partition=1, offset=9)]}  # redelivered: deduplicated

    outcomes = OutcomeLog()
    consumer = StandInConsumer([batch], when_drained=lambda: outcomes.wait_for(1) and dispatcher.stop())
    hooks = hooks_config(hook_entry("wh", "webhook", server.url))
    dispatcher = AlertDispatcher(KafkaSettings(), AlertSettings(), hooks, tmp_path / "outbox.sqlite",
                                 publish=outcomes, consumer=consumer)
    consumer.on_commit = lambda: len(dispatcher.deliveries.outbox.deliveries())
    with caplog.at_level(logging.INFO, logger="tokenpulse.alerts"):
        dispatcher.run()  # returns once the stand-in sees the delivery and calls stop()

    assert consumer.subscribed == [topics.ALERTS.name]
    assert consumer.commits == [1]  # committed once, after the outbox held the alert
    assert consumer.closed_with_autocommit is False
    assert [o.outcome for o in outcomes.outcomes] == ["delivered"] and len(server.requests) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "partition 1 offset 7" in warnings[0] and "partition 1 offset 8" in warnings[1]
    assert any("alert dispatcher running: 1 hooks" in r.getMessage() for r in caplog.records)
    assert any("alert delivered: hook=wh" in r.getMessage() and "attempts=1 status=200" in r.getMessage()
               for r in caplog.records)
