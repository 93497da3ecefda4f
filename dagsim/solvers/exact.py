"""Fast exact solvers of the answer-level programs (E2) (with linear constraints, T5) and (E5).

Every algorithm works in log space and is certified by :func:`dagsim.solvers.result.kkt_residual`
(target ≤ 1e-10; a solve whose certificate exceeds ``KKT_FAIL`` raises :class:`SolverError`).

Single view (E2), Lagrangian Φ − βKL − μ(Σν − 1) − Σ_k λ_k(⟨h_k, ν⟩ − b_k):

* **separable concave families** (reward, entropy, gini, tsallis; sharpen for β > τ; collision for
  2τ ≤ β): low-dimensional dual. For fixed multipliers each answer's Lagrangian is maximized exactly by
  the family's ``coordinate_response`` (closed form via log / Wright ω / Lambert W); μ is eliminated by a
  1-D safeguarded Newton on log Σν = 0, and the reduced dual D(λ) (convex, gradient b − Hν, Hessian the
  response-weighted covariance of the h_k) is minimized by projected Newton with an Armijo search
  (λ ≥ 0 for inequalities, active set = {λ_k = 0, constraint slack}). Cost O(K·n²) per step.
* **collision, 2τ > β** (per-answer Lagrangian not concave): without constraints a 1-D equation in
  t = ν(z₁), z₁ = argmax r + β log ν0 (the optimum is ordered like r + β log ν0 and has at most one answer
  above β/2τ), solved by bracketing — a certified optimum when τ ≤ β (the problem is then concave, see
  CollisionObjective), otherwise the best root of a scan (status "stationary"). With constraints:
  difference-of-convex iterations (minorize τΣν² by its tangent, solve the constrained reward problem
  exactly) to a KKT point: "optimal" when τ ≤ β, "stationary" otherwise.
* **sharpen, β ≤ τ**: without constraints the table's vertex; with constraints an LP when β = τ (exact);
  for β < τ (convex maximization over a polytope) exact enumeration of the polytope's O(K²) vertices
  with one constraint, and with several (NP-hard in general) the best vertex of successive linear
  programs (status "vertex"; the note says it is not certified global).
* **majority**: exact by maximizing over the mode z* of the concave problem with reward r + τe_{z*};
  without constraints this is the closed form, with constraints a branch and bound over z* using the
  unconstrained values as upper bounds.

Multi-view (E5), no constraints:

* **arithmetic consensus**: the alternating best responses ν_j ∝ (ν_j^0)^{β/(β+τ)} q^{τ/(β+τ)} e^{r/(β+τ)},
  q = Σ w_j ν_j are the stationarity conditions of the convex potential
  Ψ(ℓ) = (1−γ) Σ_z exp(x_z(ℓ)) + Σ_j w_j ℓ_j, γ = τ/(β+τ), x_z = LSE_j(log w_j + log A_jz − ℓ_j)/(1−γ),
  whose minimizer (m unknowns ℓ_j = log-normalizers) is found by Newton — instead of iterating the
  best responses, which converge only linearly.
* **geometric consensus**: for per-view multipliers μ_j and the consensus multiplier η each answer is
  solved exactly (a monotone scalar equation in log q(z), with δ_j = log(q/ν_j) from a convex scalar
  equation; no quantity of size τ/β is formed, so large τ/β keeps full precision); the m + 1 multipliers
  minimize the convex dual by Newton with implicit-function derivatives. (THEORY's suggestion —
  alternating per-view root finding and q ∝ Π ν_j^{w_j} — has the same fixed point but converges
  linearly.)
* **majority consensus**: exact over the mode choice z* of the relaxation D' = min_z Σ_j w_j KL(δ_z‖ν_j)
  (each (z*, view) is a scalar equation); the result is certified for the adopted D when z* is also the
  mode of q̄ (checked), otherwise the best consistent candidate is returned as "stationary".
* **pairwise**: primal Newton on the stacked marginals (sparse Hessian β diag(w/ν) + 2τL, one LU per
  step, Schur complement for the m normalizations), fraction-to-boundary steps and Armijo search.
* τ = 0 or τ = inf: closed forms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve as dense_solve
from scipy.optimize import brentq, linprog
from scipy.sparse.linalg import splu
from scipy.special import lambertw, logsumexp, rel_entr

from dagsim.constraints import LinearConstraint
from dagsim.errors import InfeasibleError, SolverError
from dagsim.objectives.base import MultiViewObjective, SeparableObjective, log_of, softmax_log
from dagsim.objectives.collision import CollisionObjective
from dagsim.objectives.consensus import ConsensusObjective
from dagsim.objectives.majority import MajorityObjective
from dagsim.objectives.pairwise import PairwiseObjective
from dagsim.objectives.reward import RewardObjective
from dagsim.objectives.sharpen import SharpenObjective
from dagsim.solvers.result import (
    AnswerSolution,
    assemble,
    constraint_arrays,
    kkt_residual,
    validate_problem,
)

EPS = float(np.finfo(np.float64).eps)

#: The certificate every exact solve aims at (the issue's requirement).
KKT_TARGET = 1e-10
#: A solve whose KKT residual exceeds this did not converge: raise rather than return it (100× target).
KKT_FAIL = 1e-8
#: Constraint residuals (violation, |λ·slack|) at which the dual Newton stops: 100× below KKT_TARGET and
#: far above the ~1e-16·‖h‖ rounding of ⟨h, ν⟩.
CONSTRAINT_TOL = 1e-12
#: |log Σν| at which the 1-D normalization stops: a few ulps of 1 (rounding of logsumexp).
NORMALIZER_TOL = 4 * EPS
#: Total-mass error |Σν − 1| at which the multi-view Newton solvers stop: ~50 ulps (sums of K terms).
MASS_TOL = 1e-14
#: Armijo sufficient-decrease fraction (the usual 1e-4; any value in (0, 1/2) works).
ARMIJO = 1e-4
#: Rounding slack of a line-search test, in ulps of the merit value: lets full Newton steps through
#: when the merit changes by less than its own rounding (near convergence).
ROUNDING_ULPS = 256
#: Initial trust region of the dual Newton: the largest change of any log-ratio log(ν_z/ν_y) one step may
#: cause (near a vertex the dual Hessian is tiny and a raw Newton step would jump by e^{huge}).
MAX_LOG_RATIO_STEP = 30.0
#: Relative Tikhonov shift of the dual Hessian (keeps the Newton system solvable; 1e-12 of its trace
#: changes well-conditioned steps by ~1e-12 relative, i.e. not at all after the quadratic phase).
HESSIAN_SHIFT = 1e-12
#: Newton iterations (each quadratically convergent near the end; more means a bug or a degenerate instance).
MAX_NEWTON = 200
#: Step halvings before a line search gives up (2^-60 is below float64 resolution of a unit step).
MAX_HALVINGS = 60
#: |λ| beyond this means the dual is unbounded: infeasible constraints or no strictly feasible point.
LAMBDA_LIMIT = 1e12
#: Strict-feasibility margin below which Slater's condition is declared to fail (LP rounding ~1e-12).
SLATER_TOL = 1e-10
#: With active constraints, an answer below this triggers the LP check of Slater's condition (a
#: constraint that forces answers to 0 drives them to ~e^{-λ/β} with λ growing until CS holds to 1e-12).
SLATER_SUSPECT = 1e-8
#: Difference-of-convex iterations for collision with constraints (linear rate; a safety cap).
MAX_DCA = 5000
#: Accepted Newton steps without halving the gradient after which the multi-view Newton stops (the
#: quadratic phase halves it every step; stalling means rounding noise).
STALL_STEPS = 5
#: Grid of t = ν(z₁) scanned for roots when the collision problem is not concave.
COLLISION_GRID = np.unique(np.concatenate([np.geomspace(1e-15, 1e-2, 80), np.linspace(1e-2, 1.0 - 1e-12, 400)]))
#: Successive-LP passes for sharpen with β < τ and constraints (each pass can only shrink the face).
MAX_SLP = 50
#: Fraction of the distance to the boundary a primal Newton step may travel (keeps ν > 0).
BOUNDARY_FRACTION = 0.99


def _slack(value: float) -> float:
    return ROUNDING_ULPS * EPS * max(1.0, abs(value))


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
    obj: SeparableObjective, nu0: np.ndarray, beta: float, constraints: Sequence[LinearConstraint] = ()
) -> _DualResult:
    """Maximize Φ(ν) − β KL(ν‖ν0) s.t. the constraints by the dual Newton method (module docstring).

    Requires ``obj.dual_is_exact(beta)``. Returns ν (K,) and λ (n,) in the convention of result.py.
    """
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
        return phi - beta * float(np.sum(rel_entr(nu_s, nu0_s))) - float(lam @ (H @ nu_s - b))

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


# ====================================================================== single view: special regimes
def _collision_scan(obj: CollisionObjective, nu0: np.ndarray, beta: float) -> tuple[np.ndarray, str, str]:
    """Unconstrained collision for 2τ > β via the 1-D equation in t = ν(z₁) (module docstring).

    Stationarity on the support: c_z + 2τν − β log ν = μ with c = r + β log ν0. The optimum is ordered like
    c, has at most one answer above β/2τ (second-order condition), hence z₁ = argmax c may sit on either
    branch and every other answer on the small branch ν = exp(a/β − W₀(−(2τ/β)e^{a/β})), a = c_z − μ, with
    μ = c_{z₁} + 2τt − β log t. F(t) = t + Σ_{z≠z₁} ν_z(μ(t)) − 1 has F(0+) = −1 < 0 < F(1).
    """
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
    vals = np.array([F(t) for t in COLLISION_GRID])
    roots = [
        brentq(F, lo, hi, xtol=1e-300, rtol=4 * EPS, maxiter=500)
        for lo, hi, flo, fhi in zip(COLLISION_GRID[:-1], COLLISION_GRID[1:], vals[:-1], vals[1:], strict=False)
        if flo < 0 <= fhi or flo > 0 >= fhi
    ]
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


def _collision_dca(
    obj: CollisionObjective, nu0: np.ndarray, beta: float, constraints: Sequence[LinearConstraint]
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Collision with constraints, 2τ > β: ν ← argmax ⟨r + 2τν, ·⟩ − βKL s.t. constraints (DCA/MM, T2).

    Minorizing τΣν² by its tangent makes each step a constrained reward problem (exact dual); the
    objective increases monotonically and the fixed point is a KKT point.
    """
    start, _, _ = _collision_scan(obj, nu0, beta)
    nu = start
    for _ in range(MAX_DCA):
        sub = RewardObjective(obj.n_answers, reward=obj.task_reward + 2 * obj.tau * nu)
        res = separable_dual(sub, nu0, beta, constraints)
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


def _lp_max(c: np.ndarray, H: np.ndarray, b: np.ndarray, is_eq: np.ndarray):
    """max ⟨c, ν⟩ over {ν ∈ Δ, Hν ≤ b (ineq), Hν = b (eq)} by HiGHS; returns (ν, λ) with λ = ∂V/∂b."""
    n_s, n = c.size, b.size
    res = linprog(
        -c,
        A_ub=H[~is_eq] if np.any(~is_eq) else None,
        b_ub=b[~is_eq] if np.any(~is_eq) else None,
        A_eq=np.vstack([np.ones((1, n_s)), H[is_eq]]),
        b_eq=np.concatenate([[1.0], b[is_eq]]),
        bounds=(0, None),
        method="highs",
    )
    if res.status == 2:
        raise InfeasibleError("constraints admit no answer distribution supported on supp(nu0)")
    if res.status != 0:
        raise SolverError(f"linear program failed: {res.message}")
    lam = np.zeros(n)
    if np.any(~is_eq):
        lam[~is_eq] = -res.ineqlin.marginals
    lam[is_eq] = -res.eqlin.marginals[1:]
    return res.x, lam


def _single_constraint_vertices(h: np.ndarray, b: float, equality: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vertices of {ν ∈ Δ_S : ⟨h, ν⟩ ≤ b (or = b)} as (i, j, θ): ν = θ e_i + (1 − θ) e_j.

    A vertex has at most two nonzeros: a simplex vertex e_i with h_i ≤ b (= b for an equality), or the
    point of the edge [e_i, e_j] with h_i < b < h_j where the constraint is tight.
    """
    idx = np.arange(h.size)
    ok = np.isclose(h, b, rtol=0, atol=0) if equality else h <= b
    below, above = idx[h < b], idx[h > b]
    ii, jj = np.repeat(below, above.size), np.tile(above, below.size)
    theta = (h[jj] - b) / (h[jj] - h[ii])
    return (
        np.concatenate([idx[ok], ii]),
        np.concatenate([idx[ok], jj]),
        np.concatenate([np.ones(int(ok.sum())), theta]),
    )


def _sharpen_vertex(
    obj: SharpenObjective, nu0: np.ndarray, beta: float, constraints: Sequence[LinearConstraint]
) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Sharpen with β ≤ τ and constraints: the maximum of a convex function over a polytope is at a vertex.

    f(ν) = ⟨c, ν⟩ + (τ − β) Σ ν log ν with c = r + β log ν0. β = τ: f is linear, one LP is exact. β < τ with
    one constraint: exact enumeration of the polytope's vertices (at most two nonzeros each, O(K²)). β < τ
    with several constraints: best vertex among the LP for c and successive LPs (linearize at the current
    point, re-solve on its face) from the maximum-entropy feasible point — a heuristic (convex
    maximization over a polytope is NP-hard in general). Returns (ν, λ, residual, note); λ and the residual
    come from the LP of f's linearization on ν's face (residual = its gain over ν, 0 at a fixed point).
    """
    K = obj.n_answers
    support = np.flatnonzero(nu0 > 0)
    H_all, b, is_eq = constraint_arrays(constraints, K)
    c = obj.task_reward[support] + beta * np.log(nu0[support])
    kappa = obj.tau - beta

    def full(x_s: np.ndarray, idx: np.ndarray) -> np.ndarray:
        x = np.zeros(K)
        x[idx] = np.maximum(x_s, 0.0)
        return x / x.sum()

    def face_lp(v: np.ndarray):
        face = np.flatnonzero(v > 0)
        grad = c[np.searchsorted(support, face)] + kappa * (np.log(v[face]) + 1.0)
        x_face, lam = _lp_max(grad, H_all[:, face], b, is_eq)
        return max(0.0, float(grad @ x_face - grad @ v[face])), lam

    x_lin, lam_lin = _lp_max(c, H_all[:, support], b, is_eq)
    nu_lin = full(x_lin, support)
    if kappa == 0:
        return nu_lin, lam_lin, 0.0, "linear objective (beta == tau): exact LP vertex"
    f = obj.regularized_value
    if len(constraints) == 1:
        i, j, theta = _single_constraint_vertices(H_all[0, support], float(b[0]), bool(is_eq[0]))
        if i.size == 0:
            raise InfeasibleError("constraint admits no answer distribution supported on supp(nu0)")
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = np.where(theta > 0, theta * np.log(theta), 0.0) + np.where(
                theta < 1, (1 - theta) * np.log1p(-theta), 0.0
            )
        scores = theta * c[i] + (1 - theta) * c[j] + kappa * ent
        k = int(np.argmax(scores))
        best = np.zeros(K)
        best[support[i[k]]] += theta[k]
        best[support[j[k]]] += 1 - theta[k]
        residual, lam = face_lp(best)
        return (
            best,
            lam,
            residual,
            (
                "convex objective (beta < tau), one constraint: exact enumeration of the "
                f"{i.size} vertices of the feasible polytope"
            ),
        )
    uniform = np.zeros(K)
    uniform[support] = 1.0 / support.size
    x = separable_dual(RewardObjective(K), uniform, 1.0, constraints).nu  # max-entropy feasible point
    for _ in range(MAX_SLP):
        face = np.flatnonzero(x > 0)
        grad = c[np.searchsorted(support, face)] + kappa * (np.log(x[face]) + 1.0)
        x_new = full(_lp_max(grad, H_all[:, face], b, is_eq)[0], face)
        if f(x_new, nu0, beta) <= f(x, nu0, beta) + _slack(f(x, nu0, beta)):
            break
        x = x_new
    best = max([nu_lin, x], key=lambda v: f(v, nu0, beta))
    residual, lam = face_lp(best)
    return (
        best,
        lam,
        residual,
        (
            "convex objective (beta < tau), several constraints: best vertex of successive "
            "linear programs; global optimality not certified (convex maximization over a "
            "polytope)"
        ),
    )


def _majority_enumeration(
    obj: MajorityObjective, nu0: np.ndarray, beta: float, constraints: Sequence[LinearConstraint]
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """max over the mode choice z* of the constrained concave problem with reward r + τe_{z*}.

    Branch and bound: the unconstrained value β log Σ ν0 e^{(r + τe_{z*})/β} bounds the constrained one
    and increases with the score log ν0 + r/β, so modes are tried by decreasing score until the bound
    falls below the best value found. Returns (ν, λ, z*, number of modes solved).
    """
    support = np.flatnonzero(nu0 > 0)
    logits = log_of(nu0[support]) + obj.task_reward[support] / beta
    p = softmax_log(logits)
    bounds = beta * (logsumexp(logits) + np.log1p(p * np.expm1(obj.tau / beta)))
    best = None
    solved = 0
    for i in np.argsort(-bounds, kind="stable"):
        if best is not None and bounds[i] <= best[0] + _slack(best[0]):
            break
        z = int(support[i])
        sub = obj.mode_subproblem(z)
        res = separable_dual(sub, nu0, beta, constraints)
        solved += 1
        val = sub.regularized_value(res.nu, nu0, beta)
        if best is None or val > best[0]:
            best = (val, res.nu, res.multipliers, z)
    return best[1], best[2], best[3], solved


# ====================================================================== multi-view
def _newton_minimize(fun: Callable, x0: np.ndarray, what: str):
    """Damped Newton for a smooth convex potential; ``fun(x)`` returns (value, grad, hess, done, state).

    Stops when ``done`` (the caller's tolerance) or at the floating-point floor: the step is below the
    resolution of x, or the gradient has not halved in ``STALL_STEPS`` accepted steps (then the caller's
    KKT certificate decides whether the point is good enough).
    """
    x = x0
    with np.errstate(over="ignore", invalid="ignore"):
        val, grad, hess, done, state = fun(x)
    if not (np.isfinite(val) and np.all(np.isfinite(hess))):
        raise SolverError(f"{what}: non-finite potential at the starting point")
    best_grad, stalled = float(np.max(np.abs(grad))), 0
    for _ in range(MAX_NEWTON):
        if done:
            return x, state
        try:
            step = -dense_solve(hess, grad, assume_a="pos")
        except np.linalg.LinAlgError as exc:
            raise SolverError(f"{what}: singular Newton system ({exc})") from None
        if np.all(np.abs(step) <= 4 * EPS * (1.0 + np.abs(x))):
            return x, state
        t = 1.0
        for _ in range(MAX_HALVINGS):
            trial = x + t * step
            with np.errstate(over="ignore", invalid="ignore"):
                tv, tg, th, tdone, tstate = fun(trial)
            finite = np.isfinite(tv) and np.all(np.isfinite(tg)) and np.all(np.isfinite(th))
            if finite and tv <= val + ARMIJO * t * float(grad @ step) + _slack(val):
                break
            t *= 0.5
        else:
            raise SolverError(f"{what}: Newton line search failed")
        x, val, grad, hess, done, state = trial, tv, tg, th, tdone, tstate
        size = float(np.max(np.abs(grad)))
        if size <= 0.5 * best_grad:
            best_grad, stalled = size, 0
        else:
            stalled += 1
            if stalled >= STALL_STEPS:
                return x, state
    if done:
        return x, state
    raise SolverError(f"{what}: Newton did not converge in {MAX_NEWTON} iterations")


def _consensus_guess(obj: ConsensusObjective, nu0: np.ndarray, beta: float) -> np.ndarray:
    """Starting consensus: the hard-coherence q* ∝ Π_j (ν_j^0)^{w_j} e^{r/β} (the τ → ∞ solution) when
    τ ≥ β and the views share an answer, else the mean of the per-view Gibbs tilts (the τ → 0 solution)."""
    log_hard = obj.weights @ log_of(nu0) + obj.task_reward / beta
    if obj.tau >= beta and np.any(np.isfinite(log_hard)):
        return softmax_log(log_hard)
    return obj.weights @ softmax_log(log_of(nu0) + obj.task_reward[None, :] / beta)


def _arithmetic_consensus(obj: ConsensusObjective, nu0: np.ndarray, beta: float) -> np.ndarray:
    """(E5) with the arithmetic consensus by Newton on the potential Ψ(ℓ) of the module docstring."""
    w, tau, r = obj.weights, obj.tau, obj.task_reward
    gamma = tau / (beta + tau)
    log_a = (beta * log_of(nu0) + r[None, :]) / (beta + tau)  # (m, K), −inf off each support
    log_w = np.log(w)

    def fun(ell: np.ndarray):
        with np.errstate(divide="ignore"):
            x = logsumexp(log_w[:, None] + log_a - ell[:, None], axis=0) * (beta + tau) / beta  # (K,) log q
        log_nu = log_a + gamma * x[None, :] - ell[:, None]  # (m, K)
        mass = np.exp(logsumexp(log_nu, axis=1))  # (m,)
        val = (1 - gamma) * float(np.exp(logsumexp(x))) + float(w @ ell)
        grad = w * (1.0 - mass)
        nu = np.exp(log_nu)
        q = np.exp(x)
        pos = q > 0
        M = w[:, None] * nu[:, pos]  # (m, |pos|)
        hess = np.diag(w * mass) + (gamma / (1 - gamma)) * (M / q[pos]) @ M.T
        return val, grad, hess, float(np.max(np.abs(1.0 - mass))) <= MASS_TOL, log_nu

    q0 = _consensus_guess(obj, nu0, beta)
    ell0 = logsumexp(log_a + gamma * log_of(q0)[None, :], axis=1)
    _, log_nu = _newton_minimize(fun, ell0, "arithmetic consensus")
    return softmax_log(log_nu)


def _inverse_phi(y: np.ndarray, c: float) -> np.ndarray:
    """δ with c(e^δ − 1) + δ = y, elementwise (c ≥ 0). The left side is convex and increasing with slope
    ≥ 1, and δ₀ = y/(1 + c) lies right of the root (δ(y) ≤ y/(1+c) by concavity of the inverse), so Newton
    decreases monotonically to it; all quantities stay O(|y|) however large c is."""
    d = y / (1.0 + c)
    for _ in range(MAX_NEWTON):
        step = (c * np.expm1(d) + d - y) / (c * np.exp(d) + 1.0)
        d = d - step
        if np.all(np.abs(step) <= 4 * EPS * (1.0 + np.abs(d))):
            return d
    raise SolverError("geometric consensus: per-answer equation did not converge")


def _geometric_inner(bp: np.ndarray, eta: float, c: float, tau: float, w: np.ndarray):
    """Per answer of the common support: t = log q(z) and δ_j = log(q(z)/ν_j(z)) from

        c(e^{δ_j} − 1) + δ_j = t − b'_j   (view j's stationarity, c = τ/β),   Σ_j w_j δ_j = −η'/τ.

    Σ_j w_j δ_j(t) is concave and increasing in t, and below −η'/τ at t₀ = Σ w b' − (1+c)max(η'/τ, 0) − 1,
    so Newton from t₀ increases monotonically to the root. Returns (t, δ), shapes (|C|,), (m, |C|).
    """
    t = w @ bp - (1.0 + c) * max(eta / tau, 0.0) - 1.0
    for _ in range(MAX_NEWTON):
        delta = _inverse_phi(t[None, :] - bp, c)
        h = w @ delta + eta / tau
        step = -h / (w @ (1.0 / (c * np.exp(delta) + 1.0)))
        t = t + step
        if np.all(np.abs(step) <= 4 * EPS * (1.0 + np.abs(t))):
            return t, _inverse_phi(t[None, :] - bp, c)
    raise SolverError("geometric consensus: per-answer equation did not converge")


def _geometric_consensus(obj: ConsensusObjective, nu0: np.ndarray, beta: float) -> np.ndarray:
    """(E5) with the geometric consensus: Newton on the convex dual in the m + 1 normalization multipliers.

    Lagrangian Σ_j w_j[⟨r,ν_j⟩ − βKL(ν_j‖ν_j^0) − τKL(q‖ν_j) − μ_j(Σν_j − 1)] − η(Σq − 1). Stationarity in
    ν_j: β log(ν_j/ν_j^0) − τq/ν_j = r − β − μ_j; in q: log q = Σ_j w_j log ν_j − 1 − η/τ. The multipliers
    are shifted by their τ → ∞ values, μ_j = μ'_j + τ and η = η' − τ, and each answer is solved in
    δ_j = log(q/ν_j) (see :func:`_geometric_inner`), so no quantity of size τ/β is ever formed: the
    solver keeps full precision for large τ/β (where ν_j → q and δ → 0).
    Answers outside the common support have q = 0 and ν_j = ν_j^0 e^{(r − β − μ_j)/β}.
    """
    w, tau, r = obj.weights, obj.tau, obj.task_reward
    m = obj.n_views
    on = np.all(nu0 > 0, axis=0)
    common = np.flatnonzero(on)
    if common.size == 0:
        raise InfeasibleError("geometric consensus: the views' reference supports share no answer, so D = +inf")
    log_nu0 = log_of(nu0)
    c = tau / beta

    def fun(y: np.ndarray):
        mu, eta = y[:m], y[m]
        bp = log_nu0 + (r[None, :] - beta - mu[:, None]) / beta  # (m, K): b'_j
        t, delta = _geometric_inner(bp[:, common], eta, c, tau, w)
        log_nu = bp - c  # off the common support (q = 0)
        log_nu[:, common] = t[None, :] - delta
        nu = np.exp(log_nu)
        q = np.zeros(nu.shape[1])
        q[common] = np.exp(t)
        inv = np.ones_like(nu)  # 1/φ' = 1/(1 + τq/(βν)); 1 off the common support
        inv[:, common] = 1.0 / (c * np.exp(delta) + 1.0)
        S = w @ inv[:, common]  # (|C|,)
        mass, total = nu.sum(axis=1), q.sum()
        with np.errstate(invalid="ignore"):
            own = np.where(nu > 0, nu * (r[None, :] - beta * (log_nu - log_nu0)), 0.0).sum(axis=1)
        coupling = tau * float(q[common] @ (w @ (np.expm1(-delta) + delta)))
        coupling += tau * float(w @ nu[:, ~on].sum(axis=1))
        val = float(w @ (own - mu * (mass - 1.0))) - eta * (total - 1.0) - coupling
        grad = np.concatenate([w * (1.0 - mass), [1.0 - total]])
        nk = nu[:, common] * (1.0 - inv[:, common])  # ν_j (1 − 1/φ'_j)
        hess = np.zeros((m + 1, m + 1))
        hess[:m, :m] = np.diag(w * (nu * inv).sum(axis=1) / beta)
        hess[:m, :m] += (w[:, None] * nk / (beta * S)) @ (w[:, None] * inv[:, common]).T
        hess[:m, :m] = 0.5 * (hess[:m, :m] + hess[:m, :m].T)
        hess[:m, m] = hess[m, :m] = w * (nk / (tau * S)).sum(axis=1)
        hess[m, m] = float(np.sum(q[common] / (tau * S)))
        done = max(float(np.max(np.abs(1.0 - mass))), abs(1.0 - total)) <= MASS_TOL
        return val, grad, hess, done, log_nu

    # Start where every view equals the guess q (δ = 0): stationarity gives μ'_j (averaged over q), η' = 0.
    q0 = _consensus_guess(obj, nu0, beta)
    keep = (q0 > 0) & on  # off the common support log ν_j^0 = −inf would make μ'_j infinite
    with np.errstate(invalid="ignore"):
        mu0 = (q0[keep] * (r[keep][None, :] - beta * (np.log(q0[keep])[None, :] - log_nu0[:, keep]))).sum(axis=1)
    _, log_nu = _newton_minimize(fun, np.concatenate([mu0 - beta, [0.0]]), "geometric consensus")
    return softmax_log(log_nu)


def _majority_consensus(obj: ConsensusObjective, nu0: np.ndarray, beta: float) -> tuple[np.ndarray, str, str]:
    """(E5) with the majority consensus (adopted D = −Σ_j w_j log ν_j(z*), z* = mode of q̄).

    For a fixed z*, view j solves max ⟨r,ν⟩ − βKL(ν‖ν_j^0) + τ log ν(z*), i.e.
    max β log S_j − βKL(ν‖p_j) + τ log ν(z*)
    with p_j ∝ ν_j^0 e^{r/β}: ν keeps p_j's shape off z* and x = ν(z*) solves β(y − logit p) = τ/x,
    y = logit x (increasing, concave in y: monotone Newton from y = logit p). All (j, z*) at once.
    """
    w, tau, r = obj.weights, obj.tau, obj.task_reward
    m, K = nu0.shape
    common = np.flatnonzero(np.all(nu0 > 0, axis=0))
    if common.size == 0:
        raise InfeasibleError("majority consensus: the views' reference supports share no answer")
    logits = log_of(nu0) + r[None, :] / beta
    log_s = logsumexp(logits, axis=1)  # (m,)
    log_p = logits - log_s[:, None]  # (m, K)
    with np.errstate(divide="ignore"):
        log_1mp = np.log1p(-np.exp(log_p))  # log(1 − p), accurate for p <= 1/2 ...
    # ... and, for the (at most one per view) p > 1/2, from the other answers' mass
    rows, cols = np.nonzero(log_p > np.log(0.5))
    for j, z in zip(rows, cols, strict=True):
        log_1mp[j, z] = logsumexp(np.delete(log_p[j], z)) if K > 1 else -np.inf
    lp, l1 = log_p[:, common], log_1mp[:, common]
    y0 = lp - l1
    y = y0.copy()
    single = ~np.isfinite(y0)  # view j has only answer z in its support: ν_j = δ_z
    y[single] = 0.0
    for _ in range(MAX_NEWTON):
        psi = beta * (y - np.where(single, 0.0, y0)) - tau * (1.0 + np.exp(-y))
        step = psi / (beta + tau * np.exp(-y))
        y = y - np.where(single, 0.0, step)
        if np.all(np.abs(np.where(single, 0.0, step)) <= 4 * EPS * (1.0 + np.abs(y))):
            break
    else:
        raise SolverError("majority consensus: per-view mode equation did not converge")
    log_x = np.where(single, 0.0, -np.logaddexp(0.0, -y))
    log_1mx = np.where(single, -np.inf, log_x - y)
    x = np.exp(log_x)
    with np.errstate(invalid="ignore"):
        kl2 = x * (log_x - lp) + np.where(single, 0.0, (1.0 - x) * (log_1mx - l1))
    values = w @ (beta * log_s[:, None] - beta * kl2 + tau * log_x)  # (|C|,) relaxed (E5) per mode
    order = np.argsort(-values, kind="stable")
    for rank, i in enumerate(order):
        z = int(common[i])
        log_nu = log_p + (log_1mx[:, i] - l1[:, i])[:, None]
        log_nu[:, z] = log_x[:, i]
        nus = np.exp(log_nu)
        nus /= nus.sum(axis=1, keepdims=True)
        if int(np.argmax(w @ nus)) == z:
            if rank == 0:
                return (
                    nus,
                    "optimal",
                    f"mode z* = {z} (the relaxation's optimum is consistent with the mode of q̄)",
                )
            return (
                nus,
                "stationary",
                (
                    f"mode z* = {z}: the relaxation's best modes were not the mode of q̄; "
                    f"best consistent candidate (rank {rank}), not certified global"
                ),
            )
    raise SolverError("majority consensus: no mode choice is consistent with the mode of the arithmetic mean")


def _pairwise_newton(obj: PairwiseObjective, nu0: np.ndarray, beta: float) -> np.ndarray:
    """(E5) with pairwise coherence: primal Newton on the stacked marginals (module docstring)."""
    m, K = nu0.shape
    w, tau = obj.weights, obj.tau
    sup = np.flatnonzero(nu0.ravel() > 0)  # (N,) stacked support
    view = sup // K
    wv, rv, log0 = w[view], obj.task_reward[sup % K], np.log(nu0.ravel()[sup])
    L = obj.coupling_matrix()[sup][:, sup].tocsc()
    A = sp.csr_matrix((np.ones(sup.size), (view, np.arange(sup.size))), shape=(m, sup.size))

    def value(x: np.ndarray) -> float:
        return float(wv @ (rv * x - beta * x * (np.log(x) - log0)) - tau * x @ (L @ x))

    def spread(g: np.ndarray) -> float:
        s = g / wv
        return max(float(np.ptp(s[view == j])) / 2 for j in range(m))

    x = nu0.ravel()[sup].copy()
    for _ in range(MAX_NEWTON):
        g = wv * (rv - beta * (np.log(x) - log0 + 1.0)) - 2 * tau * (L @ x)
        if spread(g) <= 0.01 * KKT_TARGET:
            break
        P = (sp.diags(beta * wv / x) + 2 * tau * L).tocsc()
        lu = splu(P)
        Pg = lu.solve(g)
        PA = lu.solve(A.T.toarray())  # (N, m)
        y = np.linalg.solve(A @ PA, A @ Pg)
        d = Pg - PA @ y  # ascent direction on {Σ_view d = 0}
        neg = d < 0
        t = min(1.0, BOUNDARY_FRACTION * float(np.min(-x[neg] / d[neg]))) if np.any(neg) else 1.0
        f0 = value(x)
        for _ in range(MAX_HALVINGS):
            trial = x + t * d
            if np.all(trial > 0) and value(trial) >= f0 + ARMIJO * t * float(g @ d) - _slack(f0):
                break
            t *= 0.5
        else:
            raise SolverError("pairwise coherence: Newton line search failed")
        x = trial
    else:
        raise SolverError(f"pairwise coherence: Newton did not converge in {MAX_NEWTON} iterations")
    nus = np.zeros(m * K)
    nus[sup] = x
    nus = nus.reshape(m, K)
    return nus / nus.sum(axis=1, keepdims=True)


# ====================================================================== dispatch
def _check(sol: AnswerSolution) -> AnswerSolution:
    if not np.isfinite(sol.value) or not np.all(np.isfinite(sol.nu)):
        raise SolverError(f"{sol.solver}: non-finite result")
    if sol.status != "vertex" and sol.kkt_residual > KKT_FAIL:
        raise SolverError(f"{sol.solver}: KKT residual {sol.kkt_residual:.3g} exceeds {KKT_FAIL:g} (not converged)")
    return sol


def closed_form_solution(obj, nu0: np.ndarray, beta: float, *, method: str = "closed-form") -> AnswerSolution:
    """The objective's closed form of (E2)/(E5) as a checked :class:`AnswerSolution` (inputs validated)."""
    nu = obj.closed_form(nu0, beta)
    if nu is None:
        raise SolverError(f"objective {obj.name!r} has no closed form at beta={beta}")
    status, residual, note = obj.closed_form_certificate(nu, nu0, beta)
    return _check(
        assemble(
            obj,
            nu,
            nu0,
            beta,
            (),
            None,
            method=method,
            solver="closed-form",
            status=status,
            note=note,
            residual=residual,
        )
    )


def has_exact_solver(obj) -> bool:
    """Whether :func:`solve_exact` handles this objective's family."""
    return isinstance(obj, (SeparableObjective, MajorityObjective, ConsensusObjective, PairwiseObjective))


def _solve_single(obj, nu0, beta, constraints) -> AnswerSolution:
    dual = "dual"
    if not constraints and obj.closed_form(nu0, beta) is not None:
        return closed_form_solution(obj, nu0, beta)
    if isinstance(obj, MajorityObjective):
        nu, lam, z, solved = _majority_enumeration(obj, nu0, beta, constraints)
        sub = obj.mode_subproblem(z)
        res = kkt_residual(sub, nu, nu0, beta, constraints, lam)
        return assemble(
            obj,
            nu,
            nu0,
            beta,
            constraints,
            lam,
            method=dual,
            solver="mode-enumeration+newton-dual",
            status="optimal",
            residual=res,
            note=f"mode z* = {z} ({solved} mode choices solved); kkt_residual is that of the "
            "concave problem with reward r + tau*e_z*",
        )
    if isinstance(obj, SharpenObjective) and not obj.dual_is_exact(beta):
        nu, lam, res, note = _sharpen_vertex(obj, nu0, beta, constraints)
        return assemble(
            obj,
            nu,
            nu0,
            beta,
            constraints,
            lam,
            method=dual,
            solver="highs-lp",
            status="vertex",
            residual=res,
            note=note,
        )
    if isinstance(obj, CollisionObjective) and not obj.dual_is_exact(beta):
        if not constraints:
            nu, status, note = _collision_scan(obj, nu0, beta)
            return assemble(
                obj,
                nu,
                nu0,
                beta,
                constraints,
                None,
                method=dual,
                solver="collision-scan",
                status=status,
                note=note,
            )
        nu, lam, status, note = _collision_dca(obj, nu0, beta, constraints)
        return assemble(
            obj,
            nu,
            nu0,
            beta,
            constraints,
            lam,
            method=dual,
            solver="dca+newton-dual",
            status=status,
            note=note,
        )
    if isinstance(obj, SeparableObjective):
        res = separable_dual(obj, nu0, beta, constraints)
        return assemble(
            obj,
            res.nu,
            nu0,
            beta,
            constraints,
            res.multipliers,
            method=dual,
            solver="newton-dual",
            status="optimal",
            note=f"{res.iterations} Newton steps on the multipliers",
        )
    raise SolverError(f"no exact solver for objective {obj.name!r}; use method='cvxpy'")


def _solve_multi(obj, nu0, beta) -> AnswerSolution:
    dual = "dual"
    if obj.closed_form(nu0, beta) is not None:
        return closed_form_solution(obj, nu0, beta)
    status, note = "optimal", ""
    if isinstance(obj, ConsensusObjective):
        if obj.consensus == "arithmetic":
            nus, solver = _arithmetic_consensus(obj, nu0, beta), "newton-potential"
        elif obj.consensus == "geometric":
            nus, solver = _geometric_consensus(obj, nu0, beta), "newton-dual"
        else:
            (nus, status, note), solver = _majority_consensus(obj, nu0, beta), "mode-enumeration"
    elif isinstance(obj, PairwiseObjective):
        nus, solver = _pairwise_newton(obj, nu0, beta), "newton-primal"
    else:
        raise SolverError(f"no exact solver for objective {obj.name!r}; use method='cvxpy'")
    return assemble(obj, nus, nu0, beta, (), None, method=dual, solver=solver, status=status, note=note)


def solve_exact(obj, nu0, beta: float, constraints: Sequence[LinearConstraint] = ()) -> AnswerSolution:
    """Solve (E2) (single view, optional linear constraints) or (E5) (multi-view) exactly (module docstring).

    Raises DomainError for out-of-domain parameters, InfeasibleError for infeasible constraints and
    SolverError when a method does not converge (KKT residual above ``KKT_FAIL``).
    """
    nu0, beta, constraints = validate_problem(obj, nu0, beta, constraints)
    if isinstance(obj, MultiViewObjective):
        return _check(_solve_multi(obj, nu0, beta))
    return _check(_solve_single(obj, nu0, beta, constraints))
