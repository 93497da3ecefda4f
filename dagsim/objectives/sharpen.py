"""Coherence by sharpening (self-consistency): Φ(ν) = ⟨r, ν⟩ − τ H(ν) (THEORY §4, "sharpen"; T2)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import entr

from dagsim.errors import DomainError
from dagsim.objectives.base import (
    SeparableObjective,
    check_beta,
    kl_divergence,
    log_of,
    register,
    softmax_log,
)


@register("sharpen")
class SharpenObjective(SeparableObjective):
    """Φ(ν) = ⟨r, ν⟩ − τ H(ν) = ⟨r, ν⟩ + τ Σ ν log ν (convex).

    ``reward(q)`` returns the exact gradient r + τ(log q + 1); THEORY writes r + τ log q (constant
    dropped). g = −inf where q = 0.

    (E2) equals max ⟨r + β log ν0, ν⟩ + (τ − β) Σ ν log ν: concave iff τ ≤ β. Closed forms (T2):
    β > τ: ν ∝ (ν0^β e^r)^{1/(β−τ)}; β ≤ τ: the vertex argmax_z β log ν0(z) + r(z) (a convex function is
    maximized at a vertex; at β = τ the objective is linear). Ties go to the lowest index.
    """

    family_curvature = "convex"
    needs_labels = False  # self-consistency: the τ-term needs no labels

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)

    def rho(self, nu: np.ndarray) -> np.ndarray:
        return -entr(nu)  # ν log ν, 0 at 0

    def drho(self, nu: np.ndarray) -> np.ndarray:
        return np.log(nu) + 1.0

    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """β u − τ(u + 1) = a  ⇒  u = (a + τ)/(β − τ); valid (a maximizer) only when β > τ."""
        if not beta > self.tau:
            raise DomainError(
                f"sharpen: the per-answer Lagrangian is not concave when beta <= tau (beta={beta}, tau={self.tau})"
            )
        return (a + self.tau) / (beta - self.tau), np.full_like(a, 1.0 / (beta - self.tau))

    def dual_is_exact(self, beta: float) -> bool:
        return beta > self.tau

    def exact_solve(self, problem):
        """β > τ: the shared dual; β ≤ τ: the vertex solvers of ``solvers/sharpen.py`` (with constraints)."""
        if self.dual_is_exact(problem.beta):
            return super().exact_solve(problem)
        from dagsim.solvers.sharpen import solve_sharpen_vertex

        return solve_sharpen_vertex(problem)

    def is_concave_regime(self, beta: float) -> bool:
        return self.tau <= check_beta(beta)

    def vertex_scores(self, nu0: np.ndarray, beta: float) -> np.ndarray:
        """(E2) at each vertex e_z: r(z) + β log ν0(z) (−inf off the support)."""
        return self.task_reward + beta * log_of(nu0)

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray:
        beta = check_beta(beta)
        nu0 = self.check_nu0(nu0)
        if beta > self.tau:
            return softmax_log((beta * log_of(nu0) + self.task_reward) / (beta - self.tau))
        nu = np.zeros(self.n_answers)
        nu[int(np.argmax(self.vertex_scores(nu0, beta)))] = 1.0
        return nu

    def closed_form_certificate(self, nu, nu0, beta):
        if beta > self.tau:
            return "optimal", None, ""
        scores = self.vertex_scores(nu0, beta)
        best = float(np.max(scores))
        value = self.value(nu) - beta * kl_divergence(nu, nu0)
        residual = max(0.0, best - value)  # 0 iff ν is a best vertex (max of a convex function)
        ties = np.flatnonzero(scores == best)
        regime = "linear objective (beta == tau)" if beta == self.tau else "convex objective (beta < tau)"
        note = f"{regime}: optimum at a vertex (T2)"
        if ties.size > 1:
            what = "every distribution on" if beta == self.tau else "every vertex among"
            note += f"; tie, {what} answers {ties.tolist()} is optimal, lowest index returned"
        return "vertex", residual, note

    @staticmethod
    def count_reward_table(ctx, estimates) -> np.ndarray:
        """GRPO reward ``g = r(z) + τ log_hat p`` (THEORY's table form); log_hat p from the LOO count."""
        return ctx.task_reward[:, None] + ctx.tau * estimates.log()[None, :]  # (K, G)

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        """Exact DCP rewrite: Φ − βKL = ⟨r + β log ν0, ν⟩ + (β − τ) Σ entr(ν), concave iff β ≥ τ."""
        import cvxpy as cp

        if beta < self.tau:
            raise DomainError(
                f"cvxpy cannot maximize the convex sharpen objective when beta < tau (beta={beta}, tau={self.tau})"
            )
        lin = (self.task_reward[support] + beta * np.log(nu0_s)) @ x
        if beta == self.tau:
            return [lin]
        return [lin + (beta - self.tau) * cp.sum(cp.entr(x))]
