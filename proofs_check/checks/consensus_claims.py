"""T3 (consensus targets) and T4 (Pythagorean identity of the geometric consensus, Jensen bound of the
arithmetic one) on random views: answer marginals of random DAGs over a shared answer space, random weights.

Oracles: scipy L-BFGS on the defining minimizations over the simplex (T3), tempering q ∝ q̄^α evaluated in
log space (T3), and KL divergences written here (T4).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from dagsim.objectives import make_objective
from dagsim.objectives.consensus import arithmetic_consensus, geometric_consensus
from dagsim.tolerances import LBFGS
from proofs_check.checks._subclaims import SubClaim, combine, kl, reference_marginal
from proofs_check.registry import Context, Evidence, check

#: ‖q_α − δ_mode‖₁ at the α where (q̄₂/q̄₁)^α = e^{−TEMPER_EXPONENT}: ≤ (K − 1)·e^{−40} ~ 1e-17, plus round-off.
TOL_TEMPER = 1e-12
TEMPER_EXPONENT = 40.0
#: The Pythagorean identity is exact; both sides are float64 sums of ≤ 8 terms of size ≤ ~30 (log of DAG
#: marginals ≥ ~1e-12), so round-off is ~1e-14.
TOL_IDENTITY = 1e-12
#: Inequalities between float64 log-sums that hold exactly: slack for round-off only.
TOL_ROUND = 1e-12


def _views(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """(ν_1..ν_m) ``(m, K)`` answer marginals of random DAGs sharing K answers, weights w ``(m,)``."""
    m = int(ctx.rng.integers(2, 5))
    k = int(ctx.rng.integers(2, 7))
    nus = np.stack([reference_marginal(ctx.rng, k) for _ in range(m)])
    return nus, ctx.rng.dirichlet(np.ones(m))


def _argmin_simplex(fun_grad, k: int) -> tuple[np.ndarray, float]:
    """min over q ∈ Δ(K) of a smooth function given as (value, ∂/∂q), by L-BFGS on q = softmax(θ)."""

    def obj(theta):
        q = np.exp(theta - logsumexp(theta))
        val, dq = fun_grad(q)
        return val, q * (dq - q @ dq)

    res = minimize(obj, np.zeros(k), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 5000})
    q = np.exp(res.x - logsumexp(res.x))
    return q, float(res.fun)


def _t3(ctx: Context, *, flipped: bool = False) -> Evidence:
    subs = {
        "arithmetic": SubClaim("argmin_q Σ w_j KL(ν_j‖q) = Σ w_j ν_j (target and D of 'arithmetic')",
                               LBFGS),
        "geometric": SubClaim("argmin_q Σ w_j KL(q‖ν_j) ∝ Π ν_j^{w_j} (target and D of 'geometric')",
                              LBFGS),
        "majority_limit": SubClaim("q ∝ q̄^α → the 'majority' target (δ at the mode of q̄) as α → ∞, "
                                   "monotonically", TOL_TEMPER),
    }
    for _ in range(ctx.n(30, 8)):
        nus, w = _views(ctx)
        k = nus.shape[1]
        log_nus = np.log(nus)

        def views_first(q, w=w, nus=nus):  # Σ_j w_j KL(ν_j‖q)
            return sum(wj * kl(nj, q) for wj, nj in zip(w, nus, strict=True)), -(w @ nus) / q

        def target_first(q, w=w, nus=nus, log_nus=log_nus):  # Σ_j w_j KL(q‖ν_j)
            return sum(wj * kl(q, nj) for wj, nj in zip(w, nus, strict=True)), np.log(q) + 1.0 - w @ log_nus

        for kind, fun in (("arithmetic", views_first), ("geometric", target_first)):
            q_opt, d_opt = _argmin_simplex(fun, k)
            # control: each KL direction compared with the other direction's consensus
            claimed = "geometric" if flipped and kind == "arithmetic" else "arithmetic" if flipped else kind
            obj = make_objective("consensus", k, tau=1.0, consensus=claimed, weights=w)
            target_err = float(np.abs(obj.target(nus) - q_opt).max())
            subs[kind].record(max(target_err, abs(obj.discrepancy(nus) - d_opt)))
        q_bar = arithmetic_consensus(nus, w)
        top2 = np.sort(q_bar)[-2:]
        if top2[1] == top2[0]:
            continue  # exact tie: the tempered limit splits the mass (probability 0 here)
        sign = -1.0 if flipped else 1.0  # control: tempering q ∝ q̄^{−α}
        alphas = sign * TEMPER_EXPONENT / np.log(top2[1] / top2[0]) * np.geomspace(1e-3, 1.0, 13)
        target = make_objective("consensus", k, tau=1.0, consensus="majority", weights=w).target(nus)
        dists = [float(np.abs(np.exp(a * np.log(q_bar) - logsumexp(a * np.log(q_bar))) - target).sum())
                 for a in alphas]
        subs["majority_limit"].record(max(dists[-1], float(np.max(np.diff(dists), initial=0.0))))
    return combine(subs)


check("T3", "consensus targets: arithmetic / normalized geometric means minimize D (= scipy); majority = "
            "limit of tempering q ∝ q̄^α",
      control=lambda ctx: _t3(ctx, flipped=True),
      control_description="KL direction flipped (means swapped); tempering q ∝ q̄^(−α)")(_t3)


def _t4(ctx: Context, *, consensus: str = "geometric", jensen_direction: float = 1.0) -> Evidence:
    subs = {
        "pythagorean": SubClaim("Σ_j w_j KL(u‖ν_j) = KL(u‖q) + Σ_j w_j KL(q‖ν_j), q geometric consensus",
                                TOL_IDENTITY),
        "gap": SubClaim("the gap Σ w KL(u‖ν_j) − KL(u‖q) = −log Σ_z Π_j ν_j(z)^{w_j} = D_geo ≥ 0",
                        TOL_IDENTITY),
        "jensen": SubClaim("−log q̄(z) ≤ Σ_j w_j (−log ν_j(z)) for every z, q̄ arithmetic consensus",
                           TOL_ROUND),
    }
    for _ in range(ctx.n(200, 40)):
        nus, w = _views(ctx)
        m, k = nus.shape
        if ctx.rng.random() < 0.5:  # a point mass (the correct answer) or a spread-out truth
            u = np.eye(k)[int(ctx.rng.integers(k))]
        else:
            u = ctx.rng.dirichlet(np.full(k, 0.5))
        # control: the arithmetic mean in place of the geometric consensus
        q = geometric_consensus(nus, w) if consensus == "geometric" else arithmetic_consensus(nus, w)
        views_avg = sum(wj * kl(u, nj) for wj, nj in zip(w, nus, strict=True))
        to_q = sum(wj * kl(q, nj) for wj, nj in zip(w, nus, strict=True))
        subs["pythagorean"].record(abs(views_avg - (kl(u, q) + to_q)))
        gap = -float(logsumexp(w @ np.log(nus)))
        d_geo = make_objective("consensus", k, tau=1.0, consensus="geometric", weights=w).discrepancy(nus)
        subs["gap"].record(max(abs(views_avg - kl(u, q) - gap), abs(gap - d_geo), max(0.0, -gap)))
        lhs = -np.log(arithmetic_consensus(nus, w))  # (K,)
        rhs = w @ (-np.log(nus))  # (K,)
        subs["jensen"].record(max(0.0, float(np.max(jensen_direction * (lhs - rhs)))))  # control: reversed
    return combine(subs)


check("T4", "geometric consensus: Σ w KL(u‖ν_j) = KL(u‖q) + Σ w KL(q‖ν_j) exactly; arithmetic: Jensen bound",
      control=lambda ctx: _t4(ctx, consensus="arithmetic", jensen_direction=-1.0),
      control_description="arithmetic mean in the identity; Jensen bound reversed")(_t4)
