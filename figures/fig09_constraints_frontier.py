"""Figure 9 — the reward–constraint frontier and its multiplier (T5).

The embedded arithmetic DAG (4·7 + 6·8 + 9·3 + 5·6, 12 % slips per step), reward 1 on the correct
answer (133), objective Φ(ν) = ⟨r, ν⟩ with KL weight β. A safety-style constraint caps the mass on every
answer above the correct one: ⟨h, ν⟩ ≤ b, h = 1[answer > 133]. Sweeping b, (E2) is solved by the fast
exact solver (checked against cvxpy at a few b); the optimal value V(b) is concave and nondecreasing, and
the multiplier λ(b) ≥ 0 of the Lagrangian game is its derivative dV/db (T5) — drawn against the
finite-difference slope of V — and vanishes once b exceeds the unconstrained optimum's mass.
"""

from __future__ import annotations

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.generators import default_arithmetic_dag
from dagsim.marginals import answer_marginal
from dagsim.objectives import make_objective
from dagsim.solvers import solve_answer_level
from figures.common import OKABE_ITO, color, figure_maker, script_main, spec_note, style

NAME = "fig09_constraints_frontier"

BETA = 1.0
#: Smallest bound swept: b → 0 forces the capped answers to 0, where λ ~ β log(1/b) diverges and
#: Slater's condition fails at b = 0 exactly.
B_MIN = 1e-3


def _problem():
    dag = default_arithmetic_dag()
    nu0 = answer_marginal(dag)  # (K,)
    correct = int(np.argmax(dag.reward))
    h = np.array([int(a) > int(dag.answers[correct]) for a in dag.answers], dtype=float)  # (K,)
    obj = make_objective("reward", n_answers=dag.n_answers, reward=dag.reward)
    return dag, nu0, h, obj


def compute(quick: bool = False, seed: int = 0) -> dict:
    """Deterministic (``seed`` unused)."""
    del seed
    dag, nu0, h, obj = _problem()
    free = solve_answer_level(obj, nu0, BETA)
    free_mass = float(h @ free.nu)
    b = np.linspace(B_MIN, 1.4 * free_mass, 60 if quick else 240)  # (n_b,)
    values, lams, masses = [], [], []
    for bound in b:
        sol = solve_answer_level(obj, nu0, BETA, [LinearConstraint(h, "<=", float(bound), "cap above correct")])
        values.append(sol.value)
        lams.append(float(sol.multipliers[0]))
        masses.append(float(h @ sol.nu))
    values = np.array(values)
    fd_slope = np.gradient(values, b)  # (n_b,) central differences inside, one-sided at the ends
    checks = []
    for bound in np.linspace(B_MIN, 1.2 * free_mass, 3 if quick else 6):
        con = [LinearConstraint(h, "<=", float(bound), "cap above correct")]
        ex = solve_answer_level(obj, nu0, BETA, con)
        cv = solve_answer_level(obj, nu0, BETA, con, method="cvxpy")
        checks.append({"b": float(bound), "value_exact": ex.value, "value_cvxpy": cv.value,
                       "lambda_exact": float(ex.multipliers[0]), "lambda_cvxpy": float(cv.multipliers[0]),
                       "nu_max_diff": float(np.max(np.abs(ex.nu - cv.nu)))})
    return {"beta": BETA, "answers": list(dag.answers), "capped": [a for a, x in zip(dag.answers, h) if x],
            "reference_mass": float(h @ nu0), "free_mass": free_mass, "free_value": free.value,
            "b": b, "value": values, "multiplier": lams, "constrained_mass": masses,
            "finite_difference_slope": fd_slope, "cvxpy_checks": checks}


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    fig, ax = plt.subplots(figsize=(8.2, 4.8))
    b = np.asarray(data["b"], float)
    v = np.asarray(data["value"], float)
    lam = np.asarray(data["multiplier"], float)
    fd = np.asarray(data["finite_difference_slope"], float)
    c_val, c_lam = color("constrained-grpo-value", 0), color("dual-ascent")
    ax.plot(b, v, color=c_val, lw=2.2, label="optimal value V(b) of (E2), exact solver")
    chk = data["cvxpy_checks"]
    ax.scatter([c["b"] for c in chk], [c["value_cvxpy"] for c in chk], marker="s", s=40, facecolors="none",
               edgecolors="k", zorder=5, label="cvxpy check (value)")
    ax.axvline(data["free_mass"], color="grey", ls=":", lw=1)
    ax.text(data["free_mass"], v.min() + 0.25 * (v.max() - v.min()), "unconstrained optimum's\nmass on them  ",
            fontsize=7.5, color="grey", va="center", ha="right")
    ax.set_xlabel(f"bound b on the mass of answers above the correct one ({', '.join(data['capped'])})")
    ax.set_ylabel("optimal value ⟨r,ν⟩ − β KL(ν‖ν0), nats", color=c_val)
    tw = ax.twinx()
    tw.plot(b, lam, color=c_lam, lw=2.2, label="multiplier λ(b) (exact solver)")
    tw.plot(b[::3], fd[::3], ls="none", marker="o", ms=3.5, color=OKABE_ITO[3],
            label="finite-difference slope dV/db")
    tw.scatter([c["b"] for c in chk], [c["lambda_cvxpy"] for c in chk], marker="D", s=36, facecolors="none",
               edgecolors="k", zorder=5, label="cvxpy dual value")
    tw.set_ylabel("multiplier λ = dV/db (nats per unit mass)", color=c_lam)
    tw.grid(False)
    tw.spines["right"].set_visible(True)
    tw.set_ylim(bottom=-0.05 * lam.max())
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = tw.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="center right", fontsize=7.5)
    inner = (b > b[1]) & (b < data["free_mass"] * 0.98)
    rel = float(np.max(np.abs(fd[inner] - lam[inner]) / np.maximum(lam[inner], 1e-12))) if inner.any() else 0.0
    ax.set_title(f"Tightening the cap costs value at rate λ(b) = dV/db (T5): λ ≥ 0, nonincreasing,\n"
                 f"0 beyond b = {data['free_mass']:.3f} (finite differences agree to {rel:.0e} relative; "
                 f"β = {data['beta']}, reward on 133)")
    fig.tight_layout()
    spec_note(fig)
    return fig


make = figure_maker(compute, plot, NAME)

if __name__ == "__main__":
    script_main(make)
