"""The Flink job's optimized plan (real PyFlink planner, no cluster needed)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_one_deduplicate_decides_lateness_for_both_sinks():
    """If the planner duplicated the dedup per sink, each copy would judge 'late' against its
    own watermark and a span could be both rolled up and counted late (or neither)."""
    plan = subprocess.run([sys.executable, "-m", "tokenpulse.stream_jobs.cost_rollup", "--explain"],
                          capture_output=True, text=True, timeout=300).stdout
    optimized = plan.split("== Optimized Execution Plan ==")[1].split("== Physical Execution Plan ==")[0]
    assert optimized.count("Deduplicate(") == 1
    assert optimized.count("Reused(reference_id=[1])") == 2
    assert "CURRENT_WATERMARK" in optimized and "PythonCalc" not in optimized  # pricing stays in the JVM
