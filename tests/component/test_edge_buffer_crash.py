"""The edge buffer's durability promise against a real crash: a child process killed with
SIGKILL right after append() returned loses nothing (the rest of the buffer's behaviour is
tests/unit/collectors/test_edge_buffer.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tokenpulse.collectors.edge_buffer import EdgeBuffer


def values(records) -> list[bytes]:
    return [r.value for r in records]


def test_records_survive_kill_9_right_after_append_returns(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from tokenpulse.collectors.edge_buffer import EdgeBuffer, OutgoingRecord
        buf = EdgeBuffer.open(Path({str(tmp_path / "buf")!r}), max_bytes=1 << 20)
        buf.append([OutgoingRecord("spans", b"k", b"v%d" % i) for i in range(1000)])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    buf = EdgeBuffer.open(tmp_path / "buf", max_bytes=1 << 20)  # the dead owner's lock is gone
    assert values(buf.peek(2000)) == [b"v%d" % i for i in range(1000)]
    buf.close()
