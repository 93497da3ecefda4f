"""Diversity by Tsallis entropy of order α: Φ(ν) = ⟨r, ν⟩ + τ(1 − Σ ν^α)/(α − 1) (THEORY §4, "tsallis")."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import wrightomega

from dagsim.errors import DomainError
from dagsim.objectives.base import SeparableObjective, check_beta, register


def check_order(order: Any) -> float:
    """Tsallis order α: finite, > 0 and ≠ 1 (α → 1 is Shannon entropy: use ``entropy``)."""
    if order is None:
        raise DomainError("tsallis needs the parameter 'order' (alpha > 0, alpha != 1)")
    try:
        order = float(order)
    except (TypeError, ValueError):
        raise DomainError(f"order must be a number > 0 and != 1, got {order!r}") from None
    if not math.isfinite(order) or order <= 0 or order == 1.0:
        raise DomainError(f"order must be a finite number > 0 and != 1, got {order!r}")
    return order


@register("tsallis")
class TsallisObjective(SeparableObjective):
    """Φ(ν) = ⟨r, ν⟩ + τ(1 − Σ ν^α)/(α − 1), concave for every α > 0 (α = 2 is exactly ``gini``).

    ``reward(q)`` = r − τα q^{α−1}/(α − 1) exactly as in THEORY's table (+inf where q = 0 if α < 1).
    (E2) has no closed form; the dual solver uses the exact per-answer response below.
    """

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0, order: Any = None) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)
        self.order = check_order(order)

    def rho_offset(self) -> float:
        return 1.0 / (self.order - 1.0)

    def rho(self, nu: np.ndarray) -> np.ndarray:
        return -np.power(nu, self.order) / (self.order - 1.0)

    def drho(self, nu: np.ndarray) -> np.ndarray:
        return -self.order * np.power(nu, self.order - 1.0) / (self.order - 1.0)

    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """β u + (τα/κ) e^{κu} = a with κ = α − 1  ⇒  u = a/β − ω(log(τα/β) + κa/β)/κ.

        (Substitute u = a/β − w/κ: then w e^w = (τα/β) e^{κa/β} > 0 for both signs of κ, so w is the
        Wright omega of the log of the right side.) Slope du/da = 1/(β + τα ν^{α−1}).
        """
        if self.tau == 0:
            return a / beta, np.full_like(a, 1.0 / beta)
        kappa = self.order - 1.0
        u = a / beta - wrightomega(np.log(self.tau * self.order / beta) + kappa * a / beta) / kappa
        with np.errstate(over="ignore"):
            slope = 1.0 / (beta + self.tau * self.order * np.exp(kappa * u))
        return u, slope

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return True

    @staticmethod
    def count_reward_table(ctx, estimates) -> np.ndarray:
        """GRPO reward ``g = r(z) − τ α/(α−1) p_hat^{α−1}``; needs ``order = α > 0, α != 1``.

        ``p^{α−1}`` is estimated by ``power_estimator_table(G, α−1, estimator)``: the T7 U-statistic (exactly
        unbiased) when α−1 is an integer in [0, G−1] and estimator is "unbiased"/"minimax"/"minimax_monotone";
        otherwise the plug-in ``((C+1)/G)^{α−1}``, the LOO power, or a minimax LP table — all biased (a count
        function's mean is a polynomial of degree G−1). α = 2 reproduces gini exactly.
        """
        alpha = ctx.order
        if alpha is None or not np.isfinite(alpha) or alpha <= 0 or alpha == 1:
            raise DomainError(f"tsallis needs order α > 0, α != 1, got order={alpha!r}")
        p_pow = estimates.power(alpha - 1.0)  # (G,)
        return ctx.task_reward[:, None] - ctx.tau * alpha / (alpha - 1.0) * p_pow[None, :]

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        """Uses cvxpy's exact power-cone form of ν^α (``approx=False``)."""
        import cvxpy as cp

        alpha, tau = self.order, self.tau
        if alpha > 1:
            phi = tau * (1.0 - cp.sum(cp.power(x, alpha, approx=False))) / (alpha - 1.0)
        else:
            phi = tau * (cp.sum(cp.power(x, alpha, approx=False)) - 1.0) / (1.0 - alpha)
        return [self.task_reward[support] @ x + phi - beta * cp.sum(cp.rel_entr(x, nu0_s))]

    def __repr__(self) -> str:
        return f"TsallisObjective(n_answers={self.n_answers}, tau={self.tau}, order={self.order})"
