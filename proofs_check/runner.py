"""Run the registered checks and render the report (rich table or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from proofs_check.registry import load_all, run_check


def run_checks(only: Sequence[str] | None = None, *, quick: bool = False, seed: int = 0, progress: bool = True
               ) -> list[dict]:
    registry = load_all()
    wanted = list(registry) if not only else [c.upper() for c in only]
    unknown = [c for c in wanted if c not in registry]
    if unknown:
        from dagsim.errors import ValidationError

        raise ValidationError(f"unknown claim id(s) {unknown}; known: {list(registry)}")
    rows = []
    for cid in wanted:
        if progress:
            print(f"  checking {cid} ...", file=sys.stderr, flush=True)
        rows.append(run_check(registry[cid], quick=quick, seed=seed))
    return rows


def exit_code(rows: list[dict]) -> int:
    """Non-zero if any claim fails or any control passes."""
    return 0 if all(r["passed"] and r["control_failed"] for r in rows) else 1


def render_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="proofs_check — one numerical check per claim of docs/theory.md")
    for col in ("id", "statement", "instances", "max error", "tolerance", "passed", "control failed", "s"):
        table.add_column(col, justify="left" if col in ("id", "statement") else "right")
    for r in rows:
        err = r["max_error"]
        table.add_row(r["id"], r["statement"], str(r["instances"]),
                      f"{err:.2e}" if isinstance(err, float) else str(err), f"{r['tolerance']:.0e}",
                      "[green]yes[/]" if r["passed"] else "[red]NO[/]",
                      "[green]yes[/]" if r["control_failed"] else "[red]NO[/]", f"{r['seconds']:.1f}")
    Console(width=160).print(table)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| id | statement | instances | max error | tolerance | passed | control failed | s |",
             "|---|---|---:|---:|---:|:---:|:---:|---:|"]
    for r in rows:
        err = r["max_error"]
        err_s = f"{err:.1e}" if isinstance(err, float) else str(err)
        statement = r["statement"].replace("|", "\\|")  # a literal | (|x|, π(y|z)) would split the cell
        lines.append(f"| {r['id']} | {statement} | {r['instances']} | {err_s} | {r['tolerance']:.0e} | "
                     f"{'yes' if r['passed'] else 'NO'} | {'yes' if r['control_failed'] else 'NO'} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def write_report(rows: list[dict], out_dir) -> tuple[str, str]:
    """Write ``proofs_check.json`` ({"checks": rows}) and ``proofs_check.md`` (the table) into ``out_dir``."""
    from pathlib import Path

    from dagsim.io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = atomic_write_json(out / "proofs_check.json", json.loads(json.dumps({"checks": rows})))
    md_path = atomic_write_text(out / "proofs_check.md", markdown_table(rows) + "\n")
    return str(json_path), str(md_path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help='print {"checks": [...]}')
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids (e.g. P1 T8)")
    p.add_argument("--quick", action="store_true", help="reduced instances (<= 30 s in all)")
    p.add_argument("--seed", type=int, default=0, help="seed of every check's generator")
    p.add_argument("--out", metavar="DIR", help="also write DIR/proofs_check.json and DIR/proofs_check.md "
                                                "(the report and its markdown table; atomic writes)")


def run_from_args(args) -> int:
    rows = run_checks(args.only, quick=args.quick, seed=args.seed, progress=not args.json)
    if getattr(args, "out", None):
        write_report(rows, args.out)
    if args.json:
        print(json.dumps({"checks": rows}, indent=2, allow_nan=False))
    else:
        render_table(rows)
        failed = [r["id"] for r in rows if not r["passed"]]
        vacuous = [r["id"] for r in rows if not r["control_failed"]]
        if failed:
            print(f"FAILED claims: {failed}")
        if vacuous:
            print(f"controls that passed (check cannot tell right from wrong): {vacuous}")
    return exit_code(rows)


def main(argv: Sequence[str] | None = None) -> int:
    from dagsim.errors import DagsimError

    p = argparse.ArgumentParser(prog="python -m proofs_check",
                                description="numerical checks of the claims of docs/theory.md")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_from_args(args)
    except DagsimError as exc:
        print(f"proofs_check: error: {exc}", file=sys.stderr)
        return 2
