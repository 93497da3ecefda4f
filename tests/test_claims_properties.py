"""Property tests of the game and estimator claims T1–T8, T10, T11 of docs/theory.md (one group per ID).

They complement (do not repeat) test_game, test_objectives, test_solvers, test_estimators, test_effective
and test_group_rewards: random reasoning DAGs, simplex points, β, τ, weights and view sets, with edge cases
pinned by @example (a single answer, β → 0 and β large, τ = β for sharpen). The helpers that also serve
``proofs_check`` (L-BFGS oracle, fixed point of the expected GRPO update, alternation bound) are imported
from there so that the check and the test exercise the same oracle.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dagsim.constraints import LinearConstraint
from dagsim.estimators import log_estimator_table, minimax_log_bias, unbiased_power
from dagsim.game import dynamics as dyn
from dagsim.game.payoff import AnswerGame, gibbs, markov_policy_for_marginal
from dagsim.generators import random_dag
from dagsim.grpo.effective import effective_reward
from dagsim.grpo.rewards import pairwise_group_rewards
from dagsim.marginals import answer_marginal, trace_kl
from dagsim.objectives import make_objective
from dagsim.solvers import solve_answer_level
from dagsim.tolerances import CVXPY_DUAL, CVXPY_NU, DAMPED_RATE, EXPLOITABILITY, FLOAT64_SUMS, LBFGS, ROUND
from proofs_check.checks._remez import remez_log
from proofs_check.checks.baseline_claims import binomial_mean, enumerate_effective
from proofs_check.checks.game_claims import collision_hessian_max, e2_lbfgs_optimum, majority_closed_form
from proofs_check.checks.grpo_claims import stationary_point
from proofs_check.checks.log_estimator_claims import alternation_lower_bound, p_weighted_bias
from tests.strategies import reasoning_dags, simplex_points, tasks

#: Closed-form rates of maps that are exactly linear in centered log space: round-off of log differences.
RATE_ATOL = 1e-8

CONCAVE = ("entropy", "gini", "tsallis", "reward")
SLOW = settings(max_examples=15, deadline=None)  # tests that call cvxpy or solve fixed points
FAST = settings(max_examples=20, deadline=None)


def floats_vector(k: int, lo: float = -2.0, hi: float = 2.0):
    return st.lists(st.floats(lo, hi), min_size=k, max_size=k).map(np.array)


def centered_log_deviation(nu: np.ndarray, star: np.ndarray) -> float:
    d = np.log(nu) - np.log(star)
    return float(np.linalg.norm(d - d.mean()))


# ============================================================================================ T1
@st.composite
def concave_problems(draw):
    name = draw(st.sampled_from(CONCAVE))
    k = draw(st.integers(1, 6))
    nu0 = draw(simplex_points(k, floor=0.02))
    r = draw(floats_vector(k))
    tau = None if name == "reward" else draw(st.floats(0.0, 3.0))
    order = draw(st.sampled_from([0.5, 1.5, 3.0])) if name == "tsallis" else None
    return make_objective(name, k, reward=r, tau=tau, order=order), nu0, draw(st.floats(0.05, 20.0))


R3 = np.array([1.0, 0.0, -1.0])
NU3 = np.array([0.2, 0.3, 0.5])


@FAST
@given(concave_problems(), st.data())
@example(problem=(make_objective("gini", 1, tau=1.0), np.array([1.0]), 1.0), data=None)  # a single answer
@example(problem=(make_objective("entropy", 3, reward=R3, tau=0.5), NU3, 1e-2), data=None)  # β → 0
@example(problem=(make_objective("tsallis", 3, reward=R3, tau=1.0, order=0.5), NU3, 100.0),
         data=None)  # β large
def test_t1_exploitability_is_zero_only_at_the_optimum(problem, data):
    """Concave Φ: E4 = 0 at the (E2) optimum; E4(π, q) ≥ 0 for every pair; the Target's best response is
    q = ν_π (the tangent lies above Φ); and E4(π, ν_π) ≥ J(π*) − J(π) ≥ (β/2)‖ν_π − ν*‖₁²."""
    obj, nu0, beta = problem
    k = nu0.size
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    star = solve_answer_level(obj, nu0, beta).nu
    assert abs(game.exploitability(star[None, :])) <= EXPLOITABILITY
    j_star = game.regularized_value(star[None, :])
    if data is None:
        pairs = [(np.full(k, 1.0 / k), nu0)]
    else:
        pairs = [(data.draw(simplex_points(k, floor=0.01)), data.draw(simplex_points(k, floor=0.01)))
                 for _ in range(3)]
    for nu, q in pairs:
        nu, q = nu[None, :], q[None, :]
        j = game.regularized_value(nu)
        assert game.exploitability(nu, q) >= -ROUND
        assert game.payoff(nu, q) >= j - ROUND
        assert game.exploitability(nu) >= j_star - j - ROUND
        assert j_star - j >= 0.5 * beta * float(np.abs(nu[0] - star).sum()) ** 2 - ROUND


@SLOW
@given(reasoning_dags(max_internal=6, max_answers=4), st.sampled_from(CONCAVE + ("sharpen",)),
       st.floats(0.2, 5.0), st.floats(0.05, 0.9), st.integers(0, 2**31))
@example(dag=random_dag(np.random.default_rng(0), 3, 1), name="gini", beta=1.0, ratio=0.5,
         seed=0)  # a single answer
@example(dag=random_dag(np.random.default_rng(1), 5, 3), name="sharpen", beta=0.2, ratio=0.9, seed=1)
def test_t1_nash_equilibrium_on_a_dag_is_the_cvxpy_optimum(dag, name, beta, ratio, seed):
    """The Markov policy π* = ν*(a(y))·π0(y|a(y)) of the fast solver's ν* (= cvxpy's) has zero trace-level
    exploitability; any other DAG policy of a concave Φ has E4 ≥ (β/2)‖ν_π − ν*‖₁²."""
    rng = np.random.default_rng(seed)
    nu0 = answer_marginal(dag)
    k = nu0.size
    tau = None if name == "reward" else ratio * beta  # sharpen: τ < β, (E2) concave
    order = 1.5 if name == "tsallis" else None
    obj = make_objective(name, k, reward=rng.normal(size=k), tau=tau, order=order)
    star = solve_answer_level(obj, nu0, beta).nu
    assert np.abs(star - solve_answer_level(obj, nu0, beta, method="cvxpy").nu).max() <= CVXPY_NU
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    probs = markov_policy_for_marginal(dag, star)
    nu_star = answer_marginal(dag, probs=probs)[None, :]
    expl = game.exploitability(nu_star, policy_kl=trace_kl(dag, probs=probs))
    assert abs(expl) <= EXPLOITABILITY
    if obj.curvature != "convex":
        theta = np.log(probs) + rng.normal(scale=0.5, size=dag.n_edges)
        nu = answer_marginal(dag, theta)
        expl = game.exploitability(nu[None, :], policy_kl=trace_kl(dag, theta))
        assert expl >= 0.5 * beta * float(np.abs(nu - star).sum()) ** 2 - ROUND


# ============================================================================================ T2
@FAST
@given(st.integers(2, 6).flatmap(lambda k: simplex_points(k, floor=0.02)), st.floats(0.1, 10.0),
       st.floats(0.0, 0.6), st.integers(0, 2**31))
@example(nu0=np.array([0.5, 0.5]), beta=0.1, ratio=0.6, seed=0)  # β small
@example(nu0=np.array([0.1, 0.2, 0.7]), beta=10.0, ratio=0.0, seed=1)  # τ = 0: one round suffices
def test_t2_collision_alternating_best_response_is_monotone_and_reaches_the_optimum(nu0, beta, ratio, seed):
    """Convex Φ = ⟨r,ν⟩ + τΣν² with τ < β: J never decreases along q ← ν, ν ← Gibbs(∇Φ(q)), and the
    limit from any full-support start is the (E2) maximizer (scipy L-BFGS oracle)."""
    rng = np.random.default_rng(seed)
    k = nu0.size
    obj = make_objective("collision", k, reward=rng.normal(size=k), tau=ratio * beta)
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    run = dyn.alternating_best_response(game, 100, start=rng.dirichlet(np.ones(k))[None, :], tol=-1.0)
    assert np.diff([h["objective"] for h in run.history]).min() >= -ROUND
    assert np.abs(run.nus[0] - e2_lbfgs_optimum(obj, nu0, beta, nu0)).max() <= LBFGS


@FAST
@given(st.integers(2, 6).flatmap(lambda k: simplex_points(k, floor=0.02)), st.floats(0.1, 5.0),
       st.floats(1.0, 4.0), st.integers(0, 2**31))
@example(nu0=np.array([0.2, 0.3, 0.5]), beta=1.0, ratio=1.0, seed=0)  # τ = β: (E2) is linear
@example(nu0=np.array([0.2, 0.3, 0.5]), beta=0.1, ratio=1.0, seed=1)  # τ = β, β small
def test_t2_sharpen_at_or_below_the_curvature_collapses_to_a_vertex(nu0, beta, ratio, seed):
    """β ≤ τ: alternating best responses still never decrease J, never exceed the best vertex value
    max_z r(z) + β log ν0(z) (= the solver's optimum, a vertex), and collapse onto a vertex when τ > β."""
    rng = np.random.default_rng(seed)
    k = nu0.size
    obj = make_objective("sharpen", k, reward=rng.normal(size=k), tau=ratio * beta)
    best = float(np.max(obj.task_reward + beta * np.log(nu0)))
    assert abs(solve_answer_level(obj, nu0, beta).value - best) <= ROUND
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    nus = rng.dirichlet(np.ones(k))[None, :]
    values = [game.regularized_value(nus)]
    for _ in range(200):  # stepped here: E4 is NaN once the iterate reaches a face (g = −inf there)
        nus = game.policy_best_response(nus)
        values.append(game.regularized_value(nus))
    assert np.diff(values).min() >= -ROUND and max(values) <= best + ROUND
    if ratio >= 1.05:  # the log-space map expands by τ/β ≥ 1.05 per round: 1.05^200 ~ 2e4
        assert nus.max() >= 1.0 - 1e-9


@FAST
@given(st.integers(2, 6).flatmap(lambda k: simplex_points(k, floor=1e-3)), st.floats(0.05, 3.0),
       st.floats(0.1, 3.0))
@example(nu=np.array([0.5, 0.5]), tau=1.0, beta=1.0)  # the bound is attained: λ_max = 2(τ − β) = 0
def test_t2_collision_hessian_never_exceeds_two_tau_minus_beta(nu, tau, beta):
    """On Σv = 0, 2τI − β·diag(1/ν) ≤ 2(τ − β): (E2) for collision is concave whenever τ ≤ β."""
    top = collision_hessian_max(nu, tau, beta)
    assert top <= 2 * (tau - beta) + 1e-9 * max(1.0, beta / nu.min())
    if nu.size == 2 and np.allclose(nu, 0.5):
        assert abs(top - 2 * (tau - beta)) <= 1e-12


@FAST
@given(st.integers(2, 5).flatmap(lambda k: simplex_points(k, floor=0.02)), st.floats(0.2, 3.0),
       st.floats(0.0, 3.0), st.integers(0, 2**31))
def test_t2_majority_closed_form_beats_every_mode_choice(nu0, beta, tau, seed):
    """The majority optimum is the best of the K linear problems with reward r + τ·e_{z'}: its value is
    max_{z'} β log Σ ν0 e^{(r + τ e_{z'})/β}, reached by the closed form."""
    r = np.random.default_rng(seed).normal(size=nu0.size)
    nu = majority_closed_form(nu0, r, tau, beta)
    value = r @ nu + tau * nu.max() - beta * float(np.sum(nu * np.log(nu / nu0)))
    best = max(beta * np.log(np.sum(nu0 * np.exp((r + tau * np.eye(nu0.size)[z]) / beta)))
               for z in range(nu0.size))
    assert abs(value - best) <= 1e-10 * max(1.0, abs(best))



# ============================================================================================ T3
def dag_views(max_views: int = 3):
    """A task of 1..max_views DAG views sharing K answers, every answer reachable in every view."""
    return st.integers(2, 5).flatmap(lambda k: tasks(max_views=max_views, min_answers=k, max_answers=k))


@FAST
@given(dag_views())
def test_t3_majority_is_the_tempering_limit_and_d_vanishes_only_on_agreement(task):
    """q ∝ q̄^α approaches the majority target monotonically as α grows (uniform over tied modes, where
    the point mass of the adopted definition is one of them); D ≥ 0 with D = 0 on identical views."""
    nus = np.stack([answer_marginal(v) for v in task.views])  # (m, K)
    w, k = task.weights, task.n_answers
    target = make_objective("consensus", k, consensus="majority", weights=w).target(nus)
    q_bar = w @ nus
    modes = np.flatnonzero(q_bar >= q_bar.max() * (1 - 1e-12))
    assert target[modes].sum() == 1.0
    if modes.size < k:
        second = np.sort(q_bar[np.setdiff1d(np.arange(k), modes)])[-1]
        alphas = 40.0 / np.log(q_bar.max() / second) * np.geomspace(1e-3, 1.0, 8)
        limit = np.zeros(k)
        limit[modes] = 1.0 / modes.size
        dists = [np.abs(np.exp(a * np.log(q_bar) - np.logaddexp.reduce(a * np.log(q_bar))) - limit).sum()
                 for a in alphas]
        assert np.all(np.diff(dists) <= ROUND) and dists[-1] <= 1e-12
    for kind in ("arithmetic", "geometric"):
        obj = make_objective("consensus", k, consensus=kind, weights=w)
        assert obj.discrepancy(nus) >= -ROUND
        assert abs(obj.discrepancy(np.tile(nus[0], (nus.shape[0], 1)))) <= ROUND


# ============================================================================================ T4
@FAST
@given(dag_views(max_views=4))
def test_t4_every_truth_gains_the_same_gap_from_the_geometric_consensus(task):
    """For every correct answer z (u = δ_z): Σ_j w_j KL(δ_z‖ν_j) − KL(δ_z‖q) = −log Σ_z Π ν_j^{w_j}
    = D_geo ≥ 0, the same gap whichever answer is the truth (views: answer marginals of random DAGs)."""
    nus = np.stack([answer_marginal(v) for v in task.views])
    obj = make_objective("consensus", task.n_answers, consensus="geometric", weights=task.weights)
    q = obj.target(nus)
    gaps = task.weights @ (-np.log(nus)) + np.log(q)  # (K,): gap for u = δ_z
    d = obj.discrepancy(nus)
    assert d >= -ROUND
    np.testing.assert_allclose(gaps, d, atol=1e-10, rtol=0)


# ============================================================================================ T5
@SLOW
@given(st.integers(3, 6).flatmap(lambda k: simplex_points(k, floor=0.05)),
       st.sampled_from(["reward", "entropy", "gini"]), st.floats(0.3, 3.0), st.floats(0.1, 1.5),
       st.sampled_from(["<=", ">=", "=="]), st.integers(0, 2**31))
@example(nu0=np.array([0.25, 0.25, 0.5]), name="entropy", beta=0.3, tau=1.5, op="<=", seed=0)  # τ > β
def test_t5_dual_ascent_multipliers_equal_the_solver_and_cvxpy(nu0, name, beta, tau, op, seed):
    """The multiplier player's dual ascent (the Policy best-responding to g − λh) reaches the fast solver's
    λ* and cvxpy's dual, and ν* ∝ ν0·exp((∇Φ(ν*) − λ*h)/β)."""
    rng = np.random.default_rng(seed)
    k = nu0.size
    kw = {} if name == "reward" else {"tau": tau}
    r = rng.normal(size=k)
    obj = make_objective(name, k, reward=r, **kw)
    free = solve_answer_level(obj, nu0, beta).nu
    coef = np.zeros(k)
    coef[rng.permutation(k)[: int(rng.integers(1, k))]] = 1.0  # a nonempty proper subset S
    mass = float(coef @ free)
    bound = 0.5 * mass if op in ("<=", "==") else mass + 0.5 * (1.0 - mass)  # active at the optimum
    constraint = LinearConstraint(coef, op, bound)
    h = constraint.as_leq()[0]
    fast = solve_answer_level(obj, nu0, beta, (constraint,))
    cvx = solve_answer_level(obj, nu0, beta, (constraint,), method="cvxpy")
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1), (constraint,))

    def inner(game, lam, nus):  # the Policy's exact response to the Lagrangian reward
        return solve_answer_level(make_objective(name, k, reward=r - lam[0] * h, **kw), nu0, beta).nu[None, :]

    # step β / Var(1_S) at the active bound: a Newton-like step for the dual of every family here
    run = dyn.dual_ascent(game, 400, beta / (bound * (1 - bound)), inner=None if name == "reward" else inner,
                          tol=1e-11)
    assert abs(run.multipliers[0] - fast.multipliers[0]) <= 1e-7
    assert abs(fast.multipliers[0] - cvx.multipliers[0]) <= CVXPY_DUAL
    tilt = gibbs(nu0, obj.reward(fast.nu) - fast.multipliers[0] * h, beta)
    assert np.abs(tilt - fast.nu).max() <= 1e-8


# ============================================================================================ T6
@FAST
@given(st.integers(2, 6).flatmap(lambda k: simplex_points(k, floor=0.02)), st.floats(0.05, 50.0),
       st.floats(0.0, 3.0), st.floats(0.05, 1.9),
       st.sampled_from(["best-response", "mirror", "extragradient"]), st.integers(0, 2**31))
@example(nu0=np.array([0.3, 0.7]), beta=0.05, ratio=0.5, x=0.5, rule="mirror", seed=0)  # β → 0
@example(nu0=np.array([0.3, 0.7]), beta=50.0, ratio=2.0, x=1.0, rule="best-response",
         seed=0)  # τ > β: diverges
def test_t6_entropy_dynamics_move_the_log_deviation_at_the_predicted_rate(nu0, beta, ratio, x, rule, seed):
    """Entropy objective: one step multiplies the centered log-deviation from ν* by exactly τ/β (best
    response), 1 − x (mirror) or 1 − x + x² (extragradient), x = η(β+τ)."""
    rng = np.random.default_rng(seed)
    k = nu0.size
    tau = ratio * beta
    obj = make_objective("entropy", k, reward=rng.normal(size=k), tau=tau)
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    star = obj.closed_form(nu0, beta)
    xi = rng.normal(size=k)
    log_start = np.log(star) + 1e-2 * (xi - xi.mean()) / max(np.linalg.norm(xi - xi.mean()), 1e-300)
    start = np.exp(log_start - np.logaddexp.reduce(log_start))
    step = x / (beta + tau)
    predicted = {"best-response": ratio, "mirror": abs(1 - x), "extragradient": 1 - x + x * x}[rule]
    kwargs = {"step": 1.0} if rule == "best-response" else {"step": step}
    nu = dyn.DYNAMICS[rule](game, 1, start=start[None, :], tol=-1.0, **kwargs).nus[0]
    d0 = centered_log_deviation(start, star)
    assert abs(centered_log_deviation(nu, star) - predicted * d0) <= RATE_ATOL * max(d0, 1.0)


@FAST
@given(st.integers(2, 6).flatmap(lambda k: simplex_points(k, floor=0.02)), st.floats(0.2, 5.0),
       st.floats(0.2, 3.0), st.floats(0.05, 1.0), st.integers(0, 2**31))
@example(nu0=np.array([0.3, 0.7]), beta=1.0, ratio=3.0, eta=0.25, seed=0)  # τ > β, damped: converges
@example(nu0=np.array([0.3, 0.7]), beta=1.0, ratio=3.0, eta=0.75, seed=0)  # τ > β, too little damping
def test_t6_damped_best_response_converges_iff_step_below_two_beta_over_beta_plus_tau(nu0, beta, ratio, eta,
                                                                                     seed):
    """Damped best response ν ← (1−η)ν + η·Gibbs(∇Φ(ν)) contracts near ν* at |1 − η(1 + τ/β)|, so it
    converges iff η < 2β/(β+τ) (the region T6(a) asks to map)."""
    rng = np.random.default_rng(seed)
    k = nu0.size
    obj = make_objective("entropy", k, reward=rng.normal(size=k), tau=ratio * beta)
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
    star = obj.closed_form(nu0, beta)
    xi = rng.normal(size=k)
    log_start = np.log(star) + 1e-6 * (xi - xi.mean()) / np.linalg.norm(xi - xi.mean())
    nu = np.exp(log_start - np.logaddexp.reduce(log_start))
    d0 = centered_log_deviation(nu, star)
    predicted = abs(1.0 - eta * (1.0 + ratio))
    steps = 4
    nu = dyn.damped_best_response(game, steps, eta, start=nu[None, :], tol=-1.0).nus[0]
    measured = (centered_log_deviation(nu, star) / d0) ** (1.0 / steps)
    assert abs(measured - predicted) <= DAMPED_RATE
    if abs(predicted - 1.0) > 1e-2:
        assert (measured < 1.0) == (eta < 2.0 / (1.0 + ratio))


# ============================================================================================ T7
@FAST
@given(st.integers(2, 20), st.data())
@example(G=2, data=None)
def test_t7_unbiased_power_is_exact_in_rational_arithmetic(G, data):
    """Σ_c Bin(c; G−1, p)·binom(c, m)/binom(G−1, m) = p^m exactly for rational p; dagsim's float table is
    that ratio rounded once."""
    if data is None:
        m, p = 1, Fraction(3, 7)
    else:
        m = data.draw(st.integers(0, G - 1))
        den = data.draw(st.integers(1, 50))
        p = Fraction(data.draw(st.integers(0, den)), den)
    ratio = [Fraction(math.comb(c, m), math.comb(G - 1, m)) for c in range(G)]
    total = sum(math.comb(G - 1, c) * p**c * (1 - p) ** (G - 1 - c) * ratio[c] for c in range(G))
    assert total == p**m
    np.testing.assert_allclose(unbiased_power(np.arange(G), G, m), [float(x) for x in ratio],
                               rtol=1e-15, atol=0)


@FAST
@given(st.integers(2, 3), st.integers(2, 3), st.integers(2, 3), st.floats(0.1, 2.0), st.booleans(), st.data())
def test_t7_pairwise_rewards_are_unbiased_for_random_views_and_answer_maps(k, g0, g1, tau, mapped, data):
    """E[g | z_i = z] = r(z) − 2τ(ν_j(z) − ν_k(T z)) for both endpoints of a view pair, by enumerating
    every group of both views (independent groups of sizes g0, g1)."""
    nus = [data.draw(simplex_points(k, floor=0.02)) for _ in range(2)]
    r = data.draw(floats_vector(k))
    perm = np.array(data.draw(st.permutations(range(k)))) if mapped else np.arange(k)
    maps = {(0, 1): perm}
    sizes = (g0, g1)
    for view, other, t in ((0, 1, perm), (1, 0, np.argsort(perm))):
        rest = list(itertools.product(range(k), repeat=sizes[view] - 1))
        full = list(itertools.product(range(k), repeat=sizes[other]))
        w_rest = np.array([np.prod(nus[view][list(c)]) for c in rest])
        w_full = np.array([np.prod(nus[other][list(c)]) for c in full])
        weight = np.outer(w_rest, w_full).ravel()  # (len(rest)·len(full),)
        for z in range(k):
            own = np.array([(z,) + c for c in rest for _ in full])
            oth = np.array([c for _ in rest for c in full])
            groups = [own, oth] if view == 0 else [oth, own]
            g = pairwise_group_rewards(groups, n_answers=k, tau=tau, answer_maps=maps,
                                       task_reward=r)[view][:, 0]
            expected = r[z] - 2.0 * tau * (nus[view][z] - nus[other][t[z]])
            assert abs(weight @ g - expected) <= FLOAT64_SUMS


# ============================================================================================ T8
@settings(max_examples=8, deadline=None)
@given(st.integers(2, 24))
@example(G=32)  # E*_32 = 3.1739e-4 (an LP on the table entries stalls at 3.5e-4)
def test_t8_alternation_certifies_the_minimax_value(G):
    """de la Vallée Poussin: the minimax table's p-weighted error alternates in sign at G+1 points with
    |e| ≥ δ, so δ ≤ optimum ≤ sup|e|; the bracket is tight around dagsim's LP value."""
    n = 20_000
    grid = np.unique(np.concatenate([np.sin(np.pi * np.arange(1, n + 1) / (2 * n)) ** 2,
                                     np.logspace(-16, -1, 2000)]))
    e = p_weighted_bias(np.asarray(log_estimator_table(G, "minimax")), grid)
    lower, value = alternation_lower_bound(e, G + 1), minimax_log_bias(G)
    assert 0.0 < lower <= value * (1 + 1e-9)
    assert value <= lower * (1 + 1e-3)  # the grid resolves each extremum to O(1e-4) relative
    plug = p_weighted_bias(np.asarray(log_estimator_table(G, "plugin")), grid)
    assert np.abs(plug).max() > 2 * value  # the self-counting plug-in is far from optimal


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 12))
def test_t8_remez_and_the_lp_find_the_same_unique_optimum(G):
    """Remez (mpmath, monomial basis) equioscillates at G+1 points and agrees with dagsim's Chebyshev LP."""
    sol = remez_log(G)
    errors = np.array([float(e) for e in sol.reference_errors])
    assert errors.size == G + 1 and np.all(np.sign(errors[1:]) == -np.sign(errors[:-1]))
    assert np.ptp(np.abs(errors)) <= 1e-20 * float(sol.level)
    assert abs(minimax_log_bias(G) - float(sol.level)) <= 1e-5 * float(sol.level)
    table = np.array([float(v) for v in sol.table()])
    assert np.abs(np.asarray(log_estimator_table(G, "minimax")) - table).max() <= 1e-5 * np.abs(table).max()


# ============================================================================================ T10
@SLOW
@given(st.integers(1, 5).flatmap(lambda k: simplex_points(k, floor=0.05)), st.integers(2, 8),
       st.floats(0.3, 3.0), st.floats(0.05, 1.0), st.integers(0, 2**31))
@example(nu0=np.array([1.0]), G=2, beta=1.0, ratio=0.5, seed=0)  # a single answer
def test_t10_unbiased_reward_without_centering_has_the_true_fixed_point(nu0, G, beta, ratio, seed):
    """With an exactly unbiased reward (gini, T7) and no baseline, ḡ_G = ∇Φ(ν), so the stationary point of
    the expected finite-G update, ν = ν0·exp(ḡ_G(ν)/β)/Z, is the (E2) optimum: T10's distance is the
    estimator's (and the centering's) structural bias, nothing else."""
    k = nu0.size
    rng = np.random.default_rng(seed)
    r, tau = rng.normal(size=k), ratio * beta  # 2τν/β ≤ 2: the damped iteration contracts

    def reward_fn(nu):
        return effective_reward("gini", nu, G, baseline="none", tau=tau, task_reward=r, estimator="unbiased")

    point, residual = stationary_point(reward_fn, nu0, beta)
    truth = solve_answer_level(make_objective("gini", k, reward=r, tau=tau), nu0, beta).nu
    assert residual <= 1e-10 and np.abs(point - truth).max() <= 1e-8


@settings(max_examples=10, deadline=None)
@given(reasoning_dags(max_internal=6, min_answers=4, max_answers=4), st.sampled_from([4, 8]),
       st.integers(0, 2**31))
def test_t10_minimax_stationary_point_is_closer_than_plugin(dag, G, seed):
    """Entropy objective, β = τ = 1, RLOO, no std scaling: the finite-G stationary point with the minimax
    log table is closer (total variation) to the equilibrium than with the plug-in table."""
    nu0 = answer_marginal(dag)
    r = np.random.default_rng(seed).normal(size=4)
    star = make_objective("entropy", 4, reward=r, tau=1.0).closed_form(nu0, 1.0)
    dist = {}
    for est in ("plugin", "minimax"):
        def reward_fn(nu, est=est):
            return effective_reward("entropy", nu, G, tau=1.0, task_reward=r, estimator=est)

        point, residual = stationary_point(reward_fn, nu0, 1.0)
        assert residual <= 1e-10
        dist[est] = 0.5 * np.abs(point - star).sum()
    assert dist["minimax"] < dist["plugin"]


# ============================================================================================ T11
@FAST
@given(st.integers(2, 5).flatmap(lambda k: simplex_points(k, floor=0.02)), st.integers(2, 12),
       st.floats(0.1, 2.0), st.sampled_from([("gini", -1.0), ("collision", 1.0)]), st.integers(0, 2**31))
@example(nu=np.array([0.6, 0.3, 0.1]), G=4, tau=1.0, family=("gini", -1.0), seed=0)  # the counterexample
@example(nu=np.array([0.6, 0.4]), G=2, tau=1.0, family=("collision", 1.0), seed=0)  # G = 2: τ-term removed
def test_t11_rloo_shrinks_group_dependent_rewards_by_g_minus_2_over_g_minus_1(nu, G, tau, family, seed):
    """For the unbiased polynomial rewards, RLOO's baseline shares sample i's answer through the others'
    LOO counts: ḡ_rloo = r − ⟨r,ν⟩ ± 2τ·(G−2)/(G−1)·(ν − Σν²), not the unbiased r − ⟨r,ν⟩ ± 2τ(ν − Σν²)
    (T11a: RLOO uses the first G−1 entries on Bin(G−2)); the self-inclusive mean is (G−1)/G times RLOO exactly."""
    name, sign = family
    r = np.random.default_rng(seed).normal(size=nu.size)
    rloo = effective_reward(name, nu, G, baseline="rloo", tau=tau, task_reward=r, estimator="unbiased")
    centered = nu - nu @ nu
    shrunk = r - r @ nu + sign * 2 * tau * (G - 2) / (G - 1) * centered
    np.testing.assert_allclose(rloo, shrunk, atol=FLOAT64_SUMS)
    unbiased = r - r @ nu + sign * 2 * tau * centered
    assert abs(np.abs(rloo - unbiased).max() - 2 * tau / (G - 1) * np.abs(centered).max()) <= FLOAT64_SUMS
    mean = effective_reward(name, nu, G, baseline="mean", tau=tau, task_reward=r, estimator="unbiased")
    np.testing.assert_allclose(mean, (G - 1) / G * rloo, atol=FLOAT64_SUMS)
    task = effective_reward("reward", nu, G, task_reward=r)
    np.testing.assert_allclose(task, r - r @ nu, atol=FLOAT64_SUMS)  # a per-answer reward stays unbiased


@settings(max_examples=8, deadline=None)
@given(simplex_points(3, floor=0.05), st.floats(0.2, 2.0), st.floats(0.2, 2.0), st.integers(3, 5),
       st.floats(0.5, 2.0))
def test_t11_std_scaling_moves_the_fixed_point(nu0, d1, d2, G, beta):
    """Task reward r = (0, d1, −d2): the unscaled RLOO fixed point is the true Gibbs point ν0·e^{r/β}/Z,
    dividing by the group std moves it (an effective β that depends on the group's spread)."""
    r = np.array([0.0, d1, -d2])
    truth = gibbs(nu0, r, beta)
    def plain_reward(nu):
        return effective_reward("reward", nu, G, task_reward=r)

    def scaled_reward(nu):
        return effective_reward("reward", nu, G, scale="group", task_reward=r, method="enumerate")

    plain, res0 = stationary_point(plain_reward, nu0, beta)
    scaled, res1 = stationary_point(scaled_reward, nu0, beta)
    assert max(res0, res1) <= 1e-10
    assert np.abs(plain - truth).max() <= 1e-10
    assert 0.5 * np.abs(scaled - truth).sum() > 1e-6


@FAST
@given(st.integers(2, 4), st.integers(3, 7), st.integers(0, 2**31))
@example(k=2, G=3, seed=0)
def test_t11_rloo_and_doubly_loo_effective_rewards_for_any_table(k, G, seed):
    """T11a/b for an arbitrary per-answer table ψ: RLOO's ḡ is E ψ(z, Bin(G−2, ν_z)) up to a constant (the
    last entry unused); doubly-LOO's is E ψ(z, Bin(G−1, ν_z)) up to a constant, whatever its (G−1)-table."""
    rng = np.random.default_rng(seed)
    nu = rng.dirichlet(np.ones(k))
    psi, base = rng.normal(size=(k, G)), rng.normal(size=(k, G - 1))
    rloo = enumerate_effective(psi, nu, "rloo")
    assert np.ptp(rloo - binomial_mean(psi, nu, G - 2)) <= 1e-10
    dloo = enumerate_effective(psi, nu, "doubly-loo", baseline_table=base)
    assert np.ptp(dloo - binomial_mean(psi, nu, G - 1)) <= 1e-10
    assert abs(nu @ rloo) <= 1e-10  # RLOO advantages sum to zero in every group
