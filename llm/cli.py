"""``dagsim llm ...``: pretrain, sft, train, evaluate, experiment (``marginals``: :mod:`llm.certified`'s parser).

Flags are generated from the frozen config dataclasses by :mod:`dagsim.cli_args` (the one dataclass→argparse
helper); their field docstrings become ``--help``.
Errors in the user's input (:class:`dagsim.errors.DagsimError`) and I/O errors (:class:`OSError`: a
folder given as a file, a read-only folder) print one message, no traceback (exit 2); SIGINT (Ctrl-C)
exits 130 and SIGTERM 143, after the trainer has saved a checkpoint. The flags a user typed are recorded
(:func:`given_fields`), so that ``train --resume DIR`` can take every other value from DIR's manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from dagsim.cli_args import (  # noqa: F401  (field_docs, GIVEN, help_escape: re-exported, tests use them)
    GIVEN,
    add_dataclass_args,
    build_dataclass,
    field_docs,
    given_fields,
    help_escape,
)
from dagsim.errors import DagsimError, ValidationError
from dagsim.io import finite_or_null, os_error_message

STOP_STRING_HELP = (
    "stop string ending a completion at its first occurrence (repeatable, or a comma list; escapes \\n \\t "
    "\\, \\\\ are decoded, e.g. --stop-string '\\nQ:'); every EOS id of model and tokenizer always stops"
)
_ESCAPES = {"n": "\n", "t": "\t", ",": ",", "\\": "\\"}


def parse_stop_strings(values) -> tuple[str, ...]:
    """``--stop-string`` values -> stop strings: each value is a comma list; ``\\n``, ``\\t``, ``\\,``
    (a literal comma) and ``\\\\`` are decoded; empty items are dropped."""
    out: list[str] = []
    for value in values or ():
        item, i = "", 0
        while i < len(value):
            c = value[i]
            if c == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPES:
                item += _ESCAPES[value[i + 1]]
                i += 2
                continue
            if c == ",":
                out.append(item)
                item = ""
            else:
                item += c
            i += 1
        out.append(item)
    return tuple(dict.fromkeys(s for s in out if s))


def _add_data_args(parser: argparse.ArgumentParser, with_split: bool) -> None:
    """``--stop-string`` (and, for evaluate, the held-out split and prompt-format flags of user data)."""
    parser.add_argument("--stop-string", dest="stop_string_values", action="append", default=[],
                        help=STOP_STRING_HELP)
    if with_split:
        parser.add_argument("--eval-fraction", type=float, default=0.0,
                            help="--data: evaluate on the held-out part split off as sft/train do with this "
                            "fraction and --split-seed (default: 0.0 = the whole file)")
        parser.add_argument("--split-seed", type=int, default=0, help="seed of that split (default: 0)")
        parser.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=False,
                            help="format prompts with the tokenizer's chat template (automatic for 'messages' "
                            "data when it has one) (default: False)")
        parser.add_argument("--skip-bad-lines", action=argparse.BooleanOptionalAction, default=False,
                            help="skip (and count) data lines whose answer cannot be parsed (default: False)")


def _parser() -> argparse.ArgumentParser:
    from llm.evaluate import EvalConfig
    from llm.experiment import ExperimentConfig
    from llm.model import ModelConfig
    from llm.pretrain import PretrainConfig
    from llm.sft import SFTConfig
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

    s = sub.add_parser("sft", help="supervised fine-tuning on user data (JSONL or reasoning-gym), new or given model")
    add_dataclass_args(s, SFTConfig)
    add_dataclass_args(s, ModelConfig, prefix="model_")
    s.add_argument(
        "--eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="evaluate the fine-tuned model on the held-out part afterwards (default: True)",
    )
    add_dataclass_args(s, EvalConfig, prefix="eval_")
    _add_data_args(s, with_split=False)

    t = sub.add_parser("train", help="GRPO-loop fine-tuning with one algorithm")
    add_dataclass_args(t, TrainConfig)
    _add_data_args(t, with_split=False)
    t.add_argument(
        "--eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="evaluate the final model on the held-out split (default: True)",
    )
    add_dataclass_args(t, EvalConfig, prefix="eval_", skip=("answer_parser",))  # evaluation uses train's

    e = sub.add_parser("evaluate", help="held-out accuracy, maj@k, pass@k, answer entropy")
    e.add_argument("--model", required=True, help="local HF checkpoint directory")
    e.add_argument("--data", default="", help="JSONL file (question/answer, prompt/completion or messages) or "
                   "reasoning-gym:NAME?size=N&seed=S (default: the embedded held-out split)")
    e.add_argument("--json", default="", help="also write the metrics to this JSON file")
    add_dataclass_args(e, EvalConfig, prefix="eval_", skip=("answer_parser",))
    e.add_argument(
        "--answer-parser",
        dest="eval_answer_parser",
        default="",
        help="how final answers are read: '' = the task's default (marker for the embedded task, full for "
        "--data) | full | marker | module:function | path/to/file.py:function (default: '')",
    )
    _add_data_args(e, with_split=True)

    xd = sub.add_parser("export-data", help="write the embedded task as GSM8K-style JSONL (worked solutions)")
    xd.add_argument("--out", required=True, help="JSONL file to write")
    xd.add_argument("--n", type=int, default=0, help="number of problems (default: 0 = all)")
    xd.add_argument("--seed", type=int, default=0, help="seed of the choice and trace styles (default: 0)")
    add_dataclass_args(xd, ArithmeticTaskConfig, prefix="task_")

    sub.add_parser("marginals", help="certified answer marginals by best-first enumeration "
                   "(dagsim llm marginals --help)", add_help=False)
    x = sub.add_parser("experiment", help="pretrain + every algorithm at matched compute; table and plots")
    add_dataclass_args(x, ExperimentConfig)
    from llm.predict_outcome import PredictConfig

    pr = sub.add_parser("predict", help="predict each algorithm's held-out accuracy from the base model alone "
                        "(certified ν0 + dagsim's optimum of its game) and compare with a finished experiment")
    add_dataclass_args(pr, PredictConfig)
    return parser


def _held_out(model_dir: str, data: str, tokenizer=None, *, eval_fraction: float = 0.0, split_seed: int = 0,
              chat_template: bool = False, skip_bad_lines: bool = False, answer_parser: str = ""):
    """Evaluation problems: the embedded held-out split, or ``data`` (its held-out part when
    ``eval_fraction > 0``), prompts formatted for ``tokenizer`` (chat template) when one is given."""
    from llm.tasks import apply_prompt_format, load_data, split_data, split_problems, task_config_of

    if data:
        from llm.answers import resolve_answer_parser

        parser = resolve_answer_parser(answer_parser, flag="--answer-parser") if answer_parser else None
        problems = load_data(data, skip_bad_lines=skip_bad_lines, answer_parser=parser)
        if eval_fraction > 0:
            problems = split_data(problems, eval_fraction, split_seed)[1]
    else:
        problems = split_problems(task_config_of(model_dir))[1]
    if tokenizer is not None:
        problems = apply_prompt_format(problems, tokenizer, chat_template)
    return problems


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


def _cmd_sft(args) -> int:
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import ModelConfig
    from llm.sft import SFTConfig, sft

    arch = build_dataclass(ModelConfig, args, prefix="model_")
    config = build_dataclass(SFTConfig, args, arch=arch)
    stops = parse_stop_strings(args.stop_string_values)
    eval_cfg = dataclasses.replace(build_dataclass(EvalConfig, args, prefix="eval_"), stop_strings=stops)
    eval_cfg.validate()
    result = sft(config)
    print(f"wrote {config.out} ({result['n_parameters']:,} parameters, {result['n_train']} training examples, "
          f"{result['n_held_out']} held out, {result['seconds']:.0f} s)")
    if args.eval and result["held_out"]:
        _print_metrics(
            "held-out evaluation:",
            evaluate(result["model"], result["tokenizer"], result["held_out"], eval_cfg, progress=config.progress),
        )
    return 0


def _cmd_train(args) -> int:
    from llm.evaluate import EvalConfig, evaluate
    from llm.trainer import TrainConfig, load_training_problems, resolve_resume, train

    config = dataclasses.replace(
        build_dataclass(TrainConfig, args), stop_strings=parse_stop_strings(args.stop_string_values)
    )
    config.validate()
    given = given_fields(args, TrainConfig) | ({"stop_strings"} if args.stop_string_values else set())
    config = resolve_resume(config, given)
    eval_cfg = dataclasses.replace(
        build_dataclass(EvalConfig, args, prefix="eval_"),
        stop_strings=config.stop_strings,
        answer_parser=config.answer_parser,
    )
    eval_cfg.validate()
    config.validate()
    result = train(config)
    print(
        f"{'interrupted (' + result['signal'] + ') at' if result['interrupted'] else 'finished'} step "
        f"{result['steps']} ({result['seconds']:.0f} s); checkpoints in {config.out}"
    )
    if result["interrupted"]:
        return result["exit_code"]
    if args.eval:
        held = load_training_problems(config)[1]
        if held:
            _print_metrics(
                "held-out evaluation:",
                evaluate(result["model"], result["tokenizer"], held, eval_cfg, progress=config.progress),
            )
        else:
            print("no held-out problems (--eval-fraction 0): evaluation skipped")
    return 0


def _cmd_evaluate(args) -> int:
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import atomic_write_text, load_model

    eval_cfg = build_dataclass(EvalConfig, args, prefix="eval_")
    eval_cfg = dataclasses.replace(eval_cfg, stop_strings=parse_stop_strings(args.stop_string_values))
    eval_cfg.validate()
    if not 0.0 <= args.eval_fraction < 1.0:
        raise ValidationError(f"--eval-fraction must be in [0, 1), got {args.eval_fraction}")
    if args.json:
        from dagsim.io import check_output_file

        check_output_file(args.json, "--json")
    model, tok = load_model(args.model)
    problems = _held_out(args.model, args.data, tok, eval_fraction=args.eval_fraction, split_seed=args.split_seed,
                         chat_template=args.chat_template, skip_bad_lines=args.skip_bad_lines,
                         answer_parser=eval_cfg.answer_parser)
    metrics = evaluate(model, tok, problems, eval_cfg, progress=True)
    _print_metrics(f"evaluation of {args.model}:", metrics)
    if args.json:
        atomic_write_text(args.json, strict_json(metrics))
    return 0


def strict_json(obj) -> str:
    """Standard JSON (``allow_nan=False``): a metric with no value (NaN, e.g. cross-view agreement of
    single-view data) is written as ``null``."""
    return json.dumps(finite_or_null(obj), indent=2, allow_nan=False) + "\n"


def _cmd_export_data(args) -> int:
    from llm.tasks import ArithmeticTaskConfig, export_jsonl

    n = export_jsonl(build_dataclass(ArithmeticTaskConfig, args, prefix="task_"), args.out, n=args.n, seed=args.seed)
    print(f"wrote {args.out} ({n} problems)")
    return 0


def _cmd_experiment(args) -> int:
    from llm.experiment import ExperimentConfig, run_experiment

    config = build_dataclass(ExperimentConfig, args)
    results = run_experiment(config)
    print(results["table"])
    print(f"wrote {Path(config.out) / 'results.json'}, results.md and plots")
    return 0


def _cmd_predict(args) -> int:
    from llm.predict_outcome import PredictConfig, markdown, run, write_results

    config = build_dataclass(PredictConfig, args)
    results = run(config)
    paths = write_results(results, config.out, config.stem)
    print(markdown(results))
    print(json.dumps(paths))
    return 0


COMMANDS = {
    "pretrain": _cmd_pretrain,
    "sft": _cmd_sft,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "experiment": _cmd_experiment,
    "export-data": _cmd_export_data,
    "predict": _cmd_predict,
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
