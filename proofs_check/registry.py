"""Registry of numerical checks, one per claim of docs/theory.md (P1–P4, T1–T12).

A check is a function ``(ctx) -> Evidence`` registered with :func:`check`. It draws seeded random
instances, compares the claim with an independent oracle, and reports the largest error. Each check
also names a *control*: the same comparison run on a deliberately wrong variant (flipped KL
direction, β ↦ 2β, self-counting instead of leave-one-out, …), which must FAIL — otherwise the check
could not tell right from wrong and proves nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Context:
    """What a check receives: a seeded generator and whether to run the reduced (``--quick``) version."""

    rng: np.random.Generator
    quick: bool

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Evidence:
    """The outcome of evaluating a claim (or its control) on random instances."""

    instances: int
    max_error: float
    tolerance: float
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        # NaN never passes; zero instances never pass (no vacuous success).
        err = float(self.max_error)
        return bool(self.instances > 0 and math.isfinite(err) and err <= self.tolerance)


@dataclass(frozen=True)
class Check:
    id: str
    statement: str
    run: Callable[[Context], Evidence]
    control: Callable[[Context], Evidence]
    control_description: str


REGISTRY: dict[str, Check] = {}


def check(claim_id: str, statement: str, *, control: Callable[[Context], Evidence], control_description: str):
    """Register ``fn`` as the check of ``claim_id`` with its deliberately wrong ``control`` variant."""

    def wrap(fn: Callable[[Context], Evidence]) -> Callable[[Context], Evidence]:
        if claim_id in REGISTRY:
            raise ValueError(f"claim {claim_id} registered twice")
        REGISTRY[claim_id] = Check(claim_id, statement, fn, control, control_description)
        return fn

    return wrap


def claim_order(claim_id: str) -> tuple[int, int]:
    return ({"P": 0, "T": 1}.get(claim_id[0], 2), int(claim_id[1:]))


def run_check(chk: Check, *, quick: bool, seed: int = 0) -> dict:
    """Run a check and its control with independent seeded generators; return the report row."""
    t0 = time.perf_counter()
    evidence = chk.run(Context(np.random.default_rng([seed, 1, *map(ord, chk.id)]), quick))
    control = chk.control(Context(np.random.default_rng([seed, 2, *map(ord, chk.id)]), quick))
    seconds = time.perf_counter() - t0
    if evidence.instances <= 0:
        raise RuntimeError(f"check {chk.id} evaluated zero instances")
    row = {
        "id": chk.id,
        "statement": chk.statement,
        "instances": int(evidence.instances),
        "max_error": _finite_or_str(evidence.max_error),
        "tolerance": float(evidence.tolerance),
        "passed": evidence.passed,
        "seconds": round(seconds, 3),
        "control_failed": not control.passed,
        "control": chk.control_description,
        "control_max_error": _finite_or_str(control.max_error),
    }
    row.update(evidence.extra)
    return row


def _finite_or_str(x: float):
    return float(x) if math.isfinite(x) else str(x)


def load_all() -> dict[str, Check]:
    """Import every check module (they register themselves) and return the registry."""
    import importlib
    import pkgutil

    from proofs_check import checks

    for mod in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"proofs_check.checks.{mod.name}")
    return dict(sorted(REGISTRY.items(), key=lambda kv: claim_order(kv[0])))
