"""``--help`` renders for every sub-command of ``dagsim`` and ``dagsim llm`` (issue 18).

The parsers are enumerated, not listed, so a new sub-command is covered automatically. Before the fix
``dagsim llm pretrain --help`` crashed: a ``%`` in a config field's docstring reached argparse unescaped.
"""

import argparse

import pytest

from app.cli import build_parser
from app.cli import main as dagsim_main


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _dagsim_commands() -> list[str]:
    return sorted(_subcommands(build_parser()))


def _llm_commands() -> list[str]:
    pytest.importorskip("torch")
    from llm.cli import _parser

    return sorted(_subcommands(_parser()))


def test_the_enumeration_finds_the_commands():
    assert {"validate", "generate", "solve", "game", "simulate", "figures", "demo", "llm"} <= set(_dagsim_commands())


@pytest.mark.parametrize("command", [[]] + [[c] for c in _dagsim_commands()], ids=lambda c: " ".join(c) or "top")
def test_every_dagsim_subcommand_help_renders(command, capsys):
    if command == ["llm"]:
        pytest.importorskip("torch")
    with pytest.raises(SystemExit) as exc:
        dagsim_main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "Traceback" not in out


@pytest.mark.llm
def test_every_dagsim_llm_subcommand_help_renders(capsys):
    commands = _llm_commands()
    assert {"pretrain", "train", "evaluate", "experiment", "marginals"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as exc:
            dagsim_main(["llm", command, "--help"])
        assert exc.value.code == 0, command
        out = capsys.readouterr().out
        assert out.startswith("usage:"), command
        assert f"llm {command}" in out.split("\n", 1)[0], command


@pytest.mark.llm
def test_percent_in_a_field_docstring_is_escaped():
    from llm.cli import help_escape

    assert help_escape("40-70 % target") % () == "40-70 % target"
