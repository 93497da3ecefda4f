"""Group-relative advantages ``A_i`` from per-sample rewards (THEORY §6, T11).

``A_i = (g_i − baseline_i) / scale``:

* baseline "rloo": ``mean_{j≠i} g_j`` (leave-one-out; the default), "mean": ``mean_j g_j`` (GRPO,
  includes the sample itself: exactly ``(G−1)/G`` times the RLOO advantage), "none": 0.
* scale "none" (default), "group": ``std(g_group) + ADVANTAGE_EPS`` (GRPO), "batch": ``std(all g in the
  batch) + ADVANTAGE_EPS``. Standard deviations use ``STD_DDOF = 1`` (torch's ``std`` default, as in
  TRL's GRPO trainer).

* baseline "doubly-loo" (T11b): ``b_i = mean_{j≠i} R_j^{(−i)}``, sample j's reward recomputed *without*
  sample i. It needs the answers and the reward rule, not only the rewards: use
  :func:`doubly_loo_advantages` (``advantages`` refuses it). ``b_i`` is a function of the other answers only,
  so the effective reward is the estimator's own bias (no RLOO shrinkage); with count tables it costs O(G).

A group whose rewards are all equal ("zero-variance group") gets advantage exactly 0, never NaN or
``0/eps`` noise, whenever the baseline is centered ("rloo", "mean": 0 is then the exact value, only
rounding is removed) or the scale is "group" (which would otherwise divide by ``0 + eps``). With
baseline "none" and scale "none"/"batch" the raw (scaled) rewards are kept: that is plain REINFORCE, and
zeroing them would bias it. The number of zero-variance groups is returned in every case. Under
"doubly-loo" equal rewards do not make the advantage 0 (the baseline uses other tables) and it is kept,
except with scale "group" (0 then, as above).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dagsim.errors import DomainError, ValidationError
from dagsim.registry import check_name, lookup

__all__ = ["ADVANTAGE_EPS", "STD_DDOF", "BASELINES", "SCALES", "CENTERINGS", "SCALINGS", "RLOO_AWARE_BASELINES",
           "advantages",
           "doubly_loo_baseline",
           "doubly_loo_advantages", "doubly_loo_rule", "rescale_advantages"]

#: Added to the standard deviation before dividing ("group"/"batch" scaling); TRL's GRPO default.
ADVANTAGE_EPS = 1e-4
#: Delta degrees of freedom of the std (1 = sample std, torch.std's default used by TRL/DeepSeek GRPO).
STD_DDOF = 1


def _rloo_centered(g2: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """T11 RLOO: ``g_i − mean_{j≠i} g_j = G/(G−1) (g_i − mean_j g_j)``, rewards (B, G), mean (B, 1)."""
    G = g2.shape[1]
    return (G / (G - 1)) * (g2 - mean)


def _mean_centered(g2: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """GRPO's self-inclusive mean: ``g_i − mean_j g_j`` ((G−1)/G times RLOO, T11d)."""
    return g2 - mean


def _uncentered(g2: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """No baseline (plain REINFORCE)."""
    return g2.copy()


#: The advantage baselines (T11), by name: ``centering(rewards (B, G), group mean (B, 1)) -> (B, G)``;
#: "doubly-loo" (T11b) needs the answers and the reward rule (:func:`doubly_loo_advantages`), so it has no
#: centering of the rewards alone (None). The one source of the ``--baseline`` names.
CENTERINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
    "rloo": _rloo_centered,
    "mean": _mean_centered,
    "none": _uncentered,
    "doubly-loo": None,
}
BASELINES = tuple(CENTERINGS)
#: The baselines whose count tables act on ``C' ~ Bin(G − 2, p)`` counts, so that tables designed for G − 1
#: samples remove the RLOO shrinkage (T11a; "mean" is (G−1)/G times RLOO, T11d).
RLOO_AWARE_BASELINES = ("rloo", "mean")


def _group_std_scaled(adv: np.ndarray, g2: np.ndarray, eps: float) -> np.ndarray:
    """Divide by each group's reward std + eps (GRPO)."""
    return adv / (g2.std(axis=1, ddof=STD_DDOF, keepdims=True) + eps)


def _batch_std_scaled(adv: np.ndarray, g2: np.ndarray, eps: float) -> np.ndarray:
    """Divide by the whole batch's reward std + eps (a single sample: unscaled)."""
    return adv / (g2.std(ddof=STD_DDOF) + eps) if g2.size > STD_DDOF else adv


#: The advantage scalings (T11), by name: ``scaling(centered (B, G), rewards (B, G), eps) -> (B, G)``.
#: The one source of the ``--scale`` names.
SCALINGS: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "none": lambda adv, g2, eps: adv,
    "group": _group_std_scaled,
    "batch": _batch_std_scaled,
}
SCALES = tuple(SCALINGS)


def advantages(
    rewards: np.ndarray, *, baseline: str = "rloo", scale: str = "none", eps: float = ADVANTAGE_EPS
) -> tuple[np.ndarray, int]:
    """Advantages of ``rewards`` (shape ``(n_groups, G)`` or ``(G,)``) -> ``(A same shape, n_zero_variance)``.

    T11: RLOO ``A_i = g_i − mean_{j≠i} g_j = G/(G−1) (g_i − mean_j g_j)`` (computed in the second form);
    "mean" ``A_i = g_i − mean_j g_j``. See the module docstring for scales and zero-variance groups.
    """
    centering = lookup(CENTERINGS, baseline, "baseline")
    if centering is None:
        raise DomainError("baseline 'doubly-loo' recomputes rewards without each sample: it needs the answers "
                          "and the reward rule; call doubly_loo_advantages(answers, reward, ...)")
    _check_scale_eps(scale, eps)
    g = _check_rewards(rewards)
    g2 = g.reshape(-1, g.shape[-1])  # (B, G)

    flat_group = g2.max(axis=1) == g2.min(axis=1)  # (B,) exact: all rewards equal
    mean = g2.mean(axis=1, keepdims=True)  # (B, 1)
    adv = _scaled(centering(g2, mean), g2, scale, eps)
    if baseline != "none" or scale == "group":
        adv[flat_group] = 0.0
    return adv.reshape(g.shape), int(flat_group.sum())


def _check_scale_eps(scale: str, eps: float) -> None:
    check_name(SCALES, scale, "scale")
    if not np.isfinite(eps) or eps < 0:
        raise DomainError(f"eps must be finite and >= 0, got {eps!r}")


def _check_rewards(rewards: np.ndarray) -> np.ndarray:
    g = np.asarray(rewards, dtype=np.float64)
    if g.ndim not in (1, 2):
        raise ValidationError(f"rewards must have shape (n_groups, G) or (G,), got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValidationError("rewards have a NaN or infinite entry")
    if g.shape[-1] < 2:
        raise DomainError(f"group size G = {g.shape[-1]} must be >= 2 for group-relative advantages")
    return g


def _scaled(adv: np.ndarray, g2: np.ndarray, scale: str, eps: float) -> np.ndarray:
    """Divide centered advantages ``(B, G)`` by the group's / batch's reward std (+ eps), or not."""
    return SCALINGS[scale](adv, g2, eps)


#: A count reward for :func:`doubly_loo_baseline`: (T_G (K, G), T_{G−1} (K, G−1)), sample i's reward is
#: ``T_G[z_i, C_i]`` and sample j's reward without sample i is ``T_{G−1}[z_j, C_j^{(−i)}]``.
CountTables = tuple


def _as_answer_groups(answers: np.ndarray) -> np.ndarray:
    z = np.asarray(answers)
    if z.ndim not in (1, 2) or not np.issubdtype(z.dtype, np.integer):
        raise ValidationError(f"answers must be an integer array of shape (n_groups, G) or (G,), got "
                              f"{z.dtype} {z.shape}")
    if z.shape[-1] < 2:
        raise DomainError(f"group size G = {z.shape[-1]} must be >= 2 for group-relative advantages")
    if z.size and z.min() < 0:
        raise ValidationError("answers must be non-negative answer indices")
    return z.reshape(-1, z.shape[-1]).astype(np.int64)


def _count_doubly_loo(z: np.ndarray, t_full: np.ndarray, t_minus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(G) per group: ``R_i = T_G[z_i, C_i]`` and ``b_i = (Σ_{j: z_j≠z_i} T'[z_j, C_j] + C_i T'[z_i, C_i−1])/(G−1)``.

    (A sample j with ``z_j = z_i`` has ``C_j = C_i`` and loses one count without i; the others keep theirs.)
    """
    from dagsim.estimators import loo_counts

    B, G = z.shape
    K = t_full.shape[0]
    if t_full.shape != (K, G) or t_minus.shape != (K, G - 1):
        raise ValidationError(f"count tables must have shapes (K, G) = (K, {G}) and (K, G-1) = (K, {G - 1}), "
                              f"got {t_full.shape} and {t_minus.shape}")
    if z.size and z.max() >= K:
        raise ValidationError(f"answers have index {z.max()} >= n_answers = {K} (table rows)")
    c = loo_counts(z)  # (B, G)
    rewards = t_full[z, c]  # (B, G)
    x = t_minus[z, np.minimum(c, G - 2)]  # (B, G): T'[z_j, C_j], clipped where all G agree (then unused)
    total = x.sum(axis=1, keepdims=True)  # (B, 1)
    others = total - (c + 1) * x  # (B, G): Σ over j with z_j ≠ z_i
    same = c * t_minus[z, np.maximum(c - 1, 0)]  # (B, G): the C_i samples sharing z_i, one count fewer
    return rewards, (others + same) / (G - 1)


def _generic_doubly_loo(z: np.ndarray, reward_fn: Callable[[np.ndarray], np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """O(G²) per group: ``reward_fn`` on the group and on each of its G leave-one-out subgroups (size G−1)."""
    B, G = z.shape
    rewards = np.asarray(reward_fn(z), dtype=np.float64)  # (B, G)
    if rewards.shape != (B, G):
        raise ValidationError(f"reward_fn returned shape {rewards.shape}, expected {(B, G)}")
    base = np.empty((B, G))
    keep = ~np.eye(G, dtype=bool)  # row i: every sample but i
    for i in range(G):
        sub = z[:, keep[i]]  # (B, G-1)
        r_sub = np.asarray(reward_fn(sub), dtype=np.float64)  # (B, G-1)
        if r_sub.shape != (B, G - 1):
            raise ValidationError(f"reward_fn returned shape {r_sub.shape} on a subgroup, expected {(B, G - 1)}")
        base[:, i] = r_sub.mean(axis=1)
    return rewards, base


def doubly_loo_baseline(answers: np.ndarray, reward: CountTables | Callable[[np.ndarray], np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """T11b: ``(R, b)`` with ``R_i`` the rewards and ``b_i = mean_{j≠i} R_j^{(−i)}``, shapes ``(n_groups, G)``.

    ``reward``: either a pair of count tables ``(T_G, T_{G−1})`` of shapes ``(K, G)``, ``(K, G−1)`` (the
    reward of a sample with answer z and LOO count c in a group of G, resp. G−1; O(G)), or a function
    ``reward_fn(answers (B, g)) -> (B, g)`` valid for g = G and G−1 (any group reward; O(G²) calls' work).
    """
    z = _as_answer_groups(answers)
    if callable(reward):
        r, b = _generic_doubly_loo(z, reward)
    else:
        if len(reward) != 2:
            raise ValidationError("reward must be a callable or a pair of count tables (T_G, T_{G-1})")
        t_full, t_minus = (np.asarray(t, dtype=np.float64) for t in reward)
        r, b = _count_doubly_loo(z, t_full, t_minus)
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(b))):
        raise ValidationError("rewards have a NaN or infinite entry")
    return r, b


def doubly_loo_advantages(answers: np.ndarray, reward: CountTables | Callable[[np.ndarray], np.ndarray], *,
                          scale: str = "none", eps: float = ADVANTAGE_EPS, extra_rewards: np.ndarray | None = None
                          ) -> tuple[np.ndarray, int]:
    """T11b advantages ``A_i = (R_i − mean_{j≠i} R_j^{(−i)}) / scale`` -> ``(A, n_zero_variance)``, shaped like answers.

    ``reward`` as in :func:`doubly_loo_baseline`. ``extra_rewards`` (same shape): a count-free per-sample
    term (e.g. the sequence-level −β·log π/π0 of the LLM trainer) added to the rewards; it does not depend
    on the other samples, so its baseline is plain leave-one-out (RLOO). Scale "group" divides by the std of
    the total rewards; "batch" by the batch's. Zero-variance groups: see the module docstring.
    """
    _check_scale_eps(scale, eps)
    shape = np.shape(answers)
    r, b = doubly_loo_baseline(answers, reward)  # (B, G) each
    adv = r - b
    total = r
    if extra_rewards is not None:
        e = _check_rewards(np.asarray(extra_rewards, dtype=np.float64).reshape(r.shape))
        G = r.shape[1]
        adv = adv + (G / (G - 1)) * (e - e.mean(axis=1, keepdims=True))
        total = r + e
    flat_group = total.max(axis=1) == total.min(axis=1)  # (B,)
    adv = _scaled(adv, total, scale, eps)
    if scale == "group":
        adv[flat_group] = 0.0
    return adv.reshape(shape), int(flat_group.sum())


def rescale_advantages(centered: np.ndarray, rewards: np.ndarray, *, scale: str = "none",
                       eps: float = ADVANTAGE_EPS) -> tuple[np.ndarray, int]:
    """Apply ``scale`` to already-centered advantages ``(n_groups, G)`` (e.g. doubly-LOO rows of several
    groups, so that "batch" sees the whole batch) -> ``(A, n_zero_variance)``; "group" zeroes flat groups."""
    _check_scale_eps(scale, eps)
    g2 = _check_rewards(rewards).reshape(-1, np.shape(rewards)[-1])
    c2 = np.asarray(centered, dtype=np.float64).reshape(g2.shape)
    flat_group = g2.max(axis=1) == g2.min(axis=1)
    adv = _scaled(c2, g2, scale, eps)
    if scale == "group":
        adv[flat_group] = 0.0
    return adv.reshape(np.shape(centered)), int(flat_group.sum())


def doubly_loo_rule(objective: str, *, n_answers: int, group_size: int, **reward_kw
                    ) -> CountTables | Callable[[np.ndarray], np.ndarray]:
    """The ``reward`` argument of :func:`doubly_loo_advantages` for a ``dagsim.grpo.rewards`` objective.

    Count objectives: the tables ``(T_G, T_{G−1})`` (``count_reward_table`` at G and G−1; at G = 2 the
    baseline table is T_G's first column, the reward of a lone sample); group objectives: a function
    calling ``group_rewards`` on any group size. ``reward_kw``: tau, task_reward, order, estimator.
    """
    from dagsim.grpo.rewards import REWARD_OBJECTIVES, count_reward_table, group_rewards

    if objective in REWARD_OBJECTIVES and REWARD_OBJECTIVES[objective].count_table is not None:
        kw = {k: v for k, v in reward_kw.items() if k != "table_size"}
        t_full = count_reward_table(objective, n_answers=n_answers, group_size=group_size, **kw)  # (K, G)
        if group_size > 2:
            t_minus = count_reward_table(objective, n_answers=n_answers, group_size=group_size - 1, **kw)
        else:
            t_minus = t_full[:, :1]
        return t_full, t_minus  # (K, G), (K, G-1)
    kw = {k: v for k, v in reward_kw.items() if k != "table_size"}
    return lambda a: group_rewards(objective, a, n_answers=n_answers, **kw)
