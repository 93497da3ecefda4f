"""The figure registry: figure number → module (each module has ``NAME``, ``compute``, ``plot``, ``make``).

Figure 8 (the LLM training figure, written separately) is registered only when
``figures/fig08_llm_training.py`` exists; if it exists but its optional dependencies (torch, …) are not
installed, it is listed in :data:`UNAVAILABLE` with the reason instead of breaking the other figures.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from figures import (
    fig01_equilibrium_equals_optimum,
    fig02_dynamics_rates,
    fig03_tau_sweep,
    fig04_multiview_coherence,
    fig05_estimator_bias,
    fig06_finite_group_grpo,
    fig07_complexity,
    fig09_constraints_frontier,
)

#: Module of the optional LLM figure (figure 8).
LLM_FIGURE_MODULE = "fig08_llm_training"

FIGURES: dict[int, ModuleType] = {
    1: fig01_equilibrium_equals_optimum,
    2: fig02_dynamics_rates,
    3: fig03_tau_sweep,
    4: fig04_multiview_coherence,
    5: fig05_estimator_bias,
    6: fig06_finite_group_grpo,
    7: fig07_complexity,
    9: fig09_constraints_frontier,
}

#: Figures whose module exists but cannot be imported here: number → reason.
UNAVAILABLE: dict[int, str] = {}


def _register_llm_figure() -> None:
    if not (Path(__file__).parent / f"{LLM_FIGURE_MODULE}.py").exists():
        return
    name = f"figures.{LLM_FIGURE_MODULE}"
    try:
        FIGURES[8] = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("figures"):
            raise  # a bug in the figure package itself, not a missing optional dependency
        UNAVAILABLE[8] = f"{name} needs {exc.name!r} (install the llm extra)"


_register_llm_figure()
FIGURES = dict(sorted(FIGURES.items()))
