"""ttrl and empo as published (issue #16) and the no-answer rule of our own objectives (issue #13).

Provenance of the pinned values: hand-worked from the peers' public code, re-implemented below as plain
string-level loops (``_ttrl_reference``: TTRL's ``_majority_vote`` — unparseable answers removed, then
``Counter.most_common(1)``, which returns the first-inserted of the tied counts — and its 0/1 math reward;
``_empo_verl_reference``: EMPO verl's ``post_semantic_cluster`` frequencies with an empty prediction its
own cluster; ``_empo_trl_reference``: EMPO TRL's semantic-entropy reward, 0 for an empty prediction and
for every sample when the cluster entropy reaches log G).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from dagsim.errors import ValidationError
from dagsim.grpo.advantages import advantages
from dagsim.grpo.effective import effective_reward, effective_reward_multiview
from dagsim.grpo.rewards import consensus_group_rewards, count_reward_table, group_rewards

#: Rewards are sums of a few rationals: exact up to rounding.
ATOL = 1e-12
#: Exact enumeration vs brute force over orderings (sums of <= 10^4 O(1) terms).
ATOL_PATHS = 1e-10
#: Monte Carlo tolerance in standard errors.
MC_SIGMAS = 5.0

NA = None  # an unparseable completion


# ------------------------------------------------------------------------------ string references
def _ttrl_reference(answers: list[str | None]) -> list[float]:
    parsed = [a for a in answers if a is not None]
    if not parsed:
        return [0.0] * len(answers)  # TTRL: label "None", nothing matches
    label = Counter(parsed).most_common(1)[0][0]
    return [1.0 if a is not None and a == label else 0.0 for a in answers]


def _empo_verl_reference(answers: list[str | None]) -> list[float]:
    preds = ["" if a is None else a for a in answers]
    reps, counts, cluster = [], [], []
    for p in preds:
        if p != "" and p in reps:
            k = reps.index(p)
            counts[k] += 1
        else:
            reps.append(p)
            counts.append(1)
            k = len(reps) - 1
        cluster.append(k)
    return [counts[k] / len(preds) for k in cluster]


def _empo_trl_reference(answers: list[str | None]) -> list[float]:
    G = len(answers)
    ids, seen = [], {}
    for i, a in enumerate(answers):
        key = ("none", i) if a is None else a  # verify('', '') is False: empty predictions never merge
        ids.append(seen.setdefault(key, len(seen)))
    p = np.bincount(ids) / G
    entropy = -(p * np.log(p)).sum()
    if not entropy < math.log(G) - 1e-12:  # all distinct (their float test, without its rounding noise)
        return [0.0] * G
    return [0.0 if a is None else float(p[k]) for a, k in zip(answers, ids, strict=True)]


def _index(answers: list[str | None]) -> tuple[np.ndarray, int, int | None]:
    """Answer keys -> (indices (G,), n_answers, no-answer index), first appearance order (as llm)."""
    from llm.answers import NO_ANSWER, index_answers

    (idx,), strings = index_answers([answers])
    na = strings.index(NO_ANSWER) if NO_ANSWER in strings else None
    return idx, len(strings), na


def _dagsim(objective: str, answers: list[str | None], **kw) -> np.ndarray:
    idx, n, na = _index(answers)
    return group_rewards(objective, idx, n_answers=n, no_answer=na, **kw)


def _random_groups(n_groups: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_groups):
        G = int(rng.choice([4, 8, 16]))
        k = int(rng.integers(1, 6))
        p_none = float(rng.choice([0.0, 0.2, 0.6, 1.0]))
        yield [None if rng.random() < p_none else str(int(rng.integers(k))) for _ in range(G)]


# ------------------------------------------------------------------------------ pinned groups
def test_ttrl_ties_go_to_the_first_answer_split_is_the_option():
    g = np.array([5, 3, 3, 5])
    np.testing.assert_array_equal(group_rewards("ttrl", g, n_answers=6), [1, 0, 0, 1])
    np.testing.assert_allclose(group_rewards("ttrl", g, n_answers=6, tie_break="split"), 0.5, atol=ATOL)
    adv, _ = advantages(group_rewards("ttrl", g, n_answers=6))  # RLOO: 1 - 1/3, 0 - 2/3
    np.testing.assert_allclose(adv, [2 / 3, -2 / 3, -2 / 3, 2 / 3], atol=ATOL)
    adv, n_zero = advantages(group_rewards("ttrl", g, n_answers=6, tie_break="split"))
    assert n_zero == 1 and np.all(adv == 0.0)
    # All distinct: TTRL rewards the first sample only.
    np.testing.assert_array_equal(group_rewards("ttrl", np.array([2, 0, 1, 3]), n_answers=4), [1, 0, 0, 0])
    np.testing.assert_allclose(group_rewards("ttrl", np.arange(4), n_answers=4, tie_break="split"), 0.25)


def test_ttrl_unparseable_answers_are_out_of_the_vote():
    drop = _dagsim("ttrl", [NA, NA, NA, "3"])
    np.testing.assert_array_equal(drop, [0, 0, 0, 1])
    pool = _dagsim("ttrl", [NA, NA, NA, "3"], no_answer_rule="pool")
    np.testing.assert_array_equal(pool, [1, 1, 1, 0])  # the earlier convention: not answering wins
    single = _dagsim("ttrl", [NA, NA, NA, "3"], no_answer_rule="singleton")
    np.testing.assert_array_equal(single, [1, 0, 0, 0])  # four clusters of size 1: the first wins
    # Ties with the no-answer among the modes.
    np.testing.assert_array_equal(_dagsim("ttrl", [NA, NA, "3", "3"]), [0, 0, 1, 1])
    np.testing.assert_array_equal(_dagsim("ttrl", [NA, NA, "3", "3"], no_answer_rule="pool"), [1, 1, 0, 0])
    np.testing.assert_allclose(
        _dagsim("ttrl", [NA, NA, "3", "3"], no_answer_rule="pool", tie_break="split"), 0.5, atol=ATOL
    )
    np.testing.assert_array_equal(_dagsim("ttrl", ["3", NA, NA, "3", "5", "5"]), [1, 0, 0, 1, 0, 0])
    np.testing.assert_allclose(
        _dagsim("ttrl", ["3", NA, NA, "3", "5", "5"], tie_break="split"), [0.5, 0, 0, 0.5, 0.5, 0.5]
    )
    # All unparseable: drop -> all 0 (TTRL), pool -> all 1.
    np.testing.assert_array_equal(_dagsim("ttrl", [NA] * 4), 0.0)
    np.testing.assert_array_equal(_dagsim("ttrl", [NA] * 4, no_answer_rule="pool"), 1.0)


def test_empo_verl_and_trl_rewards():
    np.testing.assert_allclose(_dagsim("empo", [NA, NA, "3", "3"]), [0.25, 0.25, 0.5, 0.5], atol=ATOL)
    np.testing.assert_allclose(
        _dagsim("empo", [NA, NA, "3", "3"], no_answer_rule="pool"), [0.5, 0.5, 0.5, 0.5], atol=ATOL
    )
    trl = dict(no_answer_rule="drop", entropy_gate=True)
    np.testing.assert_allclose(_dagsim("empo", [NA, NA, "3", "3"], **trl), [0, 0, 0.5, 0.5], atol=ATOL)
    # Unparseable answers are singletons for the gate: [∅, ∅, 3, 4] has entropy log 4 -> all 0.
    np.testing.assert_array_equal(_dagsim("empo", [NA, NA, "3", "4"], **trl), 0.0)
    np.testing.assert_allclose(
        _dagsim("empo", [NA, NA, "3", "4"], no_answer_rule="drop"), [0, 0, 0.25, 0.25], atol=ATOL
    )
    # All distinct: verl 1/G each, TRL gate 0; all unparseable: verl 1/G, drop 0, pool 1.
    np.testing.assert_allclose(_dagsim("empo", ["1", "2", "3", "4"]), 0.25, atol=ATOL)
    np.testing.assert_array_equal(_dagsim("empo", ["1", "2", "3", "4"], entropy_gate=True), 0.0)
    np.testing.assert_allclose(_dagsim("empo", [NA] * 4), 0.25, atol=ATOL)
    np.testing.assert_array_equal(_dagsim("empo", [NA] * 4, no_answer_rule="drop"), 0.0)
    np.testing.assert_array_equal(_dagsim("empo", [NA] * 4, no_answer_rule="pool"), 1.0)


def test_defaults_equal_the_string_references_on_1200_groups():
    """Rewards and RLOO advantages, dagsim defaults vs the string-level references of the published code."""
    n_ties = n_none = 0
    for answers in _random_groups(1200, seed=16):
        for objective, ref, kw in (
            ("ttrl", _ttrl_reference, {}),
            ("empo", _empo_verl_reference, {}),
            ("empo", _empo_trl_reference, dict(no_answer_rule="drop", entropy_gate=True)),
        ):
            got = _dagsim(objective, answers, **kw)
            want = np.array(ref(answers))
            np.testing.assert_allclose(got, want, atol=ATOL, err_msg=f"{objective} {kw} {answers}")
            np.testing.assert_allclose(advantages(got)[0], advantages(want)[0], atol=ATOL)
        counts = Counter(a for a in answers if a is not None).most_common()
        n_ties += len(counts) > 1 and counts[0][1] == counts[1][1]
        n_none += None in answers
    assert n_ties > 100 and n_none > 300  # the sample does exercise both conventions


def test_pool_split_reproduces_the_earlier_rewards():
    """``no_answer_rule="pool"`` + ``tie_break="split"`` is the library's behaviour before issue #16: the
    bucket an ordinary answer, ttrl = 1[z ∈ modes]/#modes, empo = (C+1)/G (written out here)."""
    for answers in _random_groups(300, seed=3):
        idx, n, na = _index(answers)
        counts = np.bincount(idx, minlength=n)
        modes = counts == counts.max()
        old_ttrl = modes[idx] / modes.sum()
        old_empo = counts[idx] / len(idx)
        new_ttrl = group_rewards("ttrl", idx, n_answers=n, no_answer=na, no_answer_rule="pool", tie_break="split")
        new_empo = group_rewards("empo", idx, n_answers=n, no_answer=na, no_answer_rule="pool")
        np.testing.assert_allclose(new_ttrl, old_ttrl, atol=ATOL)
        np.testing.assert_allclose(new_empo, old_empo, atol=ATOL)
        # Without a marked no-answer index the pooled convention is what you get.
        np.testing.assert_allclose(group_rewards("ttrl", idx, n_answers=n, tie_break="split"), old_ttrl, atol=ATOL)


def test_options_are_validated():
    a = np.array([0, 1, 1])
    with pytest.raises(ValidationError, match="tie_break"):
        group_rewards("ttrl", a, n_answers=2, tie_break="random")
    with pytest.raises(ValidationError, match="no_answer_rule"):
        group_rewards("ttrl", a, n_answers=2, no_answer_rule="keep")
    with pytest.raises(ValidationError, match="no_answer"):
        group_rewards("ttrl", a, n_answers=2, no_answer=2)


# ------------------------------------------------------------------------------ our objectives (#13)
def test_majority_never_takes_the_no_answer_as_the_mode():
    # [∅, 3, 3, 4]: sample 1 sees {∅, 3, 4} -> modes {3, 4} among real answers -> 1/2.
    idx, n, na = _index([NA, "3", "3", "4"])
    got = group_rewards("majority", idx, n_answers=n, tau=1.0, no_answer=na)
    np.testing.assert_allclose(got, [0, 0.5, 0.5, 0], atol=ATOL)
    pooled = group_rewards("majority", idx, n_answers=n, tau=1.0)  # unmarked: ∅ a candidate
    np.testing.assert_allclose(pooled, [0, 1 / 3, 1 / 3, 0], atol=ATOL)
    # [∅, ∅, ∅, 3]: the ∅ samples see the mode 3 but get no credit, sample 3 sees no real answer.
    idx, n, na = _index([NA, NA, NA, "3"])
    np.testing.assert_array_equal(group_rewards("majority", idx, n_answers=n, tau=1.0, no_answer=na), 0.0)
    np.testing.assert_array_equal(group_rewards("majority", idx, n_answers=n, tau=1.0), [1, 1, 1, 0])


def test_consensus_targets_give_the_no_answer_no_mass():
    # Two views, index 2 = ∅. View 0 mostly unparseable.
    v0, v1 = np.array([2, 2, 2, 0]), np.array([1, 0, 1, 2])
    r = np.array([0.3, 0.0, 0.1])
    maj = consensus_group_rewards([v0, v1], n_answers=3, tau=1.0, consensus="majority", task_reward=r, no_answer=2)
    # pooled real frequencies: 0 -> (1/4 + 1/4)/2, 1 -> (0 + 2/4)/2: tie 0/1 split; ∅ samples get r(∅).
    np.testing.assert_allclose(maj[0], [0.1, 0.1, 0.1, 0.3 + 0.5], atol=ATOL)
    np.testing.assert_allclose(maj[1], [0.5, 0.3 + 0.5, 0.5, 0.1], atol=ATOL)
    unmarked = consensus_group_rewards([v0, v1], n_answers=3, tau=1.0, consensus="majority", task_reward=r)
    assert unmarked[0][0] == pytest.approx(0.1 + 1.0)  # ∅ is the pooled mode when unmarked
    geo = consensus_group_rewards([v0, v1], n_answers=3, tau=1.0, consensus="geometric", task_reward=r, no_answer=2)
    np.testing.assert_allclose(geo[0][:3], r[2], atol=ATOL)
    assert geo[0][3] > r[0] and geo[1][3] == pytest.approx(r[2])
    # Arithmetic, one view, plug-in: q̂ = ν̂ renormalized over real answers -> the real answers' τ-term is
    # −log(1 − n(∅)/G) and the ∅ samples get r(∅).
    ari = consensus_group_rewards([v0], n_answers=3, tau=1.0, consensus="arithmetic", estimator="plugin", no_answer=2)
    np.testing.assert_allclose(ari[0], [0, 0, 0, -math.log(1 - 3 / 4)], atol=ATOL)


# ------------------------------------------------------------------------------ exact analysis (T10)
def _ordered_oracle(objective, nu, G, scale, **kw):
    """E[A_i | z_i = z] summed over every ordered group and every position of sample i (K^(G-1)·G)."""
    K = len(nu)
    out = np.zeros(K)
    for z in range(K):
        for rest in itertools.product(range(K), repeat=G - 1):
            prob = np.prod(nu[list(rest)]) / G
            for pos in range(G):
                grp = np.array(rest[:pos] + (z,) + rest[pos:])
                adv, _ = advantages(group_rewards(objective, grp, n_answers=K, **kw), scale=scale)
                out[z] += prob * adv[pos]
    return out


@pytest.mark.parametrize("scale", ["none", "group"])
@pytest.mark.parametrize("rule", ["drop", "singleton", "pool"])
def test_effective_reward_of_every_ttrl_option_equals_the_ordered_oracle(scale, rule):
    nu = np.array([0.45, 0.3, 0.25])  # index 2 = the no-answer bucket
    for tie_break in ("first", "split"):
        kw = dict(no_answer=2, no_answer_rule=rule, tie_break=tie_break)
        got = effective_reward("ttrl", nu, 5, scale=scale, **kw)
        np.testing.assert_allclose(got, _ordered_oracle("ttrl", nu, 5, scale, **kw), atol=ATOL_PATHS)


def test_split_is_the_expectation_of_first_appearance():
    """Under exchangeable samples the effective reward of ``split`` equals TTRL's first-appearance rule's
    exactly for every unscaled advantage (linear in the rewards); std scaling breaks the equality."""
    rng = np.random.default_rng(0)
    for G, K in ((3, 3), (5, 3), (6, 4), (8, 3)):
        nu = rng.dirichlet(np.ones(K))
        for baseline in ("rloo", "mean", "none"):
            for rule in ("drop", "pool"):
                first = effective_reward("ttrl", nu, G, baseline=baseline, no_answer=K - 1, no_answer_rule=rule)
                split = effective_reward(
                    "ttrl", nu, G, baseline=baseline, no_answer=K - 1, no_answer_rule=rule, tie_break="split"
                )
                np.testing.assert_allclose(first, split, atol=ATOL_PATHS)
    nu = np.array([0.4, 0.35, 0.25])
    first = effective_reward("ttrl", nu, 5, scale="group")
    split = effective_reward("ttrl", nu, 5, scale="group", tie_break="split")
    assert np.abs(first - split).max() > 1e-3  # the wrong variant: scaled advantages differ


def test_effective_reward_of_empo_options():
    nu = np.array([0.5, 0.3, 0.2])  # index 2 = no answer
    for rule in ("drop", "singleton", "pool"):
        binom = effective_reward("empo", nu, 5, no_answer=2, no_answer_rule=rule, method="binomial")
        enum = effective_reward("empo", nu, 5, no_answer=2, no_answer_rule=rule, method="enumerate")
        np.testing.assert_allclose(binom, enum, atol=ATOL_PATHS)
        oracle = _ordered_oracle("empo", nu, 4, "none", no_answer=2, no_answer_rule=rule)
        np.testing.assert_allclose(
            effective_reward("empo", nu, 4, no_answer=2, no_answer_rule=rule), oracle, atol=ATOL_PATHS
        )
    table = count_reward_table("empo", n_answers=3, group_size=4, no_answer=2)
    np.testing.assert_allclose(table[2], 0.25)  # singleton: 1/G whatever the count
    gated = dict(no_answer=2, no_answer_rule="drop", entropy_gate=True)
    np.testing.assert_allclose(
        effective_reward("empo", nu, 4, **gated), _ordered_oracle("empo", nu, 4, "none", **gated), atol=ATOL_PATHS
    )


def test_vote_train_split_matches_monte_carlo():
    """n_votes = 8 voters, the first G = 4 trained (TTRL's select_top_k_per_prompt), RLOO + std scaling."""
    rng = np.random.default_rng(5)
    nu = np.array([0.5, 0.3, 0.2])
    G, V, n_groups = 4, 8, 60_000
    exact = effective_reward("ttrl", nu, G, n_votes=V, scale="group", no_answer=2)
    answers = rng.choice(3, size=(n_groups, V), p=nu)
    g = group_rewards("ttrl", answers, n_answers=3, no_answer=2)[:, :G]  # vote on V, train on the first G
    adv, _ = advantages(g, scale="group")
    train = answers[:, :G]
    for z in range(3):
        x = (adv * (train == z)).sum(axis=1) / (G * nu[z])
        se = x.std(ddof=1) / np.sqrt(n_groups)
        assert abs(x.mean() - exact[z]) <= MC_SIGMAS * se
    # n_votes = G is no split. With split ties the unscaled effective reward depends on the voters only
    # (V, not G); with first-appearance ties the trained samples come first and win ties more often.
    np.testing.assert_allclose(effective_reward("ttrl", nu, G, n_votes=G), effective_reward("ttrl", nu, G))
    split = dict(tie_break="split", no_answer=2)
    np.testing.assert_allclose(
        effective_reward("ttrl", nu, 4, n_votes=8, **split), effective_reward("ttrl", nu, 8, **split), atol=ATOL_PATHS
    )


def test_vote_train_split_equals_the_ordered_oracle():
    """Every ordering of V = 5 votes with sample i at each of the G = 3 trained positions (first block)."""
    nu = np.array([0.5, 0.3, 0.2])
    G, V, K = 3, 5, 3
    for kw in ({}, {"no_answer": 2}, {"no_answer": 2, "no_answer_rule": "singleton"}):
        for scale in ("none", "group"):
            want = np.zeros(K)
            for z in range(K):
                for rest in itertools.product(range(K), repeat=V - 1):
                    prob = np.prod(nu[list(rest)]) / G
                    for pos in range(G):
                        grp = np.array(rest[:pos] + (z,) + rest[pos:])
                        adv, _ = advantages(group_rewards("ttrl", grp, n_answers=K, **kw)[:G], scale=scale)
                        want[z] += prob * adv[pos]
            got = effective_reward("ttrl", nu, G, n_votes=V, scale=scale, **kw)
            np.testing.assert_allclose(got, want, atol=ATOL_PATHS)


def test_multiview_consensus_with_no_answer_enumerates():
    nus = np.array([[0.5, 0.2, 0.3], [0.4, 0.4, 0.2]])
    got = effective_reward_multiview("consensus", nus, 3, consensus="majority", tau=1.0, no_answer=2)
    assert np.all(np.isfinite(got))
    unmarked = effective_reward_multiview("consensus", nus, 3, consensus="majority", tau=1.0)
    assert np.abs(got - unmarked).max() > 1e-3


def test_advantage_eps_option():
    g = np.array([[1.0, 0.0, 0.0, 1.0]])
    a4, _ = advantages(g, scale="group")
    a6, _ = advantages(g, scale="group", eps=1e-6)  # verl's ε
    assert a6[0, 0] > a4[0, 0]
    np.testing.assert_allclose(a6 * (g.std(ddof=1) + 1e-6), a4 * (g.std(ddof=1) + 1e-4), atol=ATOL)


# ------------------------------------------------------------------------------ simulator
def _dag_file(tmp_path):
    from dagsim import dagio
    from dagsim.generators import random_dag

    reward = np.zeros(4)
    reward[0] = 1.0
    dag = random_dag(np.random.default_rng(0), 10, 4).with_reward(reward)
    path = tmp_path / "a.json"
    dagio.save(dag, path)
    return dag, path


def test_simulator_expected_mode_uses_the_exact_effective_reward_of_the_options(tmp_path):
    from dagsim.grpo.simulator import SimulationConfig, _expected_rewards, prepare_prompt
    from dagsim.marginals import answer_marginal

    dag, _ = _dag_file(tmp_path)
    label = dag.answers[3]
    for algorithm, extra, want_kw in (
        ("ttrl", {}, {}),
        ("ttrl", dict(n_votes=8, no_answer_label=label), dict(n_votes=8, no_answer=3)),
        ("ttrl", dict(tie_break="split", no_answer="pool", no_answer_label=label),
         dict(tie_break="split", no_answer=3, no_answer_rule="pool")),
        ("empo", dict(entropy_gate=True, no_answer="drop", no_answer_label=label),
         dict(entropy_gate=True, no_answer=3, no_answer_rule="drop")),
    ):
        cfg = SimulationConfig(algorithm=algorithm, mode="expected", group_size=4, **extra)
        cfg.validate()
        state = prepare_prompt(dag, cfg)
        nu = answer_marginal(dag)
        got = _expected_rewards(state, nu[None, :], cfg, algorithm)[0]
        want = effective_reward(algorithm, nu, 4, **want_kw)
        np.testing.assert_allclose(got, want, atol=ATOL_PATHS, err_msg=f"{algorithm} {extra}")


def test_simulate_cli_flags(tmp_path, capsys):
    from dagsim.cli import main

    dag, path = _dag_file(tmp_path)
    common = ["simulate", str(path), "--algorithm", "ttrl", "--steps", "3", "--group-size", "4", "--json"]
    assert main(common + ["--mode", "sampled", "--no-answer-label", dag.answers[1], "--tie-break", "split"]) == 0
    assert main(common + ["--mode", "expected", "--n-votes", "8", "--advantage-eps", "1e-6",
                          "--scale", "group"]) == 0
    capsys.readouterr()
    assert main(common + ["--mode", "sampled", "--n-votes", "8"]) == 2  # expected mode only
    assert main(common + ["--mode", "expected", "--n-votes", "3"]) == 2  # fewer voters than G
    assert "n_votes" in capsys.readouterr().err
