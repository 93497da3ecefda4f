"""The shared separable dual-Newton solver of (E2) with linear constraints (T5).

Lagrangian Φ − βKL − μ(Σν − 1) − Σ_k λ_k(⟨h_k, ν⟩ − b_k) for the separable concave families
(reward, entropy, gini, tsallis; sharpen for β > τ; collision for 2τ ≤ β): low-dimensional dual. For fixed
multipliers each answer's Lagrangian is maximized exactly by the family's ``coordinate_response``
(closed form via log / Wright ω / Lambert W); μ is eliminated by a 1-D safeguarded Newton on log Σν = 0,
and the reduced dual D(λ) (convex, gradient b − Hν, Hessian the response-weighted covariance of the h_k)
is minimized by projected Newton with an Armijo search (λ ≥ 0 for inequalities, active set =
{λ_k = 0, constraint slack}). Cost O(K·n²) per step. The special solvers (collision, sharpen, majority)
call it on sub-problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from dagsim.constraints import LinearConstraint
from dagsim.divergences import kl_divergence
from dagsim.errors import InfeasibleError, SolverError
from dagsim.objectives.base import SeparableObjective
from dagsim.solvers.common import ARMIJO, EPS, MAX_HALVINGS, MAX_NEWTON, as_problem, finish
from dagsim.solvers.common import slack as _slack
from dagsim.solvers.result import AnswerSolution, constraint_arrays

#: Constraint residuals (violation, |λ·slack|) at which the dual Newton stops: 100× below KKT_TARGET and
#: far above the ~1e-16·‖h‖ rounding of ⟨h, ν⟩.
CONSTRAINT_TOL = 1e-12
#: |log Σν| at which the 1-D normalization stops: a few ulps of 1 (rounding of logsumexp).
NORMALIZER_TOL = 4 * EPS
#: Initial trust region of the dual Newton: the largest change of any log-ratio log(ν_z/ν_y) one step may
#: cause (near a vertex the dual Hessian is tiny and a raw Newton step would jump by e^{huge}).
MAX_LOG_RATIO_STEP = 30.0
#: Relative Tikhonov shift of the dual Hessian (keeps the Newton system solvable; 1e-12 of its trace
#: changes well-conditioned steps by ~1e-12 relative, i.e. not at all after the quadratic phase).
HESSIAN_SHIFT = 1e-12
#: |λ| beyond this means the dual is unbounded: infeasible constraints or no strictly feasible point.
LAMBDA_LIMIT = 1e12
#: Strict-feasibility margin below which Slater's condition is declared to fail (LP rounding ~1e-12).
SLATER_TOL = 1e-10
#: With active constraints, an answer below this triggers the LP check of Slater's condition (a
#: constraint that forces answers to 0 drives them to ~e^{-λ/β} with λ growing until CS holds to 1e-12).
SLATER_SUSPECT = 1e-8


# ====================================================================== single view: separable dual
@dataclass(frozen=True)
class _Inner:
    """Lagrangian maximizer for fixed λ: μ, log ν (|S|,) and its slope du/da (|S|,), normalized ν."""

    mu: float
    u: np.ndarray
    du: np.ndarray
    nu: np.ndarray


def _lse(x: np.ndarray) -> float:
    """log Σ exp(x) of a vector (scipy's logsumexp has ~0.5 ms of overhead per call; this is the hot path)."""
    top = float(np.max(x))
    if not np.isfinite(top):
        return top
    return top + float(np.log(np.sum(np.exp(x - top))))


def _normalize(obj: SeparableObjective, a0: np.ndarray, beta: float, mu: float | None) -> _Inner:
    """Solve Σ_z exp(u(a0_z − μ)) = 1 for μ: safeguarded Newton on f(μ) = logsumexp(u), decreasing in μ.

    Until the root is bracketed a Newton step may change the mean log ν by at most `radius` (30, doubling
    each step); inside a bracket, bisection replaces a Newton step that leaves the bracket or fails to
    halve |f|. An answer at the box bound (collision: ν = 1, slope 0) is never a solution when |S| > 1,
    so it counts as "mass too large" whatever f is, and μ then grows by `radius`/max du.
    """
    if mu is None:
        mu = float(beta * _lse(a0 / beta))  # exact for the reward family
    lo, hi = -np.inf, np.inf
    radius = MAX_LOG_RATIO_STEP
    last_f = np.inf
    for _ in range(MAX_NEWTON):
        u, du = obj.coordinate_response(a0 - mu, beta)
        f = _lse(u)
        boxed = bool(np.any(du == 0))
        if abs(f) <= NORMALIZER_TOL and not boxed:
            break
        too_much = f > 0 or boxed
        if too_much:
            lo = mu
        else:
            hi = mu
        slope = -float(np.exp(u - f) @ du)  # df/dμ ≤ 0
        newton = mu - f / slope if (slope < 0 and not boxed) else np.nan
        if np.isfinite(lo) and np.isfinite(hi):
            new = newton if (lo < newton < hi and abs(f) <= 0.5 * last_f) else 0.5 * (lo + hi)
        elif np.isfinite(newton):
            cap = radius / -slope
            new = mu + float(np.clip(newton - mu, -cap, cap))
            radius *= 2.0
        else:
            new = mu + (1.0 if too_much else -1.0) * radius / float(max(du.max(), 1.0 / beta))
            radius *= 2.0
        last_f = abs(f) if not boxed else np.inf
        if new == mu or (np.isfinite(lo) and np.isfinite(hi) and hi - lo <= 4 * EPS * max(1.0, abs(mu))):
            break
        mu = new
    else:
        raise SolverError(f"{obj.name}: normalization of the dual did not converge")
    return _Inner(mu, u, du, np.exp(u - f))


@dataclass(frozen=True)
class _DualResult:
    nu: np.ndarray  # (K,)
    multipliers: np.ndarray  # (n,)
    iterations: int


class _NoConvergence(Exception):
    """The dual Newton made no progress or diverged; the caller diagnoses feasibility."""


def _quick_infeasibility(
    H: np.ndarray, b: np.ndarray, is_eq: np.ndarray, constraints: Sequence[LinearConstraint]
) -> None:
    """One-constraint-at-a-time infeasibility on the support (exact, cheap): raise InfeasibleError."""
    for k, c in enumerate(constraints):
        lo, hi = float(H[k].min()), float(H[k].max())
        if lo > b[k] or (is_eq[k] and hi < b[k]):
            # Report the range of the user's own left-hand side <coef, nu> (H is the '<=' form).
            u_lo, u_hi = (-hi, -lo) if c.op == ">=" else (lo, hi)
            raise InfeasibleError(
                f"infeasible: constraint {c.name or k!r} ({c.op} {c.bound}) cannot hold for any answer "
                f"distribution supported on supp(nu0): <coef, nu> ranges over [{u_lo}, {u_hi}]"
            )


def _diagnose(H: np.ndarray, b: np.ndarray, is_eq: np.ndarray, names: list[str], why: str) -> None:
    """After a failed dual solve, decide by linear programming: infeasible, no Slater point, or a bug."""
    _check_slater(H, b, is_eq, names)
    raise SolverError(f"dual Newton did not converge ({why})")


def _check_slater(H: np.ndarray, b: np.ndarray, is_eq: np.ndarray, names: list[str]) -> None:
    """Raise InfeasibleError if no ν ∈ Δ_S satisfies the constraints, SolverError if none satisfies the
    inequalities strictly with ν > 0 (Slater fails: the optimal multipliers are infinite)."""
    n_s = H.shape[1]
    A_eq = np.vstack([np.ones((1, n_s)), H[is_eq]])
    b_eq = np.concatenate([[1.0], b[is_eq]])
    res = linprog(
        np.zeros(n_s),
        A_ub=H[~is_eq] if np.any(~is_eq) else None,
        b_ub=b[~is_eq] if np.any(~is_eq) else None,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=(0, None),
        method="highs",
    )
    if res.status == 2:
        raise InfeasibleError(
            f"constraints {names} admit no answer distribution supported on supp(nu0) (linear program infeasible)"
        )
    # Strict feasibility: max t s.t. H_ub ν + t ≤ b_ub, ν ≥ t, Σν = 1, H_eq ν = b_eq.
    ub_rows = [sp.hstack([sp.csr_matrix(H[~is_eq]), np.ones((int(np.sum(~is_eq)), 1))])] if np.any(~is_eq) else []
    ub_rows.append(sp.hstack([-sp.identity(n_s), np.ones((n_s, 1))]))
    A_ub = sp.vstack(ub_rows).tocsr()
    b_ub = np.concatenate([b[~is_eq], np.zeros(n_s)])
    A_eq2 = sp.hstack([sp.csr_matrix(A_eq), np.zeros((A_eq.shape[0], 1))]).tocsr()
    res = linprog(
        np.concatenate([np.zeros(n_s), [-1.0]]),
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq2,
        b_eq=b_eq,
        bounds=[(0, None)] * n_s + [(None, 1.0)],
        method="highs",
    )
    if res.status == 0 and -res.fun <= SLATER_TOL:
        raise SolverError(
            f"constraints {names} are feasible only on the boundary (no strictly feasible "
            "answer distribution: Slater's condition fails and the optimal multipliers are "
            "infinite); drop the answers they force to 0 from nu0's support"
        )


def _projected_newton_step(hess: np.ndarray, grad: np.ndarray, lam: np.ndarray, is_eq: np.ndarray) -> np.ndarray:
    """Newton step for min D(λ), λ_ineq ≥ 0 (Bertsekas' projected Newton): variables at their bound whose
    step would point outward (λ_k = 0 and the step < 0, or the constraint slack) are fixed and the Newton
    system is re-solved on the rest until no fixed-variable step points outward."""
    free = is_eq | (lam > 0) | (grad < 0)
    if lam.size == 1:  # one constraint: a scalar Newton step (the common case, without linalg overhead)
        if not free[0] or hess[0, 0] <= 0:
            return np.where(free, -grad, 0.0)
        step = -grad / hess[0, 0]
        return np.zeros(1) if (not is_eq[0] and lam[0] <= 0 and step[0] < 0) else step
    step = np.zeros_like(lam)
    for _ in range(lam.size + 1):
        step[:] = 0.0
        if not np.any(free):
            return step
        hff = hess[np.ix_(free, free)]
        # Tikhonov shift: near a vertex the Hessian (a covariance under ν) vanishes; the shifted step is
        # then a long gradient-like step, which the caller's trust region shortens.
        shift = HESSIAN_SHIFT * max(float(np.trace(hff)), np.finfo(np.float64).tiny)
        with np.errstate(over="ignore", invalid="ignore"):
            step[free] = np.linalg.solve(hff + shift * np.eye(hff.shape[0]), -grad[free])
        if not np.all(np.isfinite(step)):
            step = np.where(free, -grad, 0.0)
        outward = free & ~is_eq & (lam <= 0) & (step < 0)
        if not np.any(outward):
            return step
        free &= ~outward
    return step


def separable_dual(
    problem, nu0: np.ndarray | None = None, beta: float | None = None, constraints: Sequence[LinearConstraint] = ()
) -> _DualResult:
    """Maximize Φ(ν) − β KL(ν‖ν0) s.t. the constraints by the dual Newton method (module docstring).

    ``problem``: an :class:`~dagsim.problem.AnswerProblem` with a :class:`SeparableObjective` (or the loose
    ``(obj, nu0, beta, constraints)``), inputs already validated. Requires ``obj.dual_is_exact(beta)``.
    Returns ν (K,) and λ (n,) in the convention of result.py.
    """
    p = as_problem(problem, nu0, beta, constraints)
    obj, nu0, beta, constraints = p.objective, p.nu0, p.beta, p.constraints
    K = obj.n_answers
    support = np.flatnonzero(nu0 > 0)
    H_all, b, is_eq = constraint_arrays(constraints, K)
    H = H_all[:, support]  # (n, |S|)
    _quick_infeasibility(H, b, is_eq, constraints)
    n = len(constraints)
    nu = np.zeros(K)
    if support.size == 1:
        nu[support] = 1.0
        return _DualResult(nu, np.zeros(n), 0)
    base = beta * np.log(nu0[support]) + obj.task_reward[support] - beta  # (|S|,) a = base − μ − Hᵀλ
    names = [c.name or str(k) for k, c in enumerate(constraints)]

    r_s, nu0_s = obj.task_reward[support], nu0[support]

    def dual_value(inner: _Inner, lam: np.ndarray) -> float:
        """D(λ) = Φ(ν) − βKL(ν‖ν0) − λ·(Hν − b) at the Lagrangian maximizer (ρ(0) = 0: support suffices)."""
        nu_s = inner.nu
        phi = float(r_s @ nu_s)
        if obj.tau != 0:
            phi += obj.tau * (float(np.sum(obj.rho(nu_s))) + obj.rho_offset())
        return phi - beta * kl_divergence(nu_s, nu0_s) - float(lam @ (H @ nu_s - b))

    lam = np.zeros(n)
    radius = MAX_LOG_RATIO_STEP
    inner = _normalize(obj, base, beta, None)
    d0 = dual_value(inner, lam)
    try:
        for it in range(MAX_NEWTON):  # noqa: B007  (`it` is reported after the loop)
            grad = b - H @ inner.nu  # ∂D/∂λ, (n,)
            viol = np.where(is_eq, np.abs(grad), np.maximum(-grad, 0.0))
            slack = np.where(is_eq, 0.0, np.abs(lam * grad))
            if n == 0 or max(viol.max(), slack.max()) <= CONSTRAINT_TOL:
                break
            w = inner.nu * inner.du  # dν/da, (|S|,)
            hbar = (H @ w) / w.sum()
            Hc = H - hbar[:, None]
            hess = (Hc * w) @ Hc.T  # (n, n) PSD
            step = _projected_newton_step(hess, grad, lam, is_eq)
            if np.all(np.abs(step) <= 4 * EPS * (1.0 + np.abs(lam))):
                break  # at the floating-point resolution of λ
            # Trust region: one step changes no log-ratio log(ν_z/ν_y) by more than `radius` (which
            # doubles after each full step, so far-away optima are reached geometrically fast).
            ratio_change = float(np.ptp(H.T @ step)) * float(inner.du.max())
            capped = ratio_change > radius
            if capped:
                step *= radius / ratio_change
            t = 1.0
            for _ in range(MAX_HALVINGS):
                trial = lam + t * step
                trial[~is_eq] = np.maximum(trial[~is_eq], 0.0)
                cand = _normalize(obj, base - H.T @ trial, beta, inner.mu)
                d_trial = dual_value(cand, trial)
                if d_trial <= d0 + ARMIJO * float(grad @ (trial - lam)) + _slack(d0):
                    break
                t *= 0.5
            else:
                raise _NoConvergence("line search failed")
            radius = 2.0 * radius if (capped and t == 1.0) else max(MAX_LOG_RATIO_STEP, t * radius)
            lam, inner, d0 = trial, cand, d_trial
            if np.max(np.abs(lam)) > LAMBDA_LIMIT:
                raise _NoConvergence("multipliers diverge")
        else:
            raise _NoConvergence("iteration limit")
    except _NoConvergence as exc:
        _diagnose(H, b, is_eq, names, str(exc))
    if np.any(lam != 0) and np.any(inner.nu < SLATER_SUSPECT):
        _check_slater(H, b, is_eq, names)  # active constraints and near-zero answers: forced to 0?
    nu[support] = inner.nu
    return _DualResult(nu, lam, it)



def solve_separable(problem) -> AnswerSolution:
    """(E2) for a separable family whose per-answer Lagrangian is concave (``dual_is_exact``), by the dual."""
    res = separable_dual(problem)
    return finish(problem, res.nu, res.multipliers, method="dual", solver="newton-dual", status="optimal",
                  note=f"{res.iterations} Newton steps on the multipliers")
