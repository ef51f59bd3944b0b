"""Resolve open incidents by hand: `tokenpulse resolve-alerts`.

Normally whoever opened an incident resolves it (the loop detector after a quiet spell,
insights when a budget recovers). An incident is orphaned when its owner lost the state
that knew about it: the detector started with `--no-resume`, or switched engines (separate
checkpoints). It then stays open in `alerts`, paged in PagerDuty, and its session's breaker
stays tripped. This publishes the resolved state for such incidents to the alerts topic,
with the same alert id, so everything downstream treats it like any resolve: the dispatcher
sends it to the hooks (at most once per hook, via its outbox), the breaker board clears the
session, the loader records it. Should the owner resolve it later too, that repeat carries
the same id and state and is deduplicated the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenpulse.schemas.alerts import Alert, AlertAction, AlertState, Severity

SOURCE = "tokenpulse resolve-alerts"

# Newest state per incident; for a session, when its last call ended (no calls: opened_at).
OPEN_INCIDENTS_SQL = """
SELECT a.dedupe_key, a.alert_id, a.kind, a.rule, toString(a.severity) AS severity, toString(a.action) AS action,
       a.tenant, a.service, a.team, a.agent_name, a.session_id,
       toInt64(toUnixTimestamp64Milli(a.opened_at)) AS opened_ms,
       toInt64(toUnixTimestamp64Milli(greatest(a.opened_at, ifNull(s.last_end, a.opened_at)))) AS last_activity_ms
FROM (SELECT * FROM alerts FINAL WHERE state = 'open' AND kind = {kind:String}) AS a
LEFT JOIN (SELECT tenant, session_id, max(end_time) AS last_end FROM token_spans
           WHERE session_id IN (SELECT session_id FROM alerts FINAL WHERE state = 'open' AND kind = {kind:String})
           GROUP BY tenant, session_id) AS s
  ON s.tenant = a.tenant AND s.session_id = a.session_id
ORDER BY a.opened_at
"""


@dataclass(frozen=True)
class OpenIncident:
    dedupe_key: str
    alert_id: str
    kind: str
    rule: str
    severity: str
    action: str
    tenant: str
    service: str | None
    team: str | None
    agent_name: str | None
    session_id: str | None
    opened_ms: int
    last_activity_ms: int  # the session's last call, else when the incident opened


def open_incidents(query: Callable, kind: str) -> list[OpenIncident]:
    r = query(OPEN_INCIDENTS_SQL, {"kind": kind})
    cols = {c: i for i, c in enumerate(r.columns)}
    return [OpenIncident(**{f: row[cols[f]] for f in OpenIncident.__dataclass_fields__}) for row in r.rows]


def choose(incidents: Sequence[OpenIncident], *, quiet_s: int, now_ms: int,
           dedupe_keys: Sequence[str] = (), tenant: str | None = None) -> list[OpenIncident]:
    """The incidents quiet for at least `quiet_s` (optionally only these keys / this tenant)."""
    return [i for i in incidents
            if now_ms - i.last_activity_ms >= quiet_s * 1000
            and (not dedupe_keys or i.dedupe_key in dedupe_keys) and (tenant is None or i.tenant == tenant)]


def resolved_state(incident: OpenIncident, now_ms: int, reason: str) -> Alert:
    quiet_s = (now_ms - incident.last_activity_ms) / 1000
    return Alert(
        alert_id=incident.alert_id, dedupe_key=incident.dedupe_key, state=AlertState.resolved, kind=incident.kind,
        rule=incident.rule, severity=Severity(incident.severity), action=AlertAction(incident.action),
        tenant=incident.tenant, service=incident.service, team=incident.team, agent_name=incident.agent_name,
        session_id=incident.session_id,
        summary=f"resolved by hand ({reason}): quiet for {quiet_s:.0f} s"[:1000],
        evidence={"resolved_by": SOURCE, "reason": reason[:200], "quiet_s": round(quiet_s, 1)},
        opened_ms=incident.opened_ms, resolved_ms=now_ms, emitted_ms=now_ms, source=SOURCE,
    )


def now_ms() -> int:
    return int(time.time() * 1000)
