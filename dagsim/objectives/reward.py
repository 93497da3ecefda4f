"""Plain task reward: Φ(ν) = ⟨r, ν⟩ (THEORY §4 table, row "reward"; P4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dagsim.objectives.base import SeparableObjective, check_beta, log_of, register, softmax_log


@register("reward")
class RewardObjective(SeparableObjective):
    """Φ(ν) = ⟨r, ν⟩. Reward g = r. Closed form of (E2): ν ∝ ν0·e^{r/β} (the Gibbs tilt, P4).

    Linear, so Φ − β KL(ν‖ν0) is strictly concave for every β > 0. There is no τ.
    """

    family_curvature = "linear"

    def __init__(self, n_answers: int, *, reward: Any = None) -> None:
        super().__init__(n_answers, reward=reward, tau=0.0)

    def rho(self, nu: np.ndarray) -> np.ndarray:
        return np.zeros_like(nu)

    def drho(self, nu: np.ndarray) -> np.ndarray:
        return np.zeros_like(nu)

    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """β u = a."""
        return a / beta, np.full_like(a, 1.0 / beta)

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return True

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray:
        """ν ∝ ν0·exp(r/β), in log space (answers with ν0 = 0 stay 0)."""
        beta = check_beta(beta)
        nu0 = self.check_nu0(nu0)
        return softmax_log(log_of(nu0) + self.task_reward / beta)

    @staticmethod
    def count_reward_table(ctx, estimates) -> np.ndarray:
        """GRPO reward ``g = r(z)`` (``dagsim.grpo.rewards``); τ, order, estimator ignored."""
        return np.repeat(ctx.task_reward[:, None], ctx.group_size, axis=1)  # (K, G)

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        import cvxpy as cp

        return [self.task_reward[support] @ x - beta * cp.sum(cp.rel_entr(x, nu0_s))]
