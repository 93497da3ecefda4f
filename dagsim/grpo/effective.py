"""The exact finite-group effective reward ``ḡ_G(z) = E[A_i | z_i = z]`` (THEORY T10, T11).

With one on-policy step and no clipping, the expected GRPO update at group size G is the exact policy
gradient of the per-answer reward ``ḡ_G`` (T10): the advantage of a sample with answer z, averaged over
the other G−1 answers drawn iid from ``nu``. Two exact evaluation paths:

* **binomial** (count objectives, ``scale="none"``): ``g_i = T[z_i, C_i]`` with ``C_i ~ Bin(G−1, ν(z))``
  given ``z_i = z``; for another sample j of answer z', ``C_j = 1[z' = z] + Bin(G−2, ν(z'))``. Hence

      E[g_i | z]          = Σ_c Bin(c; G−1, ν_z) T[z, c]
      E[g_j | z_i = z]    = Σ_z' ν_z' h0(z') + ν_z (h1(z) − h0(z)),
      h0(z') = Σ_c Bin(c; G−2, ν_z') T[z', c],   h1(z') = Σ_c Bin(c; G−2, ν_z') T[z', c+1],

  and RLOO ``ḡ = E[g_i|z] − E[g_j|z_i=z]``; "mean" multiplies it by (G−1)/G exactly; "none" is
  ``E[g_i|z]``. Cost O(K·G).
* **enumerate** (any objective, any baseline, ``scale`` "none" or "group"): sum over the compositions
  of the other G−1 answers (multinomial weights), calling ``group_rewards`` and ``advantages`` on every
  composition, i.e. the very code a simulator runs. Cost ~ K·C(G+K−2, K−1)·G; refused above
  ``MAX_COMPOSITIONS`` compositions.

``scale="batch"`` has no per-prompt effective reward (it couples prompts) and is refused.
``effective_reward_multiview`` does the same for multi-view consensus / pairwise rewards.

Note (measured, contradicts the letter of T11): when rewards depend on the group (every objective but
"reward"), the RLOO baseline ``mean_{j≠i} g_j`` is *not* independent of z_i — the other samples' LOO
counts include sample i — so RLOO does not leave ``E[g_i|z]`` unchanged up to a constant. For the
unbiased gini reward it scales the τ-term by (G−2)/(G−1):
``ḡ_rloo(z) = r(z) − <r,ν> − 2τ (G−2)/(G−1) (ν(z) − Σν²)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln, xlogy

from dagsim.errors import DomainError, ValidationError
from dagsim.estimators import binomial_pmf, log_estimator_table
from dagsim.grpo.advantages import ADVANTAGE_EPS, BASELINES, advantages, doubly_loo_advantages, doubly_loo_rule
from dagsim.grpo.rewards import (
    CONSENSUS_KINDS,
    REWARD_OBJECTIVES,
    consensus_group_rewards,
    count_reward_table,
    group_reward_outcomes,
    is_count_reward,
    order_dependent,
    pairwise_group_rewards,
)
from dagsim.registry import check_name

__all__ = [
    "MAX_COMPOSITIONS",
    "SIMPLEX_ATOL",
    "EFFECTIVE_METHODS",
    "MULTIVIEW_OBJECTIVES",
    "n_compositions",
    "effective_reward",
    "count_table_effective_reward",
    "effective_reward_multiview",
]

#: The enumeration path refuses more compositions of the other G−1 answers than this
#: (G=16, K=8 has 170,544; G=16, K=12 has 7.7e6, G=32, K=8 has 6.3e6).
MAX_COMPOSITIONS = 2_000_000
#: Compositions are processed in chunks of this many rows (bounds memory: chunk × G floats per array).
_ENUM_CHUNK = 32_768
#: ``nu`` must sum to 1 within this (it is a probability vector; a solver's output may be off by rounding).
SIMPLEX_ATOL = 1e-9
EFFECTIVE_METHODS = ("auto", "binomial", "enumerate")


def n_compositions(n: int, k: int) -> int:
    """Number of ways to write n as an ordered sum of k non-negative integers: C(n+k−1, k−1)."""
    return math.comb(n + k - 1, k - 1)


@functools.lru_cache(maxsize=64)
def _compositions(n: int, k: int) -> np.ndarray:
    """All count vectors of length k summing to n, shape ``(C(n+k−1, k−1), k)`` (read-only, cached)."""
    if k == 1:
        out = np.array([[n]], dtype=np.int64)
    else:
        blocks = []
        for first in range(n + 1):
            sub = _compositions(n - first, k - 1)  # (m, k-1)
            blocks.append(np.column_stack([np.full(len(sub), first, dtype=np.int64), sub]))
        out = np.vstack(blocks)
    out.setflags(write=False)
    return out


def _check_nu(nu: np.ndarray) -> np.ndarray:
    p = np.asarray(nu, dtype=np.float64)
    if p.ndim != 1 or p.size < 1:
        raise ValidationError(f"nu must be a probability vector of shape (n_answers,), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > SIMPLEX_ATOL:
        raise ValidationError(f"nu must be non-negative and sum to 1 (±{SIMPLEX_ATOL}), got sum {p.sum()!r}")
    return np.clip(p, 0.0, 1.0)


def _binomial_path(table: np.ndarray, nu: np.ndarray, baseline: str, table_minus: np.ndarray | None = None
                   ) -> np.ndarray:
    """Closed-form binomial sums (module docstring) for a count-reward table ``(K, G)``.

    "doubly-loo" (T11b) needs ``table_minus`` ``(K, G−1)``, the rewards in a group of G−1: its baseline
    is a function of the other answers only, so ``ḡ(z) = E[g_i | z] − Σ_z' ν_z' E T'[z', Bin(G−2, ν_z')]``.
    """
    G = table.shape[1]
    own = (binomial_pmf(G - 1, nu) * table).sum(axis=1)  # (K,) E[g_i | z_i = z]
    if baseline == "none":
        return own
    if baseline == "doubly-loo":
        h = (binomial_pmf(G - 2, nu) * table_minus).sum(axis=1)  # (K,) E[R_j^{(-i)} | z_j = z']
        return own - nu @ h
    pmf2 = binomial_pmf(G - 2, nu)  # (K, G-1)
    h0 = (pmf2 * table[:, :-1]).sum(axis=1)  # (K,) other sample's answer != z
    h1 = (pmf2 * table[:, 1:]).sum(axis=1)  # (K,) other sample's answer == z: its count includes i
    other = nu @ h0 + nu * (h1 - h0)  # (K,) E[g_j | z_i = z], j != i
    rloo = own - other
    return rloo if baseline == "rloo" else (G - 1) / G * rloo


def count_table_effective_reward(table: np.ndarray, nu: np.ndarray, *, baseline: str = "rloo",
                                 table_minus: np.ndarray | None = None) -> np.ndarray:
    """Exact ``ḡ_G`` (T10/T11) of any count-reward table ``T[z, c]`` ``(K, G)`` (binomial sums), ``(K,)``.

    ``baseline="doubly-loo"`` needs ``table_minus`` ``(K, G−1)``: the rewards in a group of G−1 (T11b).
    For tables not built by ``count_reward_table`` (e.g. an AQP table at another κ).
    """
    check_name(BASELINES, baseline, "baseline")
    t = np.asarray(table, dtype=np.float64)
    p = _check_nu(nu)
    if t.ndim != 2 or t.shape[0] != p.size or t.shape[1] < 2:
        raise ValidationError(f"table must have shape (n_answers, G) = ({p.size}, G >= 2), got {t.shape}")
    if baseline == "doubly-loo":
        tm = None if table_minus is None else np.asarray(table_minus, dtype=np.float64)
        if tm is None or tm.shape != (p.size, t.shape[1] - 1):
            raise ValidationError(f"doubly-loo needs table_minus of shape ({p.size}, {t.shape[1] - 1})")
        return _binomial_path(t, p, baseline, tm)
    return _binomial_path(t, p, baseline)


def _enumeration_path(
    objective: str, nu: np.ndarray, G: int, baseline: str, scale: str, reward_kw: dict
) -> np.ndarray:
    """Exact multinomial sum over the other G−1 answers, through ``group_rewards`` and ``advantages``."""
    K = nu.size
    n_comp = n_compositions(G - 1, K)
    if n_comp > MAX_COMPOSITIONS:
        raise DomainError(
            f"G = {G}, n_answers = {K}: {n_comp} compositions exceed MAX_COMPOSITIONS = {MAX_COMPOSITIONS}; "
            "use the binomial path (count objectives, scale='none') or Monte Carlo"
        )
    comps = _compositions(G - 1, K)  # (n_comp, K)
    log_prob = gammaln(G) - gammaln(comps + 1.0).sum(axis=1) + xlogy(comps, nu[None, :]).sum(axis=1)
    prob = np.exp(log_prob)  # (n_comp,) multinomial weights of the other G-1 answers
    keep = prob > 0.0  # compositions using an answer of probability 0 contribute nothing
    comps, prob = comps[keep], prob[keep]
    positions = np.arange(G - 1)
    rule = None
    if baseline == "doubly-loo":
        dropped = ("eps",) if REWARD_OBJECTIVES[objective].count_table is None else ("eps", "tie_break", "entropy_gate")
        rule_kw = {k: v for k, v in reward_kw.items() if k not in dropped}
        rule = doubly_loo_rule(objective, n_answers=K, group_size=G, **rule_kw)
    out = np.zeros(K)
    for start in range(0, len(comps), _ENUM_CHUNK):
        chunk = comps[start : start + _ENUM_CHUNK]  # (n, K)
        w = prob[start : start + _ENUM_CHUNK]  # (n,)
        cum = chunk.cumsum(axis=1)  # (n, K)
        others = (positions[None, :, None] >= cum[:, None, :]).sum(axis=2)  # (n, G-1) sorted answers
        for z in range(K):
            groups = np.column_stack(
                [np.full(len(chunk), z, dtype=np.int64), others]
            )  # (n, G); sample i first
            if baseline == "doubly-loo":
                adv, _ = doubly_loo_advantages(groups, rule, scale=scale)  # (n, G)
                out[z] += w @ adv[:, 0]
            else:
                out[z] += w @ _first_sample_advantage(objective, groups, K, G, baseline, scale, reward_kw)
    return out


def _first_sample_advantage(objective, groups, K, n_train, baseline, scale, reward_kw) -> np.ndarray:
    """``E[A_0 | group multiset]`` for ``(n, V)`` groups with sample i in column 0, over a uniformly random
    sample order (``group_reward_outcomes``: exact for order-dependent rewards such as TTRL's
    first-appearance tie-break). Advantages use the first ``n_train`` columns (TTRL's vote/train split;
    ``n_train = V`` otherwise). Returns ``(n,)``."""
    eps = reward_kw.get("eps", ADVANTAGE_EPS)
    options = {k: v for k, v in reward_kw.items() if k != "eps"}
    rows, prob, g = group_reward_outcomes(
        objective, groups, n_answers=K, n_first=n_train, **options
    )  # (P,), (P,), (P, V)
    adv, _ = advantages(g[:, :n_train], baseline=baseline, scale=scale, eps=eps)  # (P, n_train)
    return np.bincount(rows, weights=prob * adv[:, 0], minlength=groups.shape[0])  # (n,)


def _vote_split_enumeration(
    objective: str, nu: np.ndarray, G: int, n_votes: int, baseline: str, scale: str, reward_kw: dict
) -> np.ndarray:
    """ḡ with TTRL's vote/train split: the group is the first G of ``n_votes`` iid samples, all of which
    vote; advantages over the G trained samples. Exact sum over the compositions of the other G−1
    trained answers times those of the ``n_votes − G`` extra voters (multinomial weights)."""
    K = nu.size
    n_comp = n_compositions(G - 1, K) * n_compositions(n_votes - G, K)
    if n_comp > MAX_COMPOSITIONS:
        raise DomainError(
            f"G = {G}, n_votes = {n_votes}, n_answers = {K}: {n_comp} joint compositions exceed "
            f"MAX_COMPOSITIONS = {MAX_COMPOSITIONS}; use Monte Carlo"
        )
    sets = []
    for n in (G - 1, n_votes - G):
        comps = _compositions(n, K)
        w = _multinomial_weights(comps, nu) if n > 0 else np.ones(1)
        keep = w > 0.0
        sets.append((_answers_from_counts(comps[keep]) if n > 0 else np.zeros((1, 0), np.int64), w[keep]))
    (train, w_train), (votes, w_votes) = sets
    out = np.zeros(K)
    total = len(w_train) * len(w_votes)
    for start in range(0, total, _ENUM_CHUNK):
        flat = np.arange(start, min(start + _ENUM_CHUNK, total))
        a, b = np.unravel_index(flat, (len(w_train), len(w_votes)))
        w = w_train[a] * w_votes[b]  # (n,)
        for z in range(K):
            groups = np.column_stack([np.full(len(flat), z, dtype=np.int64), train[a], votes[b]])  # (n, V)
            out[z] += w @ _first_sample_advantage(objective, groups, K, G, baseline, scale, reward_kw)
    return out


def _check_update_args(baseline: str, scale: str, method: str) -> None:
    """Arguments shared by both effective rewards: centering, scaling (per prompt only) and method."""
    check_name(BASELINES, baseline, "baseline")
    if scale not in ("none", "group"):
        raise DomainError(
            f"scale={scale!r}: the effective reward is per prompt; 'batch' scaling couples prompts"
        )
    if method not in EFFECTIVE_METHODS:
        raise ValidationError(f"method must be one of {EFFECTIVE_METHODS}, got {method!r}")


def effective_reward(
    objective: str,
    nu: np.ndarray,
    G: int,
    *,
    baseline: str = "rloo",
    scale: str = "none",
    tau: float = 0.0,
    task_reward: np.ndarray | None = None,
    order: float | None = None,
    estimator: str = "minimax",
    method: str = "auto",
    table_size: int | None = None,
    no_answer: int | None = None,
    tie_break: str = "first",
    no_answer_rule: str | None = None,
    entropy_gate: bool = False,
    n_votes: int | None = None,
    eps: float = ADVANTAGE_EPS,
) -> np.ndarray:
    """Exact ``ḡ_G(z) = E[A_i | z_i = z]`` for every answer z (T10), shape ``(n_answers,)`` = ``nu.shape``.

    Arguments after ``G`` are those of ``group_rewards`` and ``advantages`` (``table_size``: G − 1 for the
    RLOO-aware tables of T11a; None = G; ``eps``: the std scaling's ε). ``baseline="doubly-loo"`` (T11b)
    uses ``doubly_loo_advantages`` (tables of size G−1 for the baseline). ``scale="group"`` (T11e) is exact
    by enumeration. ``method``: "auto" (binomial when possible, else enumeration), "binomial" (DomainError
    if not applicable) or "enumerate". Defined also for answers with ``nu(z) = 0`` (conditioning on a
    sample showing z). Samples are exchangeable, so order-dependent rewards (TTRL's ``tie_break="first"``)
    are averaged over a uniformly random sample order (``group_reward_outcomes``). ``n_votes`` (>= G):
    TTRL's vote/train split — the pseudo-label is voted on ``n_votes`` samples, the group is the first G.
    """
    if objective not in REWARD_OBJECTIVES:
        raise ValidationError(f"objective must be one of {sorted(REWARD_OBJECTIVES)}, got {objective!r}")
    _check_update_args(baseline, scale, method)
    if int(G) != G or G < 2:
        raise DomainError(f"group size G must be an integer >= 2, got {G!r}")
    G = int(G)
    p = _check_nu(nu)
    reward_kw = dict(tau=tau, task_reward=task_reward, order=order, estimator=estimator, table_size=table_size)
    options = dict(no_answer=no_answer, tie_break=tie_break, no_answer_rule=no_answer_rule,
                   entropy_gate=entropy_gate)
    if n_votes is not None and (int(n_votes) != n_votes or n_votes < G):
        raise DomainError(f"n_votes must be an integer >= G = {G}, got {n_votes!r}")
    split = n_votes is not None and n_votes > G
    if baseline == "doubly-loo" and (split or entropy_gate or order_dependent(objective, tie_break=tie_break)):
        raise DomainError(
            "baseline 'doubly-loo' needs order-free rewards without a vote/train split or entropy gate "
            "(use tie_break='split' for ttrl)"
        )
    binomial_ok = is_count_reward(objective, entropy_gate=entropy_gate) and scale == "none" and not split
    if method == "binomial" and not binomial_ok:
        raise DomainError(
            f"the binomial path needs a count objective, scale='none' and no vote/train split "
            f"(got {objective!r}, scale={scale!r}, n_votes={n_votes!r})"
        )
    if binomial_ok and method != "enumerate":
        count_kw = dict(no_answer=no_answer, no_answer_rule=no_answer_rule, **reward_kw)
        if baseline == "doubly-loo":
            table, table_minus = doubly_loo_rule(objective, n_answers=p.size, group_size=G, **count_kw)
            return _binomial_path(table, p, baseline, table_minus)
        table = count_reward_table(objective, n_answers=p.size, group_size=G, **count_kw)  # (K, G)
        return _binomial_path(table, p, baseline)
    full_kw = {**reward_kw, **options, "eps": eps}
    if split:
        return _vote_split_enumeration(objective, p, G, int(n_votes), baseline, scale, full_kw)
    return _enumeration_path(objective, p, G, baseline, scale, full_kw)


# ================================================================================================
# Multi-view (views' groups independent): consensus and pairwise coherence
# ================================================================================================
MULTIVIEW_OBJECTIVES = ("consensus", "pairwise")
#: The arithmetic-consensus binomial path sums over the joint law of the other views' counts at one
#: answer (a product of binomials); refused above this many support points.
MAX_OTHER_VIEW_SUPPORT = 1_000_000


def _multinomial_weights(comps: np.ndarray, nu: np.ndarray) -> np.ndarray:
    n = int(comps[0].sum())
    log_prob = gammaln(n + 1.0) - gammaln(comps + 1.0).sum(axis=1) + xlogy(comps, nu[None, :]).sum(axis=1)
    return np.exp(log_prob)  # (n_comp,)


def _answers_from_counts(comps: np.ndarray) -> np.ndarray:
    """Sorted answer lists of count vectors: ``(n, K)`` with row sums n_total -> ``(n, n_total)``."""
    n_total = int(comps[0].sum())
    cum = comps.cumsum(axis=1)  # (n, K)
    return (np.arange(n_total)[None, :, None] >= cum[:, None, :]).sum(axis=2)


def _view_rewards(objective, views, n_answers, kw) -> list[np.ndarray]:
    if objective == "consensus":
        return consensus_group_rewards(
            views,
            n_answers=n_answers,
            tau=kw["tau"],
            consensus=kw["consensus"],
            weights=kw["weights"],
            task_reward=kw["task_reward"],
            estimator=kw["estimator"],
            no_answer=kw.get("no_answer"),
            rloo_aware=bool(kw.get("table_shrink", 0)),
        )
    return pairwise_group_rewards(
        views,
        n_answers=n_answers,
        tau=kw["tau"],
        pairs=kw["pairs"],
        answer_maps=kw["answer_maps"],
        task_reward=kw["task_reward"],
    )


def _multiview_enumeration(objective, nus, sizes, j, baseline, scale, kw) -> np.ndarray:
    """ḡ for view j by exact enumeration of view j's other G_j−1 answers and every other view's group."""
    m, K = nus.shape
    comp_sets, weights = [], []
    for k in range(m):
        n_k = sizes[k] - 1 if k == j else sizes[k]
        comps = _compositions(n_k, K)
        w = _multinomial_weights(comps, nus[k])
        keep = w > 0.0
        comp_sets.append(comps[keep])
        weights.append(w[keep])
    shape = tuple(len(c) for c in comp_sets)
    total = int(np.prod(shape, dtype=np.float64))
    if total > MAX_COMPOSITIONS:
        raise DomainError(
            f"multi-view enumeration for view {j}: {total} joint compositions exceed MAX_COMPOSITIONS = "
            f"{MAX_COMPOSITIONS}; use scale='none' with an arithmetic consensus or pairwise (binomial path)"
        )
    answers = [_answers_from_counts(c) for c in comp_sets]  # per view (n_comp_k, n_k)
    out = np.zeros(K)
    for start in range(0, total, _ENUM_CHUNK):
        flat = np.arange(start, min(start + _ENUM_CHUNK, total))
        idx = np.unravel_index(flat, shape)  # per view (n,)
        w = np.prod([weights[k][idx[k]] for k in range(m)], axis=0)  # (n,)
        for z in range(K):
            views = []
            for k in range(m):
                a = answers[k][idx[k]]  # (n, n_k)
                if k == j:
                    a = np.column_stack([np.full(len(flat), z, dtype=np.int64), a])  # sample i first
                views.append(a)
            if baseline == "doubly-loo":
                def view_j(a, views=views):
                    return _view_rewards(objective, [a if k == j else v for k, v in enumerate(views)], K, kw)[j]
                adv, _ = doubly_loo_advantages(views[j], view_j, scale=scale)  # (n, G_j)
            else:
                rew = _view_rewards(objective, views, K, kw)[j]  # (n, G_j)
                adv, _ = advantages(rew, baseline=baseline, scale=scale)
            out[z] += w @ adv[:, 0]
    return out


def _other_views_law(nus, sizes, weights, j, z) -> tuple[np.ndarray, np.ndarray]:
    """Support and probabilities of ``S = Σ_{k≠j} w_k n_k(z)/G_k`` with ``n_k(z) ~ Bin(G_k, ν_k(z))``."""
    values, probs = np.zeros(1), np.ones(1)
    for k in range(len(sizes)):
        if k == j:
            continue
        pmf = binomial_pmf(sizes[k], np.array([nus[k, z]]))[0]  # (G_k + 1,)
        step = weights[k] * np.arange(sizes[k] + 1) / sizes[k]
        values = (values[:, None] + step[None, :]).ravel()
        probs = (probs[:, None] * pmf[None, :]).ravel()
        if values.size > MAX_OTHER_VIEW_SUPPORT:
            raise DomainError(f"other views' joint count support {values.size} > {MAX_OTHER_VIEW_SUPPORT}")
    return values, probs


def _multiview_table(objective, nus, sizes, j, kw) -> np.ndarray:
    """Expected reward table ``T_j[z, c] = E[g | z, C = c]`` over the other views' (independent) groups."""
    m, K = nus.shape
    G_j = sizes[j]
    c = np.arange(G_j, dtype=np.float64)  # (G_j,)
    r, tau = kw["task_reward"], kw["tau"]
    table = np.repeat(r[:, None], G_j, axis=1)  # (K, G_j)
    if objective == "pairwise":
        pairs = (
            kw["pairs"] if kw["pairs"] is not None else [(a, b) for a in range(m) for b in range(a + 1, m)]
        )
        maps = kw["answer_maps"] or {}
        identity = np.arange(K)
        for a, b in pairs:
            t_ab = np.asarray(maps.get((a, b), identity), dtype=np.int64)
            if j == a:
                other, t = b, t_ab
            elif j == b:
                other, t = a, np.argsort(t_ab)
            else:
                continue
            table = table - 2.0 * tau * (c[None, :] / (G_j - 1) - nus[other, t][:, None])
        return table
    # arithmetic consensus: r + τ (E log(w_j (c+1)/G_j + S) − log_hat ν_j)
    if kw["estimator"] == "unbiased":
        raise DomainError("estimator 'unbiased' is impossible for the log consensus reward (T8)")
    log_nu = _shrunk_log_table(G_j, kw["estimator"], kw.get("table_shrink", 0))  # (G_j,)
    w = kw["weights"]
    own = w[j] * (c + 1.0) / G_j  # (G_j,)
    for z in range(K):
        values, probs = _other_views_law(nus, sizes, w, j, z)
        table[z] += tau * (probs @ np.log(own[None, :] + values[:, None]) - log_nu)
    return table


def _shrunk_log_table(G: int, estimator: str, shrink: int) -> np.ndarray:
    """The log table of ``consensus_group_rewards`` (designed for ``G − shrink`` samples, padded to G; T11a)."""
    n = G - shrink if G - shrink >= 2 else G
    table = np.asarray(log_estimator_table(n, estimator))
    return table if n == G else np.concatenate([table, np.full(G - n, table[-1])])


def effective_reward_multiview(
    objective: str,
    nus: np.ndarray,
    G: int | tuple[int, ...],
    *,
    baseline: str = "rloo",
    scale: str = "none",
    weights: np.ndarray | None = None,
    consensus: str = "arithmetic",
    tau: float = 0.0,
    task_reward: np.ndarray | None = None,
    order: float | None = None,
    estimator: str = "minimax",
    pairs=None,
    answer_maps=None,
    method: str = "auto",
    no_answer: int | None = None,
    rloo_aware: bool = False,
) -> np.ndarray:
    """Exact per-view effective reward ``ḡ_j(z) = E[A_i | z_i = z]`` for a sample of view j (T10), ``(m, K)``.

    ``nus`` ``(m, K)``: the views' answer marginals; each view draws its own group (size ``G`` or
    ``G[j]``) independently. ``objective``: "consensus" (``consensus_group_rewards`` with ``consensus``,
    ``weights``, ``estimator``) or "pairwise" (``pairwise_group_rewards`` with ``pairs``,
    ``answer_maps``); any single-view objective of ``REWARD_OBJECTIVES`` is applied to each view alone
    (``order`` is used only then).

    Paths: **binomial** for arithmetic consensus and pairwise with ``scale="none"`` — given the other
    views' groups are independent of view j's, a view-j reward depends on them only through the counts
    at its own answer, so ``T_j[z, c] = E[g | z, C = c]`` is a count table and the single-view binomial
    sums apply exactly. **enumerate** otherwise (geometric/majority consensus, ``scale="group"``, a
    marked ``no_answer`` for consensus): the joint compositions of all views' groups, refused above
    ``MAX_COMPOSITIONS``. ``no_answer``: the no-answer index (``consensus_group_rewards``).

    ``rloo_aware`` (T11a): view j's count tables are designed for ``G_j − 1`` samples (as the simulator does
    under RLOO). ``baseline="doubly-loo"`` (T11b): on the binomial path the view's table at G_j − 1 gives the
    baseline's rewards; the enumeration path recomputes view j's rewards without each sample.
    """
    p = np.asarray(nus, dtype=np.float64)
    if p.ndim != 2:
        raise ValidationError(f"nus must have shape (n_views, n_answers), got {p.shape}")
    rows = [_check_nu(row) for row in p]
    p = np.stack(rows)
    m, K = p.shape
    sizes = tuple(int(g) for g in (G if np.ndim(G) else [G] * m))
    if len(sizes) != m or any(g < 2 for g in sizes):
        raise DomainError(f"G must be an integer >= 2 or one per view, got {G!r} for {m} views")
    if objective in REWARD_OBJECTIVES:
        kw1 = dict(baseline=baseline, scale=scale, tau=tau, task_reward=task_reward, order=order,
                   no_answer=no_answer)
        return np.stack(
            [
                effective_reward(objective, p[j], sizes[j], estimator=estimator, method=method,
                                 table_size=(sizes[j] - 1 if rloo_aware and sizes[j] > 2 else None), **kw1)
                for j in range(m)
            ]
        )
    if objective not in MULTIVIEW_OBJECTIVES:
        raise ValidationError(
            f"objective must be one of {MULTIVIEW_OBJECTIVES} or {sorted(REWARD_OBJECTIVES)}, "
            f"got {objective!r}"
        )
    _check_update_args(baseline, scale, method)
    if objective == "consensus":
        check_name(CONSENSUS_KINDS, consensus, "consensus kind", "consensus")
    if not np.isfinite(tau) or tau < 0:
        raise DomainError(f"tau must be finite and >= 0, got {tau!r}")
    r = np.zeros(K) if task_reward is None else np.asarray(task_reward, dtype=np.float64)
    if r.shape != (K,):
        raise ValidationError(f"task_reward must have shape (n_answers,) = ({K},), got {r.shape}")
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValidationError(f"weights must be {m} non-negative numbers summing to 1, got {weights!r}")
    kw = dict(
        tau=float(tau),
        task_reward=r,
        weights=w,
        consensus=consensus,
        estimator=estimator,
        pairs=pairs,
        answer_maps=answer_maps,
        no_answer=no_answer,
        table_shrink=int(bool(rloo_aware)),
    )
    binomial_ok = scale == "none" and (
        objective == "pairwise" or (consensus == "arithmetic" and no_answer is None)
    )
    if method == "binomial" and not binomial_ok:
        raise DomainError("the binomial path needs scale='none' and pairwise or arithmetic consensus")
    out = np.zeros((m, K))
    for j in range(m):
        if binomial_ok and method != "enumerate":
            table_minus = None
            if baseline == "doubly-loo":
                smaller = tuple(g - 1 if k == j else g for k, g in enumerate(sizes))
                table_minus = (_multiview_table(objective, p, smaller, j, {**kw, "table_shrink": 0})
                               if sizes[j] > 2 else _multiview_table(objective, p, sizes, j, kw)[:, :1])
            out[j] = _binomial_path(_multiview_table(objective, p, sizes, j, kw), p[j], baseline, table_minus)
        else:
            out[j] = _multiview_enumeration(objective, p, sizes, j, baseline, scale, kw)
    return out
