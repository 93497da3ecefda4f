"""P1 (forward DP = brute force), P2 (KL chain rule), T9 (logit gradient = finite differences), trace counts."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dagsim import marginals as M
from dagsim.errors import DomainError, ValidationError
from dagsim.generators import ArithmeticProblem, arithmetic_dag, layered_lattice, random_dag
from dagsim.tolerances import FLOAT64_SUMS
from tests.strategies import dag_and_logits, reasoning_dags

#: Central differences with h = 1e-5 on functions with O(1) third derivatives: error ~ h² ≈ 1e-10.
FD_STEP = 1e-5
ATOL_FD = 1e-7


@given(dag_and_logits())
def test_p1_forward_dp_equals_enumeration(case):
    dag, theta = case
    assert np.abs(M.answer_marginal(dag, theta) - M.brute_force_marginal(dag, theta)).max() <= FLOAT64_SUMS
    assert np.abs(M.answer_marginal(dag) - M.brute_force_marginal(dag)).max() <= FLOAT64_SUMS


@given(reasoning_dags())
def test_trace_count_equals_enumeration(dag):
    traces = list(M.enumerate_traces(dag))
    assert M.count_traces(dag) == len(traces)
    per_answer = M.count_traces_per_answer(dag)
    assert per_answer == [sum(t.answer == k for t in traces) for k in range(dag.n_answers)]
    assert math.isclose(sum(t.probability for t in traces), 1.0, abs_tol=FLOAT64_SUMS)


def test_wrong_dp_variant_fails():
    """Control: a DP that forgets to weight by π (counts paths) must disagree with enumeration."""
    dag = random_dag(np.random.default_rng(3), 6, 3)
    counts = np.array(M.count_traces_per_answer(dag), dtype=float)
    assert np.abs(counts / counts.sum() - M.brute_force_marginal(dag)).max() > 1e-3


def _kl(p, q):
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


@given(dag_and_logits())
def test_p2_kl_chain_rule(case):
    dag, theta = case
    traces = list(M.enumerate_traces(dag, theta))
    ref = list(M.enumerate_traces(dag))
    p = np.array([t.probability for t in traces])
    q = np.array([t.probability for t in ref])
    brute = _kl(p, q)
    assert abs(M.trace_kl(dag, theta) - brute) <= 1e-10
    nu, nu0 = M.answer_marginal(dag, theta), M.answer_marginal(dag)
    cond = sum(nu[z] * M.conditional_kl(dag, theta, z) for z in range(dag.n_answers) if nu[z] > 0)
    assert abs(_kl(nu, nu0) + cond - brute) <= 1e-10
    # Control: dropping the conditional term (KL(π‖π0) = KL(ν‖ν0)) is wrong whenever traces disagree.
    if cond > 1e-6:
        assert abs(_kl(nu, nu0) - brute) > 1e-8


@given(dag_and_logits(), st.integers(0, 3))
def test_conditional_policy_is_trace_law_given_answer(case, z_raw):
    dag, theta = case
    z = z_raw % dag.n_answers
    nu = M.answer_marginal(dag, theta)
    cond = M.conditional_policy(dag, theta, z)
    for t in M.enumerate_traces(dag, theta):
        p_cond = float(np.prod(cond[list(t.edges)]))
        expected = t.probability / nu[z] if t.answer == z else 0.0
        assert abs(p_cond - expected) <= 1e-10


@given(dag_and_logits(), st.lists(st.floats(-2, 2), min_size=4, max_size=4))
def test_t9_logit_gradient_matches_finite_differences(case, weights):
    dag, theta = case
    g = np.array(weights[: dag.n_answers] + [0.0] * max(0, dag.n_answers - 4))[: dag.n_answers]
    grad = M.logit_gradient(dag, theta, g)

    def f(t):
        return float(g @ M.answer_marginal(dag, t))

    fd = np.array([(f(theta + FD_STEP * e) - f(theta - FD_STEP * e)) / (2 * FD_STEP)
                   for e in np.eye(dag.n_edges)])
    assert np.abs(grad - fd).max() <= ATOL_FD


@given(dag_and_logits())
def test_nonlinear_objective_gradient_and_kl_gradient(case):
    """Gradient of Φ(ν) = −Σν log ν (entropy) and of the trace KL, both against central differences."""
    dag, theta = case

    def phi(nu):
        return float(-np.sum(nu * np.log(np.maximum(nu, 1e-300))))

    grad, _ = M.objective_gradient(dag, theta, lambda nu: -np.log(np.maximum(nu, 1e-300)) - 1.0)
    fd = np.array([(phi(M.answer_marginal(dag, theta + FD_STEP * e)) - phi(M.answer_marginal(dag, theta - FD_STEP * e)))
                   / (2 * FD_STEP) for e in np.eye(dag.n_edges)])
    assert np.abs(grad - fd).max() <= 1e-6
    kl_grad = M.trace_kl_gradient(dag, theta)
    fd_kl = np.array([(M.trace_kl(dag, theta + FD_STEP * e) - M.trace_kl(dag, theta - FD_STEP * e)) / (2 * FD_STEP)
                      for e in np.eye(dag.n_edges)])
    assert np.abs(kl_grad - fd_kl).max() <= ATOL_FD


@given(reasoning_dags(), st.lists(st.floats(-3, 3), min_size=4, max_size=4), st.floats(0.1, 5.0))
@example(dag=layered_lattice(2, 2, 1), weights=[0.0] * 4, beta=1.0)  # a single answer
def test_p4_soft_backward_dp_is_gibbs_over_traces(dag, weights, beta):
    g = np.array((weights * 2)[: dag.n_answers])
    probs, log_v = M.soft_backward(dag, g / beta)
    traces = list(M.enumerate_traces(dag))
    tilt = np.array([t.probability * np.exp(g[t.answer] / beta) for t in traces])
    tilt /= tilt.sum()
    ours = np.array([float(np.prod(probs[list(t.edges)])) for t in traces])
    assert np.abs(ours - tilt).max() <= 1e-12
    nu0 = M.answer_marginal(dag)
    assert abs(log_v[0] - np.log(np.sum(nu0 * np.exp(g / beta)))) <= 1e-12


def test_big_trace_count_is_exact():
    dag = layered_lattice(32, 1000, 8)
    n = M.count_traces(dag)
    assert n == 32 ** 1000 * 8
    assert len(str(n)) > 1500


def test_enumeration_refuses_big_dags():
    dag = layered_lattice(4, 12, 2)
    with pytest.raises(DomainError, match="refusing to enumerate"):
        next(M.enumerate_traces(dag, limit=1000))


def test_arithmetic_dag_many_traces_one_correct_near_misses():
    prob = ArithmeticProblem((4, 6, 9), (7, 8, 3))
    dag = arithmetic_dag(prob, eps=0.1)
    nu = M.answer_marginal(dag)
    assert M.count_traces(dag) == math.factorial(3) * 3 ** 3
    correct = dag.answer_index(str(prob.correct))
    assert nu.argmax() == correct
    # (1 − ε)^3: the correct answer needs no slip (±1 slips could cancel, adding the pair terms).
    no_slip = 0.9 ** 3
    cancel = 3 * 2 * (0.05 * 0.05) * 0.9  # one +1 and one −1 slip among 3 steps
    assert abs(nu[correct] - (no_slip + cancel)) <= FLOAT64_SUMS
    assert set(int(a) for a in dag.answers) == set(range(prob.correct - 3, prob.correct + 4))
    assert dag.reward[correct] == 1.0 and dag.reward.sum() == 1.0


def test_reference_logits_roundtrip_and_occupancy():
    dag = random_dag(np.random.default_rng(1), 8, 3)
    assert np.allclose(M.edge_policy(dag, dag.reference_logits), dag.edge_prob, atol=FLOAT64_SUMS)
    mu = M.node_occupancy(dag)
    visits = np.zeros(dag.n_nodes)
    for t in M.enumerate_traces(dag):
        visits[list(t.nodes)] += t.probability
    assert np.abs(mu - visits).max() <= FLOAT64_SUMS


def test_edge_policy_rejects_bad_logits():
    dag = layered_lattice(2, 1, 2)
    with pytest.raises(ValidationError, match=r"^logits contain NaN or \+inf$"):
        M.edge_policy(dag, np.full(dag.n_edges, np.nan))
    with pytest.raises(ValidationError, match=r"^logits contain NaN or \+inf$"):
        M.edge_policy(dag, np.full(dag.n_edges, np.inf))
    bad_shape = rf"^logits have shape \({dag.n_edges + 1},\), expected \({dag.n_edges},\)$"
    with pytest.raises(ValidationError, match=bad_shape):
        M.edge_policy(dag, np.zeros(dag.n_edges + 1))


def test_vectorized_equals_loop_reference():
    """The level-vectorized forward DP against a plain per-edge loop in topological order."""
    dag = random_dag(np.random.default_rng(7), 30, 5, edge_prob=0.2)
    mu = np.zeros(dag.n_nodes)
    mu[0] = 1.0
    for e in itertools.chain.from_iterable(
            range(dag.node_ptr[u], dag.node_ptr[u + 1]) for u in range(dag.n_nodes)):
        mu[dag.edge_dst[e]] += mu[dag.edge_src[e]] * dag.edge_prob[e]
    assert np.abs(mu - M.node_occupancy(dag)).max() <= FLOAT64_SUMS
