"""The figure registry: figure number → module (each module has ``NAME``, ``compute``, ``plot``, ``make``).

Figures 8 and 10 (the LLM figures) are registered only when their modules exist; if one exists but its
optional dependencies (torch, …) are not installed, it is listed in :data:`UNAVAILABLE` with the reason
instead of breaking the other figures.
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
    fig12_overlap_sweep,
)

#: Modules of the optional LLM figures, by number (8: training curves, 10: theory vs training,
#: 11: predicted vs measured).
LLM_FIGURE_MODULES = {8: "fig08_llm_training", 10: "fig10_theory_vs_training", 11: "fig11_llm_prediction"}

FIGURES: dict[int, ModuleType] = {
    1: fig01_equilibrium_equals_optimum,
    2: fig02_dynamics_rates,
    3: fig03_tau_sweep,
    4: fig04_multiview_coherence,
    5: fig05_estimator_bias,
    6: fig06_finite_group_grpo,
    7: fig07_complexity,
    9: fig09_constraints_frontier,
    12: fig12_overlap_sweep,  # reads the committed results/llm_overlap_sweep.json only (issue 15)
}

#: Figures whose module exists but cannot be imported here: number → reason.
UNAVAILABLE: dict[int, str] = {}


def _register_llm_figure() -> None:
    for number, module in LLM_FIGURE_MODULES.items():
        if not (Path(__file__).parent / f"{module}.py").exists():
            continue
        name = f"figures.{module}"
        try:
            FIGURES[number] = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.startswith("figures"):
                raise  # a bug in the figure package itself, not a missing optional dependency
            UNAVAILABLE[number] = f"{name} needs {exc.name!r} (install the llm extra)"


_register_llm_figure()
FIGURES = dict(sorted(FIGURES.items()))
