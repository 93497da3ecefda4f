"""Pieces the LLM benchmarks share (a module of ``bench/``, not a benchmark: ``make bench`` runs ``bench_*.py``)."""

from __future__ import annotations

import json
from pathlib import Path


def base_model(model: str, tmp: str | Path, steps: int) -> str:
    """``model`` when given, else a throw-away base pretrained for ``steps`` steps into ``tmp/base``."""
    if model:
        return model
    from llm.pretrain import PretrainConfig, pretrain

    out = str(Path(tmp) / "base")
    pretrain(PretrainConfig(out=out, steps=steps, progress=False))
    return out


def emit(result: dict, out: str = "") -> None:
    """Print the result JSON and, with ``out``, also write it there atomically."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        from llm.model import atomic_write_text

        atomic_write_text(out, text)
