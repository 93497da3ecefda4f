"""Per-sample GRPO rewards ``g_i`` from one group of answers (THEORY §4 table, §6, T7, T8).

The reward of sample ``i`` estimates the gradient ``∇Φ(ν)(z_i)`` of the objective at the policy's own
answer marginal, from the group alone. Two kinds of objectives are registered:

* **count objectives** — the reward depends only on the sample's own answer ``z_i`` and its
  leave-one-out count ``C_i = #{j != i: z_j = z_i}``: a table ``T[z, c]`` of shape ``(n_answers, G)``
  with ``g_i = T[z_i, C_i]``. ``effective_reward`` uses the table for exact binomial sums.
* **group objectives** — anything else (the majority objectives need the whole count vector).

Adding an objective = one function + one decorator (``@count_objective("name")`` or
``@group_objective("name")``). ``answers`` may be ``(G,)`` or batched ``(n_groups, G)`` (any leading
shape); rewards have the same shape, float64.

Conventions shared by all objectives: ``task_reward`` is ``r(z)`` of shape ``(n_answers,)`` (0 if None);
``tau >= 0``; ``estimator`` selects the count table for ``log p`` / ``p^a`` (``dagsim.estimators``):
"plugin", "loo", "unbiased", "minimax" (default), "minimax_monotone", "aqp" (T12; its power tables are the
U-statistics). ``table_size`` (T11a) designs those tables for fewer samples (G − 1 under RLOO). Arguments
an objective does not use are ignored (documented per objective), so a caller can pass one configuration
to every objective.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, ValidationError
from dagsim.estimators import (
    group_counts,
    log_estimator_table,
    loo_counts,
    power_estimator_table,
)

__all__ = [
    "ESTIMATORS",
    "REWARD_OBJECTIVES",
    "CONSENSUS_KINDS",
    "GEOMETRIC_PSEUDOCOUNT",
    "MODE_TIE_ATOL",
    "RewardContext",
    "RewardObjective",
    "count_objective",
    "group_objective",
    "count_reward_table",
    "table_size_for",
    "group_rewards",
    "consensus_group_rewards",
    "pairwise_group_rewards",
    "constrained_rewards",
    "constraint_values",
    "leq_system",
    "dual_ascent_step",
]

ESTIMATORS = ("plugin", "loo", "unbiased", "minimax", "minimax_monotone", "aqp")

#: Geometric consensus: every view's frequency is smoothed as (n(z) + 1/2) / (G + K/2)
#: (Krichevsky–Trofimov add-1/2) so that q ∝ Π ν̂_j^{w_j} and q / ν̂_j are finite.
GEOMETRIC_PSEUDOCOUNT = 0.5
#: Pooled (weighted) frequencies closer than this are treated as tied modes (they are sums of a few
#: rationals w_j n / G_j, so genuine ties differ only by rounding).
MODE_TIE_ATOL = 1e-12


# ================================================================================================
# Registry
# ================================================================================================
@dataclass(frozen=True)
class RewardContext:
    """Validated arguments of one ``group_rewards`` call."""

    n_answers: int  # K
    group_size: int  # G
    tau: float  # objective weight τ >= 0
    task_reward: np.ndarray  # (n_answers,) r(z)
    order: float | None  # α (tsallis only)
    estimator: str
    table_size: int | None = None  # samples the log/power count tables are designed for (None = G; T11a)


@dataclass(frozen=True)
class RewardObjective:
    """A registered reward: exactly one of ``count_table`` / ``group_reward`` is set."""

    name: str
    count_table: Callable[[RewardContext], np.ndarray] | None  # ctx -> (n_answers, G)
    group_reward: Callable[[np.ndarray, RewardContext], np.ndarray] | None  # (B, G), ctx -> (B, G)


REWARD_OBJECTIVES: dict[str, RewardObjective] = {}


def _register(objective: RewardObjective) -> None:
    if objective.name in REWARD_OBJECTIVES:
        raise ValidationError(f"reward objective {objective.name!r} is already registered")
    REWARD_OBJECTIVES[objective.name] = objective


def count_objective(name: str) -> Callable:
    """Register ``fn(ctx) -> T`` (``(n_answers, G)``): reward of answer z with LOO count c is ``T[z, c]``."""

    def decorate(fn: Callable[[RewardContext], np.ndarray]) -> Callable[[RewardContext], np.ndarray]:
        _register(RewardObjective(name=name, count_table=fn, group_reward=None))
        return fn

    return decorate


def group_objective(name: str) -> Callable:
    """Register ``fn(answers (B, G), ctx) -> rewards (B, G)`` for rewards that need the whole group."""

    def decorate(fn: Callable[[np.ndarray, RewardContext], np.ndarray]) -> Callable:
        _register(RewardObjective(name=name, count_table=None, group_reward=fn))
        return fn

    return decorate


# ================================================================================================
# Count objectives (THEORY §4 table)
# ================================================================================================
def _sized_table(ctx: RewardContext, build: Callable[[int], np.ndarray]) -> np.ndarray:
    """``build(n)`` (a table of shape ``(n,)`` for ``C ~ Bin(n-1, p)``) at ``n = ctx.table_size``, as shape ``(G,)``.

    T11a: under RLOO only the entries ``0..G-2`` act (the last is reached only when all G answers agree, where
    every RLOO advantage is 0), on ``C' ~ Bin(G-2, p)``: a table designed for ``G-1`` samples is then unbiased.
    A smaller table is padded with its last entry repeated (inert under RLOO); ``table_size = 1`` (G = 2)
    falls back to the G-table (under RLOO no count table has any effect at G = 2).
    """
    G = ctx.group_size
    n = G if ctx.table_size is None else int(ctx.table_size)
    if n < 2:
        n = G
    table = np.asarray(build(n), dtype=np.float64)  # (n,)
    return table if n == G else np.concatenate([table, np.full(G - n, table[-1])])  # (G,)


def table_size_for(baseline: str, group_size: int, *, rloo_aware: bool = True) -> int | None:
    """T11a: the sample count the count tables should be designed for under ``baseline``.

    ``"rloo"`` and ``"mean"`` (with ``rloo_aware``): ``G - 1`` — RLOO applies the table to ``C' ~ Bin(G-2, p)``,
    and the self-inclusive mean is exactly (G-1)/G times RLOO (T11d); ``"doubly-loo"``, ``"none"``: ``None``
    (the group's own size G, T7/T8).
    """
    centered = baseline in ("rloo", "mean")
    return int(group_size) - 1 if (centered and rloo_aware and group_size > 2) else None


def _power_kind(estimator: str) -> str:
    """T12 "augmented": under "aqp" the polynomial parts keep their U-statistics (the monotone minimax kind
    is the U-statistic whenever one exists)."""
    return "minimax_monotone" if estimator == "aqp" else estimator


def _log_table(ctx: RewardContext) -> np.ndarray:
    if ctx.estimator == "unbiased":
        raise DomainError(
            "estimator 'unbiased' is impossible for log objectives: no function of the LOO count is "
            "unbiased for log p (T8); use 'minimax', 'minimax_monotone', 'aqp', 'plugin' or 'loo'"
        )
    return _sized_table(ctx, lambda n: log_estimator_table(n, ctx.estimator))  # (G,)


@count_objective("reward")
def _reward_table(ctx: RewardContext) -> np.ndarray:
    """``g = r(z)``. τ, order, estimator ignored."""
    return np.repeat(ctx.task_reward[:, None], ctx.group_size, axis=1)  # (K, G)


@count_objective("entropy")
def _entropy_table(ctx: RewardContext) -> np.ndarray:
    """``g = r(z) - τ log_hat p`` (Φ = <r,ν> + τH(ν)); ``log_hat`` = ``log_estimator_table(G, estimator)``."""
    return ctx.task_reward[:, None] - ctx.tau * _log_table(ctx)[None, :]  # (K, G)


@count_objective("sharpen")
def _sharpen_table(ctx: RewardContext) -> np.ndarray:
    """``g = r(z) + τ log_hat p`` (Φ = <r,ν> - τH(ν))."""
    return ctx.task_reward[:, None] + ctx.tau * _log_table(ctx)[None, :]  # (K, G)


@count_objective("gini")
def _gini_table(ctx: RewardContext) -> np.ndarray:
    """``g = r(z) - 2τ p_hat``; ``p_hat = C/(G-1)`` (T7 unbiased) except ``(C+1)/G`` for "plugin"."""
    p_hat = _sized_table(ctx, lambda n: power_estimator_table(n, 1.0, _power_kind(ctx.estimator)))  # (G,)
    return ctx.task_reward[:, None] - 2.0 * ctx.tau * p_hat[None, :]


@count_objective("collision")
def _collision_table(ctx: RewardContext) -> np.ndarray:
    """``g = r(z) + 2τ p_hat`` (Φ = <r,ν> + τ Σν²), ``p_hat`` as for gini."""
    p_hat = _sized_table(ctx, lambda n: power_estimator_table(n, 1.0, _power_kind(ctx.estimator)))  # (G,)
    return ctx.task_reward[:, None] + 2.0 * ctx.tau * p_hat[None, :]


@count_objective("tsallis")
def _tsallis_table(ctx: RewardContext) -> np.ndarray:
    """``g = r(z) - τ α/(α-1) p_hat^{α-1}``; needs ``order = α > 0, α != 1``.

    ``p^{α-1}`` is estimated by ``power_estimator_table(G, α-1, estimator)``: the T7 U-statistic (exactly
    unbiased) when α-1 is an integer in [0, G-1] and estimator is "unbiased"/"minimax"/"minimax_monotone";
    otherwise the plug-in ``((C+1)/G)^{α-1}``, the LOO power, or a minimax LP table — all biased (a count
    function's mean is a polynomial of degree G-1). α = 2 reproduces gini exactly.
    """
    alpha = ctx.order
    if alpha is None or not np.isfinite(alpha) or alpha <= 0 or alpha == 1:
        raise DomainError(f"tsallis needs order α > 0, α != 1, got order={alpha!r}")
    p_pow = _sized_table(ctx, lambda n: power_estimator_table(n, alpha - 1.0, _power_kind(ctx.estimator)))  # (G,)
    return ctx.task_reward[:, None] - ctx.tau * alpha / (alpha - 1.0) * p_pow[None, :]


@count_objective("empo")
def _empo_table(ctx: RewardContext) -> np.ndarray:
    """EMPO baseline: ``g = (C+1)/G``, the own answer's self-counting group frequency (T7: biased, affine).

    Label-free: τ, task_reward, order and estimator are ignored.
    """
    c = np.arange(ctx.group_size, dtype=np.float64)
    return np.repeat(((c + 1.0) / ctx.group_size)[None, :], ctx.n_answers, axis=0)  # (K, G)


# ================================================================================================
# Group objectives (majority)
# ================================================================================================
def _split_mode_credit(counts: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``1[own ∈ modes(counts)] / |modes(counts)|``: majority credit with ties split evenly.

    Splitting equals the expectation of uniform random tie-breaking, so rewards stay deterministic and
    no answer index is favoured. counts ``(..., K)``, own ``(...)`` int -> ``(...)`` float.
    """
    is_mode = counts == counts.max(axis=-1, keepdims=True)  # (..., K)
    n_modes = is_mode.sum(axis=-1)  # (...)
    own_is_mode = np.take_along_axis(is_mode, own[..., None], axis=-1)[..., 0]
    return own_is_mode / n_modes


@group_objective("majority")
def _majority_rewards(answers: np.ndarray, ctx: RewardContext) -> np.ndarray:
    """``g_i = r(z_i) + τ·1[z_i = mode of the OTHER G-1 answers]`` (ties split: credit 1/#modes).

    The leave-one-out mode is the plug-in of ``mode(ν)`` that does not see sample i, so a sample cannot
    vote for itself (with the whole-group mode, an answer seen once in an all-distinct group would be
    "the majority"). ``ttrl`` is the whole-group pseudo-label version.
    """
    counts = group_counts(answers, ctx.n_answers)  # (B, K)
    others = np.repeat(counts[:, None, :], ctx.group_size, axis=1)  # (B, G, K)
    b_idx, g_idx = np.indices(answers.shape)
    others[b_idx, g_idx, answers] -= 1  # remove sample i's own vote
    credit = _split_mode_credit(others, answers)  # (B, G)
    return ctx.task_reward[answers] + ctx.tau * credit


@group_objective("ttrl")
def _ttrl_rewards(answers: np.ndarray, ctx: RewardContext) -> np.ndarray:
    """TTRL baseline: ``g_i = 1[z_i = majority answer of the whole group]`` (ties split: 1/#modes).

    Label-free pseudo-label reward: τ, task_reward, order and estimator are ignored.
    """
    counts = group_counts(answers, ctx.n_answers)  # (B, K)
    b_counts = np.repeat(counts[:, None, :], ctx.group_size, axis=1)  # (B, G, K)
    return _split_mode_credit(b_counts, answers)


# ================================================================================================
# Public entry points
# ================================================================================================
def _check_tau(tau: float) -> float:
    if not np.isfinite(tau) or tau < 0:
        raise DomainError(f"tau must be finite and >= 0, got {tau!r}")
    return float(tau)


def _check_task_reward(task_reward: np.ndarray | None, n_answers: int) -> np.ndarray:
    if task_reward is None:
        return np.zeros(n_answers)
    r = np.asarray(task_reward, dtype=np.float64)
    if r.shape != (n_answers,):
        raise ValidationError(f"task_reward must have shape (n_answers,) = ({n_answers},), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValidationError("task_reward has a NaN or infinite entry")
    return r


def _check_answers(answers: np.ndarray, n_answers: int, name: str = "answers") -> np.ndarray:
    if int(n_answers) != n_answers or n_answers < 1:
        raise ValidationError(f"n_answers must be a positive integer, got {n_answers!r}")
    arr = np.asarray(answers)
    if arr.ndim == 0:
        raise ValidationError(f"{name} must have shape (G,) or (n_groups, G), got a scalar")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"{name} must be an integer array of answer indices, got dtype {arr.dtype}")
    if arr.shape[-1] < 2:
        raise DomainError(
            f"{name}: group size G = {arr.shape[-1]} must be >= 2 (LOO counts need another sample)"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= n_answers):
        raise ValidationError(
            f"{name} must lie in [0, n_answers) = [0, {n_answers}), got [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64, copy=False)


def _check_table_size(table_size: int | None, group_size: int) -> int | None:
    if table_size is None:
        return None
    if int(table_size) != table_size or not 1 <= table_size <= group_size:
        raise ValidationError(f"table_size must be an integer in [1, G = {group_size}] or None, got {table_size!r}")
    return int(table_size)


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValidationError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")


def _objective(objective: str) -> RewardObjective:
    try:
        return REWARD_OBJECTIVES[objective]
    except KeyError:
        raise ValidationError(
            f"objective must be one of {sorted(REWARD_OBJECTIVES)}, got {objective!r}"
        ) from None


def count_reward_table(
    objective: str,
    *,
    n_answers: int,
    group_size: int,
    tau: float = 0.0,
    task_reward: np.ndarray | None = None,
    order: float | None = None,
    estimator: str = "minimax",
    table_size: int | None = None,
) -> np.ndarray:
    """Reward table ``T[z, c]``, shape ``(n_answers, G)``, of a count objective (DomainError otherwise).

    ``table_size``: the sample count the estimator tables are designed for (None = G); ``G - 1`` is the
    RLOO-aware choice (T11a, :func:`table_size_for`)."""
    spec = _objective(objective)
    if spec.count_table is None:
        raise DomainError(f"objective {objective!r} is not a function of (own answer, LOO count)")
    _check_estimator(estimator)
    if int(group_size) != group_size or group_size < 2:
        raise DomainError(f"group_size must be an integer >= 2, got {group_size!r}")
    ctx = RewardContext(
        n_answers=int(n_answers),
        group_size=int(group_size),
        tau=_check_tau(tau),
        task_reward=_check_task_reward(task_reward, int(n_answers)),
        order=order,
        estimator=estimator,
        table_size=_check_table_size(table_size, int(group_size)),
    )
    return np.asarray(spec.count_table(ctx), dtype=np.float64)


def group_rewards(
    objective: str,
    answers: np.ndarray,
    *,
    n_answers: int,
    tau: float = 0.0,
    task_reward: np.ndarray | None = None,
    order: float | None = None,
    estimator: str = "minimax",
    table_size: int | None = None,
) -> np.ndarray:
    """Per-sample rewards ``g_i`` (THEORY §4, §6) for ``answers`` of shape ``(G,)`` or ``(..., G)``.

    ``table_size``: as in :func:`count_reward_table` (``G - 1`` for RLOO-aware tables, T11a; None = G).

    objective: a key of ``REWARD_OBJECTIVES`` — "reward", "entropy", "gini", "tsallis", "sharpen",
    "collision", "majority" (LOO mode), "ttrl" (whole-group mode, baseline), "empo" (baseline).
    Returns float64 rewards with the shape of ``answers``.
    """
    spec = _objective(objective)
    _check_estimator(estimator)
    arr = _check_answers(answers, n_answers)
    G = arr.shape[-1]
    ctx = RewardContext(
        n_answers=int(n_answers),
        group_size=G,
        tau=_check_tau(tau),
        task_reward=_check_task_reward(task_reward, int(n_answers)),
        order=order,
        estimator=estimator,
        table_size=_check_table_size(table_size, G),
    )
    flat = arr.reshape(-1, G)  # (B, G)
    if spec.count_table is not None:
        table = spec.count_table(ctx)  # (K, G)
        out = table[flat, loo_counts(flat)]  # (B, G)
    else:
        out = spec.group_reward(flat, ctx)  # (B, G)
    return np.asarray(out, dtype=np.float64).reshape(arr.shape)


# ================================================================================================
# Multi-view consensus and pairwise coherence (THEORY §4, E5)
# ================================================================================================
def _check_views(answers_per_view: Sequence[np.ndarray], n_answers: int) -> list[np.ndarray]:
    if len(answers_per_view) < 1:
        raise ValidationError("answers_per_view must hold at least one view")
    views = [
        _check_answers(a, n_answers, name=f"answers_per_view[{j}]") for j, a in enumerate(answers_per_view)
    ]
    lead = views[0].shape[:-1]
    for j, v in enumerate(views):
        if v.shape[:-1] != lead:
            raise ValidationError(
                f"answers_per_view[{j}] has leading shape {v.shape[:-1]}, expected {lead} "
                "(the same groups in every view)"
            )
    return [v.reshape(-1, v.shape[-1]) for v in views]  # each (B, G_j)


def _check_weights(weights: np.ndarray | None, m: int) -> np.ndarray:
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or np.any(w < 0) or not np.all(np.isfinite(w)) or not np.isclose(w.sum(), 1.0):
        raise ValidationError(f"weights must be {m} non-negative numbers summing to 1, got {weights!r}")
    return w


def _arithmetic_consensus(views, counts, w, ctx_tau, r, estimator, table_shrink=0):
    """Arithmetic consensus reward ``r + τ (log q̂(z) − log ν̂_j(z))`` for every view j.

    ``table_shrink`` = 1: view j's log table is designed for ``G_j − 1`` samples (RLOO-aware, T11a)."""
    out = []
    for j, ans in enumerate(views):
        G_j = ans.shape[-1]
        c_loo = loo_counts(ans)  # (B, G_j)
        if estimator == "unbiased":
            raise DomainError("estimator 'unbiased' is impossible for the log consensus reward (T8)")
        ctx_j = RewardContext(1, G_j, 0.0, np.zeros(1), None, estimator,
                              table_size=(G_j - table_shrink) if table_shrink else None)
        log_nu_j = _log_table(ctx_j)[c_loo]  # (B, G_j)
        # q̂(z_i): own view by the self-counting plug-in (C_i + 1)/G_j (> 0, so no floor is needed),
        # the other views by their full group frequency n_k(z_i)/G_k (independent of sample i).
        q_hat = w[j] * (c_loo + 1.0) / G_j  # (B, G_j)
        for k, cnt in enumerate(counts):
            if k != j:
                q_hat = q_hat + w[k] * np.take_along_axis(cnt, ans, axis=-1) / views[k].shape[-1]
        out.append(r[ans] + ctx_tau * (np.log(q_hat) - log_nu_j))
    return out


def _geometric_consensus(views, counts, w, tau, r, n_answers):
    """Geometric consensus reward ``r + τ q̂(z)/ν̃_j(z)`` with add-1/2 smoothed frequencies ν̃."""
    smoothed = [
        (cnt + GEOMETRIC_PSEUDOCOUNT) / (v.shape[-1] + GEOMETRIC_PSEUDOCOUNT * n_answers)
        for cnt, v in zip(counts, views, strict=False)
    ]  # each (B, K)
    log_q = sum(w[k] * np.log(s) for k, s in enumerate(smoothed))  # (B, K)
    log_q = log_q - log_q.max(axis=-1, keepdims=True)
    q = np.exp(log_q)
    q = q / q.sum(axis=-1, keepdims=True)  # (B, K) normalized geometric mean
    return [r[ans] + tau * np.take_along_axis(q / smoothed[j], ans, axis=-1) for j, ans in enumerate(views)]


def _majority_consensus(views, counts, w, tau, r):
    """Majority consensus reward ``r + τ·1[z = mode of Σ_k w_k n_k / G_k]`` (ties split evenly)."""
    pooled = sum(w[k] * counts[k] / views[k].shape[-1] for k in range(len(views)))  # (B, K)
    is_mode = pooled >= pooled.max(axis=-1, keepdims=True) - MODE_TIE_ATOL  # (B, K)
    credit = is_mode / is_mode.sum(axis=-1, keepdims=True)  # (B, K)
    return [r[ans] + tau * np.take_along_axis(credit, ans, axis=-1) for ans in views]


CONSENSUS_KINDS = ("arithmetic", "geometric", "majority")


def consensus_group_rewards(
    answers_per_view: list[np.ndarray],
    *,
    n_answers: int,
    tau: float,
    consensus: str = "arithmetic",
    weights: np.ndarray | None = None,
    task_reward: np.ndarray | None = None,
    estimator: str = "minimax",
    rloo_aware: bool = False,
) -> list[np.ndarray]:
    """Per-sample multi-view coherence rewards (THEORY §4, E5) for one group per view.

    ``rloo_aware``: the arithmetic consensus's ``log ν̂_j`` table is designed for ``G_j − 1`` samples (the
    RLOO-aware choice, T11a; see :func:`table_size_for`).

    ``answers_per_view[j]`` has shape ``(G_j,)`` or ``(..., G_j)`` (the same leading shape for every
    view: group b of each view answers the same task); the groups of different views are independent.
    For a sample of view j with answer z (``w`` = weights, uniform by default):

    * "arithmetic": ``r(z) + τ (log q̂(z) − log ν̂_j(z))``, the gradient of ``−τ min_q Σ w_k KL(ν_k‖q)``
      (÷ w_j). ``log ν̂_j(z)`` = ``log_estimator_table(G_j, estimator)[C_i]``; ``log q̂(z)`` is the log of
      the plug-in mixture ``w_j (C_i+1)/G_j + Σ_{k≠j} w_k n_k(z)/G_k`` (positive, so no floor). With one
      view and estimator "plugin" the two cancel exactly (reward r); with other estimators a residual
      function of C_i remains (two different estimators of the same log p).
    * "geometric": ``r(z) + τ q̂(z)/ν̃_j(z)`` (gradient of ``−τ min_q Σ w_k KL(q‖ν_k)``) with
      ``ν̃_k = (n_k + 1/2)/(G_k + K/2)`` (``GEOMETRIC_PSEUDOCOUNT``; the floor keeps both finite) and
      ``q̂ ∝ Π_k ν̃_k^{w_k}`` normalized over all K answers.
    * "majority": ``r(z) + τ 1[z = mode of Σ_k w_k n_k/G_k]`` (pooled views, ties split evenly).

    Returns one reward array per view, shaped like its answers.
    """
    if consensus not in CONSENSUS_KINDS:
        raise ValidationError(f"consensus must be one of {CONSENSUS_KINDS}, got {consensus!r}")
    _check_estimator(estimator)
    tau = _check_tau(tau)
    r = _check_task_reward(task_reward, int(n_answers))
    views = _check_views(answers_per_view, n_answers)
    w = _check_weights(weights, len(views))
    counts = [group_counts(v, int(n_answers)) for v in views]  # each (B, K)
    if consensus == "arithmetic":
        out = _arithmetic_consensus(views, counts, w, tau, r, estimator, table_shrink=int(bool(rloo_aware)))
    elif consensus == "geometric":
        out = _geometric_consensus(views, counts, w, tau, r, int(n_answers))
    else:
        out = _majority_consensus(views, counts, w, tau, r)
    return [o.reshape(np.shape(a)).astype(np.float64) for o, a in zip(out, answers_per_view, strict=False)]


def _check_permutation(perm: np.ndarray, n_answers: int, name: str) -> np.ndarray:
    t = np.asarray(perm)
    if (
        t.shape != (n_answers,)
        or not np.issubdtype(t.dtype, np.integer)
        or not np.array_equal(np.sort(t), np.arange(n_answers))
    ):
        raise ValidationError(f"{name} must be a permutation of range({n_answers}) (an answer bijection)")
    return t.astype(np.int64)


def pairwise_group_rewards(
    answers_per_view: list[np.ndarray],
    *,
    n_answers: int,
    tau: float,
    pairs: Sequence[tuple[int, int]] | None = None,
    answer_maps: dict[tuple[int, int], np.ndarray] | None = None,
    task_reward: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Pairwise coherence rewards (THEORY §4): for a sample of view j with answer z,

    ``g = r(z) − 2τ Σ_{k ~ j} (ν̂_j(z) − ν̂_k(T_jk z))``, the gradient in ν_j of
    ``Φ_pair = −τ Σ_{(j,k)∈E} Σ_z (ν_j(z) − ν_k(T_jk z))²``.

    ``ν̂_j(z_i) = C_i/(G_j − 1)`` (LOO) and ``ν̂_k(w) = n_k(w)/G_k`` (independent group): both unbiased,
    so the reward is exactly unbiased given z_i (T7). ``pairs``: the edge set E of view pairs (j, k),
    default all j < k. ``answer_maps[(j, k)]``: a permutation T_jk of range(n_answers) with
    ``T_jk[z]`` = view k's answer matching view j's answer z (identity by default). For the edge's other
    endpoint the inverse map is used.
    """
    tau = _check_tau(tau)
    r = _check_task_reward(task_reward, int(n_answers))
    views = _check_views(answers_per_view, n_answers)
    m = len(views)
    if pairs is None:
        pairs = list(itertools.combinations(range(m), 2))
    answer_maps = {} if answer_maps is None else dict(answer_maps)
    counts = [group_counts(v, int(n_answers)) / v.shape[-1] for v in views]  # each (B, K): n_k/G_k
    out = [r[ans].astype(np.float64) for ans in views]
    identity = np.arange(int(n_answers))
    for edge in pairs:
        j, k = (int(edge[0]), int(edge[1]))
        if not (0 <= j < m and 0 <= k < m) or j == k:
            raise ValidationError(f"pairs: ({j}, {k}) must be two distinct view indices in [0, {m})")
        t_jk = _check_permutation(
            answer_maps.get((j, k), identity), int(n_answers), f"answer_maps[({j}, {k})]"
        )
        t_kj = np.argsort(t_jk)  # inverse permutation
        for a, b, t_ab in ((j, k, t_jk), (k, j, t_kj)):
            ans = views[a]  # (B, G_a)
            nu_a = loo_counts(ans) / (ans.shape[-1] - 1)  # (B, G_a)
            nu_b = np.take_along_axis(counts[b], t_ab[ans], axis=-1)  # (B, G_a)
            out[a] = out[a] - 2.0 * tau * (nu_a - nu_b)
    return [o.reshape(np.shape(a)) for o, a in zip(out, answers_per_view, strict=False)]


# ================================================================================================
# Constraints (THEORY §4, T5)
# ================================================================================================
def _check_constraint_system(
    constraint_coefs: np.ndarray, multipliers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(constraint_coefs, dtype=np.float64)
    lam = np.asarray(multipliers, dtype=np.float64)
    if h.ndim != 2:
        raise ValidationError(f"constraint_coefs must have shape (n_constraints, n_answers), got {h.shape}")
    if lam.shape != (h.shape[0],):
        raise ValidationError(
            f"multipliers must have shape (n_constraints,) = ({h.shape[0]},), got {lam.shape}"
        )
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(lam))):
        raise ValidationError("constraint_coefs and multipliers must be finite")
    return h, lam


def leq_system(constraints: Sequence[LinearConstraint]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Stack constraints in the ``<h_k, ν> (<= | ==) b_k`` form (``LinearConstraint.as_leq``).

    Returns ``(h (n_constraints, n_answers), b (n_constraints,), ops)`` with ops in {"<=", "=="}: the
    arguments ``constrained_rewards`` and ``dual_ascent_step`` expect.
    """
    if len(constraints) == 0:
        raise ValidationError("constraints must not be empty")
    hs, bs, ops = [], [], []
    for c in constraints:
        h, b = c.as_leq()
        hs.append(h)
        bs.append(b)
        ops.append("==" if c.op == "==" else "<=")
    return np.vstack(hs), np.asarray(bs, dtype=np.float64), tuple(ops)


def constraint_values(answers: np.ndarray, constraint_coefs: np.ndarray) -> np.ndarray:
    """Unbiased estimate of ``<h_k, ν>`` from sampled answers (any shape): the mean of ``h_k(z_i)``."""
    h = np.asarray(constraint_coefs, dtype=np.float64)
    if h.ndim != 2:
        raise ValidationError(f"constraint_coefs must have shape (n_constraints, n_answers), got {h.shape}")
    arr = np.asarray(answers)
    if arr.size == 0:
        raise ValidationError("answers must not be empty")
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= h.shape[1]:
        raise ValidationError(f"answers must be integer indices in [0, {h.shape[1]})")
    return h[:, arr.ravel()].mean(axis=1)  # (n_constraints,)


def constrained_rewards(
    base_rewards: np.ndarray, answers: np.ndarray, *, constraint_coefs: np.ndarray, multipliers: np.ndarray
) -> np.ndarray:
    """Lagrangian reward ``g_i − Σ_k λ_k h_k(z_i)`` (THEORY §4, T5).

    ``constraint_coefs`` are the ``h_k`` of the ``<=``/``==`` form (``leq_system``; for a ``>=`` constraint
    h = −coef). ``base_rewards`` and ``answers`` share any shape.
    """
    h, lam = _check_constraint_system(constraint_coefs, multipliers)
    g = np.asarray(base_rewards, dtype=np.float64)
    arr = np.asarray(answers)
    if arr.shape != g.shape:
        raise ValidationError(f"answers shape {arr.shape} != base_rewards shape {g.shape}")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= h.shape[1]):
        raise ValidationError(f"answers must be integer indices in [0, {h.shape[1]})")
    penalty = lam @ h  # (n_answers,)
    return g - penalty[arr]


def dual_ascent_step(
    multipliers: np.ndarray, constraint_values: np.ndarray, bounds: np.ndarray, lr: float, ops: Sequence[str]
) -> np.ndarray:
    """Projected dual (sub)gradient step for the multipliers (THEORY §4, T5; Constrained-GRPO).

    ``λ_k ← λ_k + lr (v_k − b_k)`` with ``v_k`` the estimated ``<h_k, ν>`` and ``b_k`` its bound, both in
    the ``<=``/``==`` form of ``leq_system``; then ``λ_k ← max(λ_k, 0)`` for inequalities ("<="). Equality
    multipliers ("==") are free. ">=" is refused: convert with ``LinearConstraint.as_leq``/``leq_system``.
    Returns a new array (the input is not modified).
    """
    lam = np.asarray(multipliers, dtype=np.float64)
    v = np.asarray(constraint_values, dtype=np.float64)
    b = np.asarray(bounds, dtype=np.float64)
    ops = tuple(ops)
    n = lam.shape[0] if lam.ndim == 1 else -1
    if lam.ndim != 1 or v.shape != (n,) or b.shape != (n,) or len(ops) != n:
        raise ValidationError(
            "multipliers, constraint_values, bounds and ops must all have length n_constraints"
        )
    if not np.isfinite(lr) or lr <= 0:
        raise DomainError(f"lr must be finite and > 0, got {lr!r}")
    for k, op in enumerate(ops):
        if op not in ("<=", "=="):
            raise ValidationError(
                f"ops[{k}] = {op!r}: expected '<=' or '=='; "
                "write '>=' constraints as '<=' with LinearConstraint.as_leq"
            )
    new = lam + lr * (v - b)
    inequality = np.array([op == "<=" for op in ops])
    return np.where(inequality, np.maximum(new, 0.0), new)
