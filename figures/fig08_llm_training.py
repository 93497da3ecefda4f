"""Figure 8 — real fine-tuning of a tiny transformer on the embedded arithmetic task: held-out mean
accuracy, maj@k and pass@k of every algorithm, and the training curves (accuracy of the sampled
completions and the group's answer entropy per step), where a self-reward that collapses shows up as
entropy falling without accuracy rising.

Reads the outputs of ``dagsim llm experiment`` (``results.json`` and each run's ``metrics.jsonl``) from
``runs/llm/experiment`` (or ``$ALFT_LLM_EXPERIMENT``); it does not train anything itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dagsim.errors import DomainError
from figures.common import color, save, style

NAME = "fig08_llm_training"
DEFAULT_EXPERIMENT = "runs/llm/experiment"


def _run_dir(exp: Path, name: str) -> Path:
    from llm.experiment import run_dir

    return run_dir(exp, name)


def compute(quick: bool = False, seed: int = 0, experiment: str | os.PathLike | None = None) -> dict:
    exp = Path(experiment or os.environ.get("ALFT_LLM_EXPERIMENT", DEFAULT_EXPERIMENT))
    results = exp / "results.json"
    if not results.is_file():
        raise DomainError(f"figure 8 needs an LLM experiment: {results} not found "
                          "(run `dagsim llm experiment --out runs/llm/experiment` first)")
    payload = json.loads(results.read_text())
    rows = payload["rows"]
    curves = {}
    for row in rows:
        if row["algorithm"] == "base":
            continue
        metrics = _run_dir(exp, row["algorithm"]) / "metrics.jsonl"
        if metrics.is_file():
            hist = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            curves[row["algorithm"]] = {
                "step": [h["step"] for h in hist],
                "train_accuracy": [h.get("train_accuracy", float("nan")) for h in hist],
                "answer_entropy": [h["answer_entropy"] for h in hist],
            }
    k = payload.get("config", {}).get("eval_k", 8)
    return {"experiment": str(exp), "k": k, "rows": rows, "curves": curves}


def _base_color(name: str, i: int) -> str:
    key = name.split("[")[0]
    if key == "coherence-grpo" and "single" not in name:
        key = "coherence-grpo (consensus)"
    return color(key, i)


def _smooth(y, w: int = 5):
    y = np.asarray(y, dtype=float)
    if y.size < w:
        return y
    return np.convolve(y, np.ones(w) / w, mode="valid")


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    rows, k = data["rows"], data["k"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    ax = axes[0]
    names = [r["algorithm"] for r in rows]
    x = np.arange(len(rows))
    for i, (key, label, hatch) in enumerate((("mean_accuracy", "mean sampled acc", ""),
                                              ("maj_at_k", f"maj@{k}", "//"), ("pass_at_k", f"pass@{k}", ".."))):
        ax.bar(x + (i - 1) * 0.27, [r[key] for r in rows], width=0.27, label=label, hatch=hatch,
               color=[_base_color(n, j) for j, n in enumerate(names)], alpha=[1.0, 0.6, 0.35][i],
               edgecolor="white")
    base = next(r for r in rows if r["algorithm"] == "base")
    ax.axhline(base["mean_accuracy"], color="grey", ls="--", lw=1, label="base mean acc")
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"held-out accuracy ({len(rows)} models)")
    best = max((r for r in rows if r["algorithm"] != "base"), key=lambda r: r["mean_accuracy"], default=base)
    ax.set_title(f"Held-out: base {base['mean_accuracy']:.2f} → up to {best['mean_accuracy']:.2f} mean accuracy")
    ax.legend(fontsize=7, loc="lower right")
    for i, (name, c) in enumerate(data["curves"].items()):
        col = _base_color(name, i)
        ls = "-" if "[" not in name or "single" in name else "--"
        s = np.asarray(c["step"], float)
        acc, ent = _smooth(c["train_accuracy"]), _smooth(c["answer_entropy"])
        axes[1].plot(s[len(s) - len(acc):], acc, color=col, ls=ls, lw=1.5, label=name)
        axes[2].plot(s[len(s) - len(ent):], ent, color=col, ls=ls, lw=1.5, label=name)
    axes[1].set_xlabel("GRPO step")
    axes[1].set_ylabel("sampled accuracy, training prompts")
    axes[1].set_title("Training accuracy (5-step moving average)")
    axes[2].set_xlabel("GRPO step")
    axes[2].set_ylabel("answer entropy of a group, nats")
    axes[2].set_title("Answer entropy: self-rewards sharpen the answer distribution")
    axes[2].legend(fontsize=6, ncol=1, loc="upper right")
    fig.suptitle("Answer-level GRPO on a 0.9M-parameter Llama-style model (embedded arithmetic task, CPU)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def make(out_dir, quick: bool = False, seed: int = 0, experiment: str | os.PathLike | None = None) -> dict:
    data = compute(quick, seed, experiment)
    return save(plot(data), out_dir, NAME, data)


if __name__ == "__main__":
    import sys

    print(make(sys.argv[1] if len(sys.argv) > 1 else "figures/out"))
