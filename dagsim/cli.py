"""The ``dagsim`` command line: the only place that parses flags (STYLE §9).

Every user-facing error (bad file, bad argument, failed solve) is a :class:`~dagsim.errors.DagsimError`
printed as one paragraph on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dagsim import dagio
from dagsim.dag import ReasoningDAG, Task
from dagsim.errors import DagsimError, ValidationError

EXIT_USAGE = 2

#: Sub-command registry: name -> (configure parser, run). Later modules add entries with :func:`command`.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help_text: str):
    """Register a sub-command; the decorated function configures its parser and returns the runner."""

    def wrap(configure: Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]):
        def conf(p: argparse.ArgumentParser) -> None:
            p.set_defaults(_run=configure(p))

        COMMANDS[name] = (conf, None, help_text)  # type: ignore[assignment]
        return configure

    return wrap


# ---------------------------------------------------------------------- output helpers
def _print_json(obj) -> None:
    """Strict JSON on stdout: a value that does not exist (NaN) is ``null``, never a bare ``NaN``."""
    from dagsim.io import finite_or_null

    print(json.dumps(finite_or_null(obj), indent=2, allow_nan=False))


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if c not in ("answer", "label", "check") else "left")
    for r in rows:
        table.add_row(*[str(x) for x in r])
    Console(width=120).print(table)


def _fmt_int(n: int) -> str:
    s = str(n)
    return f"{n:,}" if len(s) <= 18 else f"{s[0]}.{s[1:4]}e{len(s) - 1} ({len(s)} digits)"


def load_model_file(path: str) -> ReasoningDAG | Task:
    return dagio.load(path)


# ---------------------------------------------------------------------- validate
@command("validate", "check a dagsim/v1 or dagsim-task/v1 file and summarize it")
def _validate(p: argparse.ArgumentParser):
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    def run(args) -> int:
        obj = load_model_file(args.file)
        views = obj.views if isinstance(obj, Task) else (obj,)
        summary = {
            "valid": True,
            "format": dagio.TASK_FORMAT if isinstance(obj, Task) else dagio.DAG_FORMAT,
            "n_views": len(views),
            "n_answers": views[0].n_answers,
            "n_nodes": [v.n_nodes for v in views] if isinstance(obj, Task) else views[0].n_nodes,
            "n_edges": [v.n_edges for v in views] if isinstance(obj, Task) else views[0].n_edges,
            "n_constraints": len(obj.constraints),
        }
        if args.json:
            _print_json(summary)
        else:
            print(f"{args.file}: valid {summary['format']} — {summary['n_views']} view(s), "
                  f"{summary['n_answers']} answers, nodes {summary['n_nodes']}, edges {summary['n_edges']}, "
                  f"{summary['n_constraints']} constraint(s)")
        return 0

    return run


# ---------------------------------------------------------------------- marginals
def _marginal_report(dag: ReasoningDAG) -> dict:
    from dagsim.marginals import answer_marginal, count_traces

    nu = answer_marginal(dag)
    return {
        "answer_distribution": {a: float(x) for a, x in zip(dag.answers, nu.tolist())},
        "n_traces": count_traces(dag),
        "n_nodes": dag.n_nodes,
        "n_edges": dag.n_edges,
    }


@command("marginals", "exact answer marginal ν0 of the reference policy (forward DP, P1)")
def _marginals(p: argparse.ArgumentParser):
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    def run(args) -> int:
        obj = load_model_file(args.file)
        if isinstance(obj, Task):
            reports = [_marginal_report(v) for v in obj.views]
            out = {"answers": list(obj.answers), "weights": obj.weights.tolist(), "views": reports}
            if args.json:
                _print_json(out)
                return 0
            rows = [[a] + [f"{r['answer_distribution'][a]:.6f}" for r in reports] for a in obj.answers]
            _table(f"answer marginals of {len(reports)} views", ["answer"] + [f"view {j}" for j in range(len(reports))],
                   rows)
            for j, r in enumerate(reports):
                print(f"view {j}: {_fmt_int(r['n_traces'])} traces, {r['n_nodes']} nodes, {r['n_edges']} edges")
            return 0
        report = _marginal_report(obj)
        if args.json:
            _print_json(report)
            return 0
        print_marginal_table(obj, report)
        return 0

    return run


def print_marginal_table(dag: ReasoningDAG, report: dict) -> None:
    rows = []
    for a, x in report["answer_distribution"].items():
        reward = dag.reward[dag.answers.index(a)] if dag.has_reward else ""
        rows.append([a, f"{x:.6f}", "█" * int(round(40 * x)), reward])
    _table(f"exact answer marginal ν0 — {dag.name or 'DAG'}", ["answer", "probability", "", "reward"], rows)
    print(f"{_fmt_int(report['n_traces'])} traces, {report['n_nodes']} nodes, {report['n_edges']} edges")


# ---------------------------------------------------------------------- generate
@command("generate", "write a generated DAG or task file (lattice | random | arithmetic | arithmetic-task)")
def _generate(p: argparse.ArgumentParser):
    p.add_argument("kind", choices=["lattice", "random", "arithmetic", "arithmetic-task"])
    p.add_argument("-o", "--out", help="output file (default: print the JSON)")
    p.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator")
    p.add_argument("--width", type=int, default=4, help="lattice: nodes per layer")
    p.add_argument("--depth", type=int, default=3, help="lattice: number of layers")
    p.add_argument("--answers", type=int, default=4, help="lattice/random: number of answers")
    p.add_argument("--uniform", action="store_true", help="lattice: uniform π0 instead of Dirichlet rows")
    p.add_argument("--concentration", type=float, default=1.0, help="Dirichlet concentration of π0 rows")
    p.add_argument("--nodes", type=int, default=10, help="random: internal nodes")
    p.add_argument("--edge-prob", type=float, default=0.3, help="random: probability of each extra edge")
    p.add_argument("--steps", type=int, default=3, help="arithmetic: number of product-and-add steps")
    p.add_argument("--max-operand", type=int, default=9, help="arithmetic: operands are drawn in 1..max")
    p.add_argument("--terms", help="arithmetic: explicit problem like '4*7+6*8' (overrides --steps/--seed)")
    p.add_argument("--eps", type=float, default=0.1, help="arithmetic: per-step slip probability")
    p.add_argument("--views", type=int, default=3, help="arithmetic-task: number of views")
    p.add_argument("--eps-weak", type=float, default=0.35,
                   help="arithmetic-task: slip probability of the view's weak step (the others use --eps)")

    def run(args) -> int:
        from dagsim import generators as gen
        from dagsim.io import check_output_file

        if args.out:
            check_output_file(args.out, "--out")
        rng = np.random.default_rng(args.seed)
        if args.kind == "lattice":
            obj = gen.layered_lattice(args.width, args.depth, args.answers, rng=None if args.uniform else rng,
                                      concentration=args.concentration)
        elif args.kind == "random":
            obj = gen.random_dag(rng, args.nodes, args.answers, edge_prob=args.edge_prob,
                                 concentration=args.concentration)
        else:
            problem = _parse_terms(args.terms) if args.terms else gen.arithmetic_problem(rng, args.steps,
                                                                                         args.max_operand)
            if args.kind == "arithmetic":
                obj = gen.arithmetic_dag(problem, args.eps)
            else:
                if args.views < 1:
                    raise ValidationError("--views must be >= 1")
                view_eps = []
                for j in range(args.views):
                    eps = [args.eps] * problem.n_steps
                    eps[j % problem.n_steps] = args.eps_weak
                    view_eps.append(eps)
                obj = gen.arithmetic_task(problem, view_eps)
        if args.out:
            dagio.save(obj, args.out)
            kind = "task" if isinstance(obj, Task) else "DAG"
            print(f"wrote {kind} to {args.out}")
        else:
            data = dagio.task_to_json(obj) if isinstance(obj, Task) else dagio.dag_to_json(obj)
            print(json.dumps(data))
        return 0

    return run


def _parse_terms(text: str):
    from dagsim.generators import ArithmeticProblem

    a, b = [], []
    for term in text.replace(" ", "").split("+"):
        parts = term.split("*")
        if len(parts) != 2 or not all(x.isdigit() for x in parts):
            raise ValidationError(f"--terms: expected terms like '4*7+6*8', got {term!r}")
        a.append(int(parts[0]))
        b.append(int(parts[1]))
    return ArithmeticProblem(tuple(a), tuple(b))


# ---------------------------------------------------------------------- demo (the main job)
@command("demo", "the main job on the embedded default: exact marginal, proofs_check report, quick figures, "
                 "a short LLM Coherence-GRPO run")
def _demo(p: argparse.ArgumentParser):
    p.add_argument("--out", default="out", help="folder for the demo's outputs")
    p.add_argument("--skip", nargs="+", default=[], metavar="STAGE",
                   help=f"stages to skip: {', '.join(DEMO_STAGE_NAMES)}")

    def run(args) -> int:
        import time

        from dagsim.generators import default_arithmetic_dag
        from dagsim.io import check_output_dir

        valid = list(dict.fromkeys([*DEMO_STAGE_NAMES, *(name for name, _ in DEMO_STEPS)]))
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
        for name, stage in DEMO_STEPS:
            if name in args.skip:
                continue
            summary.append(stage(out))
        print(f"\n== summary ({time.perf_counter() - t0:.0f} s) ==")
        for line in summary:
            print(" * " + line)
        return 0

    return run


#: Stages of the main job after the marginal, registered by the plugin modules: (name, stage(out) -> summary).
DEMO_STEPS: list[tuple[str, Callable[[Path], str]]] = []
#: The stage names ``--skip`` accepts even when a stage's plugin is not installed (e.g. llm without torch).
DEMO_STAGE_NAMES = ("proofs_check", "figures", "llm")


# ---------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = argparse.ArgumentParser(
        prog="dagsim",
        description="Answer-level fine-tuning on exact reasoning DAGs: marginals, the Distributional "
                    "Alignment Game, GRPO simulation (see README).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (conf, _, help_text) in COMMANDS.items():
        conf(sub.add_parser(name, help=help_text, description=help_text))
    sub.add_parser("llm", help="real Coherence-GRPO on transformers models (dagsim llm --help)", add_help=False)
    return parser


def _load_plugins() -> None:
    """Import the modules that register further sub-commands (solve, game, simulate, check, figures)."""
    import importlib

    for module in ("dagsim.cli_game", "dagsim.cli_grpo", "proofs_check.cli", "figures.cli", "llm.demo"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module and not module.startswith(exc.name or "\0"):
                raise


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "llm":
            return _run_llm(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args._run(args) or 0)
    except DagsimError as exc:
        print(f"dagsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return 0
    except OSError as exc:  # an output path that is a folder, a read-only folder, a full disk: one line
        from dagsim.io import os_error_message

        print(f"dagsim: error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dagsim: interrupted", file=sys.stderr)
        return 130


def _run_llm(argv: list[str]) -> int:
    """``dagsim llm ...`` lives in the optional ``llm`` package (torch); import it only when asked."""
    try:
        from llm.cli import main as llm_main
    except ModuleNotFoundError as exc:
        raise DagsimError(f"'dagsim llm' needs the llm extra ({exc.name} is missing): pip install 'alft-games[llm]'"
                          ) from None
    return int(llm_main(argv) or 0)


def finite_or_error(x: float, what: str) -> float:
    if not math.isfinite(x):
        raise DagsimError(f"{what} is not finite ({x!r})")
    return x


if __name__ == "__main__":  # `python -m dagsim.cli`: run the imported module, whose registry the plugins fill
    from dagsim.cli import main as _main

    sys.exit(_main())
