"""The hooks file: defaults, kind-specific fields, and errors that name the hook and variable."""

import pytest
from alert_testkit import ENVIRON

from tokenpulse.alerts.config import PAGERDUTY_EVENTS_URL, HooksConfigError, RetryPolicy, hooks_from_data, load_hooks
from tokenpulse.schemas.alerts import Severity
from tokenpulse.settings import REPO_ROOT


def test_demo_file_loads_with_its_secret_set():
    demo_file = REPO_ROOT / "alerts" / "hooks.demo.yaml"  # not AlertSettings(): env may point elsewhere
    cfg = load_hooks(demo_file, environ={"TOKENPULSE_DEMO_HOOK_SECRET": "demo"})
    (hook,) = cfg.hooks
    assert (hook.name, hook.kind, hook.url) == ("demo-webhook", "webhook", "http://127.0.0.1:18787/hook")
    assert hook.secret.get_secret_value() == "demo"
    assert hook.min_severity is Severity.warning


def test_defaults_and_env_resolution():
    cfg = hooks_from_data({"hooks": [
        {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_KEY"},
        {"name": "chat", "kind": "slack", "url_env": "SLACK_URL"},
    ]}, environ={**ENVIRON, "SLACK_URL": "https://hooks.slack.example/T/B/x"})
    pd, chat = cfg.hooks
    assert pd.url == PAGERDUTY_EVENTS_URL and pd.routing_key.get_secret_value() == "R0UTING-KEY"
    assert chat.url == "https://hooks.slack.example/T/B/x"
    assert pd.retry == RetryPolicy(max_attempts=6, initial_backoff_ms=200, max_backoff_ms=5000, timeout_s=5)
    assert "R0UTING" not in repr(pd)  # secrets stay out of logs


def test_missing_env_vars_are_all_reported_with_hook_and_variable():
    data = {"hooks": [
        {"name": "ops-webhook", "kind": "webhook", "url": "http://127.0.0.1:1/x", "secret_env": "NO_SUCH_SECRET"},
        {"name": "oncall", "kind": "pagerduty", "routing_key_env": "NO_SUCH_KEY"},
    ]}
    with pytest.raises(HooksConfigError) as err:
        hooks_from_data(data, environ={"NO_SUCH_KEY": ""})
    message = str(err.value)
    assert "hook 'ops-webhook': environment variable NO_SUCH_SECRET (secret_env) is not set" in message
    assert "hook 'oncall': environment variable NO_SUCH_KEY (routing_key_env) is not set" in message


def test_structural_errors_are_collected_across_hooks():
    data = {"hooks": [
        {"name": "a", "kind": "webhook", "url": "http://127.0.0.1:1/x"},  # no secret_env
        {"name": "b", "kind": "pagerduty"},  # no routing_key_env
        {"name": "b", "kind": "slack", "url": "ftp://nope", "min_severity": "loud"},
    ]}
    with pytest.raises(HooksConfigError) as err:
        hooks_from_data(data, environ={})
    message = str(err.value)
    assert "hooks.0 (a): a webhook hook needs secret_env" in message
    assert "hooks.1 (b): a pagerduty hook needs routing_key_env" in message
    assert "hooks.2 (b).min_severity" in message


def test_duplicate_names_and_unknown_fields_are_rejected():
    entry = {"name": "x", "kind": "slack", "url": "https://example.invalid/h"}
    with pytest.raises(HooksConfigError, match="duplicate hook names: x"):
        hooks_from_data({"hooks": [entry, entry]}, environ={})
    with pytest.raises(HooksConfigError, match=r"hooks.0 \(x\).secret: Extra inputs are not permitted"):
        hooks_from_data({"hooks": [{**entry, "secret": "inline"}]}, environ={})


def test_backoff_doubles_up_to_the_cap():
    retry = RetryPolicy(initial_backoff_ms=200, max_backoff_ms=1000)
    assert [retry.backoff_s(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.0]
