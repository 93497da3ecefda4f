"""Coherence by collision probability (EMPO-like): Φ(ν) = ⟨r, ν⟩ + τ Σ ν² (THEORY §4, "collision")."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import lambertw

from dagsim.errors import DomainError
from dagsim.objectives.base import SeparableObjective, check_beta, register

#: Relative rounding of the Lambert-W root u = a/β − W₀(·) (a few ulps of |a/β|).
ROOT_ROUNDING = 8 * float(np.finfo(np.float64).eps)


@register("collision")
class CollisionObjective(SeparableObjective):
    """Φ(ν) = ⟨r, ν⟩ + τ Σ ν² (convex). ``reward(q)`` = r + 2τ q exactly as in THEORY's table.

    Regimes of (E2) (derived here, THEORY gives only "none" for the closed form):

    * **concave on the simplex iff τ ≤ β.** The Hessian of Φ − βKL is 2τI − β diag(1/ν); on the tangent
      space {Σ d = 0}, min over ν ∈ Δ of Σ d²/ν is (Σ|d|)² ≥ 2|d|² (equality for d = e_1 − e_2 at
      ν = (½, ½, 0, ...)), so it is negative semidefinite for all ν iff 2τ ≤ 2β. The often-quoted
      2τ ≤ β is only sufficient.
    * **per-answer concave on [0, 1] iff 2τ ≤ β**: then each per-answer Lagrangian is concave on the box,
      strong duality holds and the dual solver is exact (:meth:`dual_is_exact`).
    * Always: the optimum has full support on supp ν0 (KL has infinite slope at 0) and, by a rearrangement
      argument, at most one answer above β/(2τ); solvers/collision.py uses this for β/2 < τ.
    """

    family_curvature = "convex"
    needs_labels = False  # self-consistency (EMPO-like): the τ-term needs no labels

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)

    def rho(self, nu: np.ndarray) -> np.ndarray:
        return nu * nu

    def drho(self, nu: np.ndarray) -> np.ndarray:
        return 2.0 * nu

    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """Maximizer over ν ∈ [0, 1] of the per-answer Lagrangian, valid when 2τ ≤ β.

        Stationarity β u − 2τ e^u = a has the small root u = a/β − W₀(−(2τ/β) e^{a/β}) (principal
        Lambert W); when it does not exist or exceeds 0 the Lagrangian increases on all of [0, 1] and the
        box maximizer is ν = 1 (slope 0).
        """
        if self.tau == 0:
            return a / beta, np.full_like(a, 1.0 / beta)
        if not self.dual_is_exact(beta):
            raise DomainError(
                f"collision: per-answer Lagrangian is not concave when 2 tau > beta (beta={beta}, tau={self.tau})"
            )
        with np.errstate(over="ignore"):
            arg = -(2.0 * self.tau / beta) * np.exp(a / beta)
        boxed = arg < -np.exp(-1.0)
        w = lambertw(np.where(boxed, 0.0, arg), 0).real
        u = a / beta - w
        # A root within rounding (~ulp·|a/β|) of 0 is ν = 1 at a stationary point, not a box clip.
        boxed |= u > ROOT_ROUNDING * (1.0 + np.abs(a / beta))
        u = np.where(boxed, 0.0, np.minimum(u, 0.0))
        slope = np.where(boxed, 0.0, 1.0 / (beta - 2.0 * self.tau * np.exp(np.minimum(u, 0.0))))
        return u, slope

    def dual_is_exact(self, beta: float) -> bool:
        return 2.0 * self.tau <= beta

    def exact_solve(self, problem):
        """2τ ≤ β: the shared dual; otherwise the scan / DCA of ``solvers/collision.py``."""
        if self.dual_is_exact(problem.beta):
            return super().exact_solve(problem)
        from dagsim.solvers.collision import solve_collision

        return solve_collision(problem)

    def is_concave_regime(self, beta: float) -> bool:
        return self.tau <= check_beta(beta)

    @staticmethod
    def count_reward_table(ctx, estimates) -> np.ndarray:
        """GRPO reward ``g = r(z) + 2τ p_hat`` (``p_hat`` as for gini)."""
        p_hat = estimates.power(1.0)  # (G,)
        return ctx.task_reward[:, None] + 2.0 * ctx.tau * p_hat[None, :]
