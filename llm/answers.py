"""Answer extraction, canonicalization and per-problem answer indexing.

The answer of a completion is the number after its last ``####`` marker (GSM8K convention). A completion
without a parseable number lands in the **no-answer bucket**: it is its own answer index (so it counts as
one more answer in the group's answer distribution, never silently dropped) and is counted in the metrics
as ``n_unextracted``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

NO_ANSWER = "<no answer>"
_ANSWER_RE = re.compile(r"####\s*([-+]?\s*[\d,]*\.?\d+)")


def canonicalize_number(text: str) -> str | None:
    """Canonical string of a number: commas/spaces/leading '+' removed, integral floats as ints.

    ``"1,000" -> "1000"``, ``"32.0" -> "32"``, ``"-0" -> "0"``, ``"0.50" -> "0.5"``; ``None`` if not a number.
    """
    cleaned = text.replace(",", "").replace(" ", "").lstrip("+")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if not np.isfinite(value):
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value).rstrip("0").rstrip(".")


def extract_answer(completion: str) -> str | None:
    """Canonical answer after the last ``####`` of ``completion``, or ``None`` (the no-answer bucket)."""
    matches = _ANSWER_RE.findall(completion)
    if not matches:
        return None
    return canonicalize_number(matches[-1])


def index_answers(answers_per_view: Sequence[Sequence[str | None]]) -> tuple[list[np.ndarray], list[str]]:
    """Map the answers of one problem's views to indices 0..n-1 in **one shared answer space**.

    ``answers_per_view[j][i]`` is the canonical answer of sample i of view j (``None`` = no answer).
    Returns ``(indices_per_view, answer_strings)``: ``indices_per_view[j]`` has shape ``(G_j,)`` and
    ``answer_strings[k]`` is the answer of index k (the no-answer bucket is :data:`NO_ANSWER`).
    Indices are assigned in order of first appearance, so the mapping is deterministic.
    """
    table: dict[str, int] = {}
    out = []
    for answers in answers_per_view:
        idx = np.empty(len(answers), dtype=np.int64)  # (G_j,)
        for i, ans in enumerate(answers):
            key = NO_ANSWER if ans is None else ans
            idx[i] = table.setdefault(key, len(table))
        out.append(idx)
    return out, list(table)


def task_reward_vector(answer_strings: Sequence[str], ground_truth: str | None) -> np.ndarray:
    """``r(z)`` over a problem's answer space: 1 for the ground truth, else 0. Shape (n_answers,)."""
    return np.array(
        [1.0 if (ground_truth is not None and a == ground_truth) else 0.0 for a in answer_strings]
    )
