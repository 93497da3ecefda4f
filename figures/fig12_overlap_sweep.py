"""Figure 12 — where consensus stops helping: held-out accuracy of the tiny transformer after GRPO vs how
much the views' misreadings overlap (``--task-misconception-overlap``: 0 = each view misreads its own problems,
1 = both views misread the same problems the same way), one base model per level (issue 15 §2).

Left: mean sampled accuracy per algorithm (base, gt-grpo, ttrl, single-view sharpening, arithmetic and
geometric consensus) with 95 % bootstrap intervals over held-out problems. Middle: the consensus advantage
(consensus minus single-view sharpening / TTRL, paired bootstrap); T4 says the consensus can only correct
what the views disagree on, so it should fall to 0 at overlap 1. Right: accuracy on the misread prompts.

Data: the committed ``results/llm_overlap_sweep.json`` (``python -m llm.overlap_sweep``); nothing is retrained.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dagsim.errors import DomainError
from figures.common import color, save, script_main, spec_note, style

NAME = "fig12_overlap_sweep"
RESULTS = Path(__file__).resolve().parent.parent / "results" / "llm_overlap_sweep.json"
SHOWN = ("base", "gt-grpo", "ttrl", "coherence-grpo[single-view]", "coherence-grpo[arithmetic]",
         "coherence-grpo[geometric]")


def compute(quick: bool = False, seed: int = 0, results: str | Path | None = None) -> dict:
    path = Path(results) if results else RESULTS
    if not path.is_file():
        raise DomainError(f"figure 12: {path} not found (a source checkout has it; `python -m llm.overlap_sweep` "
                          "writes it from the sweep's experiment folders)")
    try:
        data = json.loads(path.read_text())
        levels = data["levels"]
        rows = {a: [e["rows"][a] for e in levels] for a in SHOWN}
    except (ValueError, KeyError) as exc:
        raise DomainError(f"figure 12: {path} is not an overlap-sweep result ({exc})") from None
    return {"source": path.name, "overlap": [e["overlap"] for e in levels], "rows": rows,
            "advantage": {k: [e["advantage"][k] for e in levels] for k in levels[0]["advantage"]}}


def _color(name: str, i: int) -> str:
    if "single-view" in name:
        return "#CC79A7"  # distinct from the consensus rows (figure 8 colours all coherence-grpo rows blue)
    if name.startswith("coherence-grpo[") and "single" not in name:
        return color("arithmetic" if "arithmetic" in name else "geometric", i)
    return color(name.split("[")[0], i)


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    x = np.asarray(data["overlap"], dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for i, (name, rows) in enumerate(data["rows"].items()):
        y = np.array([r["mean_accuracy"] for r in rows])
        lo = np.array([r["mean_accuracy_bootstrap"][0] for r in rows])
        hi = np.array([r["mean_accuracy_bootstrap"][1] for r in rows])
        ls = ":" if name == "base" else "--" if "single" in name or name == "ttrl" else "-"
        axes[0].errorbar(x + 0.01 * (i - 2.5), y, yerr=[y - lo, hi - y], color=_color(name, i), ls=ls, marker="o",
                         capsize=3, label=name)
        axes[2].plot(x, [r.get("mean_accuracy_misread_prompts", np.nan) for r in rows], color=_color(name, i),
                     ls=ls, marker="o", label=name)
    axes[0].set_ylabel("held-out mean sampled accuracy (95 % bootstrap over problems)")
    axes[0].set_title("Accuracy vs misreading overlap (one seed per level)")
    axes[0].legend(fontsize=7)
    for i, (key, items) in enumerate(data["advantage"].items()):
        y = np.array([d["mean_accuracy"] for d in items])
        lo = np.array([d["bootstrap"][0] for d in items])
        hi = np.array([d["bootstrap"][1] for d in items])
        axes[1].errorbar(x + 0.01 * (i - 1.5), y, yerr=[y - lo, hi - y], marker="o", capsize=3,
                         color=_color(key.split(" - ")[0], i), ls="-" if "single" in key else "--", label=key)
    axes[1].axhline(0.0, color="grey", lw=1)
    axes[1].set_ylabel("mean-accuracy difference (paired bootstrap 95 %)")
    axes[1].set_title("Consensus advantage (T4: should vanish at overlap 1)")
    axes[1].legend(fontsize=6)
    axes[2].set_ylabel("mean accuracy on misread prompts")
    axes[2].set_title("Misread prompts")
    for ax in axes:
        ax.set_xlabel("misreading overlap between the two views")
        ax.set_xticks(x)
    spec_note(fig)
    fig.tight_layout()
    return fig


def make(out_dir, quick: bool = False, seed: int = 0, results: str | Path | None = None) -> dict:
    data = compute(quick, seed, results)
    return save(plot(data), out_dir, NAME, data)


if __name__ == "__main__":
    script_main(make)
