"""Diversity by the Gini–Simpson index: Φ(ν) = ⟨r, ν⟩ + τ(1 − Σ ν²) (THEORY §4, "gini")."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import wrightomega

from dagsim.objectives.base import SeparableObjective, check_beta, register


@register("gini")
class GiniObjective(SeparableObjective):
    """Φ(ν) = ⟨r, ν⟩ + τ(1 − Σ ν²) (concave; Tsallis of order 2).

    ``reward(q)`` = r − 2τ q exactly as in THEORY's table. (E2) has no closed form: its solution is the
    unique root of β log(ν/ν0) + 2τν − r = c on the support of ν0, found by the dual solver.
    """

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)

    def rho_offset(self) -> float:
        return 1.0

    def rho(self, nu: np.ndarray) -> np.ndarray:
        return -nu * nu

    def drho(self, nu: np.ndarray) -> np.ndarray:
        return -2.0 * nu

    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """β u + 2τ e^u = a  ⇒  u = a/β − ω(log(2τ/β) + a/β), ω the Wright omega function (W(e^z))."""
        if self.tau == 0:
            return a / beta, np.full_like(a, 1.0 / beta)
        u = a / beta - wrightomega(np.log(2.0 * self.tau / beta) + a / beta)
        with np.errstate(over="ignore"):
            slope = 1.0 / (beta + 2.0 * self.tau * np.exp(u))
        return u, slope

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return True

    @staticmethod
    def count_reward_table(ctx, estimates) -> np.ndarray:
        """GRPO reward ``g = r(z) − 2τ p_hat``; ``p_hat = C/(G-1)`` (T7 unbiased) except ``(C+1)/G`` for "plugin"."""
        p_hat = estimates.power(1.0)  # (G,)
        return ctx.task_reward[:, None] - 2.0 * ctx.tau * p_hat[None, :]

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        import cvxpy as cp

        return [
            self.task_reward[support] @ x + self.tau * (1.0 - cp.sum_squares(x)) - beta * cp.sum(cp.rel_entr(x, nu0_s))
        ]
