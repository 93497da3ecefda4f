"""Group-relative advantages ``A_i`` from per-sample rewards (THEORY §6, T11).

``A_i = (g_i − baseline_i) / scale``:

* baseline "rloo": ``mean_{j≠i} g_j`` (leave-one-out; the default), "mean": ``mean_j g_j`` (GRPO,
  includes the sample itself: exactly ``(G−1)/G`` times the RLOO advantage), "none": 0.
* scale "none" (default), "group": ``std(g_group) + ADVANTAGE_EPS`` (GRPO), "batch": ``std(all g in the
  batch) + ADVANTAGE_EPS``. Standard deviations use ``STD_DDOF = 1`` (torch's ``std`` default, as in
  TRL's GRPO trainer).

A group whose rewards are all equal ("zero-variance group") gets advantage exactly 0, never NaN or
``0/eps`` noise, whenever the baseline is centered ("rloo", "mean": 0 is then the exact value, only
rounding is removed) or the scale is "group" (which would otherwise divide by ``0 + eps``). With
baseline "none" and scale "none"/"batch" the raw (scaled) rewards are kept: that is plain REINFORCE, and
zeroing them would bias it. The number of zero-variance groups is returned in every case.
"""

from __future__ import annotations

import numpy as np

from dagsim.errors import DomainError, ValidationError

__all__ = ["ADVANTAGE_EPS", "STD_DDOF", "BASELINES", "SCALES", "advantages"]

#: Added to the standard deviation before dividing ("group"/"batch" scaling); TRL's GRPO default.
ADVANTAGE_EPS = 1e-4
#: Delta degrees of freedom of the std (1 = sample std, torch.std's default used by TRL/DeepSeek GRPO).
STD_DDOF = 1
BASELINES = ("rloo", "mean", "none")
SCALES = ("none", "group", "batch")


def advantages(
    rewards: np.ndarray, *, baseline: str = "rloo", scale: str = "none", eps: float = ADVANTAGE_EPS
) -> tuple[np.ndarray, int]:
    """Advantages of ``rewards`` (shape ``(n_groups, G)`` or ``(G,)``) -> ``(A same shape, n_zero_variance)``.

    T11: RLOO ``A_i = g_i − mean_{j≠i} g_j = G/(G−1) (g_i − mean_j g_j)`` (computed in the second form);
    "mean" ``A_i = g_i − mean_j g_j``. See the module docstring for scales and zero-variance groups.
    """
    if baseline not in BASELINES:
        raise ValidationError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    if scale not in SCALES:
        raise ValidationError(f"scale must be one of {SCALES}, got {scale!r}")
    if not np.isfinite(eps) or eps < 0:
        raise DomainError(f"eps must be finite and >= 0, got {eps!r}")
    g = np.asarray(rewards, dtype=np.float64)
    if g.ndim not in (1, 2):
        raise ValidationError(f"rewards must have shape (n_groups, G) or (G,), got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValidationError("rewards have a NaN or infinite entry")
    g2 = g.reshape(-1, g.shape[-1])  # (B, G)
    G = g2.shape[1]
    if G < 2:
        raise DomainError(f"group size G = {G} must be >= 2 for group-relative advantages")

    flat_group = g2.max(axis=1) == g2.min(axis=1)  # (B,) exact: all rewards equal
    mean = g2.mean(axis=1, keepdims=True)  # (B, 1)
    if baseline == "rloo":
        adv = (G / (G - 1)) * (g2 - mean)
    elif baseline == "mean":
        adv = g2 - mean
    else:
        adv = g2.copy()

    if scale == "group":
        adv = adv / (g2.std(axis=1, ddof=STD_DDOF, keepdims=True) + eps)
    elif scale == "batch":
        adv = adv / (g2.std(ddof=STD_DDOF) + eps) if g2.size > STD_DDOF else adv

    if baseline != "none" or scale == "group":
        adv[flat_group] = 0.0
    return adv.reshape(g.shape), int(flat_group.sum())
