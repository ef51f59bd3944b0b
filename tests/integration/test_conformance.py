"""The conformance suite: real instrumentation packages, real clients, a fake provider with
known truth, through the real pipeline (collector -> Kafka -> Flink job -> loader -> chDB).

Each setup of tokenpulse/conformance/setups.yaml runs tokenpulse/conformance/sender_app.py in its own
virtualenv (built once, cached under .cache/conformance) against the fake provider, exporting
OTLP to the session stack's collector. Then the stored rows are compared with the provider's
truth (usage per call) and the app's (conversation and agent per call): calls stored = calls
made, every token class the sender put on the wire equal to what the provider billed, agent
calls attributed to their conversation and agent, mainstream models priced.

TOKENPULSE_CONFORMANCE_DOC=1 rewrites the results table in docs/conformance.md.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
from helpers import wait_for

from tokenpulse.conformance import runner
from tokenpulse.schemas.pricing import load_price_table
from tokenpulse.settings import REPO_ROOT
from tokenpulse.sql_client import run_sql

pytestmark = pytest.mark.integration
VENVS, SETUPS = runner.load()
ROW_COLUMNS = ["response_id", "session_id", "agent_name", "input_tokens", "output_tokens", "cached_input_tokens",
               "cache_creation_input_tokens", "reasoning_tokens", "usage_missing", "priced", "cost_usd", "sender",
               "catalog_model"]
RESULTS: dict[str, runner.Comparison] = {}
DOC = REPO_ROOT / "docs" / "conformance.md"


def stored_rows(settings, service: str) -> list[dict]:
    result = run_sql(settings, f"SELECT {', '.join(ROW_COLUMNS)} FROM token_spans FINAL "
                               "WHERE tenant = 'acme' AND service = {s:String}", {"s": service})
    return [dict(zip(ROW_COLUMNS, r)) for r in result.rows]


@pytest.mark.parametrize("setup", SETUPS, ids=[s.name for s in SETUPS])
def test_real_sender_is_stored_once_attributed_and_priced(stack_settings, tmp_path, setup):
    python = runner.venv_python(setup.venv, VENVS[setup.venv]["pins"], log=lambda m: print(m, flush=True))
    c = stack_settings.collector
    service = f"conf-{setup.name}-{uuid.uuid4().hex[:6]}"
    run = runner.run_setup(setup, python, tmp_path, collector=f"http://{c.host}:{c.port}", api_key="demo-acme-key",
                           service=service, sessions=6, bsp_delay_ms=50)
    calls, agent_calls = len(run.provider_truth), sum(1 for a in run.app_truth if a.get("conversation_id"))
    assert calls >= 10 and agent_calls >= 9

    def settled(rows) -> bool:  # every call stored, and the agents' spans have amended their calls
        docs = [dict(zip(ROW_COLUMNS, r)) for r in rows]
        return len(docs) >= calls and sum(1 for d in docs if d["session_id"]) >= agent_calls

    wait_for(stack_settings, f"SELECT {', '.join(ROW_COLUMNS)} FROM token_spans FINAL "
                             "WHERE tenant = 'acme' AND service = {s:String}", {"s": service}, settled, timeout_s=120)
    result = runner.compare(run, stored_rows(stack_settings, service), load_price_table())
    RESULTS[setup.name] = result
    print(runner.render_table([result]), flush=True)

    assert result.calls_stored == result.calls_made, "calls stored != calls made"
    assert result.duplicates == 0
    assert not any(result.class_wrong.values()), result.wrong_examples
    assert result.attribution_share >= 0.99, f"{result.attributed}/{result.attributable} attributed"
    assert result.priced_share >= 0.99, f"{result.priced}/{result.calls_stored} priced"
    # a call the sender wrote no usage for is a flagged call, never a silent gap
    assert result.usage_missing == sum(1 for r in stored_rows(stack_settings, service)
                                       if r["input_tokens"] == 0 and r["output_tokens"] == 0)


def test_write_results_table():
    """TOKENPULSE_CONFORMANCE_DOC=1: the table in docs/conformance.md from this run."""
    if os.environ.get("TOKENPULSE_CONFORMANCE_DOC") != "1":
        pytest.skip("set TOKENPULSE_CONFORMANCE_DOC=1 to rewrite docs/conformance.md's table")
    assert len(RESULTS) == len(SETUPS), "run the whole suite: some setups did not finish"
    table = runner.render_table([RESULTS[s.name] for s in SETUPS])
    text = DOC.read_text()
    new = re.sub(r"<!-- results -->.*<!-- /results -->", f"<!-- results -->\n{table}<!-- /results -->", text, flags=re.S)
    DOC.write_text(new)
