"""The report rendered by a real browser (headless Chromium): every chart's SVG lays out data
marks with a visible size inside the chart, legends show, no script error; an empty store's
page shows "no data for this period" in every section.

A small probe script is added to a copy of the page (the report itself has no scripts): it
measures the laid-out marks with getBoundingClientRect and writes the result into the DOM,
which `chromium --dump-dom` prints after the page has loaded. Chromium comes from Debian's
package (`make browser`); on CI a missing browser fails the test, elsewhere it skips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from html import unescape

import pytest
from testkit.report_data import PERIOD

from tokenpulse.report import build_report

CHARTS = ["spend-over-time", "jevons", "runaway-sessions", "cloud-vs-edge", "budget-burn", "savings"]
ERRORS_HOOK = "<script>window.__errors=[];addEventListener('error',e=>__errors.push(String(e.message)));</script>"
PROBE = """<script>
const out = {errors: window.__errors, sections: {}};
for (const s of document.querySelectorAll('section[data-chart]')) {
  const svg = s.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : null;
  const marks = [...s.querySelectorAll('svg .mark')].map(m => m.getBoundingClientRect());
  const inside = marks.filter(r => r.width > 0 && r.height > 0 && box && r.left >= box.left - 1
      && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1);
  const legend = [...s.querySelectorAll('ul.legend li')].filter(li => li.getBoundingClientRect().width > 0);
  const empty = s.querySelector('.empty');
  out.sections[s.dataset.chart] = {svg_w: box ? box.width : 0, svg_h: box ? box.height : 0, marks: marks.length,
    visible_marks: inside.length, legend: legend.length, empty: empty ? empty.textContent : null};
}
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: `make browser` installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (make browser)")
    return path


def render(chromium: str, html: str, tmp_path) -> dict:
    page = tmp_path / "report.html"
    page.write_text(html.replace("<style>", ERRORS_HOOK + "<style>", 1).replace("</body>", PROBE + "</body>"))
    profile = tmp_path / "profile"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1100,900", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: exit {done.returncode}, stderr {done.stderr[-2000:]}"
    return json.loads(unescape(found.group(1)))


def test_charts_render_in_chromium(chromium, report_query, tmp_path):
    got = render(chromium, build_report(report_query, PERIOD, generated=datetime(2025, 11, 17)), tmp_path)
    assert got["errors"] == []
    assert list(got["sections"]) == CHARTS
    for name, s in got["sections"].items():
        assert s["empty"] is None, name
        assert s["svg_w"] > 600 and s["svg_h"] > 100, (name, s)
        assert s["marks"] > 0 and s["visible_marks"] == s["marks"], (name, s)
        assert s["legend"] > 0, (name, s)


def test_empty_page_renders_no_data(chromium, empty_store, tmp_path):
    from tokenpulse.insights.runner import query_fn_for_client

    got = render(chromium, build_report(query_fn_for_client(empty_store), PERIOD), tmp_path)
    assert got["errors"] == []
    for name, s in got["sections"].items():
        assert s["empty"] == "no data for this period" and s["marks"] == 0 and s["svg_w"] == 0, name
