"""Per-sample GRPO rewards ``g_i`` from one group of answers (THEORY §4 table, §6, T7, T8).

The reward of sample ``i`` estimates the gradient ``∇Φ(ν)(z_i)`` of the objective at the policy's own
answer marginal, from the group alone. Two kinds of objectives are registered:

* **count objectives** — the reward depends only on the sample's own answer ``z_i`` and its
  leave-one-out count ``C_i = #{j != i: z_j = z_i}``: a table ``T[z, c]`` of shape ``(n_answers, G)``
  with ``g_i = T[z_i, C_i]``. ``effective_reward`` uses the table for exact binomial sums.
* **group objectives** — anything else (the majority objectives need the whole count vector).

An objective family declares its reward in its own module (``count_reward_table`` or ``group_reward``,
see ``dagsim/objectives/base.py``); other rewards (the label-free baselines) are one function + one
decorator here (``@count_objective("name")`` or ``@group_objective("name")``). ``answers`` may be
``(G,)`` or batched ``(n_groups, G)`` (any leading shape); rewards have the same shape, float64.

Conventions shared by all objectives: ``task_reward`` is ``r(z)`` of shape ``(n_answers,)`` (0 if None);
``tau >= 0``; ``estimator`` selects the count table for ``log p`` / ``p^a`` (``dagsim.estimators``):
"plugin", "loo", "unbiased", "minimax" (default), "minimax_monotone", "aqp" (T12; its power tables are the
U-statistics). ``table_size`` (T11a) designs those tables for fewer samples (G − 1 under RLOO). Arguments
an objective does not use are ignored (documented per objective), so a caller can pass one configuration
to every objective.

**The no-answer bucket.** ``no_answer`` is the index of the answer "no parseable answer" in the group's
answer space (``None``: there is none, every index is a real answer). It stays its own index for
counting, but it is never a candidate label (THEORY §4 objectives are over answers; issue #13):

* ``majority`` (LOO mode) and the majority consensus never pick it as the mode; it casts no vote (the
  mode is taken over the real answers of the other samples) and a sample without an answer gets no
  majority credit (reward ``r(no_answer)`` only).
* the arithmetic / geometric consensus targets ``q`` give it zero mass (``q`` renormalized over the
  real answers) and a sample without an answer gets no consensus credit: its reward is
  ``r(no_answer)``.
* ``no_answer_rule="pool"`` restores the bucket as an ordinary answer everywhere (the behaviour before
  the bucket was marked).

**Label-free baselines as published** (README "Differences from the original implementations"):
``ttrl`` defaults to TTRL's code (pseudo-label = most frequent answer, ties broken by first appearance
in sample order, unparseable answers out of the vote with reward 0), ``empo`` to EMPO's verl reward
(own-cluster frequency counting itself, an unparseable answer its own singleton cluster, r = 1/G).
Options: ``tie_break`` ("first" | "split"), ``no_answer_rule`` ("drop" | "singleton" | "pool"),
``entropy_gate`` (EMPO's TRL reward). ``pool`` + ``split`` is this library's earlier convention.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, ValidationError
from dagsim.estimators import (
    ESTIMATOR_NAMES,
    group_counts,
    group_estimator,
    loo_counts,
    power_estimator_table,
)
from dagsim.estimators import (
    ESTIMATORS as ESTIMATOR_SPECS,
)
from dagsim.objectives.consensus import CONSENSUS_KINDS
from dagsim.registry import check_name, lookup

__all__ = [
    "ESTIMATORS",
    "REWARD_OBJECTIVES",
    "CONSENSUS_KINDS",
    "GEOMETRIC_PSEUDOCOUNT",
    "MODE_TIE_ATOL",
    "TIE_BREAKS",
    "NO_ANSWER_RULES",
    "NO_ANSWER_CHOICES",
    "PUBLISHED_NO_ANSWER_RULE",
    "CONSENSUS_REWARDS",
    "CountEstimates",
    "RewardContext",
    "RewardObjective",
    "count_objective",
    "group_objective",
    "count_reward_table",
    "table_size_for",
    "group_rewards",
    "is_count_reward",
    "sync_family_rewards",
    "order_dependent",
    "group_reward_outcomes",
    "consensus_group_rewards",
    "pairwise_group_rewards",
    "constrained_rewards",
    "constraint_values",
    "leq_system",
    "dual_ascent_step",
]

#: The estimator names (one source: ``dagsim.estimators.ESTIMATORS``, the registry of their tables).
ESTIMATORS = ESTIMATOR_NAMES

#: Geometric consensus: every view's frequency is smoothed as (n(z) + 1/2) / (G + K/2)
#: (Krichevsky–Trofimov add-1/2) so that q ∝ Π ν̂_j^{w_j} and q / ν̂_j are finite.
GEOMETRIC_PSEUDOCOUNT = 0.5
#: Pooled (weighted) frequencies closer than this are treated as tied modes (they are sums of a few
#: rationals w_j n / G_j, so genuine ties differ only by rounding).
MODE_TIE_ATOL = 1e-12
#: Floor of the pooled real-answer mass renormalizing the arithmetic consensus (it is >= w_j/G_j > 0
#: whenever it is used; the floor only keeps a zero weight w_j from dividing by 0).
MIN_REAL_MASS = 1e-300
#: TTRL's pseudo-label among tied modes: "first" = the tied answer appearing first in sample order
#: (TTRL's ``Counter.most_common(1)``), "split" = credit 1/#modes (its expectation under exchangeable
#: samples; deterministic and order-free).
TIE_BREAKS = ("first", "split")
#: How the label-free baselines treat the no-answer index: "drop" = out of the vote / no cluster, reward 0
#: (TTRL; EMPO's TRL reward); "singleton" = each unparseable sample its own cluster of size 1 (EMPO verl:
#: r = 1/G); "pool" = one ordinary answer (this library's earlier convention).
NO_ANSWER_RULES = ("drop", "singleton", "pool")
#: ``no_answer_rule=None`` means the objective's published default.
PUBLISHED_NO_ANSWER_RULE = {"ttrl": "drop", "empo": "singleton"}
#: The ``--no-answer`` choices of the simulator, the trainer and the TRL bridge: "auto" (= None here, the
#: published default of :data:`PUBLISHED_NO_ANSWER_RULE`) or one of :data:`NO_ANSWER_RULES`.
NO_ANSWER_CHOICES = ("auto", *NO_ANSWER_RULES)


def resolve_no_answer_rule(choice: str, field: str = "no_answer") -> str | None:
    """A ``--no-answer`` choice -> the ``no_answer_rule`` argument of the rewards (None for "auto")."""
    check_name(NO_ANSWER_CHOICES, choice, "no-answer rule", field)
    return None if choice == "auto" else choice


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
    no_answer: int | None = None  # index of the no-answer bucket (None: every answer is real)
    tie_break: str = "first"  # ttrl only (TIE_BREAKS)
    no_answer_rule: str = "drop"  # resolved rule (NO_ANSWER_RULES); only matters when no_answer is set
    entropy_gate: bool = False  # empo only: EMPO's TRL gate

    @property
    def marked_no_answer(self) -> int | None:
        """The no-answer index when it must not act as an answer (rule != "pool"), else None."""
        return None if self.no_answer_rule == "pool" else self.no_answer


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
    from dagsim.grpo.advantages import RLOO_AWARE_BASELINES

    centered = baseline in RLOO_AWARE_BASELINES
    return int(group_size) - 1 if (centered and rloo_aware and group_size > 2) else None


def _power_kind(estimator: str) -> str:
    """The ``power_estimator_table`` kind of ``estimator`` (registry ``dagsim.estimators.ESTIMATORS``; T12
    "augmented": under "aqp" the polynomial parts keep their U-statistics)."""
    return ESTIMATOR_SPECS[estimator].power_kind


def _log_table(ctx: RewardContext, what: str = "log objectives") -> np.ndarray:
    """The estimator's log table (T8: "unbiased" is refused, naming ``what``), sized for ``ctx.table_size``."""
    spec = ESTIMATOR_SPECS[ctx.estimator]
    if spec.log_kind is None:
        spec.log_table(ctx.group_size, what)  # raises the T8 DomainError
    return _sized_table(ctx, lambda n: spec.log_table(n, what))  # (G,)


@dataclass(frozen=True)
class CountEstimates:
    """The estimator tables a family's count reward asks for (``count_reward_table(ctx, estimates)``).

    Each is a ``(G,)`` table indexed by the LOO count, designed for ``ctx.table_size`` samples (T11a) with
    the estimator ``ctx.estimator``.
    """

    ctx: RewardContext

    def log(self) -> np.ndarray:
        """Estimate of log p (T8: "unbiased" is impossible and raises DomainError), ``(G,)``."""
        return _log_table(self.ctx)

    def power(self, exponent: float) -> np.ndarray:
        """Estimate of p^exponent (T7: the U-statistic where one exists; T12 "aqp" keeps it), ``(G,)``."""
        kind = _power_kind(self.ctx.estimator)
        return _sized_table(self.ctx, lambda n: power_estimator_table(n, exponent, kind))


def _family_reward(name: str, cls: type) -> RewardObjective | None:
    """The reward a registered objective family declares (``count_reward_table`` or ``group_reward``)."""
    table, group = getattr(cls, "count_reward_table", None), getattr(cls, "group_reward", None)
    if table is not None:
        return RewardObjective(name=name, count_table=lambda ctx: table(ctx, CountEstimates(ctx)), group_reward=None)
    if group is not None:
        return RewardObjective(name=name, count_table=None, group_reward=group)
    return None


def sync_family_rewards() -> None:
    """Register the group reward of every objective family (``dagsim.objectives``) not registered yet.

    Runs at import for the built-in families; :func:`group_rewards` runs it again, so a family registered
    later (a user's module) is found by name too.
    """
    from dagsim.objectives import OBJECTIVES

    for name, cls in OBJECTIVES.items():
        if name not in REWARD_OBJECTIVES:
            spec = _family_reward(name, cls)
            if spec is not None:
                _register(spec)


# The families' own rewards (reward, entropy, gini, tsallis, sharpen, collision: count tables; majority:
# whole group) live in their modules, dagsim/objectives/<family>.py; the label-free baselines below are
# algorithms of their own (TTRL, EMPO), not objective families.
sync_family_rewards()


@count_objective("empo")
def _empo_table(ctx: RewardContext) -> np.ndarray:
    """EMPO baseline: ``g = (C+1)/G``, the own answer's self-counting group frequency (T7: biased, affine).

    EMPO's verl reward (``empo_metrics(reward_type="entropy")``): each sample gets the frequency of its
    semantic cluster, counting itself. The no-answer index (``no_answer``) by ``no_answer_rule``:
    "singleton" (EMPO verl, default) — each unparseable sample is its own cluster, ``g = 1/G``;
    "drop" (EMPO TRL) — ``g = 0``; "pool" — one ordinary cluster, ``g = (C+1)/G``. Real answers'
    frequencies keep the denominator G in every rule. ``entropy_gate`` (EMPO TRL) is a whole-group rule
    applied by ``group_rewards`` on top of this table. Label-free: τ, task_reward, order and estimator
    are ignored.
    """
    c = np.arange(ctx.group_size, dtype=np.float64)
    table = np.repeat(((c + 1.0) / ctx.group_size)[None, :], ctx.n_answers, axis=0)  # (K, G)
    na = ctx.marked_no_answer
    if na is not None:
        table[na] = 1.0 / ctx.group_size if ctx.no_answer_rule == "singleton" else 0.0
    return table


def _cluster_ids(answers: np.ndarray, ctx: RewardContext) -> np.ndarray:
    """Cluster of every sample for the label-free baselines, ``(B, G)`` int: a real answer is its index;
    the no-answer index is -1 ("drop": no cluster), ``K + i`` for sample i ("singleton": its own
    cluster) or itself ("pool", or no no-answer index). Ids lie in ``[-1, K + G)``."""
    ids = answers.copy()
    na = ctx.marked_no_answer
    if na is not None:
        is_na = answers == na  # (B, G)
        if ctx.no_answer_rule == "drop":
            ids[is_na] = -1
        else:  # singleton
            own = ctx.n_answers + np.broadcast_to(np.arange(answers.shape[-1]), answers.shape)
            ids[is_na] = own[is_na]
    return ids


def _cluster_counts(ids: np.ndarray, n_ids: int) -> np.ndarray:
    """Counts of cluster ids ``(B, G)`` (``-1`` = no cluster, not counted) -> ``(B, n_ids)``."""
    B = ids.shape[0]
    keys = np.where(ids >= 0, ids + (np.arange(B) * n_ids)[:, None], B * n_ids)  # dropped -> overflow bin
    return np.bincount(keys.ravel(), minlength=B * n_ids + 1)[: B * n_ids].reshape(B, n_ids)


def _empo_entropy_gate(answers: np.ndarray, rewards: np.ndarray, ctx: RewardContext) -> np.ndarray:
    """EMPO's TRL gate: every reward of a group whose answer entropy is ``log G`` is set to 0.

    The entropy is that of the group's cluster frequencies with unparseable answers as singleton
    clusters (EMPO TRL's ``verify`` never equates two empty predictions; pooled under "pool"), so it
    equals ``log G`` exactly when all G clusters are distinct — the rule implemented here (EMPO's code
    compares the float entropy with ``math.log(G)``).
    """
    ids = answers.copy()
    na = ctx.marked_no_answer
    if na is not None:
        own = ctx.n_answers + np.broadcast_to(np.arange(answers.shape[-1]), answers.shape)
        ids = np.where(answers == na, own, answers)
    counts = _cluster_counts(ids, ctx.n_answers + answers.shape[-1])  # (B, K + G)
    all_distinct = counts.max(axis=1) <= 1  # (B,)
    return np.where(all_distinct[:, None], 0.0, rewards)


# ================================================================================================
# Group objectives (TTRL; the majority family's reward is in dagsim/objectives/majority.py)
# ================================================================================================
def _ttrl_modes(answers: np.ndarray, ctx: RewardContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster ids ``(B, G)``, tied-mode indicator per id ``(B, K+G)`` and per sample ``(B, G)``.

    A group with no cluster at all (every answer dropped) has no mode.
    """
    ids = _cluster_ids(answers, ctx)  # (B, G)
    counts = _cluster_counts(ids, ctx.n_answers + ctx.group_size)  # (B, K + G)
    top = counts.max(axis=1, keepdims=True)  # (B, 1)
    is_mode = (counts == top) & (top > 0)  # (B, K + G)
    sample_is_mode = np.take_along_axis(is_mode, np.maximum(ids, 0), axis=1) & (ids >= 0)  # (B, G)
    return ids, is_mode, sample_is_mode


@group_objective("ttrl")
def _ttrl_rewards(answers: np.ndarray, ctx: RewardContext) -> np.ndarray:
    """TTRL baseline: ``g_i = 1[z_i = pseudo-label]``, the pseudo-label being the group's majority answer.

    TTRL's code (``ttrl_utils._majority_vote`` + its math reward): unparseable answers are removed
    before the vote and earn 0 (``no_answer_rule="drop"``; a group of only unparseable answers gets
    all zeros), and ties go to the tied answer that appears first in sample order
    (``tie_break="first"``: ``Counter.most_common(1)``; an all-distinct group rewards its first sample).
    ``tie_break="split"`` gives each tied mode credit 1/#modes (the expectation of "first" under
    exchangeable samples); ``no_answer_rule`` "pool" makes the bucket an ordinary answer (it can win the
    vote), "singleton" makes each unparseable sample its own cluster of size 1. Label-free: τ,
    task_reward, order and estimator are ignored.
    """
    ids, is_mode, sample_is_mode = _ttrl_modes(answers, ctx)
    if ctx.tie_break == "split":
        n_modes = np.maximum(is_mode.sum(axis=1, keepdims=True), 1)  # (B, 1)
        return sample_is_mode / n_modes
    first = np.argmax(sample_is_mode, axis=1)  # (B,) first sample whose cluster is a mode
    label = np.take_along_axis(ids, first[:, None], axis=1)  # (B, 1)
    has_mode = sample_is_mode.any(axis=1, keepdims=True)  # (B, 1)
    return ((ids == label) & (ids >= 0) & has_mode).astype(np.float64)


def _ttrl_first_outcomes(answers: np.ndarray, ctx: RewardContext, n_first: int | None = None):
    """Exchangeable expansion of ``tie_break="first"``. The samples are two blocks, each in a uniformly
    random order: the first ``n_first`` (default all G), then the rest (TTRL's extra voters, which come
    after the trained samples). The first tied-mode sample of a uniformly random order is uniform among
    the block's tied-mode samples, so tied mode w wins with probability ``t_w / Σ_T t`` — ``t_w`` its
    samples in the first block holding any tied mode (one block: 1/#modes) — and the rewards are then
    ``1[cluster_i = w]``. Returns ``(row (P,), prob (P,), rewards (P, G))``.
    """
    ids, is_mode, _ = _ttrl_modes(answers, ctx)
    G = answers.shape[1]
    n_first = G if n_first is None else int(n_first)
    n_ids = is_mode.shape[1]
    head = np.where(np.arange(G)[None, :] < n_first, ids, -1)  # (B, G) first block only
    weight = _cluster_counts(head, n_ids) * is_mode  # (B, n_ids) tied-mode samples in the first block
    in_head = weight.sum(axis=1) > 0  # (B,)
    tail = _cluster_counts(np.where(np.arange(G)[None, :] >= n_first, ids, -1), n_ids) * is_mode
    weight = np.where(in_head[:, None], weight, tail).astype(np.float64)  # (B, n_ids)
    total = weight.sum(axis=1)  # (B,) 0 only for a group without any cluster
    rows, winners = np.nonzero(weight)  # (P,) each (group, tied mode that can win)
    prob = weight[rows, winners] / total[rows]
    rewards = (ids[rows] == winners[:, None]).astype(np.float64)  # (P, G)
    empty = np.flatnonzero(total == 0)  # groups without any cluster: one outcome, all rewards 0
    rows = np.concatenate([rows, empty])
    prob = np.concatenate([prob, np.ones(empty.size)])
    rewards = np.vstack([rewards, np.zeros((empty.size, G))])
    order = np.argsort(rows, kind="stable")  # every group has >= 1 outcome
    return rows[order], prob[order], rewards[order]


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
    group_estimator(estimator)


def _objective(objective: str) -> RewardObjective:
    if objective not in REWARD_OBJECTIVES:
        sync_family_rewards()  # a family registered after this module was imported
    try:
        return REWARD_OBJECTIVES[objective]
    except KeyError:
        raise ValidationError(
            f"objective must be one of {sorted(REWARD_OBJECTIVES)}, got {objective!r}"
        ) from None


def _baseline_context(
    objective: str,
    *,
    n_answers: int,
    group_size: int,
    tau: float,
    task_reward: np.ndarray | None,
    order: float | None,
    estimator: str,
    no_answer: int | None,
    tie_break: str,
    no_answer_rule: str | None,
    entropy_gate: bool,
    table_size: int | None = None,
) -> RewardContext:
    """Validate every argument shared by ``count_reward_table`` / ``group_rewards`` into a context."""
    _check_estimator(estimator)
    check_name(TIE_BREAKS, tie_break, "tie-break", "tie_break")
    if no_answer_rule is None:
        no_answer_rule = PUBLISHED_NO_ANSWER_RULE.get(objective, "drop")
    check_name(NO_ANSWER_RULES, no_answer_rule, "no-answer rule", "no_answer_rule")
    if no_answer is not None and (
        isinstance(no_answer, bool) or int(no_answer) != no_answer or not 0 <= no_answer < n_answers
    ):
        raise ValidationError(f"no_answer must be None or an answer index in [0, {n_answers}), got {no_answer!r}")
    return RewardContext(
        n_answers=int(n_answers),
        group_size=int(group_size),
        tau=_check_tau(tau),
        task_reward=_check_task_reward(task_reward, int(n_answers)),
        order=order,
        estimator=estimator,
        no_answer=None if no_answer is None else int(no_answer),
        tie_break=tie_break,
        no_answer_rule=no_answer_rule,
        entropy_gate=bool(entropy_gate),
        table_size=_check_table_size(table_size, int(group_size)),
    )


def is_count_reward(objective: str, *, entropy_gate: bool = False) -> bool:
    """Whether ``objective``'s rewards are ``T[z_i, C_i]`` (a count table: exact binomial sums apply).

    EMPO with ``entropy_gate`` depends on the whole group (the gate), so it is not.
    """
    spec = _objective(objective)
    return spec.count_table is not None and not (objective == "empo" and entropy_gate)


def order_dependent(objective: str, *, tie_break: str = "first") -> bool:
    """Whether the rewards depend on the samples' order (TTRL's first-appearance tie-break)."""
    return objective == "ttrl" and tie_break == "first"


def count_reward_table(
    objective: str,
    *,
    n_answers: int,
    group_size: int,
    tau: float = 0.0,
    task_reward: np.ndarray | None = None,
    order: float | None = None,
    estimator: str = "minimax",
    no_answer: int | None = None,
    no_answer_rule: str | None = None,
    table_size: int | None = None,
) -> np.ndarray:
    """Reward table ``T[z, c]``, shape ``(n_answers, G)``, of a count objective (DomainError otherwise).

    ``no_answer`` / ``no_answer_rule``: see ``group_rewards`` (only "empo" uses them). ``table_size``: the
    sample count the estimator tables are designed for (None = G); ``G - 1`` is the RLOO-aware choice
    (T11a, :func:`table_size_for`)."""
    spec = _objective(objective)
    if spec.count_table is None:
        raise DomainError(f"objective {objective!r} is not a function of (own answer, LOO count)")
    if int(group_size) != group_size or group_size < 2:
        raise DomainError(f"group_size must be an integer >= 2, got {group_size!r}")
    ctx = _baseline_context(
        objective, n_answers=n_answers, group_size=group_size, tau=tau, task_reward=task_reward,
        order=order, estimator=estimator, no_answer=no_answer, tie_break="first",
        no_answer_rule=no_answer_rule, entropy_gate=False, table_size=table_size,
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
    no_answer: int | None = None,
    tie_break: str = "first",
    no_answer_rule: str | None = None,
    entropy_gate: bool = False,
    table_size: int | None = None,
) -> np.ndarray:
    """Per-sample rewards ``g_i`` (THEORY §4, §6) for ``answers`` of shape ``(G,)`` or ``(..., G)``.

    ``table_size``: as in :func:`count_reward_table` (``G - 1`` for RLOO-aware tables, T11a; None = G).

    objective: a key of ``REWARD_OBJECTIVES`` — "reward", "entropy", "gini", "tsallis", "sharpen",
    "collision", "majority" (LOO mode), "ttrl" (whole-group pseudo-label, baseline), "empo" (baseline).
    Returns float64 rewards with the shape of ``answers``; samples are in sampling order (it matters for
    ``ttrl`` with ``tie_break="first"``).

    Baseline conventions (module docstring; defaults = the published code):

    * ``no_answer``: index of the no-answer bucket, or None (every index is a real answer).
    * ``tie_break`` (ttrl only): "first" (TTRL: the tied answer appearing first) | "split" (1/#modes).
    * ``no_answer_rule``: "drop" | "singleton" | "pool"; None = the published default (ttrl "drop",
      empo "singleton", "drop" — i.e. never a candidate label — for majority). Ignored without
      ``no_answer``.
    * ``entropy_gate`` (empo only): EMPO's TRL reward — all rewards 0 in a group whose G answers are all
      distinct clusters (answer entropy log G); use with ``no_answer_rule="drop"`` for EMPO TRL exactly.

    TTRL's vote/train split (vote on ``n_votes`` samples, train on the first ``n_samples``) is: pass the
    ``(..., n_votes)`` answers here (all of them vote), keep ``[..., :n_samples]`` of the rewards for the
    advantages; ``effective.effective_reward(..., n_votes=...)`` is its exact analysis.
    """
    spec = _objective(objective)
    arr = _check_answers(answers, n_answers)
    G = arr.shape[-1]
    ctx = _baseline_context(
        objective, n_answers=n_answers, group_size=G, tau=tau, task_reward=task_reward, order=order,
        estimator=estimator, no_answer=no_answer, tie_break=tie_break, no_answer_rule=no_answer_rule,
        entropy_gate=entropy_gate, table_size=table_size,
    )
    flat = arr.reshape(-1, G)  # (B, G)
    if spec.count_table is not None:
        table = spec.count_table(ctx)  # (K, G)
        out = table[flat, loo_counts(flat)]  # (B, G)
        if objective == "empo" and ctx.entropy_gate:
            out = _empo_entropy_gate(flat, out, ctx)
    else:
        out = spec.group_reward(flat, ctx)  # (B, G)
    return np.asarray(out, dtype=np.float64).reshape(arr.shape)


def group_reward_outcomes(
    objective: str, answers: np.ndarray, *, n_answers: int, n_first: int | None = None, **options
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewards of ``(B, G)`` groups averaged over a uniformly random sample order, as a finite mixture.

    Returns ``(row (P,), prob (P,), rewards (P, G))``: group ``row[p]`` has rewards ``rewards[p]`` with
    probability ``prob[p]`` (each group's probabilities sum to 1). Order-free objectives give one outcome
    per group (``group_rewards``); TTRL with ``tie_break="first"`` gives one per tied mode, each with
    probability 1/#modes (under exchangeable samples every tied mode is equally likely to appear first).
    ``n_first``: the first ``n_first`` columns precede the others in sampling order and each block is
    exchangeable on its own (TTRL's vote/train split: trained samples first, extra voters after); then a
    tied mode wins with probability proportional to its samples in the earliest block holding one.
    The exact effective reward (T10) sums advantages over this mixture, so it is exact for any
    (nonlinear) advantage scaling. ``options``: the keyword arguments of ``group_rewards``.
    """
    arr = _check_answers(answers, n_answers)
    if arr.ndim != 2:
        raise ValidationError(f"answers must have shape (B, G), got {arr.shape}")
    if not order_dependent(objective, tie_break=options.get("tie_break", "first")):
        g = group_rewards(objective, arr, n_answers=n_answers, **options)  # (B, G)
        return np.arange(arr.shape[0]), np.ones(arr.shape[0]), g
    kw = {k: options[k] for k in ("no_answer", "no_answer_rule") if k in options}
    ctx = _baseline_context(
        objective, n_answers=n_answers, group_size=arr.shape[1], tau=0.0, task_reward=None, order=None,
        estimator="minimax", tie_break="first", entropy_gate=False,
        no_answer=kw.get("no_answer"), no_answer_rule=kw.get("no_answer_rule"),
    )
    return _ttrl_first_outcomes(arr, ctx, n_first)


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


def _arithmetic_consensus(views, counts, w, ctx_tau, r, estimator, table_shrink=0, no_answer=None):
    """Arithmetic consensus reward ``r + τ (log q̂(z) − log ν̂_j(z))`` for every view j.

    ``table_shrink`` = 1: view j's log table is designed for ``G_j − 1`` samples (RLOO-aware, T11a).
    With a marked ``no_answer``: q̂ is renormalized over the real answers (divided by the pooled real
    mass ``Σ_k w_k (1 − n_k(∅)/G_k)``, > 0 since the own sample is real) and a sample without an answer
    gets ``r(∅)`` (no consensus credit).
    """
    out = []
    for j, ans in enumerate(views):
        G_j = ans.shape[-1]
        c_loo = loo_counts(ans)  # (B, G_j)
        ctx_j = RewardContext(1, G_j, 0.0, np.zeros(1), None, estimator,
                              table_size=(G_j - table_shrink) if table_shrink else None)
        log_nu_j = _log_table(ctx_j, "the log consensus reward")[c_loo]  # (B, G_j)
        # q̂(z_i): own view by the self-counting plug-in (C_i + 1)/G_j (> 0, so no floor is needed),
        # the other views by their full group frequency n_k(z_i)/G_k (independent of sample i).
        q_hat = w[j] * (c_loo + 1.0) / G_j  # (B, G_j)
        for k, cnt in enumerate(counts):
            if k != j:
                q_hat = q_hat + w[k] * np.take_along_axis(cnt, ans, axis=-1) / views[k].shape[-1]
        if no_answer is None:
            out.append(r[ans] + ctx_tau * (np.log(q_hat) - log_nu_j))
            continue
        real_mass = sum(w[k] * (1.0 - cnt[:, no_answer] / views[k].shape[-1]) for k, cnt in enumerate(counts))
        real = ans != no_answer  # (B, G_j)
        safe_q = np.where(real, q_hat / np.maximum(real_mass, MIN_REAL_MASS)[:, None], 1.0)
        out.append(r[ans] + ctx_tau * np.where(real, np.log(safe_q) - log_nu_j, 0.0))
    return out


def _geometric_consensus(views, counts, w, tau, r, n_answers, no_answer=None):
    """Geometric consensus reward ``r + τ q̂(z)/ν̃_j(z)`` with add-1/2 smoothed frequencies ν̃.

    With a marked ``no_answer``: ``q̂(∅) = 0`` (q̂ normalized over the real answers) and a sample without
    an answer gets ``r(∅)``.
    """
    smoothed = [
        (cnt + GEOMETRIC_PSEUDOCOUNT) / (v.shape[-1] + GEOMETRIC_PSEUDOCOUNT * n_answers)
        for cnt, v in zip(counts, views, strict=False)
    ]  # each (B, K)
    log_q = sum(w[k] * np.log(s) for k, s in enumerate(smoothed))  # (B, K)
    if no_answer is not None:
        log_q[:, no_answer] = -np.inf
    log_q = log_q - log_q.max(axis=-1, keepdims=True)
    q = np.exp(log_q)
    q = q / q.sum(axis=-1, keepdims=True)  # (B, K) normalized geometric mean
    return [r[ans] + tau * np.take_along_axis(q / smoothed[j], ans, axis=-1) for j, ans in enumerate(views)]


def _majority_consensus(views, counts, w, tau, r, no_answer=None):
    """Majority consensus reward ``r + τ·1[z = mode of Σ_k w_k n_k / G_k]`` (ties split evenly).

    With a marked ``no_answer`` the mode is taken over the real answers only (none in any view: no
    credit for anyone).
    """
    pooled = sum(w[k] * counts[k] / views[k].shape[-1] for k in range(len(views)))  # (B, K)
    if no_answer is not None:
        pooled[:, no_answer] = -np.inf
    top = pooled.max(axis=-1, keepdims=True)  # (B, 1)
    is_mode = pooled >= top - MODE_TIE_ATOL  # (B, K)
    if no_answer is not None:
        is_mode &= top > 0  # top = 0: no real answer in any view, no mode
    credit = is_mode / np.maximum(is_mode.sum(axis=-1, keepdims=True), 1)  # (B, K)
    return [r[ans] + tau * np.take_along_axis(credit, ans, axis=-1) for ans in views]


#: The per-sample consensus rewards (E5), by kind: ``fn(views, counts, w, tau, r, n_answers, estimator,
#: table_shrink, no_answer) -> list of (B, G_j)``. The kinds' names come from the family,
#: ``dagsim.objectives.consensus.CONSENSUS_KINDS``; every kind must have its group reward here.
CONSENSUS_REWARDS: dict[str, Callable[..., list[np.ndarray]]] = {
    "arithmetic": lambda views, counts, w, tau, r, n_answers, estimator, table_shrink, no_answer: (
        _arithmetic_consensus(views, counts, w, tau, r, estimator, table_shrink=table_shrink, no_answer=no_answer)),
    "geometric": lambda views, counts, w, tau, r, n_answers, estimator, table_shrink, no_answer: (
        _geometric_consensus(views, counts, w, tau, r, n_answers, no_answer)),
    "majority": lambda views, counts, w, tau, r, n_answers, estimator, table_shrink, no_answer: (
        _majority_consensus(views, counts, w, tau, r, no_answer)),
}
if tuple(CONSENSUS_REWARDS) != tuple(CONSENSUS_KINDS):
    raise ImportError(f"consensus kinds {CONSENSUS_KINDS} and their group rewards {tuple(CONSENSUS_REWARDS)} differ")


def consensus_group_rewards(
    answers_per_view: list[np.ndarray],
    *,
    n_answers: int,
    tau: float,
    consensus: str = "arithmetic",
    weights: np.ndarray | None = None,
    task_reward: np.ndarray | None = None,
    estimator: str = "minimax",
    no_answer: int | None = None,
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

    ``no_answer``: index of the no-answer bucket (None: none). It is never a consensus label: the
    arithmetic/geometric target gives it zero mass (renormalized over the real answers), the majority
    never picks it, and a sample without an answer gets ``r(no_answer)`` only (no consensus credit).

    Returns one reward array per view, shaped like its answers.
    """
    reward_of_kind = lookup(CONSENSUS_REWARDS, consensus, "consensus kind", "consensus")
    _check_estimator(estimator)
    tau = _check_tau(tau)
    r = _check_task_reward(task_reward, int(n_answers))
    views = _check_views(answers_per_view, n_answers)
    w = _check_weights(weights, len(views))
    if no_answer is not None and not (
        not isinstance(no_answer, bool) and int(no_answer) == no_answer and 0 <= no_answer < n_answers
    ):
        raise ValidationError(f"no_answer must be None or an answer index in [0, {n_answers}), got {no_answer!r}")
    na = None if no_answer is None else int(no_answer)
    counts = [group_counts(v, int(n_answers)) for v in views]  # each (B, K)
    out = reward_of_kind(views, counts, w, tau, r, int(n_answers), estimator, int(bool(rloo_aware)), na)
    if na is not None:  # a sample without an answer: r(∅) only (geometric: q̂(∅) = 0 already gives it)
        out = [np.where(v == na, r[v], o) for o, v in zip(out, views, strict=True)]
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
