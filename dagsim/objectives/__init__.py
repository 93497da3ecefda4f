"""Objectives Φ of the answer distribution (THEORY §4): one module per family, each registered by name.

    from dagsim.objectives import make_objective
    obj = make_objective("entropy", n_answers=K, reward=r, tau=1.0)
    obj.value(nu); obj.reward(q); obj.closed_form(nu0, beta)

Single-view families: reward, entropy, gini, tsallis, sharpen, collision, majority.
Multi-view families (E5): consensus (arithmetic | geometric | majority, finite τ or τ = inf), pairwise.
"""

from dagsim.objectives.base import (
    OBJECTIVES,
    MultiViewObjective,
    Objective,
    SeparableObjective,
    family,
    family_parameters,
    make_objective,
    register,
)


def families_where(flag: str) -> tuple[str, ...]:
    """Names of the registered families whose class flag ``flag`` is true (e.g. "multiview", "needs_labels")."""
    return tuple(name for name, cls in OBJECTIVES.items() if getattr(cls, flag))


# Importing the family modules registers them (one module per family, STYLE §3).
from dagsim.objectives import (  # noqa: E402,F401  isort: skip
    reward,
    entropy,
    gini,
    tsallis,
    sharpen,
    collision,
    majority,
    consensus,
    pairwise,
)

__all__ = [
    "OBJECTIVES",
    "MultiViewObjective",
    "Objective",
    "SeparableObjective",
    "families_where",
    "family",
    "family_parameters",
    "make_objective",
    "register",
]
