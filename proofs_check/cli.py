"""Registers ``dagsim check`` (the same runner as ``python -m proofs_check``)."""

from dagsim.cli import command
from proofs_check.runner import add_arguments, run_from_args


@command("check", "run one numerical check per claim of THEORY.md (same as python -m proofs_check)")
def _check(p):
    add_arguments(p)
    return run_from_args
