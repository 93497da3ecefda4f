"""The end-to-end experiment: pretrain the base model, run every algorithm at matched compute, compare.

Matched compute: every algorithm runs the same number of steps with the same problems per step, views,
group size G, completion length and learning rate, from the same base checkpoint and seed. Outputs in
``out/``: ``results.json`` (one row per algorithm plus the base model), ``results.md`` (a table),
``accuracy.png`` (held-out metrics per algorithm) and ``curves.png`` (training accuracy/entropy per step).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from dagsim.errors import ValidationError

#: (row name, TrainConfig overrides). Each row is one algorithm at matched compute.
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("gt-grpo", {"algorithm": "gt-grpo"}),
    ("ttrl", {"algorithm": "ttrl"}),
    ("empo", {"algorithm": "empo"}),
    ("coherence-grpo[single-view]", {"algorithm": "coherence-grpo", "consensus": "none"}),
    (
        "coherence-grpo[single-view,raw-minimax]",
        {"algorithm": "coherence-grpo", "consensus": "none", "estimator": "minimax"},
    ),
    (
        "coherence-grpo[arithmetic]",
        {"algorithm": "coherence-grpo", "consensus": "arithmetic", "estimator": "plugin"},
    ),
    ("coherence-grpo[geometric]", {"algorithm": "coherence-grpo", "consensus": "geometric"}),
    ("diversity-grpo", {"algorithm": "diversity-grpo", "tau": 0.1}),
    ("pairwise-coherence-grpo", {"algorithm": "pairwise-coherence-grpo"}),
    (
        "constrained-grpo",
        {
            "algorithm": "constrained-grpo",
            "base_objective": "sharpen",
            "forbidden": "odd",
            "constraint_cap": 0.3,
        },
    ),
)
QUICK_VARIANTS = ("gt-grpo", "ttrl", "coherence-grpo[single-view]", "coherence-grpo[geometric]")
ROW_KEYS = (
    "algorithm",
    "greedy_accuracy",
    "mean_accuracy",
    "maj_at_k",
    "pass_at_k",
    "answer_entropy",
    "steps",
    "seconds",
)


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole comparison (``--quick``: a smaller version that finishes in a few minutes)."""

    out: str = "runs/llm/experiment"
    """Output directory (base model, one run directory per algorithm, results, plots)."""
    quick: bool = False
    """Small version: short pretraining, 4 algorithms, few steps, fewer evaluation problems."""
    base_model: str = ""
    """Use this checkpoint as the base model instead of pretraining one."""
    algorithms: str = ""
    """Comma-separated subset of the row names (empty = all, or the quick subset with --quick)."""
    seed: int = 0
    """Seed of pretraining, training and evaluation."""
    pretrain_steps: int = 0
    """SFT steps (0 = 1500, or 250 with --quick)."""
    steps: int = 0
    """GRPO steps per algorithm (0 = 40, or 8 with --quick)."""
    prompts_per_step: int = 8
    """Problems per step (each with all its views)."""
    group_size: int = 8
    """G."""
    lr: float = 1e-4
    """AdamW learning rate of every algorithm."""
    eval_k: int = 8
    """k of maj@k / pass@k (samples per held-out prompt)."""
    eval_max_problems: int = 0
    """Held-out problems evaluated (0 = all, or 30 with --quick)."""
    progress: bool = True
    """Progress bars."""

    def resolved(self) -> ExperimentConfig:
        q = self.quick
        return dataclasses.replace(
            self,
            pretrain_steps=self.pretrain_steps or (250 if q else 1500),
            steps=self.steps or (8 if q else 40),
            eval_max_problems=self.eval_max_problems or (30 if q else 0),
        )

    def variants(self) -> list[tuple[str, dict]]:
        names = [n.strip() for n in self.algorithms.split(",") if n.strip()] or (
            list(QUICK_VARIANTS) if self.quick else [n for n, _ in VARIANTS]
        )
        table = dict(VARIANTS)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise ValidationError(f"experiment.algorithms: unknown {unknown}; choose from {list(table)}")
        return [(n, table[n]) for n in names]


def _row(name: str, metrics: dict, steps: int, seconds: float) -> dict:
    row = {"algorithm": name, **{k: metrics[k] for k in ROW_KEYS[1:6]}, "steps": steps, "seconds": seconds}
    row.update({k: metrics[k] for k in ("no_answer_rate", "cross_view_agreement") if k in metrics})
    return row


def markdown_table(rows: list[dict], k: int) -> str:
    head = f"| algorithm | greedy acc | mean acc | maj@{k} | pass@{k} | answer entropy | steps | seconds |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['algorithm']} | {r['greedy_accuracy']:.3f} | {r['mean_accuracy']:.3f} | "
            f"{r['maj_at_k']:.3f} | "
            f"{r['pass_at_k']:.3f} | {r['answer_entropy']:.3f} | {r['steps']} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def plot_results(rows: list[dict], histories: dict[str, list[dict]], out: Path, k: int) -> None:
    """``accuracy.png`` (held-out bars) and ``curves.png`` (training curves), written atomically."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["algorithm"] for r in rows]
    keys = [
        ("mean_accuracy", "mean acc"),
        ("maj_at_k", f"maj@{k}"),
        ("pass_at_k", f"pass@{k}"),
        ("greedy_accuracy", "greedy"),
    ]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(rows)), 4.5))
    for i, (key, label) in enumerate(keys):
        ax.bar(x + (i - 1.5) * 0.2, [r[key] for r in rows], width=0.2, label=label)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out / ".accuracy.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "accuracy.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, hist in histories.items():
        steps = [h["step"] for h in hist]
        if hist and "train_accuracy" in hist[0]:
            axes[0].plot(steps, [h["train_accuracy"] for h in hist], label=name)
        axes[1].plot(steps, [h["answer_entropy"] for h in hist], label=name)
    axes[0].set_title("training-sample accuracy")
    axes[1].set_title("group answer entropy (nats)")
    for a in axes:
        a.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    tmp = out / ".curves.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "curves.png")


def run_experiment(config: ExperimentConfig) -> dict:
    """Run the experiment described by ``config``; returns ``{"rows", "table"}`` and writes the outputs."""
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import load_model
    from llm.pretrain import PretrainConfig, pretrain
    from llm.tasks import ArithmeticTaskConfig, split_problems
    from llm.trainer import TrainConfig, train

    config = config.resolved()
    variants = config.variants()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    t_total = time.perf_counter()
    if config.base_model:
        base_dir = Path(config.base_model)
        pretrain_seconds = 0.0
    else:
        base_dir = out / "base"
        summary = pretrain(
            PretrainConfig(
                out=str(base_dir), steps=config.pretrain_steps, seed=config.seed, progress=config.progress
            )
        )
        pretrain_seconds = summary["seconds"]
    task_file = base_dir / "task.json"
    task = (
        ArithmeticTaskConfig(**json.loads(task_file.read_text()))
        if task_file.is_file()
        else ArithmeticTaskConfig()
    )
    held_out = split_problems(task)[1]
    eval_cfg = EvalConfig(k=config.eval_k, max_problems=config.eval_max_problems, seed=config.seed + 1)

    model, tok = load_model(base_dir)
    rows = [_row("base", evaluate(model, tok, held_out, eval_cfg), 0, pretrain_seconds)]
    histories: dict[str, list[dict]] = {}
    for name, overrides in variants:
        run_dir = out / "runs" / name.replace("[", "-").replace("]", "")
        train_cfg = TrainConfig(
            model=str(base_dir),
            out=str(run_dir),
            steps=config.steps,
            prompts_per_step=config.prompts_per_step,
            group_size=config.group_size,
            lr=config.lr,
            seed=config.seed,
            progress=config.progress,
            **overrides,
        )
        result = train(train_cfg)
        if result["interrupted"]:
            raise KeyboardInterrupt
        histories[name] = result["history"]
        metrics = evaluate(result["model"], result["tokenizer"], held_out, eval_cfg)
        row = _row(name, metrics, result["steps"], result["seconds"])
        tail = result["history"][-5:]
        for key in ("constraint_value", "multiplier", "train_accuracy", "pseudo_label_accuracy"):
            if tail and key in tail[-1]:
                row[f"train_{key}_last5" if not key.startswith("train") else f"{key}_last5"] = float(
                    sum(h[key] for h in tail) / len(tail)
                )
        rows.append(row)
        _write(out, rows, config, time.perf_counter() - t_total)
    table = markdown_table(rows, config.eval_k)
    _write(out, rows, config, time.perf_counter() - t_total)
    plot_results(rows, histories, out, config.eval_k)
    return {"rows": rows, "table": table}


def _write(out: Path, rows: list[dict], config: ExperimentConfig, seconds: float) -> None:
    from llm.model import atomic_write_text

    payload = {"config": dataclasses.asdict(config), "total_seconds": seconds, "rows": rows}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    atomic_write_text(out / "results.md", markdown_table(rows, config.eval_k) + "\n")
