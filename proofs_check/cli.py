"""``dagsim check`` (the same runner as ``python -m proofs_check``) and the main job's proofs_check stage;
:mod:`app.cli` and :mod:`app.demo` wire them in."""

from proofs_check.runner import add_arguments, run_from_args

HELP = "run one numerical check per claim of docs/theory.md (same as python -m proofs_check)"


def configure(p):
    """Add ``dagsim check``'s flags to ``p``; returns its runner."""
    add_arguments(p)
    return run_from_args


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
