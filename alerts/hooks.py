"""What one alert state looks like on the wire for each hook kind, and one HTTP attempt.

Each kind is a small class with `build_request(alert) -> Request(url, headers, body)`:

* webhook   — the Alert JSON itself, signed: X-Tokenpulse-Signature is
              sha256=hex(HMAC-SHA256(secret, "<X-Tokenpulse-Timestamp>.<body>")).
              Receivers check it with `verify_signature`.
* slack     — an incoming-webhook message: one readable `text` line plus blocks with
              the evidence as fields.
* pagerduty — Events API v2: `trigger` on open, `resolve` on resolved, dedup_key = the
              alert's dedupe_key so PagerDuty keeps one incident per dedupe key.

`send(hook, alert)` makes exactly one attempt and classifies the answer; retrying is the
dispatcher's job. The request is rebuilt for every attempt, so a webhook retried minutes
later carries a fresh timestamp and still passes the receiver's replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from tokenpulse.schemas.alerts import Alert, AlertState

from .config import Hook

USER_AGENT = "tokenpulse-alerts/1"
ERROR_EXCERPT_BYTES = 500
SIGNATURE_HEADER = "X-Tokenpulse-Signature"
TIMESTAMP_HEADER = "X-Tokenpulse-Timestamp"


class Request(NamedTuple):
    url: str
    headers: dict[str, str]
    body: bytes


class SendResult(NamedTuple):
    http_status: int | None  # None: no HTTP answer (network error, timeout)
    error: str | None  # None when delivered

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300

    @property
    def retryable(self) -> bool:
        """Network trouble, rate limiting and server errors may pass; other answers will not."""
        if self.delivered:
            return False
        return self.http_status is None or self.http_status == 429 or self.http_status >= 500


# --- webhook ---------------------------------------------------------------------------

def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str | bytes, timestamp: str, body: bytes | str, header: str,
                     tolerance_s: int = 300, now: float | None = None) -> bool:
    """For receivers: the signature matches and the timestamp is within the replay window."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return False
    raw = body.encode() if isinstance(body, str) else body
    return hmac.compare_digest(sign(secret, timestamp, raw), header or "")


class WebhookFormat:
    def __init__(self, hook: Hook, clock: Callable[[], float] = time.time) -> None:
        if hook.secret is None:
            raise ValueError(f"webhook hook {hook.name!r} has no secret")
        self._hook, self._clock = hook, clock

    def build_request(self, alert: Alert) -> Request:
        body = alert.model_dump_json().encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._hook.secret.get_secret_value(), timestamp, body),
            "X-Tokenpulse-Alert-Id": alert.alert_id,
            "X-Tokenpulse-Dedupe-Key": alert.dedupe_key,
        }
        return Request(self._hook.url, headers, body)


# --- slack -----------------------------------------------------------------------------

SLACK_MAX_FIELDS = 10  # Slack rejects a section with more


def headline(alert: Alert) -> str:
    """'[CRITICAL] OPEN runaway_loop | tenant acme | rule repetition | session s1: summary'."""
    marker = f"[{alert.severity.value.upper()}] OPEN" if alert.state is AlertState.open else "RESOLVED"
    parts = [f"{marker} {alert.kind}", f"tenant {alert.tenant}", f"rule {alert.rule}"]
    if alert.session_id:
        parts.append(f"session {alert.session_id}")
    return " | ".join(parts) + f": {alert.summary}"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats only these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackFormat:
    def __init__(self, hook: Hook) -> None:
        self._hook = hook

    def build_request(self, alert: Alert) -> Request:
        text = _slack_escape(headline(alert))
        blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]
        evidence = list(alert.evidence.items())
        if evidence:
            fields = [{"type": "mrkdwn", "text": _slack_escape(f"*{k}*\n{v}")[:2000]}
                      for k, v in evidence[:SLACK_MAX_FIELDS]]
            blocks.append({"type": "section", "fields": fields})
        labelled = (("service", alert.service), ("team", alert.team), ("agent", alert.agent_name))
        context = [f"alert {alert.alert_id}"] + [f"{label} {value}" for label, value in labelled if value]
        if len(evidence) > SLACK_MAX_FIELDS:
            context.append(f"{len(evidence) - SLACK_MAX_FIELDS} more evidence values not shown")
        context_text = _slack_escape(" · ".join(context))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context_text}]})
        body = json.dumps({"text": text, "blocks": blocks}).encode()
        return Request(self._hook.url, {"Content-Type": "application/json"}, body)


# --- pagerduty -------------------------------------------------------------------------

PAGERDUTY_SUMMARY_MAX = 1024


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


class PagerDutyFormat:
    def __init__(self, hook: Hook) -> None:
        if hook.routing_key is None:
            raise ValueError(f"pagerduty hook {hook.name!r} has no routing key")
        self._hook = hook

    def build_request(self, alert: Alert) -> Request:
        routing_key = self._hook.routing_key.get_secret_value()
        if alert.state is AlertState.resolved:
            event = {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedupe_key}
        else:
            event = {"routing_key": routing_key, "event_action": "trigger", "dedup_key": alert.dedupe_key,
                     "payload": self._payload(alert)}
        return Request(self._hook.url, {"Content-Type": "application/json"}, json.dumps(event).encode())

    @staticmethod
    def _payload(alert: Alert) -> dict:
        summary = headline(alert)
        if len(summary) > PAGERDUTY_SUMMARY_MAX:
            summary = summary[:PAGERDUTY_SUMMARY_MAX - 1] + "…"
        ids = {"alert_id": alert.alert_id, "dedupe_key": alert.dedupe_key, "tenant": alert.tenant,
               "service": alert.service, "team": alert.team, "agent_name": alert.agent_name,
               "session_id": alert.session_id, "action": alert.action.value, "detector": alert.source}
        return {
            "summary": summary,
            "source": f"tokenpulse/{alert.tenant}/{alert.service or '-'}",
            "severity": alert.severity.value,  # PagerDuty's critical|warning|info match ours
            "timestamp": _iso(alert.opened_ms),
            "component": alert.rule,
            "group": alert.tenant,
            "class": alert.kind,
            # Identifiers win over an evidence value of the same name.
            "custom_details": {**alert.evidence, **{k: v for k, v in ids.items() if v is not None}},
        }


FORMATS = {"webhook": WebhookFormat, "slack": SlackFormat, "pagerduty": PagerDutyFormat}


def build_request(hook: Hook, alert: Alert) -> Request:
    return FORMATS[hook.kind](hook).build_request(alert)


# --- one attempt -----------------------------------------------------------------------

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a body-less GET; a hook must point at its
    # final address, so a 3xx is reported as a (non-retryable) failure instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def send(hook: Hook, alert: Alert) -> SendResult:
    """POST the alert to the hook once; never raises for network or HTTP failures."""
    url, headers, body = build_request(hook, alert)
    request = urllib.request.Request(url, data=body, headers={"User-Agent": USER_AGENT, **headers}, method="POST")
    try:
        with _opener.open(request, timeout=hook.retry.timeout_s) as response:
            response.read(ERROR_EXCERPT_BYTES)  # the answer itself is not needed
            return SendResult(response.status, None)
    except urllib.error.HTTPError as exc:
        return SendResult(exc.code, f"HTTP {exc.code}: {_excerpt(exc)}")
    except urllib.error.URLError as exc:
        return SendResult(None, f"cannot reach {hook.name}: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, garbled answers
        return SendResult(None, f"{type(exc).__name__}: {exc}")


def _excerpt(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(ERROR_EXCERPT_BYTES) or b""
    except (OSError, http.client.HTTPException):
        raw = b""
    finally:
        exc.close()
    return raw.decode("utf-8", "replace").strip() or (exc.reason or "")
