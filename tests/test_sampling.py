"""Vectorized trace sampling: frequencies match the exact DP marginal; the score-function gradient is
unbiased for the exact DP gradient (T9)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dagsim.generators import layered_lattice, random_dag
from dagsim.grpo.sampling import sample_answers, sample_traces, score_gradient, trace_log_prob
from dagsim.marginals import answer_marginal, edge_policy, enumerate_traces, logit_gradient
from tests.strategies import dag_and_logits

#: Monte Carlo comparisons allow 5 standard errors (false alarm ~ 6e-7 per coordinate).
N_SE = 5.0


@settings(max_examples=15)
@given(dag_and_logits(), st.integers(0, 2**31 - 1))
def test_sampled_frequencies_match_dp(case, seed):
    dag, theta = case
    pi = edge_policy(dag, theta)
    n = 20_000
    answers = sample_answers(dag, pi, n, np.random.default_rng(seed))
    freq = np.bincount(answers, minlength=dag.n_answers) / n
    nu = answer_marginal(dag, theta)
    se = np.sqrt(np.clip(nu * (1 - nu), 0.0, None) / n) + 1e-12  # ν may exceed 1 by an ulp
    assert np.all(np.abs(freq - nu) <= N_SE * se + 1e-9)


def test_recorded_edges_are_valid_paths_with_correct_log_prob():
    dag = random_dag(np.random.default_rng(0), 9, 3)
    theta = np.random.default_rng(1).normal(size=dag.n_edges)
    pi = edge_policy(dag, theta)
    batch = sample_traces(dag, pi, 500, np.random.default_rng(2))
    probs = {t.edges: t.probability for t in enumerate_traces(dag, theta)}
    logp = trace_log_prob(batch, np.log(pi))
    for i in range(batch.n):
        edges = tuple(int(e) for e in batch.edges[i, : batch.lengths[i]])
        assert edges in probs
        assert abs(np.exp(logp[i]) - probs[edges]) <= 1e-12
        assert dag.leaf_answer[dag.edge_dst[edges[-1]]] == batch.answers[i]


def test_score_gradient_is_unbiased_for_exact_gradient():
    dag = random_dag(np.random.default_rng(3), 8, 4)
    theta = np.random.default_rng(4).normal(size=dag.n_edges)
    pi = edge_policy(dag, theta)
    g = np.array([1.0, -0.5, 0.3, 2.0])
    rng = np.random.default_rng(5)
    n, reps = 4000, 30
    ests = np.stack([score_gradient(dag, b, pi, g[b.answers]) / n
                     for b in (sample_traces(dag, pi, n, rng) for _ in range(reps))])
    mean, se = ests.mean(axis=0), ests.std(axis=0, ddof=1) / np.sqrt(reps) + 1e-12
    exact = logit_gradient(dag, theta, g)
    assert np.all(np.abs(mean - exact) <= N_SE * se)
    # Control: dropping the −π(·|u) term of ∇log π biases the estimate.
    batches = (sample_traces(dag, pi, n, rng) for _ in range(5))
    wrong = np.stack([np.bincount(b.edges[b.edges >= 0], weights=np.repeat(g[b.answers], b.lengths),
                                  minlength=dag.n_edges) / n for b in batches])
    assert np.abs(wrong.mean(axis=0) - exact).max() > 0.05


def test_lattice_all_traces_same_length():
    dag = layered_lattice(4, 6, 3, rng=np.random.default_rng(0))
    b = sample_traces(dag, dag.edge_prob, 100, np.random.default_rng(1))
    assert np.all(b.lengths == 7) and b.edges.shape == (100, 7)
