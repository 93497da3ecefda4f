"""Collision, 2τ > β (the per-answer Lagrangian is not concave, so the shared dual does not apply).

Without constraints: a 1-D equation in t = ν(z₁), z₁ = argmax r + β log ν0 (the optimum is ordered like
r + β log ν0 and has at most one answer above β/2τ), solved by bracketing — a certified optimum when τ ≤ β
(the problem is then concave, see CollisionObjective), otherwise the best root of a scan (status
"stationary"). With constraints: difference-of-convex iterations (minorize τΣν² by its tangent, solve the
constrained reward problem exactly by the shared dual) to a KKT point: "optimal" when τ ≤ β,
"stationary" otherwise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import brentq
from scipy.special import lambertw

from dagsim.errors import SolverError
from dagsim.objectives.reward import RewardObjective
from dagsim.solvers.common import EPS, KKT_TARGET, finish
from dagsim.solvers.dual import separable_dual
from dagsim.solvers.result import AnswerSolution

#: Difference-of-convex iterations for collision with constraints (linear rate; a safety cap).
MAX_DCA = 5000
#: Grid of t = ν(z₁) scanned for roots when the collision problem is not concave.
COLLISION_GRID = np.unique(np.concatenate([np.geomspace(1e-15, 1e-2, 80), np.linspace(1e-2, 1.0 - 1e-12, 400)]))


def _collision_scan(problem) -> tuple[np.ndarray, str, str]:
    """Unconstrained collision for 2τ > β via the 1-D equation in t = ν(z₁) (module docstring).

    Stationarity on the support: c_z + 2τν − β log ν = μ with c = r + β log ν0. The optimum is ordered like
    c, has at most one answer above β/2τ (second-order condition), hence z₁ = argmax c may sit on either
    branch and every other answer on the small branch ν = exp(a/β − W₀(−(2τ/β)e^{a/β})), a = c_z − μ, with
    μ = c_{z₁} + 2τt − β log t. F(t) = t + Σ_{z≠z₁} ν_z(μ(t)) − 1 has F(0+) = −1 < 0 < F(1).
    """
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
    K, tau = obj.n_answers, obj.tau
    support = np.flatnonzero(nu0 > 0)
    nu = np.zeros(K)
    if support.size == 1:
        nu[support] = 1.0
        return nu, "optimal", ""
    c = obj.task_reward[support] + beta * np.log(nu0[support])
    first = int(np.argmax(c))
    rest = np.delete(np.arange(support.size), first)

    def others(t: float) -> np.ndarray:
        mu = c[first] + 2 * tau * t - beta * np.log(t)
        a = c[rest] - mu
        arg = np.maximum(-(2 * tau / beta) * np.exp(a / beta), -np.exp(-1.0))
        return np.exp(a / beta - lambertw(arg, 0).real)

    def F(t: float) -> float:
        return t + float(others(t).sum()) - 1.0

    def point(t: float) -> np.ndarray:
        x = np.zeros(K)
        x[support[first]] = t
        x[support[rest]] = others(t)
        return x / x.sum()

    if obj.is_concave_regime(beta):
        t = brentq(F, COLLISION_GRID[0], 1.0, xtol=1e-300, rtol=4 * EPS, maxiter=500)
        return point(t), "optimal", "collision, beta/2 < tau <= beta: concave problem solved by the 1-D root"
    # t = 1 closes the scan: F(1) = Σ_{z≠z₁} ν_z ≥ 0, so a root in (grid[-1], 1] (the large branch holding all
    # but e^{-O(1/β)} of the mass when τ/β is large) is found too, not only the roots inside the grid.
    grid = np.append(COLLISION_GRID, 1.0)
    vals = np.array([F(t) for t in grid])
    roots = [
        brentq(F, lo, hi, xtol=1e-300, rtol=4 * EPS, maxiter=500)
        for lo, hi, flo, fhi in zip(grid[:-1], grid[1:], vals[:-1], vals[1:], strict=False)
        if flo < 0 <= fhi or flo > 0 >= fhi
    ]
    if not roots:
        raise SolverError(f"collision: no stationary point found on the t-grid (tau={tau}, beta={beta}, "
                          f"F in [{np.nanmin(vals):.3g}, {np.nanmax(vals):.3g}]); try method='cvxpy' or 'trace'")
    candidates = [point(t) for t in roots]
    best = max(candidates, key=lambda x: obj.regularized_value(x, nu0, beta))
    return (
        best,
        "stationary",
        (
            f"collision, tau > beta: non-concave problem; best of {len(roots)} stationary "
            f"points found by scanning nu(z1) on a grid (global if the scan found every root)"
        ),
    )


def _collision_dca(problem) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Collision with constraints, 2τ > β: ν ← argmax ⟨r + 2τν, ·⟩ − βKL s.t. constraints (DCA/MM, T2).

    Minorizing τΣν² by its tangent makes each step a constrained reward problem (exact dual); the
    objective increases monotonically and the fixed point is a KKT point.
    """
    obj, beta = problem.objective, problem.beta
    start, _, _ = _collision_scan(problem)
    nu = start
    for _ in range(MAX_DCA):
        sub = RewardObjective(obj.n_answers, reward=obj.task_reward + 2 * obj.tau * nu)
        res = separable_dual(replace(problem, objective=sub))
        change = float(np.max(np.abs(res.nu - nu)))
        nu = res.nu
        if 2 * obj.tau * change <= 0.1 * KKT_TARGET:
            break
    else:
        raise SolverError(f"collision: difference-of-convex iterations did not converge in {MAX_DCA} steps")
    if obj.is_concave_regime(beta):
        return (
            nu,
            res.multipliers,
            "optimal",
            "collision with constraints, tau <= beta: concave, KKT point is optimal",
        )
    return (
        nu,
        res.multipliers,
        "stationary",
        (
            "collision with constraints, tau > beta: non-concave; KKT point "
            "from difference-of-convex iterations started at the "
            "unconstrained optimum (not certified global)"
        ),
    )



def solve_collision(problem) -> AnswerSolution:
    """(E2) for collision with 2τ > β: the 1-D scan without constraints, DCA with them (module docstring)."""
    if not problem.constraints:
        nu, status, note = _collision_scan(problem)
        return finish(problem, nu, None, method="dual", solver="collision-scan", status=status, note=note)
    nu, lam, status, note = _collision_dca(problem)
    return finish(problem, nu, lam, method="dual", solver="dca+newton-dual", status=status, note=note)
