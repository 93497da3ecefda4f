"""Tests of dagsim.grpo.rewards: per-sample group rewards (THEORY §4, §6, T7, T8), multi-view,
pairwise and constrained rewards. Oracles are plain Python loops written from the formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, ValidationError
from dagsim.estimators import log_estimator_table
from dagsim.grpo import (
    REWARD_OBJECTIVES,
    consensus_group_rewards,
    constrained_rewards,
    constraint_values,
    count_reward_table,
    dual_ascent_step,
    group_rewards,
    leq_system,
    pairwise_group_rewards,
)
from dagsim.grpo.rewards import GEOMETRIC_PSEUDOCOUNT

#: Rewards are a few float64 operations on O(1) numbers: rounding only.
ATOL_EXACT = 1e-12
WRONG_VARIANT_GAP = 1e-3
SETTINGS = settings(max_examples=30, deadline=None)
OBJECTIVES = sorted(REWARD_OBJECTIVES)


@st.composite
def grouped_answers(draw, max_groups: int = 4, max_g: int = 8, max_k: int = 5, min_k: int = 1):
    k = draw(st.integers(min_k, max_k))
    g = draw(st.integers(2, max_g))
    b = draw(st.integers(1, max_groups))
    flat = draw(st.lists(st.integers(0, k - 1), min_size=b * g, max_size=b * g))
    r = np.array(draw(st.lists(st.floats(-2.0, 2.0), min_size=k, max_size=k)))
    tau = draw(st.floats(0.0, 3.0))
    return np.array(flat, dtype=np.int64).reshape(b, g), k, r, tau


def _loo(row: list[int], i: int) -> int:
    return sum(1 for j, z in enumerate(row) if j != i and z == row[i])


def _split_credit(votes: list[int], z: int) -> float:
    counts = {a: votes.count(a) for a in set(votes)}
    top = max(counts.values())
    modes = [a for a, c in counts.items() if c == top]
    return (1.0 / len(modes)) if z in modes else 0.0


def _first_label(votes: list[int]) -> int:
    """TTRL's pseudo-label: the most frequent answer, ties to the one seen first (a plain loop)."""
    best, best_count = votes[0], 0
    for a in votes:  # answers in order of first appearance
        c = votes.count(a)
        if c > best_count:
            best, best_count = a, c
    return best


def _oracle(
    objective: str, row: list[int], r: np.ndarray, tau: float, estimator: str, order: float | None
) -> list[float]:
    """Per-sample rewards from THEORY §4's table, one sample at a time."""
    G = len(row)
    out = []
    for i, z in enumerate(row):
        c = _loo(row, i)
        if estimator == "plugin":
            p_hat = (c + 1) / G
            log_p = math.log((c + 1) / G)
        else:
            p_hat = c / (G - 1)
            log_p = float(log_estimator_table(G, estimator)[c]) if estimator != "unbiased" else float("nan")
        if objective == "reward":
            g = r[z]
        elif objective == "entropy":
            g = r[z] - tau * log_p
        elif objective == "sharpen":
            g = r[z] + tau * log_p
        elif objective == "gini":
            g = r[z] - 2 * tau * p_hat
        elif objective == "collision":
            g = r[z] + 2 * tau * p_hat
        elif objective == "tsallis":
            m = order - 1
            if estimator == "plugin":
                pw = ((c + 1) / G) ** m
            else:
                pw = math.comb(c, int(m)) / math.comb(G - 1, int(m))
            g = r[z] - tau * order / (order - 1) * pw
        elif objective == "empo":
            g = (c + 1) / G
        elif objective == "majority":
            g = r[z] + tau * _split_credit(row[:i] + row[i + 1 :], z)
        elif objective == "ttrl":
            g = float(z == _first_label(row))
        else:
            raise AssertionError(objective)
        out.append(g)
    return out


@SETTINGS
@given(grouped_answers(max_g=7), st.sampled_from(["plugin", "loo", "minimax"]))
def test_group_rewards_match_loop_oracle(case, estimator):
    answers, k, r, tau = case
    G = answers.shape[1]
    for objective in OBJECTIVES:
        order = 3.0 if objective == "tsallis" else None
        if objective == "tsallis" and G < 3:
            order = 2.0
        est = estimator
        if objective == "tsallis" and est == "loo":
            est = "unbiased"
        got = group_rewards(
            objective, answers, n_answers=k, tau=tau, task_reward=r, order=order, estimator=est
        )
        for b in range(answers.shape[0]):
            want = _oracle(objective, answers[b].tolist(), r, tau, est, order)
            np.testing.assert_allclose(got[b], want, atol=ATOL_EXACT, err_msg=f"{objective} {est}")


@SETTINGS
@given(grouped_answers(max_groups=6))
def test_vectorized_equals_loop_over_groups(case):
    answers, k, r, tau = case
    for objective in OBJECTIVES:
        kw = dict(n_answers=k, tau=tau, task_reward=r, order=2.5 if objective == "tsallis" else None)
        batched = group_rewards(objective, answers, **kw)
        assert batched.shape == answers.shape and batched.dtype == np.float64
        for b in range(answers.shape[0]):
            np.testing.assert_array_equal(batched[b], group_rewards(objective, answers[b], **kw))


def test_tsallis_order_two_is_gini():
    rng = np.random.default_rng(1)
    answers = rng.integers(0, 4, size=(10, 6))
    r = rng.normal(size=4)
    for est in ("plugin", "unbiased", "minimax"):
        np.testing.assert_allclose(
            group_rewards("tsallis", answers, n_answers=4, tau=0.7, task_reward=r, order=2.0, estimator=est),
            group_rewards("gini", answers, n_answers=4, tau=0.7, task_reward=r, estimator=est),
            atol=ATOL_EXACT,
        )


@pytest.mark.parametrize(
    "objective,order,sign", [("gini", None, -1), ("collision", None, 1), ("tsallis", 3.0, -1)]
)
def test_t7_polynomial_rewards_unbiased_given_own_answer(objective, order, sign):
    """E[g_i | z_i = z] = ∇Φ(ν)(z) exactly for the unbiased estimators; the plug-in (wrong variant) is not."""
    G, K, tau = 6, 3, 0.8
    nu = np.array([0.5, 0.3, 0.2])
    r = np.array([0.1, -0.4, 1.0])
    alpha = 2.0 if order is None else order
    grad = r + sign * tau * alpha / (alpha - 1) * nu ** (alpha - 1)  # THEORY §4 reward at q = ν
    pmf = binom.pmf(np.arange(G)[None, :], G - 1, nu[:, None])  # (K, G)
    for est, ok in (("unbiased", True), ("plugin", False)):
        table = count_reward_table(
            objective, n_answers=K, group_size=G, tau=tau, task_reward=r, order=order, estimator=est
        )
        err = np.abs((pmf * table).sum(axis=1) - grad).max()
        assert (err <= ATOL_EXACT) if ok else (err > WRONG_VARIANT_GAP)


def test_majority_and_ttrl_degenerate_groups():
    distinct = np.arange(5)
    same = np.full(5, 2)
    # LOO majority: all distinct -> the other 4 are tied modes without z_i -> credit 0.
    np.testing.assert_allclose(group_rewards("majority", distinct, n_answers=5, tau=1.0), 0.0)
    # ttrl: 5 tied modes -> the first sample's answer is the pseudo-label (TTRL); split: 1/5 each.
    np.testing.assert_array_equal(group_rewards("ttrl", distinct, n_answers=5), [1, 0, 0, 0, 0])
    np.testing.assert_allclose(group_rewards("ttrl", distinct, n_answers=5, tie_break="split"), 1 / 5)
    np.testing.assert_allclose(group_rewards("majority", same, n_answers=5, tau=2.0), 2.0)
    np.testing.assert_allclose(group_rewards("ttrl", same, n_answers=5), 1.0)
    # ttrl / empo ignore tau and task_reward (label-free baselines).
    a = np.array([0, 1, 1, 2])
    for obj in ("ttrl", "empo"):
        np.testing.assert_array_equal(
            group_rewards(obj, a, n_answers=3, tau=5.0, task_reward=np.ones(3)),
            group_rewards(obj, a, n_answers=3),
        )


def test_group_rewards_errors():
    a = np.array([0, 1, 1])
    with pytest.raises(DomainError, match="unbiased"):
        group_rewards("entropy", a, n_answers=2, tau=1.0, estimator="unbiased")
    with pytest.raises(DomainError, match="power"):
        group_rewards("tsallis", a, n_answers=2, tau=1.0, order=2.5, estimator="unbiased")
    with pytest.raises(DomainError, match="order"):
        group_rewards("tsallis", a, n_answers=2, tau=1.0, order=1.0)
    with pytest.raises(ValidationError, match="n_answers"):
        group_rewards("gini", np.array([0, 2]), n_answers=2)
    with pytest.raises(ValidationError, match="integer"):
        group_rewards("gini", np.array([0.0, 1.0]), n_answers=2)
    with pytest.raises(DomainError, match="G = 1"):
        group_rewards("gini", np.array([0]), n_answers=2)
    with pytest.raises(DomainError, match="tau"):
        group_rewards("gini", a, n_answers=2, tau=-1.0)
    with pytest.raises(ValidationError, match="objective"):
        group_rewards("nope", a, n_answers=2)
    with pytest.raises(ValidationError, match="task_reward"):
        group_rewards("reward", a, n_answers=2, task_reward=np.ones(3))


# --------------------------------------------------------------------------- multi-view ---------
def _views(rng, k, sizes, n_groups=None):
    shape = (lambda g: (g,)) if n_groups is None else (lambda g: (n_groups, g))
    return [rng.integers(0, k, size=shape(g)) for g in sizes]


def test_arithmetic_consensus_single_view_plugin_is_task_reward():
    """One view: q = ν_1, D = 0, so with matching (plug-in) estimators the τ-term cancels exactly."""
    rng = np.random.default_rng(2)
    r = rng.normal(size=4)
    a = rng.integers(0, 4, size=(5, 7))
    (out,) = consensus_group_rewards([a], n_answers=4, tau=1.5, task_reward=r, estimator="plugin")
    assert out.shape == (5, 7)
    np.testing.assert_allclose(out, r[a], atol=ATOL_EXACT)


@SETTINGS
@given(st.integers(0, 10_000), st.sampled_from(["arithmetic", "geometric", "majority"]))
def test_consensus_rewards_match_loop_oracle(seed, consensus):
    rng = np.random.default_rng(seed)
    K, sizes = 4, [5, 3, 6]
    views = _views(rng, K, sizes)
    w = rng.dirichlet(np.ones(3))
    r = rng.normal(size=K)
    tau = 0.9
    got = consensus_group_rewards(
        views, n_answers=K, tau=tau, consensus=consensus, weights=w, task_reward=r, estimator="minimax"
    )
    counts = [np.bincount(v, minlength=K) for v in views]
    for j, v in enumerate(views):
        G = len(v)
        for i, z in enumerate(v.tolist()):
            if consensus == "arithmetic":
                c = _loo(v.tolist(), i)
                q = w[j] * (c + 1) / G + sum(w[k] * counts[k][z] / sizes[k] for k in range(3) if k != j)
                want = r[z] + tau * (math.log(q) - log_estimator_table(G, "minimax")[c])
            elif consensus == "geometric":
                sm = [
                    (counts[k] + GEOMETRIC_PSEUDOCOUNT) / (sizes[k] + GEOMETRIC_PSEUDOCOUNT * K)
                    for k in range(3)
                ]
                q = np.prod([sm[k] ** w[k] for k in range(3)], axis=0)
                q = q / q.sum()
                want = r[z] + tau * q[z] / sm[j][z]
            else:
                pooled = sum(w[k] * counts[k] / sizes[k] for k in range(3))
                modes = np.flatnonzero(np.isclose(pooled, pooled.max(), rtol=0, atol=1e-12))
                want = r[z] + tau * (1 / len(modes) if z in modes else 0.0)
            assert got[j][i] == pytest.approx(want, abs=ATOL_EXACT)


def test_consensus_vectorized_and_errors():
    rng = np.random.default_rng(3)
    views = _views(rng, 3, [4, 5], n_groups=6)
    for consensus in ("arithmetic", "geometric", "majority"):
        batched = consensus_group_rewards(views, n_answers=3, tau=1.0, consensus=consensus)
        for b in range(6):
            single = consensus_group_rewards([v[b] for v in views], n_answers=3, tau=1.0, consensus=consensus)
            for j in range(2):
                np.testing.assert_array_equal(batched[j][b], single[j])
    with pytest.raises(ValidationError, match="weights"):
        consensus_group_rewards(views, n_answers=3, tau=1.0, weights=[0.2, 0.2])
    with pytest.raises(ValidationError, match="consensus"):
        consensus_group_rewards(views, n_answers=3, tau=1.0, consensus="median")
    with pytest.raises(ValidationError, match="leading shape"):
        consensus_group_rewards([views[0], views[1][0]], n_answers=3, tau=1.0)


# ---------------------------------------------------------------------------- pairwise -----------
def _enumerate_expected_pairwise(nu_j, nu_k, G_j, G_k, perm, tau, r, view):
    """E[reward of sample 0 of `view` | its answer] by enumerating every outcome of both groups."""
    K = len(nu_j)
    G_own, G_other = (G_j, G_k) if view == 0 else (G_k, G_j)
    nu_own, nu_other = (nu_j, nu_k) if view == 0 else (nu_k, nu_j)
    out = np.zeros(K)
    for z in range(K):
        for rest in itertools.product(range(K), repeat=G_own - 1):
            p_rest = np.prod([nu_own[a] for a in rest])
            for other in itertools.product(range(K), repeat=G_other):
                p_other = np.prod([nu_other[a] for a in other])
                own = np.array((z,) + rest)
                views = [own, np.array(other)] if view == 0 else [np.array(other), own]
                g = pairwise_group_rewards(
                    views, n_answers=K, tau=tau, answer_maps={(0, 1): perm}, task_reward=r
                )
                out[z] += p_rest * p_other * g[view][0]
    return out


def test_pairwise_rewards_exactly_unbiased_by_enumeration():
    nu_j, nu_k = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.5, 0.3])
    perm = np.array([2, 0, 1])  # view-0 answer z corresponds to view-1 answer perm[z]
    r, tau = np.array([0.3, -0.2, 0.5]), 0.7
    e0 = _enumerate_expected_pairwise(nu_j, nu_k, 3, 2, perm, tau, r, view=0)
    np.testing.assert_allclose(e0, r - 2 * tau * (nu_j - nu_k[perm]), atol=ATOL_EXACT)
    inv = np.argsort(perm)
    e1 = _enumerate_expected_pairwise(nu_j, nu_k, 3, 2, perm, tau, r, view=1)
    np.testing.assert_allclose(e1, r - 2 * tau * (nu_k - nu_j[inv]), atol=ATOL_EXACT)
    # Wrong variant: the own view's self-counting frequency (C+1)/G is biased.
    G = 3
    pmf = binom.pmf(np.arange(G)[None, :], G - 1, nu_j[:, None])
    assert np.abs(pmf @ ((np.arange(G) + 1) / G) - nu_j).max() > WRONG_VARIANT_GAP


def test_pairwise_errors_and_default_pairs():
    rng = np.random.default_rng(4)
    views = _views(rng, 3, [4, 4, 4])
    out = pairwise_group_rewards(views, n_answers=3, tau=1.0)
    explicit = pairwise_group_rewards(views, n_answers=3, tau=1.0, pairs=[(0, 1), (0, 2), (1, 2)])
    for a, b in zip(out, explicit, strict=False):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValidationError, match="permutation"):
        pairwise_group_rewards(views, n_answers=3, tau=1.0, answer_maps={(0, 1): np.array([0, 0, 1])})
    with pytest.raises(ValidationError, match="pairs"):
        pairwise_group_rewards(views, n_answers=3, tau=1.0, pairs=[(0, 0)])


# -------------------------------------------------------------------------- constraints ----------
def test_constrained_rewards_and_dual_ascent():
    rng = np.random.default_rng(5)
    cons = [
        LinearConstraint(coef=np.array([1.0, 0.0, 0.0]), op="<=", bound=0.1, name="unsafe"),
        LinearConstraint(coef=np.array([0.0, 1.0, 1.0]), op=">=", bound=0.5, name="floor"),
        LinearConstraint(coef=np.array([1.0, -1.0, 0.0]), op="==", bound=0.0, name="parity"),
    ]
    h, b, ops = leq_system(cons)
    np.testing.assert_array_equal(h[1], [0.0, -1.0, -1.0])
    assert b[1] == -0.5 and ops == ("<=", "<=", "==")
    answers = rng.integers(0, 3, size=(4, 6))
    base = rng.normal(size=(4, 6))
    lam = np.array([0.5, 0.2, -0.3])
    got = constrained_rewards(base, answers, constraint_coefs=h, multipliers=lam)
    for idx in np.ndindex(answers.shape):
        want = base[idx] - sum(lam[k] * h[k, answers[idx]] for k in range(3))
        assert got[idx] == pytest.approx(want, abs=ATOL_EXACT)
    v = constraint_values(answers, h)
    np.testing.assert_allclose(v, [np.mean(h[k, answers]) for k in range(3)], atol=ATOL_EXACT)
    new = dual_ascent_step(np.array([0.05, 0.0, 0.0]), np.array([0.0, 0.0, 0.4]), b, 1.0, ops)
    np.testing.assert_allclose(new, [0.0, 0.5, 0.4], atol=ATOL_EXACT)  # λ1 projected to 0; floor violated
    new_eq = dual_ascent_step(np.zeros(3), np.array([0.0, -1.0, -0.4]), b, 1.0, ops)
    assert new_eq[2] == pytest.approx(-0.4)  # equality multiplier is free
    with pytest.raises(ValidationError, match="as_leq"):
        dual_ascent_step(np.zeros(1), np.zeros(1), np.zeros(1), 0.1, (">=",))
    with pytest.raises(DomainError, match="lr"):
        dual_ascent_step(np.zeros(1), np.zeros(1), np.zeros(1), 0.0, ("<=",))
