"""dagsim's own sub-commands (validate, marginals, generate; solve and game in :mod:`dagsim.cli_game`,
simulate in :mod:`dagsim.cli_grpo`) and the shared machinery of the ``dagsim`` command line (STYLE §9).

The console script ``dagsim`` is :func:`app.cli.main`: the top layer adds ``demo``, ``check``, ``figures``
and ``llm``, which live in the packages above dagsim. This module imports nothing from them.

Every user-facing error (bad file, bad argument, failed solve) is a :class:`~dagsim.errors.DagsimError`
printed as one paragraph on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dagsim import dagio
from dagsim.dag import ReasoningDAG, Task
from dagsim.errors import DagsimError, ValidationError

EXIT_USAGE = 2

#: A sub-command's entry: (configure its parser, unused, help text); see :func:`command_entry`.
CommandEntry = tuple[Callable[[argparse.ArgumentParser], None], None, str]
#: dagsim's own sub-commands, filled by :func:`command` in this module, :mod:`dagsim.cli_game` and
#: :mod:`dagsim.cli_grpo` (:func:`load_commands` imports them). The top layer (:mod:`app.cli`) composes these
#: with the commands of the packages above dagsim; nothing outside dagsim adds entries here.
COMMANDS: dict[str, CommandEntry] = {}
#: dagsim's modules that register sub-commands with :func:`command`.
COMMAND_MODULES = ("dagsim.cli_game", "dagsim.cli_grpo")


def command_entry(help_text: str, configure: Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]
                  ) -> CommandEntry:
    """The entry of a sub-command whose ``configure(parser)`` adds its flags and returns its runner."""

    def conf(p: argparse.ArgumentParser) -> None:
        p.set_defaults(_run=configure(p))

    return (conf, None, help_text)


def command(name: str, help_text: str):
    """Register one of dagsim's sub-commands; the decorated function configures its parser and returns the runner."""

    def wrap(configure: Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]):
        COMMANDS[name] = command_entry(help_text, configure)
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


# ---------------------------------------------------------------------- entry point
def load_commands() -> dict[str, CommandEntry]:
    """Import dagsim's command modules (each registers its sub-commands) and return :data:`COMMANDS`."""
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module)
    return COMMANDS


def build_parser(commands: Mapping[str, CommandEntry] | None = None,
                 stubs: Sequence[tuple[str, str]] = ()) -> argparse.ArgumentParser:
    """The ``dagsim`` parser of ``commands`` (default: dagsim's own, :func:`load_commands`), in their order.

    ``stubs`` (name, help) are listed as sub-commands without a parser of their own: their arguments go to
    the runner given for them in :func:`run_cli` ``passthrough`` (``dagsim llm ...``).
    """
    commands = load_commands() if commands is None else commands
    parser = argparse.ArgumentParser(
        prog="dagsim",
        description="Answer-level fine-tuning on exact reasoning DAGs: marginals, the Distributional "
                    "Alignment Game, GRPO simulation (see README).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (conf, _, help_text) in commands.items():
        conf(sub.add_parser(name, help=help_text, description=help_text))
    for name, help_text in stubs:
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def run_cli(argv: Sequence[str] | None, parser_factory: Callable[[], argparse.ArgumentParser] = build_parser,
            passthrough: Mapping[str, Callable[[list[str]], int]] | None = None) -> int:
    """Parse ``argv`` with ``parser_factory()`` and run the chosen sub-command; returns the exit code.

    ``passthrough`` maps a first argument to a runner that takes the rest of ``argv`` itself (``llm``).
    A :class:`DagsimError` or an :class:`OSError` prints one line (exit 2), Ctrl-C exits 130.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = passthrough or {}
    try:
        if argv and argv[0] in passthrough:
            return int(passthrough[argv[0]](argv[1:]) or 0)
        parser = parser_factory()
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


def main(argv: Sequence[str] | None = None) -> int:
    """dagsim's own sub-commands only (``python -m dagsim.cli``); the full ``dagsim`` is :func:`app.cli.main`."""
    return run_cli(argv)


def finite_or_error(x: float, what: str) -> float:
    if not math.isfinite(x):
        raise DagsimError(f"{what} is not finite ({x!r})")
    return x


if __name__ == "__main__":  # `python -m dagsim.cli`: run the imported module, whose registry the modules fill
    from dagsim.cli import main as _main

    sys.exit(_main())
