"""``dagsim check`` (the same runner as ``python -m proofs_check``) and the main job's proofs_check stage;
:mod:`app.cli` and :mod:`app.demo` wire them in."""

from proofs_check.runner import add_arguments, run_from_args

HELP = "run one numerical check per claim of docs/theory.md (same as python -m proofs_check)"


def configure(p):
    """Add ``dagsim check``'s flags to ``p``; returns its runner."""
    add_arguments(p)
    p.add_argument("--objective-module", default=None, metavar="FILE.py:CLASS",
                   help="report T1 (NE ⇔ optimum), T9 and T10 for a user-defined objective family "
                        "(path/to/file.py:ClassName or module.path:ClassName) instead of the built-in claims")

    def run(args) -> int:
        if args.objective_module:
            return run_user_from_args(args)
        return run_from_args(args)

    return run


def run_user_from_args(args) -> int:
    """``dagsim check --objective-module``: T1, T9, T10 on random DAGs for the user's family (issue #17)."""
    import json

    from dagsim.objectives.user import load_objective_module
    from proofs_check.runner import exit_code, render_table, write_report
    from proofs_check.user_checks import run_user_checks

    family = load_objective_module(args.objective_module)
    rows, skipped = run_user_checks(family, only=args.only, quick=args.quick, seed=args.seed,
                                    progress=not args.json)
    if args.out:
        write_report(rows, args.out)
    if args.json:
        print(json.dumps({"objective_module": {"name": family.name, "source": args.objective_module},
                          "checks": rows, "skipped": skipped}, indent=2, allow_nan=False))
    else:
        print(f"objective module {args.objective_module} (family {family.name!r})")
        render_table(rows)
        for r in rows:
            if "tv_to_optimum" in r:
                ranges = ", ".join(f"{g}: {lo:.4g}–{hi:.4g}" for g, (lo, hi) in r["tv_to_optimum"].items())
                print(f"{r['id']}: {r['group_reward']} group reward, TV of the finite-G stationary point to ν* "
                      f"(min–max over instances): {ranges or 'no exact optimum to compare with'}")
        for sk in skipped:
            print(f"{sk['id']} skipped: {sk['why']}")
        failed = [r["id"] for r in rows if not r["passed"]]
        vacuous = [r["id"] for r in rows if not r["control_failed"]]
        if failed:
            print(f"FAILED claims for {family.name}: {failed}")
        if vacuous:
            print(f"controls that passed (check cannot tell right from wrong): {vacuous}")
    return exit_code(rows)


def demo_stage(out) -> str:
    """Main-job stage: the quick report of every claim, printed and written to ``out/proofs_check.json``."""
    import json
    from pathlib import Path

    from dagsim.io import atomic_write_json
    from proofs_check.runner import render_table, run_checks

    print("\n== proofs_check: one numerical check per claim of docs/theory.md (--quick) ==", flush=True)
    rows = run_checks(quick=True, progress=False)
    render_table(rows)
    path = atomic_write_json(Path(out) / "proofs_check.json", json.loads(json.dumps({"checks": rows})))
    failed = [r["id"] for r in rows if not r["passed"]]
    vacuous = [r["id"] for r in rows if not r["control_failed"]]
    verdict = f"{len(rows) - len(failed)}/{len(rows)} claims pass"
    if failed:
        verdict += f" (failing: {', '.join(failed)}; the claims are stated in docs/theory.md)"
    if vacuous:
        verdict += f"; controls that passed: {vacuous}"
    return f"proofs_check: {verdict} -> {path}"
