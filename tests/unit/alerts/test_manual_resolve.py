"""`tokenpulse resolve-alerts` (alerts/manual_resolve.py) on a real ClickHouse engine: which
open incidents it finds and picks, and that the resolved state it writes closes exactly
those incidents in `alerts`, under their own alert ids."""

from __future__ import annotations

from datetime import UTC, datetime

from tokenpulse.alerts.manual_resolve import choose, open_incidents, resolved_state
from tokenpulse.insights.runner import query_fn_for_client
from tokenpulse.loader.rows import ALERT_COLUMNS, alert_row
from tokenpulse.schemas.alerts import Alert, alert_id_for

NOW_MS = 1_795_500_000_000
HOUR_MS = 3_600_000


def alert(session: str, *, state: str = "open", kind: str = "runaway_loop", opened_ms: int) -> dict:
    key = f"acme/{kind}/repetition/{session}"
    return Alert(alert_id=alert_id_for(key, opened_ms), dedupe_key=key, state=state, kind=kind, rule="repetition",
                 severity="critical", action="stop", tenant="acme", service="svc", agent_name="looper",
                 session_id=session, summary="runaway loop?", evidence={"repeats": 6}, opened_ms=opened_ms,
                 resolved_ms=opened_ms + 1000 if state == "resolved" else None,
                 emitted_ms=opened_ms + 1000).model_dump(mode="json")


def test_finds_quiet_open_incidents_and_resolves_them_under_their_own_ids(store):
    query = query_fn_for_client(store)
    docs = [alert("orphan", opened_ms=NOW_MS - 3 * HOUR_MS),       # quiet for 2 h (its last call, below)
            alert("still-busy", opened_ms=NOW_MS - 3 * HOUR_MS),   # a call 10 s ago
            alert("no-calls", opened_ms=NOW_MS - 2 * HOUR_MS),     # no spans stored: quiet since it opened
            alert("done", state="resolved", opened_ms=NOW_MS - 3 * HOUR_MS),
            alert("budget-thing", kind="budget", opened_ms=NOW_MS - 3 * HOUR_MS)]
    store.insert("alerts", [alert_row(d) for d in docs], column_names=ALERT_COLUMNS)
    spans = [("acme", "t1", "s1", "orphan", NOW_MS - 2 * HOUR_MS), ("acme", "t2", "s2", "still-busy", NOW_MS - 10_000),
             ("other", "t3", "s3", "orphan", NOW_MS - 5_000)]  # another tenant's session of the same name
    store.insert("token_spans", [[t, tr, sp, s, datetime.fromtimestamp(ms / 1000, UTC)] for t, tr, sp, s, ms in spans],
                 column_names=["tenant", "trace_id", "span_id", "session_id", "end_time"])

    found = {i.session_id: i for i in open_incidents(query, "runaway_loop")}
    assert set(found) == {"orphan", "still-busy", "no-calls"}
    assert found["orphan"].last_activity_ms == NOW_MS - 2 * HOUR_MS
    assert found["no-calls"].last_activity_ms == NOW_MS - 2 * HOUR_MS  # when it opened
    picked = choose(found.values(), quiet_s=3600, now_ms=NOW_MS)
    assert sorted(i.session_id for i in picked) == ["no-calls", "orphan"]
    assert [i.session_id for i in choose(found.values(), quiet_s=0, now_ms=NOW_MS,
                                         dedupe_keys=["acme/runaway_loop/repetition/still-busy"])] == ["still-busy"]
    assert choose(found.values(), quiet_s=0, now_ms=NOW_MS, tenant="other") == []

    resolved = [resolved_state(i, NOW_MS, "detector state reset") for i in picked]
    store.insert("alerts", [alert_row(a.model_dump(mode="json")) for a in resolved], column_names=ALERT_COLUMNS)
    rows = query("SELECT session_id, state, alert_id, source FROM alerts FINAL WHERE kind = 'runaway_loop' "
                 "ORDER BY session_id", None).rows
    assert [tuple(r) for r in rows] == [
        ("done", "resolved", alert_id_for("acme/runaway_loop/repetition/done", NOW_MS - 3 * HOUR_MS), "loop-detector"),
        ("no-calls", "resolved", alert_id_for("acme/runaway_loop/repetition/no-calls", NOW_MS - 2 * HOUR_MS),
         "tokenpulse resolve-alerts"),
        ("orphan", "resolved", alert_id_for("acme/runaway_loop/repetition/orphan", NOW_MS - 3 * HOUR_MS),
         "tokenpulse resolve-alerts"),
        ("still-busy", "open", alert_id_for("acme/runaway_loop/repetition/still-busy", NOW_MS - 3 * HOUR_MS),
         "loop-detector")]
    assert resolved[0].summary.startswith("resolved by hand (detector state reset): quiet for")
    assert open_incidents(query, "runaway_loop")[0].session_id == "still-busy"
