"""Figure 2 — exploitability (E4) per iteration for each dynamics of T6, with the theoretical rates.

Entropy objective Φ = ⟨r,ν⟩ + τH(ν) with τ < β on a random reference: the deviation of log ν from the
optimum is multiplied each iteration by τ/β (best response), 1 − η(β+τ) (mirror ascent) and
1 − η(β+τ) + η²(β+τ)² (extragradient); exploitability is quadratic in that deviation, so its rate is
the square. No-regret averaging decays like 1/√t.
"""

from __future__ import annotations

import numpy as np

from dagsim.game import dynamics as dyn
from dagsim.game.payoff import AnswerGame
from dagsim.objectives import make_objective
from figures.common import color, figure_maker, script_main, spec_note, style

NAME = "fig02_dynamics_rates"


def compute(quick: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    k, beta, tau = 8, 1.0, 0.6
    nu0 = rng.dirichlet(np.ones(k))
    r = rng.normal(size=k)
    obj = make_objective("entropy", n_answers=k, reward=r, tau=tau)
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    eta = 0.35
    a = beta + tau
    runs = {
        "best-response": (dyn.damped_best_response(game, 200, 1.0, tol=1e-15), (tau / beta) ** 2),
        "mirror": (dyn.mirror_ascent(game, 200, eta, tol=1e-15), (1 - eta * a) ** 2),
        "extragradient": (dyn.extragradient(game, 200, eta, tol=1e-15), (1 - eta * a + (eta * a) ** 2) ** 2),
        "no-regret": (dyn.no_regret(game, 300 if quick else 3000, eta), None),
    }
    out = {"beta": beta, "tau": tau, "eta": eta, "k": k, "series": {}}
    for name, (run, theory) in runs.items():
        out["series"][name] = {
            "iteration": [h["iteration"] for h in run.history],
            "exploitability": [h["exploitability"] for h in run.history],
            "theoretical_rate": theory,
            "empirical_rate": run.rate(),
        }
    return out


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), gridspec_kw={"width_ratios": [1.4, 1]})
    for i, (name, s) in enumerate(data["series"].items()):
        it = np.array(s["iteration"], dtype=float)
        ex = np.maximum(np.array(s["exploitability"], dtype=float), 1e-17)
        if s["theoretical_rate"] is not None:
            ax.semilogy(it, ex, color=color(name, i), lw=2.0,
                        label=f"{name}: measured ×{s['empirical_rate']:.3f}/iter")
            ref = ex[1] * s["theoretical_rate"] ** (it - 1)
            ax.semilogy(it, np.maximum(ref, 1e-17), color="k", ls=":", lw=1.0)
        else:
            ax2.loglog(it, ex, color=color(name, i), lw=2.0, label=f"{name} (average iterate)")
            ax2.loglog(it, ex[0] * np.sqrt(it[0] / it), color="k", ls=":", lw=1.0, label="theory O(1/√t)")
    ax.plot([], [], color="k", ls=":", lw=1.0, label="theory: (deviation factor)² per iteration")
    ax.set_ylim(1e-16, 10)
    ax.set_xlim(0, 65)
    ax.set_xlabel("iteration t")
    ax.set_ylabel("exploitability (E4), nats")
    ax.set_title("Last iterates converge linearly at the predicted rates")
    ax.legend(loc="upper right")
    ax2.set_xlabel("iteration t")
    ax2.set_ylabel("exploitability of the average (E4), nats")
    nr = data["series"]["no-regret"]
    it, ex = np.array(nr["iteration"], float), np.array(nr["exploitability"], float)
    tail = it >= it[-1] / 10
    slope = np.polyfit(np.log(it[tail]), np.log(ex[tail]), 1)[0]
    ax2.set_title(f"No-regret average stays below the O(1/√t) bound\n(measured log-log slope {slope:.2f}: "
                  "strong concavity helps)")
    ax2.legend(loc="lower left")
    fig.suptitle(f"Game dynamics on the entropy objective (β = {data['beta']}, τ = {data['tau']}, "
                 f"η = {data['eta']}, K = {data['k']})", fontsize=10)
    fig.tight_layout()
    spec_note(fig)
    return fig


make = figure_maker(compute, plot, NAME)

if __name__ == "__main__":
    script_main(make)
