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


@pytest.mark.parametrize("argv", [["flink", "--help"], ["kafka", "--help"], ["insights", "--help"],
                                  ["-v", "flink", "--help"]])
def test_command_groups_are_subcommands_with_their_own_help(capsys, argv):
    """`tokenpulse flink|kafka|insights ...` runs that module's own parser (one CLI, a module per group)."""
    from tokenpulse.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    group = next(a for a in argv if not a.startswith("-"))
    assert capsys.readouterr().out.startswith(f"usage: tokenpulse {group}")


def test_top_level_help_lists_the_command_groups(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert all(f"tokenpulse {g} --help" in " ".join(out.split()) for g in ("flink", "kafka", "insights"))
