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


def _command_names() -> list[str]:
    from tokenpulse.cli import COMMAND_GROUPS

    choices = build_parser()._subparsers._group_actions[0].choices
    return [name for name in choices if name not in COMMAND_GROUPS]


@pytest.mark.parametrize("command", _command_names())
def test_every_command_module_registers_a_command_whose_help_answers(capsys, command):
    """Each tokenpulse/commands/ module registers its subparsers; each one's --help prints usage and exits 0."""
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: tokenpulse {command}")


def test_each_command_is_bound_to_a_function_of_its_module():
    from tokenpulse import commands

    parser = build_parser()
    for command in _command_names():
        required = {"sql": ["--list"], "migrate": ["up"], "prices-import-litellm": ["f", "--effective-from", "2026-01-01",
                                                                                  "--source", "s"],
                    "reprice": ["--from", "2026-01-01", "--to", "2026-01-02"], "key-hash": ["k"]}.get(command, [])
        func = parser.parse_args([command, *required]).func
        assert func.__module__.startswith(commands.__name__ + ".") or func.__name__ == "<lambda>", (command, func)
