"""Benchmark: our GRPO trainer versus ``trl.GRPOTrainer`` on the same tiny model, task, G and batch.

Both run single-view coherence-grpo (the same dagsim rewards, via llm.trl_rewards for TRL), β = 0, one
update per generation batch, the same completion length limit, learning rate and dapo normalization. Reports
steps/s of each (first step excluded as warm-up), their ratio (goal >= 1.0), and the fraction of our step
time spent computing rewards and advantages (goal <= 2 %).

    python bench/bench_llm_trainer.py [--model DIR] [--steps 6] [--prompts 8] [--group-size 8] [--out FILE]

Without ``--model`` a small base model is pretrained first (a few hundred SFT steps, not timed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import base_model, emit  # bench/ is on sys.path when a benchmark runs as a script


def bench_ours(model_dir: str, out: str, steps: int, prompts: int, group_size: int, max_new: int, lr: float):
    from llm.trainer import TrainConfig, train

    cfg = TrainConfig(
        algorithm="coherence-grpo",
        consensus="none",
        model=model_dir,
        out=out,
        steps=steps + 1,
        prompts_per_step=prompts,
        group_size=group_size,
        views=1,
        max_new_tokens=max_new,
        lr=lr,
        beta=0.0,
        loss_type="dapo",
        progress=False,
    )
    hist = train(cfg)["history"][1:]  # drop the warm-up step
    step_s = sum(h["step_seconds"] for h in hist)
    reward_s = sum(h["reward_seconds"] for h in hist)
    return {
        "steps_per_second": len(hist) / step_s,
        "reward_fraction": reward_s / step_s,
        "mean_completion_length": sum(h["completion_length"] for h in hist) / len(hist),
    }


def bench_trl(model_dir: str, out: str, steps: int, prompts: int, group_size: int, max_new: int, lr: float):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llm.model import load_model
    from llm.tasks import split_problems, task_config_of
    from llm.trl_rewards import make_reward_func

    model, tok = load_model(model_dir)
    train_problems, _ = split_problems(task_config_of(model_dir))
    data = Dataset.from_list([{"prompt": p.views[0]} for p in train_problems])
    stamps: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    args = GRPOConfig(
        output_dir=out,
        per_device_train_batch_size=prompts * group_size,
        num_generations=group_size,
        max_completion_length=max_new,
        max_steps=steps + 1,
        learning_rate=lr,
        beta=0.0,
        loss_type="dapo",
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        disable_tqdm=True,
        temperature=1.0,
        top_k=0,
        seed=0,
    )
    reward = make_reward_func("coherence-grpo", group_size=group_size, consensus="none")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=data,
        processing_class=tok,
        callbacks=[Timer()],
    )
    trainer.train()
    elapsed = stamps[-1] - stamps[0]
    return {"steps_per_second": (len(stamps) - 1) / elapsed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="base checkpoint (default: pretrain a small one)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per trainer")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--group-size", type=int, default=8, help="G")
    parser.add_argument("--max-new-tokens", type=int, default=40, help="completion length limit")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate of both")
    parser.add_argument("--out", default="", help="write the result JSON here")
    a = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = base_model(a.model, tmp, steps=300)
        ours = bench_ours(
            model_dir, str(Path(tmp) / "ours"), a.steps, a.prompts, a.group_size, a.max_new_tokens, a.lr
        )
        theirs = bench_trl(
            model_dir, str(Path(tmp) / "trl"), a.steps, a.prompts, a.group_size, a.max_new_tokens, a.lr
        )
    from llm.model import runtime_info

    result = {
        **runtime_info(),
        "prompts": a.prompts,
        "group_size": a.group_size,
        "steps": a.steps,
        "max_new_tokens": a.max_new_tokens,
        "ours_steps_per_second": ours["steps_per_second"],
        "trl_steps_per_second": theirs["steps_per_second"],
        "speed_ratio_ours_over_trl": ours["steps_per_second"] / theirs["steps_per_second"],
        "reward_fraction_of_step": ours["reward_fraction"],
        "mean_completion_length": ours["mean_completion_length"],
    }
    emit(result, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
