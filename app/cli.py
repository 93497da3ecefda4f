"""The ``dagsim`` console script: dagsim's sub-commands plus those of the packages above it.

Sub-commands, in ``dagsim --help`` order: validate, marginals, generate (:mod:`dagsim.cli`), demo
(:mod:`app.demo`), solve, game (:mod:`dagsim.cli_game`), simulate (:mod:`dagsim.cli_grpo`), check
(:mod:`proofs_check.cli`), figures (:mod:`figures.cli`), and ``llm`` (:mod:`llm.cli`, its own parser,
imported only when asked: it needs the ``llm`` extra). Exit codes and error lines are
:func:`dagsim.cli.run_cli`'s: 2 for a user error, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dagsim import cli as core
from dagsim.errors import DagsimError

#: Help line of ``dagsim llm`` (its arguments are parsed by :func:`llm.cli.main`).
LLM_HELP = "real Coherence-GRPO on transformers models (dagsim llm --help)"
#: dagsim's commands listed before ``demo`` in ``dagsim --help``; the rest of dagsim's follow it.
_BEFORE_DEMO = ("validate", "marginals", "generate")


def commands() -> dict[str, core.CommandEntry]:
    """Every sub-command with a parser, in ``dagsim --help`` order."""
    from app import demo
    from figures import cli as figures
    from proofs_check import cli as check

    own = dict(core.load_commands())
    out = {name: own.pop(name) for name in _BEFORE_DEMO}
    out["demo"] = core.command_entry(demo.HELP, demo.configure)
    out.update(own)
    out["check"] = core.command_entry(check.HELP, check.configure)
    out["figures"] = core.command_entry(figures.HELP, figures.configure)
    return out


def build_parser() -> argparse.ArgumentParser:
    return core.build_parser(commands(), stubs=[("llm", LLM_HELP)])


def _run_llm(argv: list[str]) -> int:
    """``dagsim llm ...`` lives in the optional ``llm`` package (torch); import it only when asked."""
    try:
        from llm.cli import main as llm_main
    except ModuleNotFoundError as exc:
        raise DagsimError(f"'dagsim llm' needs the llm extra ({exc.name} is missing): pip install 'alft-games[llm]'"
                          ) from None
    return int(llm_main(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dagsim`` console script; returns the exit code."""
    return core.run_cli(argv, build_parser, passthrough={"llm": _run_llm})


if __name__ == "__main__":
    sys.exit(main())
