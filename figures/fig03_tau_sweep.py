"""Figure 3 — how the answer-level optimum moves with τ: diversity objectives spread the answer
distribution, sharpening concentrates it, and sharpening collapses to a vertex once τ ≥ β (T2).

Reference: the embedded arithmetic DAG's exact marginal ν0; β = 1; optimum of (E2) from the exact
solvers (closed forms for entropy/sharpen, the dual solver for Gini).
"""

from __future__ import annotations

import numpy as np

from dagsim.divergences import entropy
from dagsim.generators import default_arithmetic_dag
from dagsim.marginals import answer_marginal
from dagsim.objectives import make_objective
from dagsim.solvers import solve_answer_level
from figures.common import color, figure_maker, script_main, spec_note, style

NAME = "fig03_tau_sweep"


def compute(quick: bool = False, seed: int = 0) -> dict:
    dag = default_arithmetic_dag()
    nu0 = answer_marginal(dag)
    beta = 1.0
    taus = np.linspace(0.0, 3.0, 31 if quick else 121)
    out = {"answers": list(dag.answers), "nu0": nu0, "beta": beta, "tau": taus, "objectives": {}}
    for name in ("entropy", "gini", "sharpen"):
        rows, ents, methods = [], [], []
        for tau in taus:
            obj = make_objective(name, n_answers=dag.n_answers, tau=float(tau))
            sol = solve_answer_level(obj, nu0, beta)
            rows.append(np.asarray(sol.nu))
            ents.append(entropy(np.asarray(sol.nu)))
            methods.append(sol.status)
        out["objectives"][name] = {"distribution": np.array(rows), "entropy": ents, "status": methods}
    return out


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    taus = np.asarray(data["tau"], float)
    beta = data["beta"]
    answers = data["answers"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    ax = axes[0]
    for i, (name, d) in enumerate(data["objectives"].items()):
        ax.plot(taus, d["entropy"], color=color(name, i), lw=2, label=name)
    ax.axhline(entropy(np.asarray(data["nu0"])), color="grey", ls="--", lw=1, label="reference ν0")
    ax.axvline(beta, color="k", ls=":", lw=1)
    ax.text(beta, ax.get_ylim()[1] * 0.9, " τ = β", fontsize=8)
    ax.set_xlabel("objective weight τ")
    ax.set_ylabel("entropy of the optimum H(ν*), nats")
    ax.set_title("Diversity spreads, sharpening concentrates")
    ax.legend()
    correct = answers.index("133") if "133" in answers else int(np.argmax(data["nu0"]))
    for ax, name in zip(axes[1:], ("entropy", "sharpen")):
        dist = np.asarray(data["objectives"][name]["distribution"], float)
        bottom = np.zeros(len(taus))
        cmap = plt.get_cmap("cividis")
        for k, label in enumerate(answers):
            c = "#D55E00" if k == correct else cmap(0.15 + 0.7 * k / max(len(answers) - 1, 1))
            ax.fill_between(taus, bottom, bottom + dist[:, k], color=c, alpha=0.9 if k == correct else 0.55,
                            lw=0, label=label if k in (correct, 0, len(answers) - 1) else None)
            bottom += dist[:, k]
        ax.axvline(beta, color="k", ls=":", lw=1)
        ax.set_xlim(taus[0], taus[-1])
        ax.set_ylim(0, 1)
        ax.set_xlabel("objective weight τ")
        ax.set_ylabel("ν*(z) (stacked)")
        title = ("entropy: mass flows to the near misses" if name == "entropy"
                 else "sharpen: ν ∝ ν0^{β/(β−τ)} → the mode; a vertex for τ ≥ β")
        ax.set_title(title)
        ax.legend(title="answer (orange: correct)", fontsize=7, loc="lower left")
    fig.suptitle(f"Answer-level optimum of (E2) vs τ on the arithmetic DAG (β = {beta})", fontsize=10)
    fig.tight_layout()
    spec_note(fig)
    return fig


make = figure_maker(compute, plot, NAME)

if __name__ == "__main__":
    script_main(make)
