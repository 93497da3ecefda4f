"""Shared figure helpers: a colour-blind-safe palette with one fixed colour per algorithm/method, and an
atomic writer that saves PNG + PDF + the plotted numbers as JSON next to the image."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dagsim.io import apply_umask, atomic_write_json  # noqa: E402

#: Okabe–Ito palette (colour-blind safe).
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

#: One colour per algorithm / method / estimator, used by every figure.
COLORS = {
    "gt-grpo": "#000000", "coherence-grpo": "#0072B2", "coherence-grpo (consensus)": "#56B4E9",
    "ttrl": "#D55E00", "empo": "#E69F00", "diversity-grpo": "#009E73", "pairwise-coherence-grpo": "#CC79A7",
    "constrained-grpo": "#F0E442", "base": "#7F7F7F", "sft": "#999999",
    "best-response": "#0072B2", "mirror": "#009E73", "no-regret": "#D55E00", "extragradient": "#CC79A7",
    "alternating": "#E69F00", "dual-ascent": "#56B4E9",
    "plugin": "#D55E00", "loo": "#E69F00", "unbiased": "#009E73", "minimax": "#0072B2",
    "arithmetic": "#0072B2", "geometric": "#009E73", "majority": "#D55E00",
    "reward": "#000000", "entropy": "#009E73", "gini": "#56B4E9", "tsallis": "#CC79A7", "sharpen": "#0072B2",
    "collision": "#E69F00", "consensus": "#D55E00", "pairwise": "#F0E442",
}


def color(name: str, fallback_index: int = 0) -> str:
    return COLORS.get(name, OKABE_ITO[fallback_index % len(OKABE_ITO)])


def style() -> None:
    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False, "font.size": 9, "legend.fontsize": 8,
                         "axes.titlesize": 10})


#: Where the equation and claim IDs that figure titles cite (E2, P3, T5, …) are defined.
SPEC_DOC = "docs/theory.md"


def spec_note(fig) -> None:
    """A small footer pointing the reader at the spec that defines the IDs the figure cites."""
    fig.text(0.995, 0.002, f"equation / claim IDs: {SPEC_DOC}", ha="right", va="bottom", fontsize=7,
             color="0.45")


def save(fig, out_dir: str | os.PathLike, name: str, data: dict) -> dict:
    """Write ``name``.png (dpi tuned for ≤ ~300 kB), ``name``.pdf and ``name``.json atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, kwargs in (("png", {"dpi": 100}), ("pdf", {})):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{ext}", dir=out)
        os.close(fd)
        fig.savefig(tmp, format=ext, bbox_inches="tight", **kwargs)
        apply_umask(tmp)  # mkstemp creates 0600; figures are meant to be shared
        os.replace(tmp, out / f"{name}.{ext}")
        paths[ext] = str(out / f"{name}.{ext}")
    plt.close(fig)
    atomic_write_json(out / f"{name}.json", _jsonable(data))
    paths["json"] = str(out / f"{name}.json")
    return paths


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        if x != x or x in (float("inf"), float("-inf")):
            return str(x)
        return x
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def load_json(path) -> dict:
    return json.loads(Path(path).read_text())


def figure_maker(compute, plot, name: str):
    """The ``make(out_dir, quick=False, seed=0)`` of a figure module: compute the numbers, plot, save all three."""

    def make(out_dir, quick: bool = False, seed: int = 0) -> dict:
        data = compute(quick, seed)
        return save(plot(data), out_dir, name, data)

    make.__doc__ = f"Write {name}.png/.pdf/.json to ``out_dir`` (``quick``: reduced instances)."
    return make


def script_main(make) -> None:
    """``python figures/figNN_*.py [OUT_DIR]``: make one figure (default folder figures/out)."""
    import sys

    print(make(sys.argv[1] if len(sys.argv) > 1 else "figures/out"))
