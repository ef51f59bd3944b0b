"""The Flink job's optimized plan (real PyFlink planner, no cluster needed)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_one_trace_assembler_decides_lateness_for_both_sinks():
    """The trace assembler deduplicates (each span once) and a single Calc after it judges
    'late'. If the planner duplicated either per sink, each copy would judge against its own
    watermark and a span could be both rolled up and counted late (or neither)."""
    plan = subprocess.run([sys.executable, "-m", "tokenpulse.stream_jobs.cost_rollup", "--explain"],
                          capture_output=True, text=True, timeout=300).stdout
    optimized = plan.split("== Optimized Execution Plan ==")[1].split("== Physical Execution Plan ==")[0]
    assert optimized.count("ProcessTableFunction(invocation=[trace_assembler(") == 1
    assert "Deduplicate(" not in optimized  # the assembler is the one dedup
    lateness = [block for block in optimized.split("\n\n") if "CURRENT_WATERMARK" in block]
    assert len(lateness) == 1, "lateness is judged in exactly one place"
    # one block (assembler -> prices -> late flag) feeds both sinks
    assert optimized.count("Reused(reference_id=[1])") == 2 and "Reused(reference_id=[2])" not in optimized
    assert "PythonCalc" not in optimized  # pricing stays in the JVM


def test_a_traces_records_leave_through_one_sink_in_the_assemblers_order():
    """Calls, tool calls and attribution amendments go through ONE priced-spans sink fed by a
    single chain from the assembler: no UNION (an operator with two inputs breaks the chain and
    reads them through separate network buffers) and no exchange, so each record keeps the
    order the assembler emitted it in and no amendment reaches the loader before its call."""
    plan = subprocess.run([sys.executable, "-m", "tokenpulse.stream_jobs.cost_rollup", "--explain"],
                          capture_output=True, text=True, timeout=300).stdout
    optimized = plan.split("== Optimized Execution Plan ==")[1].split("== Physical Execution Plan ==")[0]
    sinks = [b for b in optimized.split("\n\n") if b.startswith("Sink(table=[default_catalog.default_database.priced_spans_out]")]
    assert len(sinks) == 1, f"{len(sinks)} priced-spans sinks: two producers could reorder a trace's records"
    assert "Union(" not in sinks[0] and "Exchange(" not in sinks[0]
    assert "Reused(reference_id=[1])" in sinks[0]  # the assembler's block, chained


def test_large_catalog_is_priced_by_the_java_lookup_function(tmp_path):
    """Past the CASE's size limit ("auto"), the job prices with the Java function: the plan
    calls it, still no Python in the pricing path."""
    import os
    import random

    import yaml
    from test_price_lookup_udf import large_catalog  # noqa: I001 (tests/integration is on the path)

    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump(large_catalog(random.Random(3)).model_dump(mode="json")))
    env = {**os.environ, "TOKENPULSE_STREAM_PRICES_FILE": str(prices), "TOKENPULSE_STREAM_PRICE_LOOKUP": "auto",
           "TOKENPULSE_STREAM_CATALOG_FILE": ""}  # the file already holds the catalog
    out = subprocess.run([sys.executable, "-m", "tokenpulse.stream_jobs.cost_rollup", "--explain"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    optimized = out.stdout.split("== Optimized Execution Plan ==")[1].split("== Physical Execution Plan ==")[0]
    assert "tokenpulse_price_of(" in optimized and "PythonCalc" not in optimized
