"""Exact solvers of (E5) for the consensus objectives (no constraints; τ = 0 and τ = inf are closed forms).

* **arithmetic**: the alternating best responses ν_j ∝ (ν_j^0)^{β/(β+τ)} q^{τ/(β+τ)} e^{r/(β+τ)},
  q = Σ w_j ν_j are the stationarity conditions of the convex potential
  Ψ(ℓ) = (1−γ) Σ_z exp(x_z(ℓ)) + Σ_j w_j ℓ_j, γ = τ/(β+τ), x_z = LSE_j(log w_j + log A_jz − ℓ_j)/(1−γ),
  whose minimizer (m unknowns ℓ_j = log-normalizers) is found by Newton — instead of iterating the
  best responses, which converge only linearly.
* **geometric**: for per-view multipliers μ_j and the consensus multiplier η each answer is
  solved exactly (a monotone scalar equation in log q(z), with δ_j = log(q/ν_j) from a convex scalar
  equation; no quantity of size τ/β is formed, so large τ/β keeps full precision); the m + 1 multipliers
  minimize the convex dual by Newton with implicit-function derivatives. (THEORY's suggestion —
  alternating per-view root finding and q ∝ Π ν_j^{w_j} — has the same fixed point but converges
  linearly.)
* **majority**: exact over the mode choice z* of the relaxation D' = min_z Σ_j w_j KL(δ_z‖ν_j)
  (each (z*, view) is a scalar equation); the result is certified for the adopted D when z* is also the
  mode of q̄ (checked), otherwise the best consistent candidate is returned as "stationary".

Each kind of ``dagsim.objectives.consensus.CONSENSUS`` names its solver here (``ConsensusKind.solver``);
every solver returns ``(nus (m, K), solver name, status, note)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.linalg import solve as dense_solve
from scipy.special import logsumexp

from dagsim.errors import InfeasibleError, SolverError
from dagsim.objectives.base import log_of, softmax_log
from dagsim.solvers.common import ARMIJO, EPS, MAX_HALVINGS, MAX_NEWTON
from dagsim.solvers.common import slack as _slack

#: Total-mass error |Σν − 1| at which the multi-view Newton solvers stop: ~50 ulps (sums of K terms).
MASS_TOL = 1e-14
#: Accepted Newton steps without halving the gradient after which the multi-view Newton stops (the
#: quadratic phase halves it every step; stalling means rounding noise).
STALL_STEPS = 5


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


def _consensus_guess(problem) -> np.ndarray:
    """Starting consensus: the hard-coherence q* ∝ Π_j (ν_j^0)^{w_j} e^{r/β} (the τ → ∞ solution) when
    τ ≥ β and the views share an answer, else the mean of the per-view Gibbs tilts (the τ → 0 solution)."""
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
    log_hard = obj.weights @ log_of(nu0) + obj.task_reward / beta
    if obj.tau >= beta and np.any(np.isfinite(log_hard)):
        return softmax_log(log_hard)
    return obj.weights @ softmax_log(log_of(nu0) + obj.task_reward[None, :] / beta)


def _arithmetic_consensus(problem) -> np.ndarray:
    """(E5) with the arithmetic consensus by Newton on the potential Ψ(ℓ) of the module docstring."""
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
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

    q0 = _consensus_guess(problem)
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


def _geometric_consensus(problem) -> np.ndarray:
    """(E5) with the geometric consensus: Newton on the convex dual in the m + 1 normalization multipliers.

    Lagrangian Σ_j w_j[⟨r,ν_j⟩ − βKL(ν_j‖ν_j^0) − τKL(q‖ν_j) − μ_j(Σν_j − 1)] − η(Σq − 1). Stationarity in
    ν_j: β log(ν_j/ν_j^0) − τq/ν_j = r − β − μ_j; in q: log q = Σ_j w_j log ν_j − 1 − η/τ. The multipliers
    are shifted by their τ → ∞ values, μ_j = μ'_j + τ and η = η' − τ, and each answer is solved in
    δ_j = log(q/ν_j) (see :func:`_geometric_inner`), so no quantity of size τ/β is ever formed: the
    solver keeps full precision for large τ/β (where ν_j → q and δ → 0).
    Answers outside the common support have q = 0 and ν_j = ν_j^0 e^{(r − β − μ_j)/β}.
    """
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
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
    q0 = _consensus_guess(problem)
    keep = (q0 > 0) & on  # off the common support log ν_j^0 = −inf would make μ'_j infinite
    with np.errstate(invalid="ignore"):
        mu0 = (q0[keep] * (r[keep][None, :] - beta * (np.log(q0[keep])[None, :] - log_nu0[:, keep]))).sum(axis=1)
    _, log_nu = _newton_minimize(fun, np.concatenate([mu0 - beta, [0.0]]), "geometric consensus")
    return softmax_log(log_nu)


def _majority_consensus(problem) -> tuple[np.ndarray, str, str]:
    """(E5) with the majority consensus (adopted D = −Σ_j w_j log ν_j(z*), z* = mode of q̄).

    For a fixed z*, view j solves max ⟨r,ν⟩ − βKL(ν‖ν_j^0) + τ log ν(z*), i.e.
    max β log S_j − βKL(ν‖p_j) + τ log ν(z*)
    with p_j ∝ ν_j^0 e^{r/β}: ν keeps p_j's shape off z* and x = ν(z*) solves β(y − logit p) = τ/x,
    y = logit x (increasing, concave in y: monotone Newton from y = logit p). All (j, z*) at once.
    """
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
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



def arithmetic(problem) -> tuple[np.ndarray, str, str, str]:
    """Arithmetic consensus: Newton on the potential Ψ (module docstring)."""
    return _arithmetic_consensus(problem), "newton-potential", "optimal", ""


def geometric(problem) -> tuple[np.ndarray, str, str, str]:
    """Geometric consensus: Newton on the (m + 1)-multiplier dual (module docstring)."""
    return _geometric_consensus(problem), "newton-dual", "optimal", ""


def majority(problem) -> tuple[np.ndarray, str, str, str]:
    """Majority consensus: enumeration of the mode choice (module docstring)."""
    nus, status, note = _majority_consensus(problem)
    return nus, "mode-enumeration", status, note
