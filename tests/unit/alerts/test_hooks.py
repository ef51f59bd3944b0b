"""Wire formats per hook kind, the webhook signature, and how one attempt's answer is classified."""

import json
import time

from alert_testkit import ROUTING_KEY, SECRET, hook_entry, hooks_config, make_alert

from tokenpulse.alerts.hooks import WebhookFormat, build_request, send, verify_signature
from tokenpulse.schemas.alerts import Alert, AlertState


def test_webhook_is_signed_and_tampering_fails_verification(http_server):
    server = http_server()
    (hook,) = hooks_config(hook_entry("wh", "webhook", server.url)).hooks
    alert = make_alert()
    result = send(hook, alert)
    assert result.delivered and result.http_status == 200 and result.error is None

    (got,) = server.requests
    ts, sig = got.headers["X-Tokenpulse-Timestamp"], got.headers["X-Tokenpulse-Signature"]
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Tokenpulse-Alert-Id"] == alert.alert_id
    assert got.headers["X-Tokenpulse-Dedupe-Key"] == alert.dedupe_key
    assert Alert.model_validate_json(got.body) == alert
    assert sig.startswith("sha256=") and verify_signature(SECRET, ts, got.body, sig)

    tampered = got.body.replace(b'"acme"', b'"evil"')
    assert tampered != got.body
    assert not verify_signature(SECRET, ts, tampered, sig)
    assert not verify_signature("other-secret", ts, got.body, sig)
    assert not verify_signature(SECRET, str(int(ts) + 1), got.body, sig)  # timestamp is signed too


def test_webhook_signature_outside_the_replay_window_is_rejected():
    (hook,) = hooks_config(hook_entry("wh", "webhook", "http://127.0.0.1:9/x")).hooks
    _, headers, body = WebhookFormat(hook, clock=lambda: 1_000_000).build_request(make_alert())
    ts, sig = headers["X-Tokenpulse-Timestamp"], headers["X-Tokenpulse-Signature"]
    assert verify_signature(SECRET, ts, body, sig, now=1_000_299)
    assert not verify_signature(SECRET, ts, body, sig, now=1_000_301)
    assert not verify_signature(SECRET, ts, body, sig, now=999_000)
    assert not verify_signature(SECRET, "not-a-number", body, sig, now=1_000_000)


def test_pagerduty_trigger_then_resolve_share_the_dedup_key(http_server):
    server = http_server(ok_status=202)  # PagerDuty answers 202 Accepted
    (hook,) = hooks_config(hook_entry("pd", "pagerduty", server.url)).hooks
    opened, resolved = make_alert(), make_alert(AlertState.resolved)
    assert send(hook, opened).delivered and send(hook, resolved).delivered

    trigger, resolve = (json.loads(r.body) for r in server.requests)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == opened.dedupe_key
    assert trigger["routing_key"] == resolve["routing_key"] == ROUTING_KEY
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}
    payload = trigger["payload"]
    assert payload["source"] == "tokenpulse/acme/support-bot"
    assert (payload["severity"], payload["component"], payload["group"], payload["class"]) == \
        ("critical", "repetition", "acme", "runaway_loop")
    assert payload["timestamp"] == "2023-11-14T22:13:20.000+00:00"
    assert payload["custom_details"]["calls"] == 40 and payload["custom_details"]["cost_usd"] == "1.234500"
    assert payload["custom_details"]["alert_id"] == opened.alert_id
    assert payload["summary"].startswith("[CRITICAL] OPEN runaway_loop")


def test_pagerduty_summary_is_capped_and_source_marks_a_missing_service():
    (hook,) = hooks_config(hook_entry("pd", "pagerduty", "http://127.0.0.1:9/x")).hooks
    alert = make_alert(summary="x" * 1000, session="s" * 256).model_copy(update={"service": None})
    payload = json.loads(build_request(hook, alert).body)["payload"]
    assert len(payload["summary"]) == 1024
    assert payload["source"] == "tokenpulse/acme/-"


def test_slack_message_has_a_readable_line_and_evidence_fields():
    (hook,) = hooks_config(hook_entry("chat", "slack", "https://hooks.slack.example/T/B/x")).hooks
    url, headers, body = build_request(hook, make_alert())
    assert url == "https://hooks.slack.example/T/B/x" and headers["Content-Type"] == "application/json"
    message = json.loads(body)
    assert message["text"] == ("[CRITICAL] OPEN runaway_loop | tenant acme | rule repetition | session sess-1: "
                               "same prompt sent 40 times in 60 s")
    section, evidence, context = message["blocks"]
    assert section["type"] == "section" and section["text"]["text"] == message["text"]
    assert [f["text"] for f in evidence["fields"]] == ["*calls*\n40", "*window_s*\n60", "*cost_usd*\n1.234500"]
    assert context["type"] == "context"

    resolved = json.loads(build_request(hook, make_alert(AlertState.resolved)).body)
    assert resolved["text"].startswith("RESOLVED runaway_loop | tenant acme")


def test_slack_escapes_control_characters_and_caps_fields():
    (hook,) = hooks_config(hook_entry("chat", "slack", "https://hooks.slack.example/T/B/x")).hooks
    alert = make_alert(summary="loop <@here> & more", evidence={f"k{i}": i for i in range(14)})
    message = json.loads(build_request(hook, alert).body)
    assert "&lt;@here&gt; &amp; more" in message["text"]
    assert len(message["blocks"][1]["fields"]) == 10


def test_answers_are_classified(http_server):
    for status, delivered, retryable in ((500, False, True), (503, False, True), (429, False, True),
                                         (400, False, False), (404, False, False), (302, False, False)):
        server = http_server(fail_first=1, fail_status=status)
        (hook,) = hooks_config(hook_entry("wh", "webhook", server.url)).hooks
        result = send(hook, make_alert())
        assert (result.http_status, result.delivered, result.retryable) == (status, delivered, retryable)
    assert "nope: bad request" in result.error  # the receiver's answer, for the outcome record


def test_unreachable_hook_is_a_retryable_network_error(http_server):
    server = http_server()
    url = server.url
    server.close()  # nothing listens there any more
    (hook,) = hooks_config(hook_entry("wh", "webhook", url)).hooks
    started = time.monotonic()
    result = send(hook, make_alert())
    assert result.http_status is None and result.retryable and "wh" in result.error
    assert time.monotonic() - started < 4  # refused at once, not the 5 s attempt timeout
