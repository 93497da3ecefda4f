"""``dagsim llm ...``: pretrain, train, evaluate, experiment. The only place in llm/ that parses flags.

Flags are generated from the frozen config dataclasses; their field docstrings become ``--help``.
Errors in the user's input (:class:`dagsim.errors.DagsimError`) and I/O errors (:class:`OSError`: a
folder given as a file, a read-only folder) print one message, no traceback (exit 2); SIGINT (Ctrl-C)
exits 130 and SIGTERM 143, after the trainer has saved a checkpoint. The flags a user typed are recorded
(:func:`given_fields`), so that ``train --resume DIR`` can take every other value from DIR's manifest.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
from pathlib import Path

from dagsim.errors import DagsimError
from dagsim.io import finite_or_null, os_error_message


def field_docs(cls) -> dict[str, str]:
    """Attribute docstrings (the string literal under each field) of a dataclass, by field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    docs, body = {}, tree.body[0].body
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


#: Namespace attribute holding the ``dest`` of every flag given explicitly on the command line.
GIVEN = "_given_flags"


def _mark_given(namespace: argparse.Namespace, dest: str) -> None:
    given = set(getattr(namespace, GIVEN, ()))
    given.add(dest)
    setattr(namespace, GIVEN, given)


class _StoreGiven(argparse.Action):
    """``store`` that also records the flag as given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark_given(namespace, self.dest)


class _BoolGiven(argparse.BooleanOptionalAction):
    """``--flag/--no-flag`` that also records the flag as given."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


def given_fields(args: argparse.Namespace, cls, prefix: str = "") -> set[str]:
    """Names of the fields of ``cls`` whose flags were given on the command line."""
    given = getattr(args, GIVEN, set())
    return {f.name for f in dataclasses.fields(cls) if (prefix + f.name).replace("-", "_") in given}


def help_escape(text: str) -> str:
    """argparse %-formats help strings: a literal ``%`` (e.g. "40-70 %" in a docstring) must be doubled."""
    return text.replace("%", "%%")


def add_dataclass_args(
    parser: argparse.ArgumentParser, cls, prefix: str = "", skip: tuple[str, ...] = ()
) -> None:
    """One ``--[prefix-]name`` flag per scalar field of ``cls`` (default = the field's default)."""
    docs = field_docs(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip or dataclasses.is_dataclass(getattr(defaults, f.name)):
            continue
        default = getattr(defaults, f.name)
        flag = "--" + (prefix + f.name).replace("_", "-")
        dest = (prefix + f.name).replace("-", "_")
        help_text = help_escape(f"{docs.get(f.name, '')} (default: {default!r})")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action=_BoolGiven, default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=dest, action=_StoreGiven, type=type(default), default=default,
                                help=help_text)


def build_dataclass(cls, args: argparse.Namespace, prefix: str = "", **nested):
    values = {}
    for f in dataclasses.fields(cls):
        dest = (prefix + f.name).replace("-", "_")
        if f.name in nested:
            values[f.name] = nested[f.name]
        elif hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    return cls(**values)


def _parser() -> argparse.ArgumentParser:
    from llm.evaluate import EvalConfig
    from llm.experiment import ExperimentConfig
    from llm.model import ModelConfig
    from llm.pretrain import PretrainConfig
    from llm.tasks import ArithmeticTaskConfig
    from llm.trainer import TrainConfig

    parser = argparse.ArgumentParser(
        prog="dagsim llm", description="Answer-level fine-tuning of transformers LMs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="SFT the tiny base model on noisy traces of the embedded task")
    add_dataclass_args(p, PretrainConfig)
    add_dataclass_args(p, ArithmeticTaskConfig, prefix="task_")
    add_dataclass_args(p, ModelConfig, prefix="model_")
    p.add_argument(
        "--eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="evaluate the base model on the held-out split afterwards (default: True)",
    )

    t = sub.add_parser("train", help="GRPO-loop fine-tuning with one algorithm")
    add_dataclass_args(t, TrainConfig)
    t.add_argument(
        "--eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="evaluate the final model on the held-out split (default: True)",
    )
    add_dataclass_args(t, EvalConfig, prefix="eval_")

    e = sub.add_parser("evaluate", help="held-out accuracy, maj@k, pass@k, answer entropy")
    e.add_argument("--model", required=True, help="local HF checkpoint directory")
    e.add_argument("--data", default="", help="GSM8K-style JSONL file (default: the embedded held-out split)")
    e.add_argument("--json", default="", help="also write the metrics to this JSON file")
    add_dataclass_args(e, EvalConfig, prefix="eval_")

    sub.add_parser("marginals", help="certified answer marginals by best-first enumeration "
                   "(dagsim llm marginals --help)", add_help=False)
    x = sub.add_parser("experiment", help="pretrain + every algorithm at matched compute; table and plots")
    add_dataclass_args(x, ExperimentConfig)
    return parser


def _held_out(model_dir: str, data: str):
    from llm.tasks import load_jsonl, split_problems, task_config_of

    if data:
        return load_jsonl(data)
    return split_problems(task_config_of(model_dir))[1]


def _print_metrics(title: str, metrics: dict) -> None:
    print(title)
    for k, v in metrics.items():
        print(f"  {k:>22}: {v:.4f}" if isinstance(v, float) else f"  {k:>22}: {v}")


def _cmd_pretrain(args) -> int:
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import ModelConfig, load_model
    from llm.pretrain import PretrainConfig, pretrain
    from llm.tasks import ArithmeticTaskConfig

    task = build_dataclass(ArithmeticTaskConfig, args, prefix="task_")
    model_cfg = build_dataclass(ModelConfig, args, prefix="model_")
    config = build_dataclass(PretrainConfig, args, task=task, model=model_cfg)
    summary = pretrain(config)
    print(f"wrote {config.out} ({summary['n_parameters']:,} parameters, {summary['seconds']:.0f} s)")
    if args.eval:
        model, tok = load_model(config.out)
        _print_metrics(
            "held-out evaluation:",
            evaluate(model, tok, _held_out(config.out, ""), EvalConfig(), progress=config.progress),
        )
    return 0


def _cmd_train(args) -> int:
    from llm.evaluate import EvalConfig, evaluate
    from llm.trainer import TrainConfig, resolve_resume, train

    config = build_dataclass(TrainConfig, args)
    config.validate()
    config = resolve_resume(config, given_fields(args, TrainConfig))
    eval_cfg = build_dataclass(EvalConfig, args, prefix="eval_")
    eval_cfg.validate()
    result = train(config)
    print(
        f"{'interrupted (' + result['signal'] + ') at' if result['interrupted'] else 'finished'} step "
        f"{result['steps']} ({result['seconds']:.0f} s); checkpoints in {config.out}"
    )
    if result["interrupted"]:
        return result["exit_code"]
    if args.eval:
        held = _held_out(config.model, config.data) if not config.data else []
        if held:
            _print_metrics(
                "held-out evaluation:",
                evaluate(result["model"], result["tokenizer"], held, eval_cfg, progress=config.progress),
            )
    return 0


def _cmd_evaluate(args) -> int:
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import atomic_write_text, load_model

    eval_cfg = build_dataclass(EvalConfig, args, prefix="eval_")
    if args.json:
        from dagsim.io import check_output_file

        check_output_file(args.json, "--json")
    model, tok = load_model(args.model)
    metrics = evaluate(model, tok, _held_out(args.model, args.data), eval_cfg, progress=True)
    _print_metrics(f"evaluation of {args.model}:", metrics)
    if args.json:
        atomic_write_text(args.json, strict_json(metrics))
    return 0


def strict_json(obj) -> str:
    """Standard JSON (``allow_nan=False``): a metric with no value (NaN, e.g. cross-view agreement of
    single-view data) is written as ``null``."""
    return json.dumps(finite_or_null(obj), indent=2, allow_nan=False) + "\n"


def _cmd_experiment(args) -> int:
    from llm.experiment import ExperimentConfig, run_experiment

    config = build_dataclass(ExperimentConfig, args)
    results = run_experiment(config)
    print(results["table"])
    print(f"wrote {Path(config.out) / 'results.json'}, results.md and plots")
    return 0


COMMANDS = {
    "pretrain": _cmd_pretrain,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "experiment": _cmd_experiment,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dagsim llm``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "marginals":  # certified answer marginals (llm.certified has its own parser)
        from llm.certified import main_marginals

        return main_marginals(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except DagsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder where a file was expected, a read-only folder, a full disk
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
