"""A user-defined objective family in one file: power-mean diversity (not in the package).

    Φ(ν) = ⟨r, ν⟩ + τ·‖ν‖_p = ⟨r, ν⟩ + τ·(Σ_z ν_z^p)^{1/p},   0 < p < 1 (``--order``, default ½)

At p = ½ this is τ(Σ √ν_z)², the power-mean diversity of issue #17. It rewards spreading mass over
answers like entropy does, but it is *not separable* (the square of a sum), so the package's exact dual
solver does not apply; cvxpy expresses it exactly with its concave ``pnorm`` atom (p < 1).

**Concavity** (checked here, not assumed): ‖ν‖_p with 0 < p < 1 is positively homogeneous of degree 1 and
its upper level sets {ν ≥ 0 : Σ ν^p ≥ c^p} are convex (Σ ν^p is concave), so it is concave on the
nonnegative orthant (the reverse Minkowski inequality). Hence Φ is concave, (E2) is concave for every
β > 0, and T1 applies: the game's equilibrium is the (E2) optimum. The loader re-checks this numerically
(tangent inequality on random pairs), and ``tests/test_user_objective.py`` checks the Hessian on the
tangent space of the simplex.

**Gradient** (the per-answer reward at target q, THEORY §3): on the nonnegative orthant

    ∂Φ/∂ν_z = r_z + τ·(Σ_y ν_y^p)^{1/p − 1}·ν_z^{p − 1}      (+∞ where ν_z = 0)

Use it without editing the package::

    dagsim solve  FILE --objective-module examples/objective_power_mean.py:PowerMeanObjective --tau 1 --json
    dagsim game   FILE --objective-module examples/objective_power_mean.py:PowerMeanObjective --tau 1 \\
        --dynamics mirror --iterations 500
    dagsim simulate FILE --algorithm diversity-grpo --mode expected \\
        --objective-module examples/objective_power_mean.py:PowerMeanObjective
    dagsim check --objective-module examples/objective_power_mean.py:PowerMeanObjective --json
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dagsim.errors import DomainError
from dagsim.objectives.base import Objective, check_beta, check_vector, register

#: The default order p of the power mean (p = ½: τ(Σ √ν)²).
DEFAULT_ORDER = 0.5


def check_power(order: Any) -> float:
    """The power-mean order p: a finite number in (0, 1) (p = 1 makes Φ constant on the simplex)."""
    try:
        p = float(DEFAULT_ORDER if order is None else order)
    except (TypeError, ValueError):
        raise DomainError(f"order (the power-mean p) must be a number in (0, 1), got {order!r}") from None
    if not (math.isfinite(p) and 0.0 < p < 1.0):
        raise DomainError(f"order (the power-mean p) must lie in (0, 1), got {order!r}")
    return p


@register("power-mean")
class PowerMeanObjective(Objective):
    """Φ(ν) = ⟨r, ν⟩ + τ‖ν‖_p, 0 < p < 1: concave, non-separable power-mean diversity (module docstring)."""

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0, order: Any = None) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)
        self.order = check_power(order)

    @property
    def curvature(self) -> str:
        return "linear" if self.tau == 0 else "concave"

    def _power_sum(self, nu: np.ndarray) -> float:
        """Σ_z ν_z^p (0^p = 0)."""
        return float(np.sum(np.power(nu, self.order)))

    def value(self, nu: np.ndarray) -> float:
        nu = check_vector(nu, self.n_answers)
        return float(self.task_reward @ nu) + self.tau * self._power_sum(nu) ** (1.0 / self.order)

    def reward(self, q: np.ndarray) -> np.ndarray:
        """r + τ (Σ q^p)^{1/p − 1} q^{p − 1}, ``(K,)`` (+∞ where q_z = 0)."""
        q = check_vector(q, self.n_answers, "q")
        if self.tau == 0:
            return self.task_reward.copy()
        p = self.order
        with np.errstate(divide="ignore"):
            return self.task_reward + self.tau * self._power_sum(q) ** (1.0 / p - 1.0) * np.power(q, p - 1.0)

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return True

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        """One DCP piece: cvxpy's concave ``pnorm(x, p)`` (p < 1, x ≥ 0) is exactly (Σ x^p)^{1/p}."""
        import cvxpy as cp

        return [self.task_reward[support] @ x + self.tau * cp.pnorm(x, self.order)
                - beta * cp.sum(cp.rel_entr(x, nu0_s))]

    def __repr__(self) -> str:
        return f"PowerMeanObjective(n_answers={self.n_answers}, tau={self.tau}, order={self.order})"
