"""Multi-view coherence through a consensus (THEORY §4 "Multi-view coherence", E5, T3, T4).

Φ(ν_1..ν_m) = Σ_j w_j ⟨r, ν_j⟩ − τ·D(ν_1..ν_m), with the consensus discrepancy

* **arithmetic**: D = min_q Σ_j w_j KL(ν_j‖q) = Σ_j w_j KL(ν_j‖q̄), q̄ = Σ_j w_j ν_j (T3);
* **geometric**:  D = min_q Σ_j w_j KL(q‖ν_j) = −log Σ_z Π_j ν_j(z)^{w_j}, q ∝ Π_j ν_j^{w_j} (T3);
* **majority** (adopted definition, THEORY fixes only the target): the target is the point mass on the
  mode z* of q̄ (ties: lowest index), the limit α → ∞ of the tempered consensus q ∝ q̄^α, and
  D = Σ_j w_j KL(δ_{z*}‖ν_j) = −Σ_j w_j log ν_j(z*) — the geometric discrepancy evaluated at that target.
  It is concave for a fixed mode but not globally (the mode switches), hence ``is_concave_regime`` False.

``tau=inf`` is hard coherence: Φ = Σ w_j⟨r, ν_j⟩ if all views are equal, −inf otherwise; (E5) then has
the closed form q* ∝ Π_j (ν_j^0)^{w_j} e^{r/β} for every consensus kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp, rel_entr

from dagsim.errors import DomainError, InfeasibleError
from dagsim.objectives.base import (
    MultiViewObjective,
    check_beta,
    log_of,
    register,
    softmax_log,
)


def arithmetic_consensus(nus: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """q̄ = Σ_j w_j ν_j, ``(K,)``: the minimizer of Σ_j w_j KL(ν_j‖q) (T3)."""
    return weights @ nus


def geometric_consensus(nus: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """q ∝ Π_j ν_j^{w_j}, ``(K,)``: the minimizer of Σ_j w_j KL(q‖ν_j) (T3), in log space."""
    log_g = weights @ log_of(nus)  # (K,)
    if not np.any(np.isfinite(log_g)):
        raise DomainError("geometric consensus: the views share no answer with positive probability")
    return softmax_log(log_g)


def majority_consensus(nus: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Point mass on the mode of q̄ = Σ_j w_j ν_j (ties: lowest index), ``(K,)``."""
    q = np.zeros(nus.shape[1])
    q[int(np.argmax(weights @ nus))] = 1.0
    return q


def _arithmetic_discrepancy(nus: np.ndarray, w: np.ndarray) -> float:
    """Σ_j w_j KL(ν_j‖q̄) (T3)."""
    q = arithmetic_consensus(nus, w)
    return float(np.sum(w[:, None] * rel_entr(nus, q[None, :])))


def _geometric_discrepancy(nus: np.ndarray, w: np.ndarray) -> float:
    """−log Σ_z Π_j ν_j(z)^{w_j} (T3)."""
    return float(-logsumexp(w @ log_of(nus)))


def _majority_discrepancy(nus: np.ndarray, w: np.ndarray) -> float:
    """−Σ_j w_j log ν_j(z*), z* the mode of q̄ (adopted definition)."""
    z = int(np.argmax(w @ nus))
    return float(-(w @ log_of(nus[:, z])))


def _arithmetic_gradient(nus: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(m, K) coupling part of the reward, −(∂D/∂ν_j)/w_j = log q̄ − log ν_j (r + τ log w_j where q̄ = 0)."""
    q = arithmetic_consensus(nus, w)
    grad = log_of(q)[None, :] - log_of(nus)  # (m, K)
    return np.where(q[None, :] > 0, grad, np.log(w)[:, None])


def _geometric_gradient(nus: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(m, K) coupling part q/ν_j (+inf where ν_j = 0 but every other view is positive; 0 where q = 0)."""
    q = geometric_consensus(nus, w)
    grad = q[None, :] / nus
    zero = nus == 0
    others_positive = np.array(
        [np.all(np.delete(nus, j, axis=0) > 0, axis=0) for j in range(nus.shape[0])]
    )  # (m, K)
    return np.where(zero, np.where(others_positive, np.inf, 0.0), grad)


def _majority_gradient(nus: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(m, K) coupling part 1[z = z*]/ν_j(z*)."""
    z = int(np.argmax(w @ nus))
    grad = np.zeros_like(nus)
    grad[:, z] = 1.0 / nus[:, z]
    return grad


def _shared_support(kind: str, common: np.ndarray) -> None:
    if common.size == 0:
        raise InfeasibleError(
            f"{kind} consensus: the views' reference supports share no answer, so D = +inf for every policy"
        )


def _arithmetic_cvxpy(obj, base, xs, supports, full, common) -> list:
    """−τ Σ_j w_j rel_entr(ν_j, q̄) with q̄ affine in the views."""
    import cvxpy as cp

    w = obj.weights
    qbar = sum(w[j] * full[j] for j in range(obj.n_views))
    disc = sum(w[j] * cp.sum(cp.rel_entr(x, qbar[s])) for j, (x, s) in enumerate(zip(xs, supports, strict=False)))
    return [(base - obj.tau * disc, [])]


def _geometric_cvxpy(obj, base, xs, supports, full, common) -> list:
    """The consensus q as an extra variable: −τ Σ_j w_j rel_entr(q, ν_j) (jointly concave)."""
    import cvxpy as cp

    _shared_support("geometric", common)
    w = obj.weights
    q = cp.Variable(common.size, nonneg=True)
    disc = sum(w[j] * cp.sum(cp.rel_entr(q, full[j][common])) for j in range(obj.n_views))
    return [(base - obj.tau * disc, [cp.sum(q) == 1])]


def _majority_cvxpy(obj, base, xs, supports, full, common) -> list:
    """One piece per mode z* (exact for the relaxation D' = min_z Σ w_j KL(δ_z‖ν_j), see solvers)."""
    import cvxpy as cp

    _shared_support("majority", common)
    w = obj.weights
    return [(base + obj.tau * sum(w[j] * cp.log(full[j][z]) for j in range(obj.n_views)), []) for z in common]


@dataclass(frozen=True)
class ConsensusKind:
    """Everything one consensus kind contributes (one entry of :data:`CONSENSUS`).

    ``target(nus, w)``: q (T3), (K,); ``discrepancy(nus, w)``: D ≥ 0; ``gradient(nus, w)``: (m, K), the
    coupling part of the per-view reward (``rewards = r + τ·gradient``); ``cvxpy(obj, base, xs, supports,
    full, common)``: the DCP pieces of (E5); ``concave``: whether (E5) is concave for every τ;
    ``solver``: the name of its exact solver in ``dagsim.solvers.consensus``.
    """

    name: str
    target: Callable[[np.ndarray, np.ndarray], np.ndarray]
    discrepancy: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    cvxpy: Callable[..., list]
    concave: bool
    solver: str


#: The consensus kinds, by name: the one place that knows them (THEORY §4, T3).
CONSENSUS: dict[str, ConsensusKind] = {
    k.name: k
    for k in (
        ConsensusKind("arithmetic", arithmetic_consensus, _arithmetic_discrepancy, _arithmetic_gradient,
                      _arithmetic_cvxpy, concave=True, solver="arithmetic"),
        ConsensusKind("geometric", geometric_consensus, _geometric_discrepancy, _geometric_gradient,
                      _geometric_cvxpy, concave=True, solver="geometric"),
        # concave for a fixed mode only (the mode switches): see the module docstring
        ConsensusKind("majority", majority_consensus, _majority_discrepancy, _majority_gradient,
                      _majority_cvxpy, concave=False, solver="majority"),
    )
}
CONSENSUS_KINDS = tuple(CONSENSUS)


@register("consensus")
class ConsensusObjective(MultiViewObjective):
    """Φ of (E5) with an arithmetic, geometric or majority consensus (see the module docstring).

    ``rewards(nus)[j]`` (exact gradients (∂Φ/∂ν_j)/w_j, as in THEORY §4):
    arithmetic r + τ(log q̄ − log ν_j) (at answers no view produces: r + τ log w_j, the limit);
    geometric r + τ q/ν_j; majority r + τ 1[z = z*]/ν_j(z*).
    """

    def __init__(
        self,
        n_answers: int,
        *,
        reward: Any = None,
        tau: float = 1.0,
        consensus: str = "arithmetic",
        weights: Any = None,
        n_views: Any = None,
    ) -> None:
        super().__init__(n_answers, reward=reward, tau=tau, weights=weights, n_views=n_views, allow_inf_tau=True)
        if consensus not in CONSENSUS_KINDS:
            raise DomainError(f"consensus must be one of {CONSENSUS_KINDS}, got {consensus!r}")
        self.consensus = consensus
        self.kind = CONSENSUS[consensus]

    @property
    def hard(self) -> bool:
        """τ = inf: hard coherence (all views equal)."""
        return math.isinf(self.tau)

    @property
    def curvature(self) -> str:
        # majority: concave for a fixed mode only (piecewise); see is_concave_regime.
        return "linear" if self.tau == 0 else "concave"

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return self.kind.concave or self.tau == 0 or self.hard

    def exact_solve(self, problem):
        """(E5) by the kind's solver in ``solvers/consensus.py`` (τ = 0 and τ = inf: closed forms only)."""
        if self.tau == 0 or self.hard:
            raise DomainError(
                f"consensus with tau={self.tau}: the solution is the closed form (no dual solve); "
                "use method 'closed-form' or 'auto'"
            )
        from dagsim.solvers import consensus as solvers
        from dagsim.solvers.common import finish

        nus, solver, status, note = getattr(solvers, self.kind.solver)(problem)
        return finish(problem, nus, None, method="dual", solver=solver, status=status, note=note)

    def target(self, nus: np.ndarray) -> np.ndarray:
        return self.kind.target(self.check_nus(nus), self.weights)

    def discrepancy(self, nus: np.ndarray) -> float:
        """D(ν_1..ν_m) ≥ 0 of the chosen consensus (0 iff all views are equal, for arithmetic/geometric)."""
        return self.kind.discrepancy(self.check_nus(nus), self.weights)

    def value(self, nus: np.ndarray) -> float:
        nus = self.check_nus(nus)
        base = float(self.weights @ (nus @ self.task_reward))
        if self.tau == 0:
            return base
        if self.hard:
            return base if np.all(nus == nus[0]) else -math.inf
        return base - self.tau * self.discrepancy(nus)

    def rewards(self, nus: np.ndarray) -> np.ndarray:
        nus = self.check_nus(nus)
        if self.hard:
            raise DomainError("tau=inf (hard coherence) has no finite per-sample reward; use a finite tau")
        r = np.broadcast_to(self.task_reward, nus.shape)
        if self.tau == 0:
            return np.array(r)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = self.kind.gradient(nus, self.weights)  # (m, K)
        return r + self.tau * grad

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray | None:
        """τ = inf (hard coherence): all views equal q* ∝ Π_j (ν_j^0)^{w_j} e^{r/β}; τ = 0: per-view Gibbs."""
        beta = check_beta(beta)
        nu0 = self.check_nu0(nu0)
        if self.tau == 0:
            return softmax_log(log_of(nu0) + self.task_reward / beta)
        if not self.hard:
            return None
        log_q = self.weights @ log_of(nu0) + self.task_reward / beta  # (K,)
        if not np.any(np.isfinite(log_q)):
            raise InfeasibleError(
                "hard coherence (tau=inf) needs an answer in the support of every view's "
                "reference marginal; the supports are disjoint"
            )
        return np.tile(softmax_log(log_q), (self.n_views, 1))

    def closed_form_certificate(self, nus, nu0, beta):
        """τ = inf: the problem is max_q Σ_j w_j[⟨r,q⟩ − βKL(q‖ν_j^0)]; its KKT residual is the spread of
        r − β(log q − Σ_j w_j log ν_j^0) over the support of q (plus row inequality and |Σq − 1|)."""
        if not self.hard:
            return "optimal", None, ""
        q = nus[0]
        keep = q > 0
        with np.errstate(divide="ignore"):
            s = self.task_reward[keep] - beta * (np.log(q[keep]) - self.weights @ log_of(nu0[:, keep]))
        residual = max(
            float(np.ptp(s)) / 2 if s.size else 0.0, float(np.max(np.abs(nus - q))), abs(float(q.sum()) - 1.0)
        )
        return "optimal", residual, "hard coherence (tau=inf): all views equal the closed-form consensus"

    def cvxpy_projection(self, nus: np.ndarray) -> np.ndarray:
        """τ = inf: project onto the equal-views constraint (the mean of the views)."""
        return np.tile(nus.mean(axis=0), (self.n_views, 1)) if self.hard else nus

    def cvxpy_pieces(self, xs, supports, nu0, beta):
        """DCP form of (E5): arithmetic via rel_entr(ν_j, q̄) with q̄ affine; geometric with the consensus
        q as an extra variable, −τ Σ_j w_j rel_entr(q, ν_j) (jointly concave); majority: one piece per mode
        z* (exact for the relaxation D' = min_z Σ w_j KL(δ_z‖ν_j), see solvers); τ = inf: equal views."""
        import cvxpy as cp
        import scipy.sparse as sp

        K, w = self.n_answers, self.weights
        full = []
        for x, s in zip(xs, supports, strict=False):
            sel = sp.csr_matrix((np.ones(len(s)), (s, np.arange(len(s)))), shape=(K, len(s)))
            full.append(sel @ x)
        base = sum(
            w[j] * (self.task_reward[s] @ x - beta * cp.sum(cp.rel_entr(x, nu0[j, s])))
            for j, (x, s) in enumerate(zip(xs, supports, strict=False))
        )
        if self.tau == 0:
            return [(base, [])]
        if self.hard:
            return [(base, [full[j] == full[0] for j in range(1, self.n_views)])]
        common = np.flatnonzero(np.all(nu0 > 0, axis=0))
        return self.kind.cvxpy(self, base, xs, supports, full, common)

    def __repr__(self) -> str:
        return (
            f"ConsensusObjective(n_answers={self.n_answers}, n_views={self.n_views}, tau={self.tau}, "
            f"consensus={self.consensus!r})"
        )
