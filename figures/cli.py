"""``dagsim figures``: regenerate the figures (PNG + PDF + JSON of the plotted numbers), and the main job's
figures stage; :mod:`app.cli` and :mod:`app.demo` wire them in."""

from __future__ import annotations

import time

from dagsim.errors import ValidationError

#: Default output folder of ``dagsim figures``.
DEFAULT_OUT = "figures/out"


HELP = "regenerate the figures: PNG + PDF + JSON of the plotted numbers per figure"


def configure(p):
    """Add ``dagsim figures``' flags to ``p``; returns its runner."""
    p.add_argument("--only", nargs="+", type=int, metavar="N",
                   help="figure numbers to make (default: every registered figure)")
    p.add_argument("--quick", action="store_true",
                   help="reduced instances and sweeps (all figures in under ~3 minutes on 2 cores; figures 8, "
                        "10 and 11 are drawn from the committed results/ unless --rerun-llm)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="seed of each figure's numpy Generator")
    p.add_argument("--rerun-llm", action="store_true",
                   help="figures 8, 10 and 11 from fresh LLM runs (8: runs/llm/experiment, made there first by "
                        "`dagsim llm experiment` if absent; 10: `python -m llm.theory` on runs/llm/base; with "
                        "--quick their quick versions; 11: `dagsim llm predict` on runs/llm/experiment) instead "
                        "of the committed results/ files")

    def run(args) -> int:
        from figures.registry import FIGURES, LLM_FIGURE_MODULES, UNAVAILABLE

        wanted = sorted(set(args.only)) if args.only else sorted(FIGURES)
        unknown = [n for n in wanted if n not in FIGURES]
        if unknown:
            why = "; ".join(f"{n}: {UNAVAILABLE[n]}" for n in unknown if n in UNAVAILABLE)
            raise ValidationError(f"no figure {unknown} (available: {sorted(FIGURES)})" + (f" — {why}" if why else ""))
        total = time.perf_counter()
        for i, n in enumerate(wanted, 1):
            module = FIGURES[n]
            print(f"[{i}/{len(wanted)}] figure {n}: {module.NAME} ...", flush=True)
            t0 = time.perf_counter()
            extra = {"rerun": True} if args.rerun_llm and n in LLM_FIGURE_MODULES else {}
            paths = module.make(args.out, quick=args.quick, seed=args.seed, **extra)
            print(f"    done in {time.perf_counter() - t0:.1f} s", flush=True)
            for ext in ("png", "pdf", "json"):
                print(f"    {paths[ext]}")
        print(f"{len(wanted)} figure(s) written to {args.out} in {time.perf_counter() - total:.1f} s")
        return 0

    return run


def demo_stage(out) -> str:
    """Main-job stage: every figure but 8 in quick mode, into ``out/figures`` (10 from the committed results/;
    8 is drawn by the LLM stage from the demo's own run)."""
    from pathlib import Path

    from figures.registry import FIGURES

    folder = Path(out) / "figures"
    print(f"\n== figures (--quick) -> {folder} ==", flush=True)
    t0 = time.perf_counter()
    made = []
    for n in sorted(FIGURES):
        if n == 8:  # drawn by the LLM stage from the demo's fresh experiment
            continue
        module = FIGURES[n]
        print(f"  figure {n}: {module.NAME}", flush=True)
        module.make(folder, quick=True)
        made.append(n)
    return f"figures: {len(made)} quick figures in {time.perf_counter() - t0:.0f} s -> {folder}"
