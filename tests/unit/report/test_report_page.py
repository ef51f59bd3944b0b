"""`tokenpulse report` on a real ClickHouse engine (in-memory chDB, migrations applied, two
weeks of calls, budgets and savings from the real evaluators): every chart drawn with
marks, a legend and an exact data table; money exact; the tenant filter; an empty store
says "no data for this period"; the page fetches nothing. The browser test renders it."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from testkit.report_data import CHARTS, PERIOD, START, Page, workload

from tokenpulse.report import build_report, fmt
from tokenpulse.report.sections import choose_bucket

GENERATED = datetime(2025, 11, 17, 1, 0)


@pytest.fixture(scope="module")
def html(report_query):
    return build_report(report_query, PERIOD, generated=GENERATED)


def test_every_chart_has_marks_a_legend_and_a_data_table(html):
    page = Page(html)
    assert list(page.sections) == CHARTS
    for name, s in page.sections.items():
        assert s["svg"] == 1 and s["marks"] > 0, name
        assert s["legend"] > 0, name
        assert s["rows"] > 1, name  # header + data
        assert not s["empty"], name
    # each chart's SVG names itself, and every mark carries its exact numbers as a tooltip
    assert len(re.findall(r'class="mark"[^>]*>\s*<title>[^<]+</title>', html)) == sum(
        s["marks"] for s in page.sections.values())


def test_page_is_self_contained(html):
    assert "<script" not in html and "<link" not in html and "<img" not in html and "@import" not in html
    assert re.findall(r"https?://[^\"'\s<)]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#arrow"}  # the bubble chart's own arrow marker


def test_money_is_exact(html):
    calls = workload().rows
    total = sum((r[24] for r in calls), Decimal(0))  # cost_usd, priced independently by the fixture
    assert f"<b>{fmt.usd(total)}</b>" in html
    runaway = [r for r in calls if r[4] == "runaway-1"]
    first_alert = START + timedelta(days=12, hours=15, seconds=110)
    after = sum((r[24] for r in runaway if r[15] > first_alert), Decimal(0))
    assert len([r for r in runaway if r[15] > first_alert]) == 34  # calls 6..39 of 20 s steps
    assert f"{fmt.usd(after)} after the first alert" in html
    assert f"{fmt.usd(sum((r[24] for r in runaway), Decimal(0)) - after)} before the first alert" in html


def test_runaway_session_comes_first_with_its_rules(html):
    section = html[html.index('id="runaway-sessions"'):html.index('id="cloud-vs-edge"')]
    labels = re.findall(r'class="row-label" data-full="([^"]+)"', section)
    assert labels[0] == "support-bot · runaway-1"
    assert "context_growth, repetition · stopped" in section


def test_jevons_pattern_is_marked(html):
    section = html[html.index('id="jevons"'):html.index('id="runaway-sessions"')]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    research = [r for r in rows if "<td>research</td>" in r]
    assert len(research) == 14
    flagged = [r for r in research if "Jevons" in r]
    assert len(flagged) == 1 and "2025-11-10" in flagged[0]  # the day the cheaper model took five times the volume


def test_edge_is_compared_with_its_cloud_equivalent(html):
    section = html[html.index('id="cloud-vs-edge"'):html.index('id="budget-burn"')]
    # 84 calls of 3,400 tokens for $0.00021 each: $0.01764 / 285,600 tokens x 1M = $0.0617647058823529...,
    # Decimal truncated at 12 places; the cloud equivalent $0.00069 a call: $0.2029411764705...
    assert "$0.061764705882 per 1M tokens ($0.01764 for 285,600 tokens, 84 calls)" in section
    assert "would cost $0.20294117647 per 1M in the cloud ($0.05796 in all)" in section
    assert "keep local" in section


def test_tenant_filter(report_query):
    page = Page(build_report(report_query, PERIOD, tenant="globex", generated=GENERATED))
    text = " ".join(page.text)
    assert "acme" not in text
    assert "tenant globex" in text
    assert page.sections["spend-over-time"]["marks"] > 0
    assert page.sections["budget-burn"]["empty"] and page.sections["budget-burn"]["svg"] == 0  # no budgets


def test_empty_store_says_no_data(empty_store):
    from tokenpulse.insights.runner import query_fn_for_client

    page = Page(build_report(query_fn_for_client(empty_store), PERIOD, generated=GENERATED))
    for name, s in page.sections.items():
        assert s["empty"] and s["svg"] == 0 and s["marks"] == 0, name
        assert "no data for this period" in " ".join(s["text"]), name


def test_money_format():
    assert fmt.usd(Decimal("0.000123400000")) == "$0.0001234"
    assert fmt.usd(Decimal("1234.500000000000")) == "$1,234.50"
    assert fmt.usd(Decimal("-0.05")) == "\u2212$0.05"
    assert fmt.usd(Decimal("0E-12")) == "$0.00"
    assert fmt.usd(Decimal("12345678.000000000001")) == "$12,345,678.000000000001"


def test_bucket_fits_the_data():
    t = datetime(2025, 11, 3)
    assert choose_bucket(t, t + timedelta(minutes=10)) == 60
    assert choose_bucket(t, t + timedelta(hours=3)) == 300
    assert choose_bucket(t, t + timedelta(days=1)) == 3600
    assert choose_bucket(t, t + timedelta(days=14)) == 6 * 3600
    assert choose_bucket(None, None) == 60


def test_cli_help_teaches():
    from tokenpulse.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["report"]
    text = sub.format_help()
    assert all(f in text for f in ("--out", "--since", "--until", "--days", "--tenant", "examples:"))


def test_same_page_through_the_loaders_json_endpoint(report_query, html):
    """While the stack runs, queries go through the loader's endpoint, which answers in JSON
    (Decimals and times as strings): the page must come out the same, to the byte."""
    from tokenpulse.loader.query_server import _plain
    from tokenpulse.sql_client import QueryResult

    def via_json(sql, params=None):
        r = report_query(sql, params)
        doc = json.loads(json.dumps({"columns": r.columns, "rows": r.rows}, default=_plain))
        return QueryResult(doc["columns"], doc["rows"])

    assert build_report(via_json, PERIOD, generated=GENERATED) == html
