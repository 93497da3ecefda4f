"""Restricted (log-linear) policy classes (P4): the best response becomes a projection with a value gap ≥ 0
to the tabular optimum, exactly 0 when the features span every edge logit."""

import numpy as np

from dagsim.generators import random_dag
from dagsim.marginals import answer_marginal
from dagsim.objectives import make_objective
from dagsim.solvers import solve_answer_level
from dagsim.solvers.trace import reach_features, restricted_best_response, restricted_gap

#: L-BFGS on smooth O(1) objectives: values agree to ~1e-9.
ATOL_VALUE = 1e-7


def _problem(seed=0):
    dag = random_dag(np.random.default_rng(seed), 10, 4)
    obj = make_objective("entropy", n_answers=4, reward=np.array([1.0, 0.0, -0.5, 0.2]), tau=0.5)
    return dag, obj


def test_identity_features_recover_the_tabular_optimum():
    dag, obj = _problem()
    gap = restricted_gap(dag, obj.value, obj.reward, 1.0, np.eye(dag.n_edges))
    exact = solve_answer_level(obj, answer_marginal(dag), 1.0)
    assert abs(gap.gap) <= ATOL_VALUE
    assert abs(gap.tabular_value - exact.value) <= ATOL_VALUE


def test_shared_features_leave_a_nonnegative_gap():
    for seed in range(3):
        dag, obj = _problem(seed)
        gap = restricted_gap(dag, obj.value, obj.reward, 1.0, reach_features(dag, 2))
        assert gap.gap >= -ATOL_VALUE
        assert gap.n_features == 2
    # With fewer parameters than the answers need, the projection is strictly worse on these instances.
    assert gap.gap > 1e-4


def test_restricted_best_response_is_the_projection_of_the_gibbs_tilt():
    """Against a linear reward, the restricted best response cannot beat the Gibbs value β log E0[e^{g/β}]."""
    dag, _ = _problem(4)
    g = np.array([1.0, -1.0, 0.5, 0.0])
    res = restricted_best_response(dag, g, 0.7, reach_features(dag, 3))
    gibbs_value = 0.7 * np.log(np.sum(answer_marginal(dag) * np.exp(g / 0.7)))
    assert res.value <= gibbs_value + ATOL_VALUE
