"""The cost job's Flink configuration follows its settings (no JVM: a recording stand-in for
the TableEnvironment's configuration)."""

from pathlib import Path

import pytest

from tokenpulse.settings import Settings
from tokenpulse.stream_jobs.cost_rollup import configure


class RecordingConfig(dict):
    def set(self, key: str, value: str) -> None:
        self[key] = value


class RecordingTableEnvironment:
    def __init__(self) -> None:
        self.config = RecordingConfig()

    def get_config(self) -> RecordingConfig:
        return self.config


@pytest.mark.parametrize(("env", "expected"), [(None, "true"), ("true", "true"), ("false", "false")])
def test_object_reuse_follows_the_setting(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv("TOKENPULSE_STREAM_OBJECT_REUSE", raising=False)
    else:
        monkeypatch.setenv("TOKENPULSE_STREAM_OBJECT_REUSE", env)
    t_env = RecordingTableEnvironment()
    configure(t_env, Settings(), checkpoint_dir=None)
    assert t_env.config["pipeline.object-reuse"] == expected


def test_checkpoints_are_retained_only_with_a_local_directory(tmp_path: Path):
    local, cluster = RecordingTableEnvironment(), RecordingTableEnvironment()
    configure(local, Settings(), checkpoint_dir=tmp_path)
    configure(cluster, Settings(), checkpoint_dir=None)
    assert local.config["execution.checkpointing.dir"] == tmp_path.resolve().as_uri()
    assert local.config["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert "execution.checkpointing.dir" not in cluster.config
    assert cluster.config["execution.checkpointing.mode"] == "EXACTLY_ONCE"
