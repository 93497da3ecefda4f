"""``python -m llm.theory``: run the experiment (or ``--combine`` finished runs) and write its reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dagsim.cli_args import add_dataclass_args, given_fields
from llm.theory.pipeline import TheoryConfig, run
from llm.theory.predict import OBJECTIVES
from llm.theory.report import combine, markdown_table, write_results

QUICK = dict(n_prompts=3, steps=4, eval_every=2, budget_seconds=1.0, objectives=("sharpen", "entropy"))


def build_parser() -> argparse.ArgumentParser:
    from llm import theory

    ap = argparse.ArgumentParser(prog="python -m llm.theory", description=theory.__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    ap.add_argument("--out", default="results/", help="directory for theory_vs_training.{json,md}")
    ap.add_argument("--stem", default="theory_vs_training", help="output file stem")
    add_dataclass_args(ap, TheoryConfig, help_text=lambda name, default, doc: f"default {default}",
                       custom={"objectives": dict(default=None, help="comma list of " + ",".join(OBJECTIVES))})
    ap.add_argument("--combine", default="", help="no run: merge these comma-separated results JSONs")
    ap.add_argument("--ablation", default="", help="with --combine: a results JSON kept under 'ablation'")
    ap.add_argument("--extra", default="", help="with --combine: comma list NAME=results.json (diagnostic runs)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    return ap


def config_from_args(args: argparse.Namespace) -> TheoryConfig:
    """The run's config: the dataclass defaults, then :data:`QUICK` with ``--quick``, then every flag given."""
    kwargs = dict(QUICK) if args.quick else {}
    for name in given_fields(args, TheoryConfig):
        v = getattr(args, name)
        kwargs[name] = tuple(v.split(",")) if name == "objectives" else v
    return TheoryConfig(**kwargs)


def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    config = config_from_args(args)
    if args.combine:
        parts = [json.loads(Path(p).read_text()) for p in args.combine.split(",")]
        ablation = json.loads(Path(args.ablation).read_text()) if args.ablation else None
        extras = {e.rsplit("=", 1)[0]: json.loads(Path(e.rsplit("=", 1)[1]).read_text())
                  for e in args.extra.split(",") if e}
        results = combine(parts, ablation, extras)
        paths = write_results(results, args.out, args.stem)
        print(markdown_table(results))
        print(json.dumps(paths))
        return 0
    results = run(config, on_objective=lambda partial: write_results(partial, args.out, args.stem))
    paths = write_results(results, args.out, args.stem)
    print(markdown_table(results))
    print(json.dumps(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
