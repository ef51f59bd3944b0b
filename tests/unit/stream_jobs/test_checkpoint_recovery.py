"""Where a job resumes from: the newest retained local checkpoint, or nothing when the
cluster owns checkpoints (TOKENPULSE_STREAM_CHECKPOINTS=cluster)."""

import os
import time

from tokenpulse.settings import Settings
from tokenpulse.stream_jobs.job_runtime import recovery_path


def _checkpoint(root, job: str, n: int, mtime: float):
    chk = root / job / f"chk-{n}"
    chk.mkdir(parents=True)
    (chk / "_metadata").write_bytes(b"x")
    os.utime(chk, (mtime, mtime))
    return chk


def test_resumes_from_the_newest_complete_checkpoint(tmp_path):
    now = time.time()
    _checkpoint(tmp_path, "job-a", 3, now - 100)
    newest = _checkpoint(tmp_path, "job-b", 7, now)
    (tmp_path / "job-b" / "chk-8").mkdir()  # in progress: no _metadata yet
    assert recovery_path(tmp_path, resume=True) == newest.resolve().as_uri()
    assert recovery_path(tmp_path, resume=False) is None


def test_cluster_owned_checkpoints_mean_no_local_resume(tmp_path, monkeypatch):
    _checkpoint(tmp_path, "job", 1, time.time())
    assert recovery_path(None, resume=True) is None
    monkeypatch.setenv("TOKENPULSE_STREAM_CHECKPOINTS", "cluster")
    monkeypatch.setenv("TOKENPULSE_DETECTOR_CHECKPOINTS", "cluster")
    s = Settings()
    assert (s.stream.checkpoints, s.detector.checkpoints) == ("cluster", "cluster")
