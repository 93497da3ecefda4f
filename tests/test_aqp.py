"""AQP log tables (T12), RLOO-aware tables (T11a), the doubly-leave-one-out baseline (T11b) and the exact
std-scaled effective reward (T11e)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from dagsim.errors import DomainError, ValidationError
from dagsim.estimators import (
    AQP_DATA_FORMAT,
    AQP_DATA_PATH,
    AQP_DEFAULT_KAPPA,
    AQP_SHIPPED_MAX_G,
    aqp_solution,
    bias_variance_frontier,
    binomial_pmf,
    exact_bias_variance,
    integrated_variance,
    integrated_variance_matrix,
    log_estimator_table,
    min_variance_log_table,
    minimax_log_bias,
    worst_case_bias,
)
from dagsim.grpo.advantages import (
    advantages,
    doubly_loo_advantages,
    doubly_loo_baseline,
    doubly_loo_rule,
    rescale_advantages,
)
from dagsim.grpo.effective import effective_reward
from dagsim.grpo.rewards import count_reward_table, group_rewards, table_size_for
from dagsim.tolerances import FLOAT64_SUMS, T12_QUOTED

#: Gauss–Legendre with 200 nodes integrates degree ≤ 399 polynomials exactly: round-off only.
TOL_QUADRATURE = 1e-12
#: A re-solve on the same solver versions matches the shipped table's bias/variance to solver accuracy.
TOL_RESOLVE = 1e-6


def _quadrature_integrated_variance(table: np.ndarray, G: int) -> float:
    x, w = np.polynomial.legendre.leggauss(200)
    p, w = 0.5 * (x + 1.0), 0.5 * w
    _, var = exact_bias_variance(table, G, p)  # two-pass variance, independent of the Beta-integral matrix
    return float(w @ (p**2 * var))


@pytest.mark.parametrize("G", [2, 5, 12, 33])
def test_integrated_variance_matrix_matches_quadrature(G):
    rng = np.random.default_rng(G)
    table = rng.normal(size=G)
    want = _quadrature_integrated_variance(table, G)
    assert integrated_variance(table, G) == pytest.approx(want, rel=TOL_QUADRATURE, abs=TOL_QUADRATURE)
    assert float(table @ integrated_variance_matrix(G) @ table) == pytest.approx(want, rel=1e-10)
    # control: dropping the p² weight (∫ Var dp) is a different quantity
    x, w = np.polynomial.legendre.leggauss(200)
    p = 0.5 * (x + 1.0)
    _, var = exact_bias_variance(table, G, p)
    assert abs(float(0.5 * w @ var) - want) > 1e-3 * want
    # constants have zero variance
    assert integrated_variance(np.ones(G), G) == pytest.approx(0.0, abs=1e-13)


def test_t12a_values_and_budget():
    published = {8: 7.313e-3, 16: 2.728e-3, 32: 1.0896e-3, 64: 4.568e-4}
    for G, value in published.items():
        sol = aqp_solution(G)
        assert sol["source"] == "shipped"
        assert sol["worst_case_bias"] == pytest.approx(value, rel=T12_QUOTED)
        assert 0.119 <= G * math.log(G) * sol["worst_case_bias"] <= 0.124
        budget = AQP_DEFAULT_KAPPA / (6 * (G - 1))
        assert integrated_variance(sol["table"], G) <= budget * (1 + 1e-6)
        # the stored bias is the table's own worst case (recomputed independently of the solve)
        assert worst_case_bias(sol["table"], G) == pytest.approx(sol["worst_case_bias"], rel=1e-6)
    # control: κ = 1 misses (a)
    assert aqp_solution(8, 1.0)["worst_case_bias"] > published[8] * (1 + T12_QUOTED)


@pytest.mark.parametrize("G", [4, 8, 16])
def test_shipped_tables_match_a_fresh_solve(G):
    shipped = aqp_solution(G)
    fresh = aqp_solution(G, use_shipped=False)
    assert fresh["source"] == "solved"
    assert fresh["worst_case_bias"] == pytest.approx(shipped["worst_case_bias"], rel=TOL_RESOLVE)
    assert fresh["integrated_variance"] == pytest.approx(shipped["integrated_variance"], rel=TOL_RESOLVE)
    np.testing.assert_allclose(fresh["table"], shipped["table"], atol=1e-3)


def test_shipped_file_provenance():
    data = json.loads(AQP_DATA_PATH.read_text())
    assert data["format"] == AQP_DATA_FORMAT and data["kappa"] == AQP_DEFAULT_KAPPA
    assert data["command"] == "python -m dagsim.estimators --regenerate-aqp"
    assert "CLARABEL" in data["solver"] and {"cvxpy", "clarabel", "numpy"} <= set(data["versions"])
    assert sorted(int(g) for g in data["tables"]) == list(range(2, AQP_SHIPPED_MAX_G + 1))
    for g, entry in data["tables"].items():
        assert len(entry["table"]) == int(g)
        assert entry["integrated_variance"] <= entry["variance_budget"] * (1 + 1e-6)


def test_frontier_and_min_variance():
    rows = bias_variance_frontier(8, [1.0, 2.0, 4.0])
    biases = [r["worst_case_bias"] for r in rows]
    variances = [r["integrated_variance"] for r in rows]
    assert biases[0] > biases[1] > biases[2] > minimax_log_bias(8)
    assert variances[0] < variances[1] < variances[2]
    e_star = minimax_log_bias(8)
    sol = min_variance_log_table(8, 4 * e_star)
    assert sol["integrated_variance"] == pytest.approx(0.0247, rel=T12_QUOTED)  # T12(b)
    assert sol["worst_case_bias"] <= 4 * e_star * (1 + 1e-3)
    # (d): ε → 0 approaches the minimax table's ∫p²Var = 0.437
    assert integrated_variance("minimax", 8) == pytest.approx(0.437, rel=T12_QUOTED)
    near = min_variance_log_table(8, 1.001 * e_star)
    assert 0.9 * 0.437 < near["integrated_variance"] < 0.437
    with pytest.raises(DomainError):
        min_variance_log_table(8, 0.99 * e_star)


def test_kappa_arguments():
    t4 = log_estimator_table(6, "aqp", kappa=4.0)
    assert worst_case_bias(t4, 6) < worst_case_bias("aqp", 6)
    with pytest.raises(ValidationError):
        log_estimator_table(6, "plugin", kappa=2.0)
    with pytest.raises(DomainError):
        log_estimator_table(6, "aqp", kappa=0.0)
    assert not log_estimator_table(6, "aqp").flags.writeable


# ------------------------------------------------------------------------------------------ T11a, T11b
def _own_bias_reward(r, tau, nu, table):
    """r(z) − τ E f(C), C ~ Bin(n−1, ν(z)) for an n-table: the estimator's own expected reward."""
    n = table.size
    return r - tau * (binomial_pmf(n - 1, nu) @ table)


@pytest.mark.parametrize("estimator", ["aqp", "plugin", "minimax_monotone"])
@pytest.mark.parametrize("G", [4, 7])
def test_rloo_aware_table_leaves_only_its_own_bias(estimator, G):
    rng = np.random.default_rng(G)
    nu, r, tau = rng.dirichlet(np.ones(4)), rng.normal(size=4), 1.0
    kw = dict(tau=tau, task_reward=r, estimator=estimator)
    aware = effective_reward("entropy", nu, G, baseline="rloo", table_size=G - 1, **kw)
    assert np.ptp(aware - _own_bias_reward(r, tau, nu, log_estimator_table(G - 1, estimator))) < FLOAT64_SUMS
    # control: the G-table under RLOO is not its own (G-sample) bias
    plain = effective_reward("entropy", nu, G, baseline="rloo", **kw)
    own_g = r - tau * (binomial_pmf(G - 1, nu) @ log_estimator_table(G, estimator))
    assert np.ptp(plain - own_g) > 1e-4
    # enumeration agrees with the binomial path
    enum = effective_reward("entropy", nu, G, baseline="rloo", table_size=G - 1, method="enumerate", **kw)
    np.testing.assert_allclose(enum, aware, atol=FLOAT64_SUMS)


def test_rloo_aware_gini_is_unbiased():
    nu, r, tau, G = np.array([0.6, 0.3, 0.1]), np.zeros(3), 1.0, 4
    aware = effective_reward("gini", nu, G, baseline="rloo", tau=tau, task_reward=r, estimator="unbiased",
                             table_size=table_size_for("rloo", G))
    assert np.ptp(aware - (-2 * tau * nu)) < FLOAT64_SUMS
    plain = effective_reward("gini", nu, G, baseline="rloo", tau=tau, task_reward=r, estimator="unbiased")
    theory = np.array([-0.187, 0.213, 0.48])  # THEORY T11a's shrunk RLOO values, up to a constant
    np.testing.assert_allclose(plain - plain.mean(), theory - theory.mean(), atol=1e-3)
    assert table_size_for("doubly-loo", G) is None and table_size_for("rloo", G, rloo_aware=False) is None
    assert table_size_for("mean", G) == G - 1 and table_size_for("none", G) is None
    # T11d: under the self-inclusive mean the (G−1)-table also leaves only its own bias
    mean_aware = effective_reward("gini", nu, G, baseline="mean", tau=tau, task_reward=r, estimator="unbiased",
                                  table_size=G - 1)
    assert np.ptp(mean_aware - (G - 1) / G * (-2 * tau * nu)) < FLOAT64_SUMS


@pytest.mark.parametrize("objective,estimator", [("entropy", "aqp"), ("sharpen", "plugin"),
                                                 ("entropy", "minimax"), ("gini", "unbiased")])
@pytest.mark.parametrize("G", [2, 3, 6])
def test_doubly_loo_effective_reward_is_the_estimators_own_bias(objective, estimator, G):
    rng = np.random.default_rng(10 + G)
    nu, r, tau = rng.dirichlet(np.ones(3)), rng.normal(size=3), 0.7
    kw = dict(tau=tau, task_reward=r, estimator=estimator)
    got = effective_reward(objective, nu, G, baseline="doubly-loo", **kw)
    table = count_reward_table(objective, n_answers=3, group_size=G, **kw)  # (K, G)
    own = (binomial_pmf(G - 1, nu) * table).sum(axis=1)  # E[g_i | z_i = z]
    assert np.ptp(got - own) < FLOAT64_SUMS
    enum = effective_reward(objective, nu, G, baseline="doubly-loo", method="enumerate", **kw)
    np.testing.assert_allclose(enum, got, atol=FLOAT64_SUMS)
    if G > 2 and objective != "gini":
        rloo = effective_reward(objective, nu, G, baseline="rloo", **kw)  # control: RLOO is not
        assert np.ptp(rloo - own) > 1e-4


@pytest.mark.parametrize("G", [2, 3, 5, 8])
def test_doubly_loo_count_path_equals_generic_and_definition(G):
    rng = np.random.default_rng(G)
    K = 3
    answers = rng.integers(0, K, size=(40, G))
    answers[0] = 1  # an all-equal group
    kw = dict(tau=1.0, task_reward=rng.normal(size=K), estimator="aqp")
    tables = doubly_loo_rule("entropy", n_answers=K, group_size=G, **kw)
    r_fast, b_fast = doubly_loo_baseline(answers, tables)

    def fn(a):
        return group_rewards("entropy", a, n_answers=K, **kw)

    if G == 2:  # group_rewards needs 2 samples; a lone sample's count reward is T_G[z, 0]
        np.testing.assert_allclose(b_fast, tables[0][answers[:, ::-1], 0], atol=FLOAT64_SUMS)
    else:
        r_gen, b_gen = doubly_loo_baseline(answers, fn)
        np.testing.assert_allclose(r_fast, r_gen, atol=FLOAT64_SUMS)
        np.testing.assert_allclose(b_fast, b_gen, atol=FLOAT64_SUMS)
        # the definition, written out: b_i = mean_{j≠i} R_j recomputed on the group without i
        for b, row in enumerate(answers[:5]):
            for i in range(G):
                want = fn(np.delete(row, i)[None, :])[0].mean()
                assert b_gen[b, i] == pytest.approx(want, abs=FLOAT64_SUMS)
    adv, n_zero = doubly_loo_advantages(answers, tables)
    np.testing.assert_allclose(adv, r_fast - b_fast, atol=FLOAT64_SUMS)
    assert n_zero >= 1 and np.all(adv[0] == adv[0, 0])  # the all-equal group keeps its (common) advantage
    scaled, _ = doubly_loo_advantages(answers, tables, scale="group")
    assert np.all(scaled[0] == 0.0)
    with pytest.raises(DomainError):
        advantages(r_fast, baseline="doubly-loo")


def test_doubly_loo_extra_rewards_use_plain_loo():
    rng = np.random.default_rng(0)
    answers = rng.integers(0, 3, size=(6, 5))
    extra = rng.normal(size=(6, 5))
    tables = doubly_loo_rule("sharpen", n_answers=3, group_size=5, tau=1.0, estimator="plugin")
    with_extra, _ = doubly_loo_advantages(answers, tables, extra_rewards=extra)
    without, _ = doubly_loo_advantages(answers, tables)
    rloo_extra, _ = advantages(extra, baseline="rloo")
    np.testing.assert_allclose(with_extra, without + rloo_extra, atol=FLOAT64_SUMS)
    centered = with_extra
    a, _ = rescale_advantages(centered, extra, scale="batch")
    np.testing.assert_allclose(a, centered / (extra.std(ddof=1) + 1e-4))


# ------------------------------------------------------------------------------------------ T11e
def test_group_std_scaling_is_exact_and_not_proportional():
    """T11e: E[A_i/σ̂ | z_i] by exact enumeration = brute force over all K^{G−1} groups; the per-answer
    ratio to the unscaled ḡ is not a constant."""
    nu, r, G = np.array([0.5, 0.3, 0.2]), np.array([1.0, 0.0, -0.5]), 5
    exact = effective_reward("reward", nu, G, baseline="rloo", scale="group", task_reward=r)
    want = np.zeros(3)
    for z in range(3):
        for others in itertools.product(range(3), repeat=G - 1):
            group = np.array([z, *others])
            adv, _ = advantages(r[group][None, :], baseline="rloo", scale="group")
            want[z] += np.prod(nu[list(others)]) * adv[0, 0]
    np.testing.assert_allclose(exact, want, atol=FLOAT64_SUMS)
    plain = effective_reward("reward", nu, G, baseline="rloo", task_reward=r)
    ratio = exact / plain
    assert np.ptp(ratio) > 0.05  # not proportional: a policy-dependent reweighting of the answers
    dl = effective_reward("entropy", nu, G, baseline="doubly-loo", scale="group", tau=1.0, task_reward=r,
                          estimator="aqp")
    assert np.all(np.isfinite(dl))


def test_llm_doubly_loo_matches_dagsim():
    """The LLM trainer's O(G²) doubly-LOO baselines = dagsim's O(G) count path; the sequence-KL term is
    plain leave-one-out; the RLOO-aware setting picks the (G−1)-table."""
    from llm.rewards import ALGORITHMS, RewardSettings, doubly_loo_baselines, group_advantages

    rng = np.random.default_rng(3)
    G, K = 6, 4
    idx = [rng.integers(0, K, size=G) for _ in range(2)]  # two views, consensus none -> per-view sharpen
    settings = RewardSettings(tau=0.5, estimator="aqp", consensus="none", base_objective="sharpen")
    algo = ALGORITHMS["coherence-grpo"]
    rewards = np.stack(algo.rewards(idx, K, None, settings))
    base = np.stack(doubly_loo_baselines(algo.rewards, idx, K, None, settings))
    extra = rng.normal(size=rewards.shape)
    adv, _ = group_advantages(rewards, "doubly-loo", "none", doubly_loo=base, extra_rewards=extra)
    tables = doubly_loo_rule("sharpen", n_answers=K, group_size=G, tau=0.5, estimator="aqp")
    want, _ = doubly_loo_advantages(np.stack(idx), tables, extra_rewards=extra)
    np.testing.assert_allclose(adv, want, atol=FLOAT64_SUMS)
    with pytest.raises(ValidationError):
        group_advantages(rewards, "doubly-loo", "none")
    aware = RewardSettings(tau=0.5, estimator="aqp", consensus="none", base_objective="sharpen", rloo_aware=True)
    got = np.stack(algo.rewards(idx, K, None, aware))
    np.testing.assert_allclose(got, group_rewards("sharpen", np.stack(idx), n_answers=K, tau=0.5, estimator="aqp",
                                                  table_size=G - 1), atol=FLOAT64_SUMS)
