"""``dagsim demo``: the main job on the embedded default — the exact marginal, then the stages of the
packages above dagsim in order: the quick proofs_check report, the quick figures, a short LLM
Coherence-GRPO run (and its figure 8). Each stage prints its section and returns one summary line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from dagsim import dagio
from dagsim.cli import _fmt_int, _marginal_report, print_marginal_table
from dagsim.errors import ValidationError

HELP = ("the main job on the embedded default: exact marginal, proofs_check report, quick figures, "
        "a short LLM Coherence-GRPO run")
#: The stages after the marginal, in order: the names ``--skip`` accepts.
DEMO_STAGE_NAMES = ("proofs_check", "figures", "llm")


def _llm_stage(out) -> str:
    """The LLM stage: the short experiment (:func:`llm.demo.run_demo`), then figure 8 drawn from it."""
    from figures.fig08_llm_training import make as make_figure
    from llm.demo import run_demo, summary_line

    result, folder = run_demo(out)
    make_figure(Path(out) / "figures", experiment=folder)
    return summary_line(result, folder)


def demo_steps() -> list[tuple[str, Callable[[Path], str]]]:
    """(name, stage(out) -> summary line) of the stages after the marginal, in order (:data:`DEMO_STAGE_NAMES`)."""
    from figures.cli import demo_stage as figures_stage
    from proofs_check.cli import demo_stage as check_stage

    return [("proofs_check", check_stage), ("figures", figures_stage), ("llm", _llm_stage)]


def configure(p: argparse.ArgumentParser):
    p.add_argument("--out", default="out", help="folder for the demo's outputs")
    p.add_argument("--skip", nargs="+", default=[], metavar="STAGE",
                   help=f"stages to skip: {', '.join(DEMO_STAGE_NAMES)}")

    def run(args) -> int:
        from dagsim.generators import default_arithmetic_dag
        from dagsim.io import check_output_dir

        steps = demo_steps()
        valid = list(dict.fromkeys([*DEMO_STAGE_NAMES, *(name for name, _ in steps)]))
        unknown = [s for s in args.skip if s not in valid]
        if unknown:
            raise ValidationError(f"--skip: unknown stage(s) {unknown}; valid stages: {', '.join(valid)}")
        check_output_dir(args.out, "--out")
        t0 = time.perf_counter()
        out = Path(args.out)
        dag = default_arithmetic_dag()
        path = dagio.save(dag, out / "default_arithmetic.json")
        report = _marginal_report(dag)
        print(f"== {dag.name}: exact answer marginal of the reference policy (forward DP) ==")
        print_marginal_table(dag, report)
        summary = [f"arithmetic DAG: exact marginal of {_fmt_int(report['n_traces'])} traces -> {path}"]
        for name, stage in steps:
            if name in args.skip:
                continue
            summary.append(stage(out))
        print(f"\n== summary ({time.perf_counter() - t0:.0f} s) ==")
        for line in summary:
            print(" * " + line)
        return 0

    return run
