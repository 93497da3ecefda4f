"""The Distributional Alignment Game in answer space: tangent payoff (E3), best responses, exploitability (E4).

Both single-view objectives (E1/E2) and multi-view ones (E5) are handled through one adapter,
:class:`AnswerGame`, whose state is a stack of answer marginals ``nus`` of shape ``(m, K)`` (``m = 1`` for
a single view). Conventions: KL(p‖q) = Σ p log(p/q), natural logs, view weights ``w`` sum to 1, and the
regularized objective is ``J(ν) = Φ(ν) − β Σ_j w_j KL(ν_j ‖ ν_j^0)``.

The Policy's best response to per-answer rewards g is the Gibbs tilt ν_j ∝ ν_j^0 exp(g_j/β) (P4), which
on a DAG is realized by the soft backward DP (:func:`policy_best_response`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from dagsim.constraints import LinearConstraint
from dagsim.dag import ReasoningDAG
from dagsim.divergences import kl_divergence
from dagsim.errors import DomainError, ValidationError
from dagsim.marginals import soft_backward


def gibbs(nu0: np.ndarray, g: np.ndarray, beta: float) -> np.ndarray:
    """The Policy's best response in answer space (P4): ν ∝ ν0·exp(g/β), computed in log space.

    Answers with ν0 = 0 keep probability 0. ``nu0`` and ``g`` have shape ``(K,)`` or ``(m, K)``.
    """
    nu0 = np.asarray(nu0, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(nu0) + np.asarray(g, dtype=np.float64) / beta
    return np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))


def log_partition(nu0: np.ndarray, g: np.ndarray, beta: float) -> np.ndarray:
    """β log Σ_z ν0(z) e^{g(z)/β} = max_ν ⟨g, ν⟩ − β KL(ν‖ν0) (the Policy's best-response value)."""
    with np.errstate(divide="ignore"):
        logits = np.log(np.asarray(nu0, dtype=np.float64)) + np.asarray(g, dtype=np.float64) / beta
    return beta * logsumexp(logits, axis=-1)


@dataclass(frozen=True)
class AnswerGame:
    """Φ, its per-view rewards and the reference marginals of one game (single- or multi-view).

    ``objective`` is a single-view objective (``value(nu)``, ``reward(q)``) or a multi-view one
    (``value(nus)``, ``rewards(nus)``, ``n_views``). ``nu0`` has shape ``(m, K)``; ``weights`` ``(m,)``.
    Constraints (single view only) enter through the Lagrangian Φ − Σ_k λ_k(⟨h_k, ν⟩ − b_k) (T5).
    """

    objective: object
    nu0: np.ndarray
    beta: float
    weights: np.ndarray
    constraints: tuple[LinearConstraint, ...] = ()

    def __post_init__(self) -> None:
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise DomainError(f"beta must be a finite number > 0, got {self.beta!r}")
        nu0 = np.atleast_2d(np.asarray(self.nu0, dtype=np.float64))
        if np.any(nu0 < 0) or np.any(np.abs(nu0.sum(axis=1) - 1) > 1e-9):
            raise ValidationError("reference marginals must be probability vectors")
        object.__setattr__(self, "nu0", nu0)
        w = np.asarray(self.weights, dtype=np.float64)
        object.__setattr__(self, "weights", w)
        if self.multiview and self.constraints:
            raise DomainError("constraints are supported for single-view objectives only")
        if not self.multiview and nu0.shape[0] != 1:
            raise DomainError(f"objective {getattr(self.objective, 'name', '?')!r} is single-view but the input has "
                              f"{nu0.shape[0]} views; pick a multi-view objective (consensus, pairwise)")

    @property
    def multiview(self) -> bool:
        return hasattr(self.objective, "rewards")

    @property
    def curvature(self) -> str:
        return getattr(self.objective, "curvature", "concave")

    @property
    def n_views(self) -> int:
        return self.nu0.shape[0]

    def phi(self, nus: np.ndarray) -> float:
        """Φ(ν) (Φ(ν_1..ν_m) for multi-view objectives)."""
        return float(self.objective.value(nus if self.multiview else nus[0]))

    def rewards(self, nus: np.ndarray, multipliers: np.ndarray | None = None) -> np.ndarray:
        """Per-view rewards g_j = (∂Φ/∂ν_j)/w_j − Σ_k λ_k h_k, shape ``(m, K)`` (supergradient if nonsmooth)."""
        if self.multiview:
            g = np.asarray(self.objective.rewards(nus), dtype=np.float64)
        else:
            g = np.asarray(self.objective.reward(nus[0]), dtype=np.float64)[None, :]
        if multipliers is not None and self.constraints:
            for lam, c in zip(multipliers, self.constraints):
                h, _ = c.as_leq()
                g = g - lam * h
        return g

    def regularized_value(self, nus: np.ndarray) -> float:
        """J(ν) = Φ(ν) − β Σ_j w_j KL(ν_j‖ν_j^0) (the answer-level objective, E2/E5)."""
        kl = sum(w * kl_divergence(n, n0) for w, n, n0 in zip(self.weights, nus, self.nu0))
        return self.phi(nus) - self.beta * kl

    def payoff(self, nus: np.ndarray, targets: np.ndarray, *, policy_kl: float | None = None) -> float:
        """Tangent payoff L(π, q) = Φ(q) + Σ_j ⟨∂_jΦ(q), ν_j − q_j⟩ − β Σ_j w_j KL(π_j‖π_j^0) (E3).

        ``policy_kl`` overrides the answer-level KL with the trace-level KL(π‖π0) of a DAG policy
        (they agree for policies that keep π0's trace law given the answer, P2).
        """
        g = self.rewards(targets)
        # Answers outside the target's support may carry g = −inf (log rewards); they add 0 when ν = q = 0.
        diff = nus - targets
        lin = float(np.sum(self.weights[:, None] * np.where(diff != 0, g * diff, 0.0)))
        kl = policy_kl if policy_kl is not None else sum(
            w * kl_divergence(n, n0) for w, n, n0 in zip(self.weights, nus, self.nu0))
        return self.phi(targets) + lin - self.beta * kl

    def policy_best_response(self, targets: np.ndarray, multipliers: np.ndarray | None = None) -> np.ndarray:
        """argmax_ν L(ν, q): the Gibbs tilt of each view's reference by its reward at q (P4)."""
        return gibbs(self.nu0, self.rewards(targets, multipliers), self.beta)

    def target_best_response(self, nus: np.ndarray) -> np.ndarray:
        """The Target's best response: q = ν_π (the tangent of a concave Φ is tight at ν, T1; also T2)."""
        return np.array(nus, dtype=np.float64, copy=True)

    def best_response_value(self, targets: np.ndarray) -> float:
        """max_π L(π, q) = Φ(q) − Σ_j w_j⟨g_j, q_j⟩ + Σ_j w_j β log Σ_z ν_j^0 e^{g_j/β}."""
        g = self.rewards(targets)
        g_dot_q = np.where(targets > 0, g * targets, 0.0)  # 0·(−inf) = 0 on a face of the simplex
        return (self.phi(targets) - float(np.sum(self.weights[:, None] * g_dot_q))
                + float(np.sum(self.weights * log_partition(self.nu0, g, self.beta))))

    def exploitability(self, nus: np.ndarray, targets: np.ndarray | None = None, *,
                       policy_kl: float | None = None) -> float:
        """expl(π, q) = max_π' L(π', q) − min_q' L(π, q') (E4), with min_q' L(π, q') = J(π) for concave Φ.

        ``targets=None`` uses the Target's best response q = ν_π. For convex (cooperative) Φ the same
        expression is the best-response gap max_π' L(π', q) − J(π), zero exactly at fixed points (T2).
        """
        targets = nus if targets is None else targets
        kl = policy_kl if policy_kl is not None else sum(
            w * kl_divergence(n, n0) for w, n, n0 in zip(self.weights, nus, self.nu0))
        return self.best_response_value(targets) - (self.phi(nus) - self.beta * kl)


def policy_best_response(dag: ReasoningDAG, answer_reward: np.ndarray, beta: float) -> np.ndarray:
    """The Policy's best response on a DAG as a Markov policy (P4): edge probabilities from the soft DP.

    Returns π(v|u) = π0(v|u) V(v)/V(u) with V(leaf) = exp(g(a(leaf))/β); its trace law is
    π0(y) e^{g(a(y))/β} / Z, i.e. argmax_π E_π[g] − β KL(π‖π0).
    """
    if not (np.isfinite(beta) and beta > 0):
        raise DomainError(f"beta must be a finite number > 0, got {beta!r}")
    probs, _ = soft_backward(dag, np.asarray(answer_reward, dtype=np.float64) / beta)
    return probs


def markov_policy_for_marginal(dag: ReasoningDAG, nu: np.ndarray) -> np.ndarray:
    """The Markov policy π*(y) = ν(a(y)) π0(y | a(y)) of P3 (edge probabilities), by the soft DP with
    answer weights log(ν/ν0). Answers with ν > 0 must have ν0 > 0."""
    from dagsim.marginals import answer_marginal

    nu0 = answer_marginal(dag)
    nu = np.asarray(nu, dtype=np.float64)
    if np.any((nu > 0) & (nu0 <= 0)):
        raise DomainError("a target marginal puts mass on an answer the reference never produces")
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(nu > 0, np.log(nu) - np.log(np.where(nu0 > 0, nu0, 1.0)), -np.inf)
    probs, _ = soft_backward(dag, w)
    return probs
