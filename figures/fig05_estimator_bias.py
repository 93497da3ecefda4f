"""Figure 5 — the p-weighted bias of finite-group estimators of log p (T8).

A sample's leave-one-out count is C ~ Binomial(G−1, p); an estimator is a table f(C). Its p-weighted
bias b(p) = p·(E f(C) − log p) is the bias of the log-reward term as it enters the policy gradient.
Left: worst case sup_p |b(p)| versus G, log-log, with least-squares slopes: plug-in log((C+1)/G) and LOO
log(max(C, ½)/(G−1)) decay like 1/G, the minimax LP table like 1/G² (Ditzian–Totik), the monotone
minimax table like 1/G. Right: the curves b(p) over p ∈ [0, 1] at G = 8.
"""

from __future__ import annotations

import numpy as np

from dagsim.estimators import weighted_bias, worst_case_bias
from figures.common import color, figure_maker, script_main, style

NAME = "fig05_estimator_bias"

ESTIMATORS = ("plugin", "loo", "minimax", "minimax_monotone")
LABELS = {"plugin": "plug-in log((C+1)/G)", "loo": "LOO log(max(C,½)/(G−1))", "minimax": "minimax LP table",
          "minimax_monotone": "monotone minimax table"}
#: The monotone LP's cost grows fast with G (≈ 8 s at G = 32); the quick run stops it at G = 16.
QUICK_MONOTONE_MAX_G = 16
#: Group size of the right panel.
CURVE_G = 8


def _estimator_color(kind: str) -> str:
    return color(kind, 4) if kind != "minimax_monotone" else color("monotone", 5)


def compute(quick: bool = False, seed: int = 0) -> dict:
    """Deterministic (``seed`` unused): worst cases by the verified LP / fine-grid search of ``worst_case_bias``."""
    del seed
    groups = [4, 8, 16, 32] if quick else [4, 6, 8, 12, 16, 24, 32, 48, 64]
    worst, slopes = {}, {}
    for kind in ESTIMATORS:
        gs = [G for G in groups if not (quick and kind == "minimax_monotone" and G > QUICK_MONOTONE_MAX_G)]
        vals = [worst_case_bias(kind, G) for G in gs]
        worst[kind] = {"G": gs, "worst_case": vals}
        slopes[kind] = float(np.polyfit(np.log(gs), np.log(vals), 1)[0])  # fitted exponent of G
    p = np.concatenate([np.linspace(0.0, 1.0, 201 if quick else 801), np.geomspace(1e-4, 1e-2, 40)])
    p = np.unique(p)
    curves = {kind: weighted_bias(kind, CURVE_G, p) for kind in ESTIMATORS}
    return {"worst_case": worst, "slopes": slopes, "curve_G": CURVE_G, "p": p, "curves": curves}


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    for kind, d in data["worst_case"].items():
        G = np.asarray(d["G"], float)
        v = np.asarray(d["worst_case"], float)
        c = _estimator_color(kind)
        ax.loglog(G, v, "o-", color=c, lw=1.8, ms=4,
                  label=f"{LABELS[kind]}: slope {data['slopes'][kind]:.2f}")
    all_g = np.concatenate([np.asarray(d["G"], float) for d in data["worst_case"].values()])
    g = np.array([all_g.min(), all_g.max()])
    ax.loglog(g, 0.5 / g, color="grey", ls=":", lw=1, label="reference 0.5/G and 0.32/G²")
    ax.loglog(g, 0.32 / g**2, color="grey", ls=":", lw=1)
    ax.set_xticks(np.unique(all_g))
    ax.set_xticklabels([f"{int(x)}" for x in np.unique(all_g)])
    ax.minorticks_off()
    ax.set_xlabel("group size G (samples per prompt)")
    ax.set_ylabel("worst-case p-weighted bias sup_p |p(E f(C) − log p)|, nats")
    s = data["slopes"]
    ax.set_title(f"Plug-in bias decays like 1/G (slope {s['plugin']:.2f}; LOO {s['loo']:.2f}, approaching it),\n"
                 f"the minimax table's like 1/G² (slope {s['minimax']:.2f})")
    ax.legend(loc="lower left", fontsize=7.5)
    p = np.asarray(data["p"], float)
    for kind, b in data["curves"].items():
        ax2.plot(p, b, color=_estimator_color(kind), lw=1.8, label=LABELS[kind])
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xlabel("answer probability p = ν(z)")
    ax2.set_ylabel("p-weighted bias p·(E f(C) − log p), nats")
    ax2.set_xlim(0, 1)
    G = data["curve_G"]
    worst = {k: float(np.max(np.abs(b))) for k, b in data["curves"].items()}
    ax2.set_title(f"G = {G}: plug-in and LOO biases reach {worst['plugin']:.3f} and {worst['loo']:.3f} nats;\n"
                  f"the minimax table equioscillates at ±{worst['minimax']:.4f}")
    ax2.legend(loc="lower right", fontsize=7.5)
    fig.tight_layout()
    return fig


make = figure_maker(compute, plot, NAME)

if __name__ == "__main__":
    script_main(make)
