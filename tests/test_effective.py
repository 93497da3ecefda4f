"""Tests of dagsim.grpo.advantages (T11) and dagsim.grpo.effective (T10): the exact effective reward
ḡ_G(z) = E[A_i | z_i = z], cross-checked binomial vs enumeration vs brute force vs Monte Carlo."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagsim.errors import DomainError, ValidationError
from dagsim.grpo import (
    advantages,
    consensus_group_rewards,
    effective_reward,
    effective_reward_multiview,
    group_rewards,
)
from dagsim.grpo.advantages import ADVANTAGE_EPS, STD_DDOF

#: Both exact paths sum O(K·G) (binomial) or O(#compositions) (enumeration) float64 terms of size O(1).
ATOL_PATHS = 1e-12
#: Monte Carlo agreement: within this many standard errors.
MC_SIGMAS = 4.0
SETTINGS = settings(max_examples=30, deadline=None)
COUNT_OBJECTIVES = ("reward", "entropy", "sharpen", "gini", "collision", "tsallis", "empo")


def _kw(objective: str, estimator: str, tau: float, r: np.ndarray) -> dict:
    est = estimator
    if objective in ("entropy", "sharpen") and est == "unbiased":
        est = "minimax"
    return dict(tau=tau, task_reward=r, order=3.0 if objective == "tsallis" else None, estimator=est)


# ------------------------------------------------------------------------------ advantages -------
@SETTINGS
@given(st.integers(0, 10_000), st.integers(2, 9), st.integers(1, 5))
def test_rloo_and_mean_advantages_match_definitions(seed, G, n_groups):
    rng = np.random.default_rng(seed)
    g = np.round(rng.normal(size=(n_groups, G)), 1)  # rounding makes ties / flat groups likely
    rloo, n0 = advantages(g, baseline="rloo")
    mean, _ = advantages(g, baseline="mean")
    for b in range(n_groups):
        for i in range(G):
            want = g[b, i] - np.mean(np.delete(g[b], i))
            assert rloo[b, i] == pytest.approx(want, abs=1e-12)
    np.testing.assert_allclose(mean, (G - 1) / G * rloo, atol=1e-12)  # T11
    assert n0 == int(np.sum(g.max(axis=1) == g.min(axis=1)))
    scaled, _ = advantages(g, baseline="mean", scale="group")
    for b in range(n_groups):
        if g[b].max() > g[b].min():
            np.testing.assert_allclose(
                scaled[b], (g[b] - g[b].mean()) / (g[b].std(ddof=STD_DDOF) + ADVANTAGE_EPS)
            )
    batch, _ = advantages(g, baseline="rloo", scale="batch")
    flat = g.max(axis=1) == g.min(axis=1)
    np.testing.assert_allclose(batch[~flat], rloo[~flat] / (g.std(ddof=STD_DDOF) + ADVANTAGE_EPS))


def test_zero_variance_groups_are_exactly_zero():
    g = np.array([[0.1, 0.1, 0.1], [1.0, 2.0, 3.0], [7.3, 7.3, 7.3]])
    for baseline in ("rloo", "mean"):
        for scale in ("none", "group", "batch"):
            adv, n0 = advantages(g, baseline=baseline, scale=scale)
            assert n0 == 2 and np.all(np.isfinite(adv))
            assert np.all(adv[[0, 2]] == 0.0)
    adv, n0 = advantages(g, baseline="none", scale="group")
    assert n0 == 2 and np.all(adv[[0, 2]] == 0.0)  # would be 7.3 / 1e-4 otherwise
    raw, _ = advantages(g, baseline="none")
    np.testing.assert_array_equal(raw, g)  # REINFORCE keeps raw rewards
    # Degenerate answer groups: all equal, all distinct (ttrl split -> every reward 1/G, flat).
    for answers in (np.full(4, 1), np.arange(4)):
        adv, n0 = advantages(group_rewards("ttrl", answers, n_answers=4, tie_break="split"), scale="group")
        assert n0 == 1 and np.all(adv == 0.0)


# ----------------------------------------------------------------------- effective reward --------
@SETTINGS
@given(
    st.integers(0, 10_000),
    st.integers(2, 6),
    st.integers(1, 4),
    st.sampled_from(COUNT_OBJECTIVES),
    st.sampled_from(["rloo", "mean", "none"]),
    st.sampled_from(["plugin", "loo", "minimax", "minimax_monotone", "unbiased"]),
)
def test_binomial_path_equals_enumeration(seed, G, K, objective, baseline, estimator):
    rng = np.random.default_rng(seed)
    nu = rng.dirichlet(np.ones(K))
    if seed % 3 == 0 and K > 1:
        nu[0] = 0.0  # answers of probability 0 are still conditioned on
        nu /= nu.sum()
    kw = _kw(objective, estimator, tau=0.8, r=rng.normal(size=K))
    if objective == "tsallis" and G < 4:
        kw["order"] = 2.0
    a = effective_reward(objective, nu, G, baseline=baseline, method="binomial", **kw)
    b = effective_reward(objective, nu, G, baseline=baseline, method="enumerate", **kw)
    np.testing.assert_allclose(a, b, atol=ATOL_PATHS, rtol=0)


def _brute_force(objective, nu, G, baseline, scale, kw):
    """Sum over every ordered sequence of the other G−1 answers (K^(G−1) terms) and every position of
    sample i (G): an oracle for the composition enumeration (which uses multinomial weights and sorted
    representatives; order-dependent rewards such as TTRL's first-appearance rule need the positions)."""
    K = len(nu)
    out = np.zeros(K)
    for z in range(K):
        for rest in itertools.product(range(K), repeat=G - 1):
            prob = np.prod(nu[list(rest)]) / G
            for pos in range(G):
                group = np.array(rest[:pos] + (z,) + rest[pos:])
                g = group_rewards(objective, group, n_answers=K, **kw)
                adv, _ = advantages(g, baseline=baseline, scale=scale)
                out[z] += prob * adv[pos]
    return out


@pytest.mark.parametrize("objective", ["ttrl", "majority", "entropy"])
@pytest.mark.parametrize("scale", ["none", "group"])
def test_enumeration_equals_brute_force(objective, scale):
    rng = np.random.default_rng(11)
    nu = np.array([0.5, 0.3, 0.2])
    kw = dict(tau=0.6, task_reward=rng.normal(size=3), estimator="minimax")
    for G in (2, 4):
        want = _brute_force(objective, nu, G, "rloo", scale, kw)
        got = effective_reward(objective, nu, G, baseline="rloo", scale=scale, **kw)
        np.testing.assert_allclose(got, want, atol=ATOL_PATHS)


@pytest.mark.parametrize(
    "objective,baseline,scale,estimator",
    [
        ("entropy", "rloo", "none", "minimax"),
        ("sharpen", "mean", "none", "plugin"),
        ("gini", "rloo", "none", "unbiased"),
        ("ttrl", "rloo", "group", "minimax"),
        ("majority", "mean", "group", "minimax"),
    ],
)
def test_effective_reward_matches_monte_carlo(objective, baseline, scale, estimator):
    rng = np.random.default_rng(12)
    G, K, n_groups = 6, 3, 60_000
    nu = np.array([0.55, 0.3, 0.15])
    kw = dict(tau=0.7, task_reward=np.array([0.2, -0.1, 0.4]), estimator=estimator)
    exact = effective_reward(objective, nu, G, baseline=baseline, scale=scale, **kw)
    answers = rng.choice(K, size=(n_groups, G), p=nu)  # (n_groups, G)
    adv, _ = advantages(group_rewards(objective, answers, n_answers=K, **kw), baseline=baseline, scale=scale)
    for z in range(K):
        # Per-group statistic with mean ḡ(z): Σ_i A_i 1[z_i = z] / (G ν(z)); iid across groups.
        x = (adv * (answers == z)).sum(axis=1) / (G * nu[z])  # (n_groups,)
        se = x.std(ddof=1) / np.sqrt(n_groups)
        assert abs(x.mean() - exact[z]) <= MC_SIGMAS * se, (z, x.mean(), exact[z], se)


def test_t11_mean_baseline_is_scaled_rloo_and_rloo_is_unbiased_for_task_reward():
    nu = np.array([0.4, 0.35, 0.25])
    r = np.array([1.0, 0.0, -0.5])
    for objective in ("entropy", "ttrl", "majority", "gini"):
        for G in (3, 5):
            rloo = effective_reward(objective, nu, G, baseline="rloo", tau=1.0, task_reward=r)
            mean = effective_reward(objective, nu, G, baseline="mean", tau=1.0, task_reward=r)
            np.testing.assert_allclose(mean, (G - 1) / G * rloo, atol=ATOL_PATHS)
    np.testing.assert_allclose(effective_reward("reward", nu, 4, task_reward=r), r - r @ nu, atol=ATOL_PATHS)


def test_rloo_shrinks_group_dependent_rewards():
    """Counterexample to the letter of T11: for the (exactly unbiased) gini reward, RLOO's baseline is
    correlated with z_i (the others' LOO counts include sample i), and
    ḡ_rloo = r − <r,ν> − 2τ (G−2)/(G−1) (ν − Σν²), not r − <r,ν> − 2τ (ν − Σν²)."""
    nu = np.array([0.6, 0.3, 0.1])
    r = np.array([0.2, 0.0, -0.3])
    tau = 1.0
    for G in (3, 4, 8):
        got = effective_reward("gini", nu, G, tau=tau, task_reward=r, estimator="unbiased")
        closed = r - r @ nu - 2 * tau * (G - 2) / (G - 1) * (nu - nu @ nu)
        np.testing.assert_allclose(got, closed, atol=ATOL_PATHS)
        naive = r - r @ nu - 2 * tau * (nu - nu @ nu)  # "centering leaves ḡ unbiased"
        assert np.abs(got - naive).max() > 1e-2
    no_baseline = effective_reward(
        "gini", nu, 4, baseline="none", tau=tau, task_reward=r, estimator="unbiased"
    )
    np.testing.assert_allclose(no_baseline, r - 2 * tau * nu, atol=ATOL_PATHS)  # T7 without centering


def test_effective_reward_errors():
    nu = np.array([0.5, 0.5])
    with pytest.raises(DomainError, match="batch"):
        effective_reward("entropy", nu, 4, scale="batch")
    with pytest.raises(DomainError, match="binomial"):
        effective_reward("ttrl", nu, 4, method="binomial")
    with pytest.raises(DomainError, match="MAX_COMPOSITIONS"):
        effective_reward("ttrl", np.full(12, 1 / 12), 24)
    bad_sum = r"^nu must be non-negative and sum to 1 \(±1e-09\), got sum (np\.float64\()?{}\)?$"
    with pytest.raises(ValidationError, match=bad_sum.format(r"1\.1")):
        effective_reward("entropy", np.array([0.5, 0.6]), 4)
    with pytest.raises(ValidationError, match=bad_sum.format(r"1\.0")):  # sums to 1 but has a negative entry
        effective_reward("entropy", np.array([1.5, -0.5]), 4)


# ----------------------------------------------------------------------------- multi-view --------
@SETTINGS
@given(
    st.integers(0, 10_000),
    st.sampled_from(["consensus", "pairwise"]),
    st.sampled_from(["rloo", "mean", "none"]),
    st.sampled_from(["plugin", "minimax"]),
)
def test_multiview_binomial_equals_enumeration(seed, objective, baseline, estimator):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 4))
    nus = rng.dirichlet(np.ones(K), size=2)  # (2, K)
    kw = dict(
        baseline=baseline,
        tau=0.8,
        task_reward=rng.normal(size=K),
        estimator=estimator,
        weights=rng.dirichlet(np.ones(2)),
        answer_maps={(0, 1): rng.permutation(K)},
    )
    sizes = (int(rng.integers(2, 4)), int(rng.integers(2, 5)))
    a = effective_reward_multiview(objective, nus, sizes, method="binomial", **kw)
    b = effective_reward_multiview(objective, nus, sizes, method="enumerate", **kw)
    np.testing.assert_allclose(a, b, atol=ATOL_PATHS, rtol=0)


@pytest.mark.parametrize(
    "consensus,scale", [("geometric", "group"), ("majority", "none"), ("arithmetic", "none")]
)
def test_multiview_effective_reward_matches_monte_carlo(consensus, scale):
    rng = np.random.default_rng(21)
    K, sizes, n_groups = 3, (4, 3), 60_000
    nus = np.array([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3]])
    w = np.array([0.6, 0.4])
    kw = dict(tau=0.9, weights=w, task_reward=np.array([0.1, 0.0, -0.2]), estimator="minimax")
    exact = effective_reward_multiview("consensus", nus, sizes, consensus=consensus, scale=scale, **kw)
    views = [rng.choice(K, size=(n_groups, g), p=nus[j]) for j, g in enumerate(sizes)]
    rewards = consensus_group_rewards(views, n_answers=K, consensus=consensus, **kw)
    for j, g in enumerate(sizes):
        adv, _ = advantages(rewards[j], scale=scale)
        for z in range(K):
            x = (adv * (views[j] == z)).sum(axis=1) / (g * nus[j, z])  # (n_groups,)
            se = x.std(ddof=1) / np.sqrt(n_groups)
            assert abs(x.mean() - exact[j, z]) <= MC_SIGMAS * se, (j, z, x.mean(), exact[j, z], se)


def test_multiview_single_view_objectives_and_errors():
    nus = np.array([[0.5, 0.5], [0.2, 0.8]])
    out = effective_reward_multiview("entropy", nus, 4, tau=1.0)
    for j in range(2):
        np.testing.assert_allclose(out[j], effective_reward("entropy", nus[j], 4, tau=1.0), atol=0)
    with pytest.raises(DomainError, match="binomial"):
        effective_reward_multiview("consensus", nus, 3, consensus="geometric", method="binomial")
    with pytest.raises(DomainError, match="MAX_COMPOSITIONS"):
        effective_reward_multiview("consensus", np.full((3, 8), 1 / 8), 12, consensus="majority")
