"""Diversity by Shannon entropy: Φ(ν) = ⟨r, ν⟩ + τ H(ν), H(ν) = −Σ ν log ν (THEORY §4, "entropy")."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import entr

from dagsim.objectives.base import SeparableObjective, check_beta, log_of, register, softmax_log


@register("entropy")
class EntropyObjective(SeparableObjective):
    """Φ(ν) = ⟨r, ν⟩ + τ H(ν) (concave).

    ``reward(q)`` returns the exact gradient g = r − τ(log q + 1); THEORY's table writes r − τ log q
    (the constant −τ is irrelevant on the simplex). g = +inf where q = 0.
    Closed form of (E2): ν ∝ ν0^{β/(β+τ)} e^{r/(β+τ)}.
    """

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)

    def rho(self, nu: np.ndarray) -> np.ndarray:
        return entr(nu)  # −ν log ν, 0 at 0

    def drho(self, nu: np.ndarray) -> np.ndarray:
        return -(np.log(nu) + 1.0)

    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """β u + τ(u + 1) = a  ⇒  u = (a − τ)/(β + τ)."""
        return (a - self.tau) / (beta + self.tau), np.full_like(a, 1.0 / (beta + self.tau))

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return True

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray:
        """ν ∝ exp((β log ν0 + r)/(β + τ)), normalized by logsumexp."""
        beta = check_beta(beta)
        nu0 = self.check_nu0(nu0)
        return softmax_log((beta * log_of(nu0) + self.task_reward) / (beta + self.tau))

    @staticmethod
    def count_reward_table(ctx, estimates) -> np.ndarray:
        """GRPO reward ``g = r(z) − τ log_hat p`` (THEORY's table form); log_hat p from the LOO count."""
        return ctx.task_reward[:, None] - ctx.tau * estimates.log()[None, :]  # (K, G)

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        import cvxpy as cp

        return [self.task_reward[support] @ x + self.tau * cp.sum(cp.entr(x)) - beta * cp.sum(cp.rel_entr(x, nu0_s))]
