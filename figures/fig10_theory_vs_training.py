"""Figure 10 — theory vs training: GRPO on a real LM moves its certified answer marginal towards ν* of (E2).

Left: median (and p90 band) over held-out prompts of TV(ν*, ν_t) against the GRPO step t, one line per
objective; step 0 is the base model (TV(ν*, ν0)). Right: per-prompt TV(ν*, ν_T) after training against the
base's TV(ν*, ν0) — points below the diagonal moved towards the prediction. Dashed lines (left): the
ablation run with the other KL gradient estimator (the trainer's k3-in-the-loss), when the results hold one.

Data: by default (``quick`` or not) the committed ``results/theory_vs_training.json`` (written by
``python -m llm.theory``, ~10 min on one CPU thread); nothing is retrained. ``rerun=True``
(``dagsim figures --rerun-llm``) runs the pipeline on ``runs/llm/base`` instead: its full configuration, or
with ``quick`` its ``--quick`` one (3 prompts, 4 steps, sharpen + entropy; ~40 s) -- a smoke figure whose
numbers mean little.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dagsim.errors import DomainError
from figures.common import color, save, style

NAME = "fig10_theory_vs_training"
RESULTS = Path(__file__).resolve().parent.parent / "results" / "theory_vs_training.json"


def compute(quick: bool = False, seed: int = 0, rerun: bool = False) -> dict:
    if not rerun:
        if not RESULTS.is_file():
            raise DomainError(f"figure 10: {RESULTS} not found (a source checkout has it; or pass --rerun-llm to "
                              "rerun `python -m llm.theory` on runs/llm/base)")
        try:
            data = json.loads(RESULTS.read_text())
        except ValueError as exc:
            raise DomainError(f"figure 10: {RESULTS} is not valid JSON ({exc})") from None
        missing = {"objectives", "config"} - set(data)
        if missing:
            raise DomainError(f"figure 10: {RESULTS} lacks {sorted(missing)} (not a theory-vs-training result)")
        data["source"] = "results/theory_vs_training.json"  # relative to the repository
        return data
    import torch

    from llm.theory import QUICK, TheoryConfig, run

    torch.set_num_threads(1)
    data = run(TheoryConfig(**{**(QUICK if quick else {}), "seed": seed}))
    data["source"] = f"llm.theory {'quick ' if quick else ''}run"
    return data


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), gridspec_kw={"width_ratios": [1.3, 1]})
    names = list(data["objectives"])
    for i, name in enumerate(names):
        r = data["objectives"][name]
        series = r["summary"]["tv_vs_step"]
        steps = np.array([e["step"] for e in series], dtype=float)
        med = np.array([e["median"] for e in series])
        p90 = np.array([e["p90"] for e in series])
        c = color(name, i)
        ax.plot(steps, med, "o-", color=c, lw=2.0, label=f"{name} ({r['algorithm']})")
        ax.fill_between(steps, med, p90, color=c, alpha=0.15)
        t0 = [p["tv_star_0"] for p in r["prompts"]]
        tT = [p["tv_star_T"] for p in r["prompts"]]
        ax2.scatter(t0, tT, color=c, s=18, label=name)
    ablation = data.get("ablation")
    if ablation:  # the other KL gradient estimator, same objectives: dashed
        for i, name in enumerate(names):
            if name in ablation["objectives"]:
                series = ablation["objectives"][name]["summary"]["tv_vs_step"]
                ax.plot([e["step"] for e in series], [e["median"] for e in series], "s--", color=color(name, i),
                        lw=1.2, ms=3, label=f"{name}, KL = {ablation['config']['kl']}")
    ax.axhline(0.10, color="k", ls=":", lw=1.0, label="target median 0.10")
    ax.set_xlabel("GRPO step t (0 = base model)")
    ax.set_ylabel("TV(ν*, ν_t), certified marginals")
    ax.set_title("Distance to the predicted optimum: median over prompts (band: up to p90)", fontsize=9)
    ax.legend(loc="upper right", ncol=2, fontsize=7)
    hi = max(max(p["tv_star_0"] for r in data["objectives"].values() for p in r["prompts"]), 0.05) * 1.05
    ax2.plot([0, hi], [0, hi], color="k", lw=0.8, ls="--")
    ax2.set_xlim(0, hi)
    ax2.set_ylim(0, hi)
    ax2.set_xlabel("TV(ν*, ν0) — base model")
    ax2.set_ylabel("TV(ν*, ν_T) — after training")
    ax2.set_title("Per prompt: below the diagonal = moved towards ν*")
    ax2.legend(loc="upper left")
    c = data["config"]
    fig.suptitle("Does GRPO training reach the answer distribution the theory predicts? Distance to the optimum "
                 "ν* of (E2) (P3, docs/theory.md)\n"
                 f"β = {c['beta']}, τ = {c['tau']}, KL = {c['kl']}, G = {c['group_size']}, "
                 f"{c['n_prompts']} held-out prompts, lr {c['lr']}", fontsize=10)
    fig.tight_layout()
    return fig


def make(out_dir, quick: bool = False, seed: int = 0, rerun: bool = False) -> dict:
    """Write fig10_theory_vs_training.png/.pdf/.json to ``out_dir`` (``rerun``: retrain instead of results/)."""
    data = compute(quick, seed, rerun)
    return save(plot(data), out_dir, NAME, data)


if __name__ == "__main__":
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(make(args[0] if args else "figures/out", quick="--quick" in sys.argv, rerun="--rerun" in sys.argv))
