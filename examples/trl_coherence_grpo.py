"""Answer-level GRPO with ``trl.GRPOTrainer``: any algorithm's rewards through ``llm.trl_rewards``, G from the config.

One process (CPU)::

    python examples/trl_coherence_grpo.py --model runs/llm/base --out runs/trl --cpu

Two CPU processes (``accelerate launch --cpu`` starts only one; this line starts two, gloo backend)::

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/trl_coherence_grpo.py --model runs/llm/base --out runs/trl --cpu

N GPUs on one machine (NCCL)::

    accelerate launch --multi_gpu --num_processes N --num_machines 1 --mixed_precision bf16 --dynamo_backend no \\
        examples/trl_coherence_grpo.py --model runs/llm/base --out runs/trl --bf16

The data: the embedded multi-view arithmetic task of the checkpoint (``MODEL_DIR/task.json``; every view of a
problem a row, ordered by problem, with ``problem_id`` / ``n_views`` columns) or ``--data file.jsonl``
(GSM8K-style ``{"question", "answer"}`` lines, one view each). The rewards are computed on whole groups and
whole problems whatever the per-process split (the bridge gathers the answer strings across processes), so
``--per-device-batch`` need not be a multiple of G. Multi-view consensus needs ``shuffle_dataset=False`` (set
here) and a generation batch (per-device batch x processes) that is a multiple of n_views x G.

``--pretrain-steps N`` without ``--model`` first pretrains a small base model into ``OUT/base`` (on the main
process; the others wait). Writes ``OUT/summary.json`` (steps, steps/s after the first step, processes, the
last logged ``alft/*`` metrics) and the trained model to ``OUT/final``. Bad input: a message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(REPO))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="", help="local causal LM directory (dagsim llm pretrain writes one)")
    p.add_argument("--pretrain-steps", type=int, default=0, help="without --model: pretrain a base this long")
    p.add_argument("--data", default="", help="JSONL file or reasoning-gym:NAME?... instead of the embedded task")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--algorithm", default="coherence-grpo", help="gt-grpo, ttrl, empo, coherence-grpo, ...")
    p.add_argument("--consensus", default="geometric", help="coherence-grpo: none, arithmetic, geometric, majority")
    p.add_argument("--tau", type=float, default=1.0, help="objective weight τ")
    p.add_argument("--estimator", default="aqp", help="log estimator (T12 AQP table)")
    p.add_argument(
        "--baseline", default="mean",
        help="mean (TRL's), rloo (needs --scale-rewards none) or doubly-loo (T11b, through ALFTGRPOTrainer)",
    )  # fmt: skip
    p.add_argument("--scale-rewards", default="none", help="TRL's scale_rewards: none, group, batch")
    p.add_argument("--num-generations", type=int, default=4, help="G (num_generations, also for evaluation)")
    p.add_argument("--per-device-batch", type=int, default=8, help="per_device_train_batch_size (rows)")
    p.add_argument("--steps", type=int, default=4, help="optimizer steps")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    p.add_argument("--max-completion-length", type=int, default=40, help="completion tokens")
    p.add_argument("--problems", type=int, default=0, help="use the first N problems (0: all)")
    p.add_argument("--strict", action="store_true", help="error if a process holds a partial group or problem")
    p.add_argument("--cpu", action="store_true", help="GRPOConfig(use_cpu=True)")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPUs)")
    p.add_argument("--seed", type=int, default=0, help="seed")
    return p.parse_args(argv)


def build_dataset(a, model_dir: str, multi_view: bool):
    """Rows ``prompt`` / ``answer`` / ``problem_id`` / ``n_views``: every view a row, views of a problem adjacent."""
    from datasets import Dataset

    from dagsim.errors import ValidationError
    from llm.tasks import load_data, split_problems, task_config_of

    problems = load_data(a.data) if a.data else split_problems(task_config_of(model_dir))[0]
    if a.problems:
        problems = problems[: a.problems]
    if multi_view and min(p.n_views for p in problems) < 2:
        raise ValidationError(
            f"{a.algorithm} with consensus {a.consensus!r} needs problems with >= 2 views; this data has single-view "
            "problems (--data): use --consensus none or a label-based/single-view algorithm"
        )
    rows = [
        {"prompt": v, "answer": p.answer or "", "problem_id": p.problem_id, "n_views": p.n_views}
        for p in problems
        for v in (p.views if multi_view else p.views[:1])
    ]
    return Dataset.from_list(rows)


def grpo_config(GRPOConfig, a: argparse.Namespace, out: Path, multi_view: bool):
    """The run's GRPOConfig (β = 0; multi-view: shuffle_dataset=False, so a problem's views stay together)."""
    return GRPOConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=a.per_device_batch,
        num_generations=a.num_generations,
        max_completion_length=a.max_completion_length,
        max_steps=a.steps,
        learning_rate=a.lr,
        beta=0.0,
        scale_rewards=a.scale_rewards,
        shuffle_dataset=not multi_view,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=a.cpu,
        bf16=a.bf16,
        seed=a.seed,
        disable_tqdm=True,
        temperature=1.0,
        top_k=0,
    )


def run(a: argparse.Namespace) -> dict:
    import torch
    from accelerate import PartialState
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from dagsim.errors import ValidationError
    from llm.model import atomic_write_text, load_model
    from llm.rewards import get_algorithm
    from llm.trl_rewards import make_reward_funcs

    out = Path(a.out)
    spec = get_algorithm(a.algorithm)
    multi_view = spec.needs_views or (a.algorithm == "coherence-grpo" and a.consensus != "none")
    for name in ("num_generations", "per_device_batch", "steps", "max_completion_length"):
        if getattr(a, name) < 1:
            raise ValidationError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    try:
        config = grpo_config(GRPOConfig, a, out, multi_view)
    except ValueError as exc:  # TRL's own checks of the batch layout
        raise ValidationError(f"GRPOConfig: {exc}") from None
    state = PartialState()
    model_dir = a.model
    if not model_dir:
        if a.pretrain_steps < 1:
            raise ValidationError("pass --model DIR (a local causal LM) or --pretrain-steps N to build one")
        model_dir = str(out / "base")
        with state.main_process_first():
            if not (Path(model_dir) / "config.json").is_file():
                from llm.pretrain import PretrainConfig, pretrain

                pretrain(PretrainConfig(out=model_dir, steps=a.pretrain_steps, seed=a.seed, progress=False))
    if not (Path(model_dir) / "config.json").is_file():
        raise ValidationError(f"--model: no checkpoint (config.json) in {model_dir}")
    model, tok = load_model(model_dir)
    data = build_dataset(a, model_dir, multi_view)
    funcs = make_reward_funcs(
        config, a.algorithm, dataset=data, tau=a.tau, estimator=a.estimator, consensus=a.consensus,
        baseline=a.baseline, strict=a.strict,
    )  # fmt: skip
    stamps: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    from llm.trl_rewards import ALFTGRPOTrainer  # GRPOTrainer + doubly-LOO advantages (T11b)

    trainer_cls = ALFTGRPOTrainer if a.baseline == "doubly-loo" else GRPOTrainer
    trainer = trainer_cls(
        model=model, reward_funcs=funcs, args=config, train_dataset=data, processing_class=tok, callbacks=[Timer()]
    )
    trainer.train()
    metrics = [h for h in trainer.state.log_history if "alft/answer_entropy" in h]
    last = metrics[-1] if metrics else {}
    summary = {
        "algorithm": a.algorithm,
        "consensus": a.consensus if a.algorithm == "coherence-grpo" else "none",
        "num_processes": state.num_processes,
        "num_generations": config.num_generations,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "generation_batch_size": config.generation_batch_size,
        "steps": trainer.state.global_step,
        "steps_per_second": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else None,
        "mean_completion_length": sum(h["completions/mean_length"] for h in metrics) / max(1, len(metrics)),
        "torch_threads_per_process": torch.get_num_threads(),
        "last_metrics": {k: v for k, v in last.items() if k.startswith(("alft/", "reward"))},
    }
    trainer.save_model(str(out / "final"))
    if state.is_main_process:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
    return summary


def main(argv=None) -> int:
    from dagsim.errors import ValidationError

    a = parse_args(argv)
    try:
        run(a)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
