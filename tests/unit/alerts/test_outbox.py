"""The sqlite outbox: one row per (hook, alert, state), filters, resolve-needs-open, order, durability."""

import sqlite3

import pytest
from alert_testkit import hook_entry, hooks_config, make_alert

from tokenpulse.alerts.outbox import Outbox
from tokenpulse.schemas.alerts import AlertState, Severity

HOOKS = hooks_config(
    hook_entry("all", "webhook", "http://127.0.0.1:9/a"),
    hook_entry("acme-only", "slack", "http://127.0.0.1:9/b", tenants=["acme"]),
    hook_entry("critical-only", "pagerduty", "http://127.0.0.1:9/c", min_severity="critical"),
).hooks


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    yield box
    box.close()


def test_same_alert_twice_is_one_row_per_hook(outbox, tmp_path):
    alert = make_alert()
    assert outbox.enqueue(alert, HOOKS) == 3
    assert outbox.enqueue(alert, HOOKS) == 0
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite")  # a restarted dispatcher replaying Kafka
    assert reopened.enqueue(alert, HOOKS) == 0
    assert [d.hook for d in reopened.deliveries()] == ["all", "acme-only", "critical-only"]
    reopened.close()


def test_filters_decide_which_hooks_get_a_row(outbox):
    assert outbox.enqueue(make_alert(severity=Severity.info), HOOKS) == 0  # default min_severity: warning
    assert outbox.enqueue(make_alert(severity=Severity.warning, session="w"), HOOKS) == 2
    assert outbox.enqueue(make_alert(tenant="globex", session="g"), HOOKS) == 2
    assert {(d.hook, d.alert.session_id) for d in outbox.deliveries()} == {
        ("all", "w"), ("acme-only", "w"), ("all", "g"), ("critical-only", "g")}


def test_resolved_only_reaches_hooks_that_got_the_open(outbox):
    assert outbox.enqueue(make_alert(AlertState.resolved), HOOKS) == 0  # never opened anywhere
    assert outbox.enqueue(make_alert(tenant="globex"), HOOKS) == 2  # acme-only filtered it out
    assert outbox.enqueue(make_alert(AlertState.resolved, tenant="globex"), HOOKS) == 2
    assert [(d.hook, d.alert.state) for d in outbox.deliveries() if d.hook == "acme-only"] == []


def test_pending_is_per_hook_in_enqueue_order_and_mark_finishes_rows(outbox):
    first, second = make_alert(session="one"), make_alert(session="two")
    outbox.enqueue(first, HOOKS)
    outbox.enqueue(second, HOOKS)
    outbox.enqueue(make_alert(AlertState.resolved, session="one"), HOOKS)
    pending = outbox.pending("all")
    assert [(d.alert.session_id, d.alert.state) for d in pending] == [
        ("one", AlertState.open), ("two", AlertState.open), ("one", AlertState.resolved)]
    assert pending[0].alert == first  # the stored JSON is the alert as received

    outbox.mark(pending[0].id, "failed", 6, 503, "HTTP 503", 1000, 2000)
    assert [d.alert.session_id for d in outbox.pending("all")] == ["two", "one"]  # resolve still goes out
    assert len(outbox.pending("all", limit=1)) == 1
    assert outbox.pending_counts() == {"all": 2, "acme-only": 3, "critical-only": 3}
    finished = outbox.deliveries("all")[0]
    assert (finished.outcome, finished.attempts, finished.http_status, finished.error) == ("failed", 6, 503, "HTTP 503")


def test_file_is_in_wal_mode_and_enforces_uniqueness(outbox, tmp_path):
    outbox.enqueue(make_alert(), HOOKS)
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    row = db.execute("SELECT hook, alert_id, state, dedupe_key, tenant, alert_json, enqueued_ms"
                     " FROM deliveries LIMIT 1").fetchone()
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO deliveries (hook, alert_id, state, dedupe_key, tenant, alert_json, enqueued_ms)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    db.close()


def test_prune_forgets_only_incidents_resolved_before_the_cutoff(outbox):
    old, recent, still_open = make_alert(session="old"), make_alert(session="recent"), make_alert(session="open")
    for alert in (old, recent, still_open):
        outbox.enqueue(alert, HOOKS)
    outbox.enqueue(make_alert(AlertState.resolved, session="old"), HOOKS)
    outbox.enqueue(make_alert(AlertState.resolved, session="recent"), HOOKS)
    finished_at = {"old": 1_000, "recent": 5_000, "open": 1_000}
    for d in outbox.deliveries():
        if d.hook == "critical-only" and d.alert.session_id == "old" and d.alert.state is AlertState.resolved:
            continue  # this hook's resolve is still pending: its incident must stay
        outbox.mark(d.id, "delivered", 1, 200, None, 0, finished_at[d.alert.session_id])

    assert outbox.prune(older_than_ms=2_000) == 4  # "old" on the two hooks whose resolve finished
    left = {(d.hook, d.alert.session_id, d.alert.state) for d in outbox.deliveries()}
    assert not {x for x in left if x[1] == "old" and x[0] != "critical-only"}
    assert ("critical-only", "old", AlertState.open) in left  # resolve pending: kept
    assert {x[1] for x in left} == {"old", "recent", "open"}
    # A redelivered open of a kept incident is still deduplicated; a pruned one would page again
    # (why the retention must exceed the alerts topic's).
    assert outbox.enqueue(recent, HOOKS) == 0
    assert outbox.enqueue(old, HOOKS) == 2
