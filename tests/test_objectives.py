"""Objectives (THEORY §4): registry, parameter checks, rewards = gradients, closed forms, T1/T2 fixed points,
concavity regimes, consensus targets (T3) and the Pythagorean identity (T4).

Every property is checked against an independent oracle (central finite differences, scipy.optimize,
an analytic Hessian witness) and, for the theorem checks, a deliberately wrong variant must fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import rel_entr, softmax

from dagsim.errors import DomainError
from dagsim.objectives import OBJECTIVES, MultiViewObjective, Objective, make_objective

#: Smallest raw weight of a drawn distribution before normalization (keeps logs and 1/ν finite).
FLOOR = 0.02
#: Central-difference step: error O(h²·|Φ'''|) ≈ 1e-12·(1/ν²) plus rounding O(eps/h) ≈ 1e-10.
FD_STEP = 1e-6
#: Agreement of a gradient with central differences (covers both error terms above with margin).
FD_RTOL = 1e-6
#: Tolerance of identities that are exact up to float64 rounding of O(1)–O(100) sums of logs.
EXACT_ATOL = 1e-10
#: Tolerance of scipy.optimize.minimize (BFGS, gtol 1e-10) for the T3 oracle: the minimizer is found to
#: ~sqrt of its function tolerance, measured ~1e-7 here.
MINIMIZE_ATOL = 1e-5

SINGLE = ["reward", "entropy", "gini", "tsallis", "sharpen", "collision", "majority"]
USES_TAU = ["entropy", "gini", "tsallis", "sharpen", "collision", "majority"]
CONSENSUS = ["arithmetic", "geometric", "majority"]
SETTINGS = settings(max_examples=30, deadline=None)


# ---------------------------------------------------------------------- strategies (valid by construction)
@st.composite
def distributions(draw, k: int, floor: float = FLOOR) -> np.ndarray:
    raw = np.array(draw(st.lists(st.floats(floor, 1.0), min_size=k, max_size=k)))
    return raw / raw.sum()


@st.composite
def single_instances(draw, names=SINGLE, max_k: int = 6):
    name = draw(st.sampled_from(names))
    k = draw(st.integers(1, max_k))
    r = np.array(draw(st.lists(st.floats(-2.0, 2.0), min_size=k, max_size=k)))
    kwargs = {"reward": r}
    if name in USES_TAU:
        kwargs["tau"] = draw(st.floats(0.0, 3.0))
    if name == "tsallis":
        kwargs["order"] = draw(st.sampled_from([0.3, 0.5, 1.5, 2.0, 3.0]))
    return make_objective(name, n_answers=k, **kwargs), draw(distributions(k))


@st.composite
def multi_instances(draw, families=("arithmetic", "geometric", "majority", "pairwise"), max_k: int = 5):
    family = draw(st.sampled_from(families))
    k = draw(st.integers(2, max_k))
    m = draw(st.integers(2, 3))
    raw_w = np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=m, max_size=m)))
    r = np.array(draw(st.lists(st.floats(-2.0, 2.0), min_size=k, max_size=k)))
    tau = draw(st.floats(0.05, 3.0))
    nus = np.stack([draw(distributions(k)) for _ in range(m)])
    if family == "pairwise":
        perm = np.array(draw(st.permutations(range(k))))
        obj = make_objective(
            "pairwise",
            n_answers=k,
            tau=tau,
            weights=raw_w / raw_w.sum(),
            reward=r,
            pairs=[(0, 1), (m - 1, 0)],
            answer_maps=[perm, None],
        )
    else:
        obj = make_objective("consensus", n_answers=k, tau=tau, weights=raw_w / raw_w.sum(), reward=r, consensus=family)
    return obj, nus


def central_gradient(f, x: np.ndarray) -> np.ndarray:
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = FD_STEP
        grad.flat[i] = (f(x + e) - f(x - e)) / (2 * FD_STEP)
    return grad


# ---------------------------------------------------------------------- registry and parameters
def test_registry_holds_every_family_and_types():
    assert set(OBJECTIVES) == set(SINGLE) | {"consensus", "pairwise"}
    for name in SINGLE:
        kwargs = {"order": 2.0} if name == "tsallis" else {}
        assert isinstance(make_objective(name, n_answers=3, **kwargs), Objective)
    assert isinstance(make_objective("consensus", n_answers=3, n_views=2), MultiViewObjective)
    assert isinstance(make_objective("pairwise", n_answers=3, n_views=2), MultiViewObjective)


def test_unused_parameters_are_accepted_only_when_none():
    make_objective("entropy", n_answers=3, reward=None, tau=1.0, order=None)  # None: accepted
    make_objective("reward", n_answers=3, tau=None, order=None, consensus=None)
    with pytest.raises(DomainError, match="'order'"):
        make_objective("entropy", n_answers=3, tau=1.0, order=2.0)
    with pytest.raises(DomainError, match="'tau'"):
        make_objective("reward", n_answers=3, tau=1.0)
    with pytest.raises(DomainError, match="'consensus'"):
        make_objective("gini", n_answers=3, consensus="arithmetic")


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"name": "entropy", "tau": -1.0}, "tau"),
        ({"name": "entropy", "tau": float("nan")}, "tau"),
        ({"name": "entropy", "tau": float("inf")}, "tau"),
        ({"name": "tsallis", "tau": 1.0, "order": 1.0}, "order"),
        ({"name": "tsallis", "tau": 1.0, "order": 0.0}, "order"),
        ({"name": "tsallis", "tau": 1.0, "order": -2.0}, "order"),
        ({"name": "tsallis", "tau": 1.0}, "order"),
        ({"name": "gini", "reward": np.ones(4)}, "reward"),
        ({"name": "gini", "reward": np.array([0.0, np.inf, 1.0])}, "reward"),
        ({"name": "consensus", "weights": np.array([0.5, 0.6])}, "weights"),
        ({"name": "consensus", "n_views": 2, "consensus": "median"}, "consensus"),
        ({"name": "consensus"}, "weights"),
        ({"name": "pairwise", "n_views": 2, "pairs": [(0, 0)]}, "pairs"),
        ({"name": "pairwise", "n_views": 2, "answer_maps": [np.array([0, 1, 7])]}, "answer_maps"),
        ({"name": "no-such-objective"}, "unknown objective"),
    ],
)
def test_bad_parameters_raise_domain_error_naming_them(kwargs, param):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(DomainError, match=param):
        make_objective(name, n_answers=3, **kwargs)


def test_n_answers_must_be_positive_integer():
    with pytest.raises(DomainError, match="n_answers"):
        make_objective("entropy", n_answers=0)


# ---------------------------------------------------------------------- rewards are gradients
@SETTINGS
@given(single_instances(), st.data())
@example((make_objective("entropy", n_answers=1, tau=1.0), np.array([1.0])), None)
def test_reward_is_the_gradient_of_value(instance, data):
    """g = ∇Φ (exact gradient on the orthant) against central differences of value()."""
    obj, nu = instance
    if obj.name == "majority" and nu.size > 1:  # nonsmooth: test where the mode is unique by a margin
        top2 = np.sort(nu)[-2:]
        if top2[1] - top2[0] < 10 * FD_STEP:
            nu = nu.copy()
            nu[np.argmax(nu)] += 0.1
    fd = central_gradient(obj.value, nu)
    g = obj.reward(nu)
    np.testing.assert_allclose(g, fd, rtol=FD_RTOL, atol=FD_RTOL * (1 + np.abs(fd).max()))


@SETTINGS
@given(multi_instances())
def test_multiview_rewards_are_gradients_divided_by_weights(instance):
    """rewards(ν)[j] = (∂Φ/∂ν_j)/w_j (E5) against central differences of value()."""
    obj, nus = instance
    if obj.name == "consensus" and obj.consensus == "majority":
        nus = nus.copy()
        nus[:, 0] += 0.5  # answer 0 is the unique mode of q̄ by a margin (Φ is nonsmooth at ties)
    fd = central_gradient(obj.value, nus) / obj.weights[:, None]
    np.testing.assert_allclose(obj.rewards(nus), fd, rtol=FD_RTOL, atol=FD_RTOL * (1 + np.abs(fd).max()))


@SETTINGS
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(distributions(k), distributions(k))), st.floats(0.1, 3.0))
def test_rewards_match_the_table_up_to_constants(pair, tau):
    """THEORY §4 table: entropy r − τ log q, sharpen r + τ log q (constants dropped), gini r − 2τq,
    collision r + 2τq, tsallis r − τα q^{α−1}/(α−1), majority r + τ·1[mode]."""
    q, r = pair
    k = q.size

    def const(v):
        return float(np.ptp(v))  # 0 iff v is a constant vector

    obj = {n: make_objective(n, n_answers=k, reward=r, tau=tau) for n in USES_TAU if n != "tsallis"}
    assert const(obj["entropy"].reward(q) - (r - tau * np.log(q))) < EXACT_ATOL
    assert const(obj["sharpen"].reward(q) - (r + tau * np.log(q))) < EXACT_ATOL
    np.testing.assert_allclose(obj["gini"].reward(q), r - 2 * tau * q, atol=EXACT_ATOL)
    np.testing.assert_allclose(obj["collision"].reward(q), r + 2 * tau * q, atol=EXACT_ATOL)
    ts = make_objective("tsallis", n_answers=k, reward=r, tau=tau, order=0.5)
    np.testing.assert_allclose(ts.reward(q), r - tau * 0.5 * q**-0.5 / (0.5 - 1), atol=EXACT_ATOL)
    expected = r.copy()
    expected[int(np.argmax(q))] += tau
    np.testing.assert_allclose(obj["majority"].reward(q), expected)


def test_tsallis_of_order_two_is_gini():
    rng = np.random.default_rng(0)
    r, q = rng.normal(size=5), rng.dirichlet(np.ones(5))
    gini = make_objective("gini", n_answers=5, reward=r, tau=0.7)
    ts2 = make_objective("tsallis", n_answers=5, reward=r, tau=0.7, order=2.0)
    assert abs(gini.value(q) - ts2.value(q)) < EXACT_ATOL
    np.testing.assert_allclose(gini.reward(q), ts2.reward(q), atol=EXACT_ATOL)


# ---------------------------------------------------------------------- closed forms: fixed points (T1, T2)
def fixed_point_residual(obj, nu, nu0, beta) -> float:
    """max |log ν − log(ν0 e^{∇Φ(ν)/β}/Z)|: zero iff ν ∝ ν0 exp(∇Φ(ν)/β) (the KKT conditions of E2)."""
    logits = np.log(nu0) + obj.reward(nu) / beta
    target = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    return float(np.max(np.abs(np.log(nu) - target)))


@SETTINGS
@given(single_instances(names=["reward", "entropy", "majority"]), st.floats(0.05, 20.0))
@example((make_objective("entropy", n_answers=1, tau=2.0), np.array([1.0])), 0.05)
@example(
    (
        make_objective("entropy", n_answers=3, reward=np.array([1.0, -1.0, 0.0]), tau=0.5),
        np.array([0.2, 0.3, 0.5]),
    ),
    1e-2,
)
def test_closed_form_is_the_gibbs_fixed_point(instance, beta):
    """T1: the closed form satisfies ν = ν0 e^{∇Φ(ν)/β}/Z (majority: with its subgradient)."""
    obj, nu0 = instance
    nu = obj.closed_form(nu0, beta)
    assert np.all(np.isfinite(nu)) and abs(nu.sum() - 1) < EXACT_ATOL
    assert fixed_point_residual(obj, nu, nu0, beta) < EXACT_ATOL * max(1.0, 1.0 / beta)


@SETTINGS
@given(
    st.integers(2, 6).flatmap(lambda k: st.tuples(distributions(k), distributions(k))),
    st.floats(0.1, 10.0),
    st.floats(0.0, 0.95),
)
def test_sharpen_closed_form_is_the_cooperative_fixed_point(pair, beta, ratio):
    """T2, β > τ: ν ∝ (ν0^β e^r)^{1/(β−τ)} is the full-support fixed point ν ∝ ν0 e^{∇Φ(ν)/β}."""
    nu0, r = pair
    obj = make_objective("sharpen", n_answers=nu0.size, reward=r, tau=ratio * beta)
    assert fixed_point_residual(obj, obj.closed_form(nu0, beta), nu0, beta) < EXACT_ATOL * max(1.0, 1 / beta)


def test_wrong_closed_form_is_not_a_fixed_point():
    """Deliberately wrong variant (β ↦ 2β in the entropy closed form) must fail the fixed-point check."""
    nu0 = np.array([0.1, 0.2, 0.3, 0.4])
    obj = make_objective("entropy", n_answers=4, reward=np.array([1.0, -0.5, 0.3, 0.0]), tau=0.7)
    beta = 0.8
    assert fixed_point_residual(obj, obj.closed_form(nu0, beta), nu0, beta) < EXACT_ATOL
    wrong = obj.closed_form(nu0, 2 * beta)
    assert fixed_point_residual(obj, wrong, nu0, beta) > 1e-2


def test_closed_forms_keep_zero_reference_answers_at_zero():
    nu0 = np.array([0.0, 0.5, 0.0, 0.5])
    r = np.array([50.0, 0.0, 50.0, 1.0])
    for name in ["reward", "entropy", "majority"]:
        nu = make_objective(name, n_answers=4, reward=r).closed_form(nu0, 0.1)
        assert nu[0] == 0 and nu[2] == 0 and abs(nu.sum() - 1) < EXACT_ATOL


def test_sharpen_vertex_regime_is_the_table_vertex():
    nu0 = np.array([0.5, 0.3, 0.2])
    r = np.array([0.0, 0.4, 0.1])
    obj = make_objective("sharpen", n_answers=3, reward=r, tau=2.0)
    for beta in (0.5, 2.0):  # β < τ (convex) and β = τ (linear): vertex argmax β log ν0 + r
        expected = np.zeros(3)
        expected[int(np.argmax(beta * np.log(nu0) + r))] = 1.0
        np.testing.assert_array_equal(obj.closed_form(nu0, beta), expected)


# ---------------------------------------------------------------------- concavity regimes
def tangent_hessian_max_eig(diag: np.ndarray) -> float:
    """Largest eigenvalue of diag(d) restricted to {Σ x = 0}."""
    k = diag.size
    basis = np.linalg.qr(np.vstack([np.ones(k), np.eye(k)[:-1]]).T)[0][:, 1:]  # orthonormal, ⊥ 1
    return float(np.linalg.eigvalsh(basis.T @ np.diag(diag) @ basis).max())


@SETTINGS
@given(st.integers(2, 6).flatmap(distributions), st.floats(0.1, 5.0), st.floats(0.0, 1.0))
def test_collision_is_concave_on_the_simplex_iff_tau_le_beta(nu, beta, ratio):
    """Hessian of τΣν² − βKL is diag(2τ − β/ν); on the tangent space it is NSD everywhere iff τ ≤ β,
    although each answer's Lagrangian is concave on [0, 1] only for 2τ ≤ β."""
    tau = ratio * beta
    obj = make_objective("collision", n_answers=nu.size, tau=tau)
    assert obj.is_concave_regime(beta)
    assert tangent_hessian_max_eig(2 * tau - beta / nu) <= EXACT_ATOL


def test_collision_above_tau_equal_beta_has_a_convex_direction():
    beta, tau = 1.0, 1.01
    obj = make_objective("collision", n_answers=3, tau=tau)
    assert not obj.is_concave_regime(beta)
    witness = np.array([0.5 - 1e-4, 0.5 - 1e-4, 2e-4])  # near (½, ½, 0), direction e1 − e2
    assert tangent_hessian_max_eig(2 * tau - beta / witness) > 0
    assert make_objective("collision", n_answers=3, tau=0.8).is_concave_regime(1.0)  # 2τ > β yet concave
    assert not make_objective("collision", n_answers=3, tau=0.8).dual_is_exact(1.0)


def test_concave_regimes_of_the_other_families():
    assert make_objective("sharpen", n_answers=3, tau=1.0).is_concave_regime(1.0)
    assert not make_objective("sharpen", n_answers=3, tau=1.0).is_concave_regime(0.99)
    assert not make_objective("majority", n_answers=3, tau=0.1).is_concave_regime(10.0)
    assert make_objective("majority", n_answers=3, tau=0.0).is_concave_regime(1.0)
    for name in ["entropy", "gini"]:
        assert make_objective(name, n_answers=3, tau=5.0).is_concave_regime(0.01)
    assert make_objective("tsallis", n_answers=3, tau=5.0, order=0.5).is_concave_regime(0.01)
    assert [make_objective(n, n_answers=2, tau=1.0).curvature for n in ["entropy", "sharpen"]] == [
        "concave",
        "convex",
    ]
    assert make_objective("reward", n_answers=2).curvature == "linear"


def test_beta_outside_domain_raises():
    obj = make_objective("entropy", n_answers=2)
    for beta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(DomainError, match="beta"):
            obj.closed_form(np.array([0.5, 0.5]), beta)


def test_single_view_closed_form_rejects_a_stack_of_views():
    with pytest.raises(DomainError):
        make_objective("entropy", n_answers=2).closed_form(np.full((2, 2), 0.5), 1.0)
    with pytest.raises(DomainError):
        make_objective("consensus", n_answers=2, n_views=2, tau=np.inf).closed_form(np.array([0.5, 0.5]), 1.0)


# ---------------------------------------------------------------------- consensus targets (T3) and T4
def minimize_over_simplex(f, k: int) -> np.ndarray:
    res = minimize(lambda th: f(softmax(th)), np.zeros(k), method="BFGS", options={"gtol": 1e-10})
    return softmax(res.x)


@settings(max_examples=15, deadline=None)
@given(multi_instances(families=("arithmetic",)))
def test_arithmetic_target_minimizes_forward_kl(instance):
    """T3: argmin_q Σ_j w_j KL(ν_j‖q) = Σ_j w_j ν_j, and D is that minimum."""
    obj, nus = instance
    w = obj.weights
    q = minimize_over_simplex(lambda q: float(np.sum(w[:, None] * rel_entr(nus, q))), nus.shape[1])
    np.testing.assert_allclose(obj.target(nus), q, atol=MINIMIZE_ATOL)
    assert abs(obj.discrepancy(nus) - float(np.sum(w[:, None] * rel_entr(nus, q)))) < MINIMIZE_ATOL


@settings(max_examples=15, deadline=None)
@given(multi_instances(families=("geometric",)))
def test_geometric_target_minimizes_reverse_kl(instance):
    """T3: argmin_q Σ_j w_j KL(q‖ν_j) ∝ Π_j ν_j^{w_j}; D = −log Σ_z Π_j ν_j(z)^{w_j}."""
    obj, nus = instance
    w = obj.weights
    q = minimize_over_simplex(lambda q: float(np.sum(w[:, None] * rel_entr(q[None, :], nus))), nus.shape[1])
    np.testing.assert_allclose(obj.target(nus), q, atol=MINIMIZE_ATOL)


def test_wrong_consensus_is_not_the_minimizer():
    """Wrong variants: the arithmetic mean does not minimize the reverse KL, nor the geometric mean the
    forward KL (the oracle separates them by far more than its tolerance)."""
    nus = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    w = np.array([0.5, 0.5])
    reverse = minimize_over_simplex(lambda q: float(np.sum(w[:, None] * rel_entr(q[None, :], nus))), 3)
    forward = minimize_over_simplex(lambda q: float(np.sum(w[:, None] * rel_entr(nus, q))), 3)
    assert np.abs(w @ nus - reverse).max() > 100 * MINIMIZE_ATOL
    geo = make_objective("consensus", n_answers=3, weights=w, consensus="geometric").target(nus)
    assert np.abs(geo - forward).max() > 100 * MINIMIZE_ATOL


def test_majority_target_is_the_limit_of_tempered_consensus():
    """T3: q ∝ q̄^α tends to the point mass on the mode of q̄ as α → ∞."""
    nus = np.array([[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
    obj = make_objective("consensus", n_answers=3, n_views=2, consensus="majority")
    qbar = obj.weights @ nus
    gaps = [np.abs(softmax(alpha * np.log(qbar)) - obj.target(nus)).max() for alpha in (1, 10, 100, 1000)]
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)) and gaps[-1] < 1e-10
    np.testing.assert_array_equal(obj.target(nus), [0.0, 1.0, 0.0])


@SETTINGS
@given(multi_instances(families=("geometric",)), st.data())
def test_pythagorean_identity_for_the_geometric_consensus(instance, data):
    """T4: Σ_j w_j KL(u‖ν_j) = KL(u‖q) + Σ_j w_j KL(q‖ν_j) for every u, gap −log Σ Π ν^w ≥ 0;
    the arithmetic mean in place of q breaks the identity (wrong variant)."""
    obj, nus = instance
    k = nus.shape[1]
    w = obj.weights
    raw = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.3, 1.0]), min_size=k, max_size=k)))
    raw[data.draw(st.integers(0, k - 1))] = 1.0  # any u, point masses and zeros included
    u = raw / raw.sum()
    q = obj.target(nus)
    lhs = float(np.sum(w * np.array([rel_entr(u, n).sum() for n in nus])))
    rhs = float(rel_entr(u, q).sum() + np.sum(w * np.array([rel_entr(q, n).sum() for n in nus])))
    assert abs(lhs - rhs) < EXACT_ATOL
    gap = lhs - float(rel_entr(u, q).sum())
    assert abs(gap - obj.discrepancy(nus)) < EXACT_ATOL and gap >= -EXACT_ATOL


def test_pythagorean_identity_fails_for_the_arithmetic_mean():
    nus = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    w = np.array([0.5, 0.5])
    u = np.array([1.0, 0.0, 0.0])
    q = w @ nus
    lhs = float(np.sum(w * np.array([rel_entr(u, n).sum() for n in nus])))
    rhs = float(rel_entr(u, q).sum() + np.sum(w * np.array([rel_entr(q, n).sum() for n in nus])))
    assert abs(lhs - rhs) > 1e-2


@SETTINGS
@given(multi_instances(families=("arithmetic",)))
def test_jensen_bound_for_the_arithmetic_consensus(instance):
    """T4 (arithmetic): −log q̄(z) ≤ Σ_j w_j(−log ν_j(z)) for every answer z."""
    obj, nus = instance
    assert np.all(-np.log(obj.target(nus)) <= obj.weights @ (-np.log(nus)) + EXACT_ATOL)


# ---------------------------------------------------------------------- hard coherence and pairwise maps
def test_hard_coherence_closed_form_and_value():
    nu0 = np.array([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]])
    r = np.array([0.0, 1.0, 0.5])
    obj = make_objective("consensus", n_answers=3, reward=r, tau=np.inf, weights=[0.25, 0.75])
    beta = 0.7
    nus = obj.closed_form(nu0, beta)
    expected = softmax(0.25 * np.log(nu0[0]) + 0.75 * np.log(nu0[1]) + r / beta)
    np.testing.assert_allclose(nus, np.tile(expected, (2, 1)), atol=EXACT_ATOL)
    assert obj.value(nus) == pytest.approx(float(r @ expected))
    assert obj.value(nu0) == -np.inf
    with pytest.raises(DomainError, match="hard coherence"):
        obj.rewards(nus)


def test_index_answer_map_equals_its_matrix():
    rng = np.random.default_rng(3)
    nus = rng.dirichlet(np.ones(4), size=2)
    perm = np.array([2, 0, 3, 1])
    mat = np.zeros((4, 4))
    mat[np.arange(4), perm] = 1.0
    by_index = make_objective("pairwise", n_answers=4, n_views=2, answer_maps=[perm])
    by_matrix = make_objective("pairwise", n_answers=4, n_views=2, answer_maps={(0, 1): mat})
    assert by_index.value(nus) == pytest.approx(by_matrix.value(nus), abs=EXACT_ATOL)
    np.testing.assert_allclose(by_index.residuals(nus)[0], nus[0] - nus[1][perm], atol=EXACT_ATOL)
    flat = nus.ravel()
    assert flat @ (by_index.coupling_matrix() @ flat) == pytest.approx(
        float(np.sum((nus[0] - nus[1][perm]) ** 2)), abs=EXACT_ATOL
    )
