"""Shared helpers of the T-claim checks: random reference marginals and sub-claim bookkeeping.

Most claims of THEORY.md bundle several statements (T1: NE ⇔ optimum, exploitability ≥ 0, = 0 only at the
optimum, …). A check evaluates each one as a :class:`SubClaim` with its own named tolerance and folds them
with :func:`combine` into one :class:`~proofs_check.registry.Evidence` whose ``max_error`` is the largest
error/tolerance ratio, so that its tolerance is :data:`NORMALIZED_TOLERANCE` = 1. Every sub-claim's raw
error, tolerance, instance count and verdict go to ``extra["sub_claims"]``. This module registers no check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG
from dagsim.generators import random_dag
from dagsim.marginals import answer_marginal
from proofs_check.registry import Evidence

#: ``combine`` reports max(error / tolerance) over the sub-claims: the claim holds iff that is ≤ 1.
NORMALIZED_TOLERANCE = 1.0


@dataclass
class SubClaim:
    """One statement inside a claim: the largest error seen over ``instances`` evaluations."""

    statement: str
    tolerance: float
    max_error: float = 0.0
    instances: int = 0

    def record(self, error: float) -> None:
        """Count one evaluation; a NaN or infinite error sticks (it never passes)."""
        error = float(error)
        self.instances += 1
        if not math.isfinite(self.max_error):
            return
        if not math.isfinite(error) or error > self.max_error:
            self.max_error = error

    @property
    def passed(self) -> bool:
        return self.instances > 0 and math.isfinite(self.max_error) and self.max_error <= self.tolerance

    def row(self) -> dict:
        return {"statement": self.statement, "passed": bool(self.passed), "instances": self.instances,
                "max_error": json_float(self.max_error), "tolerance": self.tolerance}


def combine(sub_claims: dict[str, SubClaim], extra: dict | None = None) -> Evidence:
    """Fold the sub-claims into one Evidence: instances = all evaluations, or 0 (never passes) if any
    sub-claim saw none; max_error = the largest error/tolerance ratio (non-finite if any error is);
    tolerance = 1."""
    ratios = [_ratio(s.max_error, s.tolerance) for s in sub_claims.values()]
    bad = [r for r in ratios if not math.isfinite(r)]
    max_ratio = bad[0] if bad else max(ratios)
    out = dict(extra or {})
    out["sub_claims"] = {name: s.row() for name, s in sub_claims.items()}
    counts = [s.instances for s in sub_claims.values()]
    instances = sum(counts) if min(counts) > 0 else 0
    return Evidence(instances, float(max_ratio), NORMALIZED_TOLERANCE, out)


def _ratio(error: float, tolerance: float) -> float:
    """error/tolerance; a zero tolerance (an exact statement) maps error 0 to 0 and anything else to inf."""
    if tolerance > 0 or not math.isfinite(error):
        return error / tolerance if tolerance > 0 else error
    return 0.0 if error <= 0 else math.inf


def json_float(x: float):
    """A float for the JSON report (non-finite as a string: the report is written with allow_nan=False)."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def reference_dag(rng: np.random.Generator, n_answers: int, max_nodes: int = 8) -> ReasoningDAG:
    """A random reasoning DAG with ``n_answers`` answers (every answer reachable, so ν0 > 0)."""
    n_nodes = int(rng.integers(2, max_nodes + 1))
    return random_dag(rng, n_nodes, n_answers, edge_prob=0.35, concentration=1.0)


def reference_marginal(rng: np.random.Generator, n_answers: int, max_nodes: int = 8) -> np.ndarray:
    """ν0 = the answer marginal (P1) of a :func:`reference_dag`, shape ``(n_answers,)``."""
    return answer_marginal(reference_dag(rng, n_answers, max_nodes))


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) = Σ p log(p/q), natural log, 0 log 0 = 0 (written here, independent of dagsim's)."""
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def tv(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ½‖p − q‖₁."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())
