"""`tokenpulse report` as a user runs it: a child process on an on-disk store."""

from __future__ import annotations

import os
import subprocess
import sys

from testkit.report_data import CHARTS, Page


def test_cli_writes_the_report(tmp_path):
    """The command end to end on an on-disk store, in a subprocess (chDB allows one store per
    process and this one holds the in-memory engine): migrate, then report an empty period."""
    out = tmp_path / "r.html"
    script = ("import sys; from tokenpulse.cli import main; main(['migrate', 'up']); "
              f"sys.exit(main(['report', '--out', {str(out)!r}, '--days', '2', '--tenant', 'acme']))")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TOKENPULSE_PATHS_STATE_DIR": str(
        tmp_path / "state")}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(out.resolve())
    page = Page(out.read_text())
    assert list(page.sections) == CHARTS and all(s["empty"] for s in page.sections.values())
