"""Linear constraints on an answer distribution: ``<h, nu> (<=|>=|==) b`` (THEORY §4, T5)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dagsim.errors import ValidationError

OPS = ("<=", ">=", "==")


@dataclass(frozen=True)
class LinearConstraint:
    """``<coef, nu> op bound`` over the answer simplex.

    ``coef`` has shape ``(n_answers,)`` indexed like the DAG's ``answers``; ``op`` is one of
    ``"<=", ">=", "=="``. Multipliers follow the convention of the Lagrangian
    ``Phi - beta KL - sum_k lambda_k (<h_k, nu> - b_k)`` with ``h = coef`` for ``<=`` and ``==``,
    and ``h = -coef, b = -bound`` for ``>=`` (so every inequality multiplier is >= 0).
    """

    coef: np.ndarray  # (n_answers,)
    op: str
    bound: float
    name: str = field(default="")

    def __post_init__(self) -> None:
        coef = np.asarray(self.coef, dtype=np.float64)
        if coef.ndim != 1:
            raise ValidationError(f"constraint {self.name!r}: coef must be a vector, got shape {coef.shape}")
        if not np.all(np.isfinite(coef)):
            raise ValidationError(f"constraint {self.name!r}: coef has a NaN or infinite entry")
        if self.op not in OPS:
            raise ValidationError(f"constraint {self.name!r}: op must be one of {OPS}, got {self.op!r}")
        if not np.isfinite(self.bound):
            raise ValidationError(f"constraint {self.name!r}: bound must be finite, got {self.bound!r}")
        coef = coef.copy()
        coef.setflags(write=False)
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "bound", float(self.bound))

    def as_leq(self) -> tuple[np.ndarray, float]:
        """Return ``(h, b)`` with the constraint written as ``<h, nu> <= b`` (or ``== b`` for equality)."""
        if self.op == ">=":
            return -self.coef, -self.bound
        return self.coef, self.bound

    def violation(self, nu: np.ndarray) -> float:
        """Amount by which ``nu`` violates the constraint (0 when satisfied)."""
        lhs = float(self.coef @ nu)
        if self.op == "<=":
            return max(0.0, lhs - self.bound)
        if self.op == ">=":
            return max(0.0, self.bound - lhs)
        return abs(lhs - self.bound)
