import pytest

from tokenpulse.cli import SERVICES, build_parser
from tokenpulse.settings import Settings
from tokenpulse.stack import Stack


def test_cli_service_names_match_the_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENPULSE_PATHS_STATE_DIR", str(tmp_path))
    assert [s.name for s in Stack(Settings()).services()] == SERVICES


def test_help_teaches_the_two_entry_points(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "tokenpulse demo" in out and "TOKENPULSE_CLICKHOUSE_DSN" in out
