"""Divergences and entropies of answer distributions: the one place they are written (issue #17).

Conventions (natural log, nats, for all of them):

- ``0·log 0 = 0``: an answer with p(z) = 0 adds nothing;
- KL(p‖q) = +inf where q(z) = 0 < p(z) (p not absolutely continuous w.r.t. q), unless the caller asks for
  ``floor=``: then q is clipped below at ``floor`` and the value is finite. The only caller with a floor is
  :mod:`llm.theory` (``floor=1e-15``): its certified answer vectors can have an empty ``<rest>`` bucket in
  ν0 while ν_T puts mass there, and its reports need a finite number;
- entries of p and q are not renormalized: pass distributions.

The proofs_check checks keep their own independent KL/TV (:mod:`proofs_check.checks._subclaims`), on purpose:
a check must not share the code it checks.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr


def kl_divergence(p: np.ndarray, q: np.ndarray, *, floor: float | None = None) -> float:
    """KL(p‖q) = Σ_z p(z) log(p(z)/q(z)) in nats (E1's answer-level KL(ν‖ν0) with p = ν, q = ν0).

    ``0·log 0 = 0``; +inf where q = 0 < p, unless ``floor`` > 0 is given: q is then replaced by
    max(q, floor) (see the module docstring for the one caller that needs it). Shapes (K,) each.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if floor is not None:
        q = np.maximum(q, floor)
    return float(np.sum(rel_entr(p, q)))


def total_variation(p: np.ndarray, q: np.ndarray, axis: int | None = None):
    """TV(p, q) = ½ Σ_z |p(z) − q(z)| = ½‖p − q‖₁: a float for shapes (K,); with ``axis`` (e.g. rows of
    (n, K) stacks, q broadcast) the array of TVs along it."""
    tv = 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=axis)
    return float(tv) if axis is None else tv


def entropy(p: np.ndarray) -> float:
    """Shannon entropy H(p) = −Σ_z p(z) log p(z) in nats, ``0·log 0 = 0``. Shape (K,)."""
    p = np.asarray(p, dtype=np.float64)
    m = p > 0
    return float(-np.sum(p[m] * np.log(p[m])))


def count_entropy(counts: np.ndarray, total: int | None = None) -> float:
    """Entropy (nats) of the empirical distribution counts/total of a group's answers.

    ``counts`` (n_answers,) non-negative; ``total`` defaults to ``counts.sum()`` (pass the group size when
    the counts are those of one group of G samples). Used for the ``answer_entropy`` metrics of the trainer,
    the TRL bridge and the evaluation.
    """
    counts = np.asarray(counts)
    p = counts[counts > 0] / (counts.sum() if total is None else total)  # (n_distinct,)
    return float(-(p * np.log(p)).sum())


def majority_ratio(counts: np.ndarray, total: int, label: int | None = None) -> float:
    """Share counts[label]/total of a group's majority answer (``majority_ratio`` metrics).

    ``label``: the index of the group's pseudo-label (the trainer's convention: the no-answer bucket is never
    a label); None = the most frequent entry, whatever it is (the TRL bridge's convention: the no-answer
    bucket counts).
    """
    counts = np.asarray(counts)
    return float((counts.max() if label is None else counts[label]) / total)
