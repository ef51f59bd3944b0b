"""The loop rules on agents that resend their whole history (issue #14): labeled sessions from
bench/detection_quality.py (real OTel SDK spans, the collector's mapping and fingerprints, the
reference rule engine with the shipped rules). The bar is on-call's: precision and recall
>= 0.95 with content captured, and no healthy agent ever stopped, with or without content.
Without content only the execute_tool spans tell a loop: the loops whose tool fails the same
way are caught (tool_failures), with precision >= 0.95."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detection_quality  # noqa: E402


def test_loops_are_paged_and_healthy_long_agents_are_not():
    results = detection_quality.evaluate(sessions=80, seed=3)
    after = results["after, content"]
    assert after["precision"] >= 0.95 and after["recall"] >= 0.95, after
    assert after["sessions_by_kind"]["healthy agent"] >= 20  # the sample holds long healthy agents
    for mode in ("after, content", "after, no content"):
        assert results[mode]["stopped_healthy"] == 0, (mode, results[mode])
    blind = results["after, no content"]
    assert blind["precision"] >= 0.95, blind
    for kind in ("stuck on error", "counter loop"):  # what the README claims without content
        assert blind["sessions_by_kind"][kind] >= 3 and blind["recall_by_kind"][kind] >= 0.95, (kind, blind)
    # the old rules, measured the same way, fail the bar: the harness can tell them apart
    assert results["before, content"]["stopped_healthy"] > 0
