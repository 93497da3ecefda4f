"""Trace-level solvers on a DAG: L-BFGS over edge logits for (E1) (P3), and the restricted class (P4).

(E1)  maximize_θ  J(θ) = Φ(ν_θ) − β·KL(π_θ ‖ π0),  π_θ = softmax of edge logits per node.

Both the value and the gradient are exact: ν_θ and KL by forward DP, the gradient by the backward DP
(T9 for Φ, the cost-to-go recursion for the KL). P3 says the optimum equals the answer-level program
(E2); this solver is the independent confirmation of that reduction.

A *restricted* class ties the logits through shared features, ``logit = log π0 + F θ`` with ``F`` of
shape ``(n_edges, d)`` (θ = 0 is the reference). Its Policy best response to an answer reward is no
longer the Gibbs tilt but its I-projection onto the class (P4): solved here with the same machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from dagsim.dag import ReasoningDAG
from dagsim.errors import DomainError, SolverError
from dagsim.marginals import forward, logit_gradient, trace_kl, trace_kl_gradient

#: L-BFGS stops when the projected gradient is below this (the objective is O(1): ~1e-10 relative accuracy).
LBFGS_GTOL = 1e-11
#: ... or when the relative objective change falls below this (≈ 50 float64 ulps).
LBFGS_FTOL = 1e-15
#: Logits are clipped to ±this around the reference so that no edge probability underflows to exactly 0.
LOGIT_BOX = 60.0


@dataclass(frozen=True)
class TraceSolution:
    """Result of a trace-level solve: logits (n_edges,), marginal (K,), value of (E1), KL, diagnostics."""

    logits: np.ndarray
    marginal: np.ndarray
    value: float
    kl: float
    gradient_norm: float
    iterations: int
    method: str
    status: str


def regularized_objective(dag: ReasoningDAG, phi: Callable[[np.ndarray], float],
                          phi_grad: Callable[[np.ndarray], np.ndarray], beta: float
                          ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Return θ ↦ (J(θ), ∇J(θ)) for (E1), exact by DP."""

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        fb = forward(dag, theta)
        nu = fb.marginal
        g = np.asarray(phi_grad(nu), dtype=np.float64)
        grad = logit_gradient(dag, theta, g, fb=fb) - beta * trace_kl_gradient(dag, theta, fb=fb)
        kl = trace_kl(dag, probs=fb.pi)
        return float(phi(nu)) - beta * kl, grad

    return value_and_grad


def solve_trace_level(dag: ReasoningDAG, phi: Callable[[np.ndarray], float],
                      phi_grad: Callable[[np.ndarray], np.ndarray], beta: float, *,
                      features: np.ndarray | None = None, start: np.ndarray | None = None,
                      max_iter: int = 5000) -> TraceSolution:
    """Maximize (E1) by L-BFGS-B over edge logits (tabular) or over θ with logits = log π0 + Fθ (restricted).

    Edges with π0 = 0 stay at probability 0 (their logits are not optimized). Raises SolverError if
    L-BFGS reports an abnormal termination or the result is not finite.
    """
    if not (np.isfinite(beta) and beta > 0):
        raise DomainError(f"beta must be a finite number > 0, got {beta!r}")
    base = dag.reference_logits.copy()
    free = np.isfinite(base)
    base[~free] = -np.inf
    fg = regularized_objective(dag, phi, phi_grad, beta)
    if features is None:
        n_params = int(free.sum())

        def to_logits(x):
            out = base.copy()
            out[free] = base[free] + x
            return out

        def pull_back(grad):
            return grad[free]
        method = "trace-lbfgs"
    else:
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] != dag.n_edges:
            raise DomainError(f"features must have shape (n_edges={dag.n_edges}, d), got {feats.shape}")
        n_params = feats.shape[1]

        def to_logits(x):
            out = base.copy()
            out[free] = base[free] + (feats @ x)[free]
            return out

        def pull_back(grad):
            return feats[free].T @ grad[free]
        method = "restricted-lbfgs"

    def neg(x):
        val, grad = fg(to_logits(x))
        return -val, -pull_back(grad)

    x0 = np.zeros(n_params) if start is None else np.asarray(start, dtype=np.float64)
    res = minimize(neg, x0, jac=True, method="L-BFGS-B",
                   bounds=[(-LOGIT_BOX, LOGIT_BOX)] * n_params if features is None else None,
                   options={"maxiter": max_iter, "maxfun": 4 * max_iter, "gtol": LBFGS_GTOL, "ftol": LBFGS_FTOL,
                            "maxcor": 30})
    if not np.isfinite(res.fun) or not np.all(np.isfinite(res.x)):
        raise SolverError(f"{method}: non-finite result ({res.message})")
    status = "optimal" if res.success else "stopped"
    if not res.success and "ABNORMAL" in str(res.message).upper() and np.linalg.norm(res.jac, np.inf) > 1e-6:
        gnorm = np.linalg.norm(res.jac, np.inf)
        raise SolverError(f"{method}: L-BFGS failed: {res.message} (gradient norm {gnorm:.2e})")
    logits = to_logits(res.x)
    fb = forward(dag, logits)
    return TraceSolution(logits=logits, marginal=fb.marginal, value=-float(res.fun),
                         kl=trace_kl(dag, probs=fb.pi), gradient_norm=float(np.linalg.norm(res.jac, np.inf)),
                         iterations=int(res.nit), method=method, status=status)


def restricted_best_response(dag: ReasoningDAG, answer_reward: np.ndarray, beta: float, features: np.ndarray,
                             ) -> TraceSolution:
    """The Policy's best response within the class logit = log π0 + Fθ (P4): the I-projection of the
    Gibbs-tilted reference onto the class, i.e. argmax_θ E_θ[g] − β KL(π_θ‖π0)."""
    g = np.asarray(answer_reward, dtype=np.float64)
    return solve_trace_level(dag, lambda nu: float(g @ nu), lambda nu: g, beta, features=features)


def reach_features(dag: ReasoningDAG, n_features: int | None = None) -> np.ndarray:
    """Shared edge features for a restricted class: "progress toward answer k", shape ``(n_edges, k)``.

    Feature k of edge (u, v) is h_k(v) − h_k(u), where h_k(x) is the probability under π0 that a trace
    through x ends in answer k. All edges share the same d = k parameters, so the class is much smaller
    than the tabular one (n_edges parameters); it is truncated to the first ``n_features`` answers.
    """
    from dagsim.marginals import answer_reach_probability

    k = dag.n_answers if n_features is None else min(n_features, dag.n_answers)
    feats = np.empty((dag.n_edges, k))  # (n_edges, k)
    for z in range(k):
        h = answer_reach_probability(dag, dag.edge_prob, z)  # (n_nodes,)
        feats[:, z] = h[dag.edge_dst] - h[dag.edge_src]
    return feats


@dataclass(frozen=True)
class RestrictedGap:
    """(E1) over a restricted log-linear class vs the tabular optimum (P4: a real projection)."""

    tabular_value: float
    restricted_value: float
    gap: float  # tabular − restricted ≥ 0 (up to solver tolerance)
    tabular_marginal: np.ndarray
    restricted_marginal: np.ndarray
    n_features: int


def restricted_gap(dag: ReasoningDAG, phi: Callable[[np.ndarray], float],
                   phi_grad: Callable[[np.ndarray], np.ndarray], beta: float, features: np.ndarray) -> RestrictedGap:
    """Solve (E1) over the tabular class and over logit = log π0 + Fθ; report the value gap (≥ 0)."""
    tab = solve_trace_level(dag, phi, phi_grad, beta)
    res = solve_trace_level(dag, phi, phi_grad, beta, features=features)
    return RestrictedGap(tab.value, res.value, tab.value - res.value, tab.marginal, res.marginal,
                         int(np.asarray(features).shape[1]))
