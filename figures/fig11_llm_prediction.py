"""Figure 11 — the theory predicts the LLM outcome: predicted vs measured held-out accuracy (issue 15 §3).

Left: one marker per (algorithm, prompt class): x = the accuracy predicted from the base model alone
(ν*(correct) of the algorithm's game, dagsim, mean over the class's prompts), y = the measured mean sampled
accuracy of the trained models (mean over training seeds, bars: t 95 % interval over seeds). Circles = the
misread prompts, squares = the others; hollow markers at the same height = the finite-G flow's prediction
where it differs; the algorithms' markers are offset horizontally by ≤ 0.02 for legibility. Faint dots:
single prompts (measured mean over seeds). Right: the gap measurement — per algorithm, TV(ν0, ν*) against
TV(ν_T, ν*) of the certified marginals (first seed's model): below the diagonal = training moved towards ν*
but stopped short.

Data: the committed ``results/llm_prediction.json`` (``dagsim llm predict``); ``rerun=True`` runs the
prediction on ``runs/llm/experiment`` (its base and finished rows) instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagsim.errors import DomainError
from figures.common import save, style

#: Horizontal offset between algorithms' class markers (legibility only; the JSON has the exact values).
X_OFFSET = 0.007


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]

NAME = "fig11_llm_prediction"
RESULTS = Path(__file__).resolve().parent.parent / "results" / "llm_prediction.json"


def compute(quick: bool = False, seed: int = 0, rerun: bool = False) -> dict:
    if not rerun:
        if not RESULTS.is_file():
            raise DomainError(f"figure 11: {RESULTS} not found (a source checkout has it; or pass --rerun-llm)")
        try:
            data = json.loads(RESULTS.read_text())
        except ValueError as exc:
            raise DomainError(f"figure 11: {RESULTS} is not valid JSON ({exc})") from None
        if "rows" not in data or data.get("format") != "alft-llm-prediction/v1":
            raise DomainError(f"figure 11: {RESULTS} is not an llm prediction result (format/rows)")
        data["source"] = "results/llm_prediction.json"
        return _plotted(data)
    from llm.predict_outcome import PredictConfig, run

    data = run(PredictConfig(base_model="runs/llm/experiment/base", experiment="runs/llm/experiment",
                             out="runs/llm/prediction", progress=False))
    data["source"] = "dagsim llm predict on runs/llm/experiment"
    return _plotted(data)


#: Per-prompt fields the figure draws (the rest of the results file — ν0, ν*, labels — stays out of its JSON).
PLOTTED_PROMPT_KEYS = ("problem_id", "view", "misread", "predicted_accuracy", "predicted_accuracy_G",
                       "measured_accuracy")


def _plotted(data: dict) -> dict:
    """The results without what the figure does not draw (the per-prompt answer distributions)."""
    out = {k: v for k, v in data.items() if k != "prompts"}
    out["rows"] = {n: {**r, "prompts": [{k: p[k] for k in PLOTTED_PROMPT_KEYS if k in p} for p in r["prompts"]]}
                   for n, r in data["rows"].items()}
    return out


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    gap = data.get("gap") or {}
    fig, axes = plt.subplots(1, 2 if gap else 1, figsize=(11.5 if gap else 6.5, 5.0), squeeze=False,
                             gridspec_kw={"width_ratios": [1.4, 1] if gap else [1]})
    ax = axes[0][0]
    colors = _colors(len(data["rows"]))
    n_rows = len(data["rows"])
    for i, (name, row) in enumerate(data["rows"].items()):
        c = colors[i]
        dx = (i - (n_rows - 1) / 2) * X_OFFSET
        for rec in row["prompts"]:
            if rec.get("measured_accuracy") is not None:
                ax.scatter(rec["predicted_accuracy"], rec["measured_accuracy"], color=c, s=5, alpha=0.12, lw=0)
        for cname, marker in (("misread", "o"), ("other", "s")):
            s = row["summary"].get(cname)
            if s is None or "measured" not in s:
                continue
            m = s["measured"]
            ax.errorbar(s["predicted"] + dx, m["mean"], yerr=m["ci95"] or None, fmt=marker, color=c, ms=8,
                        capsize=3, mec="k", mew=0.6, label=f"{name}" if cname == "misread" else None)
            if "predicted_G" in s and abs(s["predicted_G"] - s["predicted"]) > 0.02:
                ax.scatter(s["predicted_G"] + dx, m["mean"], marker=marker, s=64, facecolors="none", edgecolors=c,
                           lw=1.4)
                ax.plot([s["predicted"] + dx, s["predicted_G"] + dx], [m["mean"], m["mean"]], color=c, lw=0.8,
                        ls=":")
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
    ax.set_xlim(-0.03, 1.06)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("predicted from the base model: ν*(correct)  (hollow: finite-G flow)")
    ax.set_ylabel("measured held-out accuracy (mean over seeds, 95 % CI)")
    ax.set_title("● misread prompts   ■ other prompts   (faint: single prompts)", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    if gap:
        ax2 = axes[0][1]
        hi = 0.05
        index = {n: i for i, n in enumerate(data["rows"])}
        for name, e in gap.items():
            c = colors[index.get(name, 0)]
            for it in e["prompts"]:
                ax2.scatter(it["tv_0_star"], it["tv_T_star"], color=c, s=14, marker="o" if it["misread"] else "s",
                            alpha=0.7, label=name if it is e["prompts"][0] else None)
                hi = max(hi, it["tv_0_star"], it["tv_T_star"])
        hi *= 1.05
        ax2.plot([0, hi], [0, hi], color="k", lw=0.8, ls="--")
        ax2.set_xlim(0, hi)
        ax2.set_ylim(0, hi)
        ax2.set_xlabel("TV(ν0, ν*) — base model")
        ax2.set_ylabel("TV(ν_T, ν*) — trained model (certified)")
        ax2.set_title("Below the diagonal: moved towards ν*, stopped short", fontsize=9)
        ax2.legend(loc="upper left", fontsize=7)
    fig.suptitle("Does the game's optimum, computed before training, predict the trained LLM's accuracy? "
                 f"({data['n_prompts']} held-out prompts, docs/theory.md §2–6)", fontsize=10)
    fig.tight_layout()
    return fig


def make(out_dir, quick: bool = False, seed: int = 0, rerun: bool = False) -> dict:
    """Write fig11_llm_prediction.png/.pdf/.json to ``out_dir`` (``rerun``: recompute instead of results/)."""
    data = compute(quick, seed, rerun)
    return save(plot(data), out_dir, NAME, data)


if __name__ == "__main__":
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(make(args[0] if args else "figures/out", rerun="--rerun" in sys.argv))
