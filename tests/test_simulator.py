"""The GRPO simulator: exact mode reaches the closed-form optimum; expected mode's stationary point is the
fixed point of the effective reward (T10); the batched (union) sampled step agrees with the per-prompt
step and with the exact expected update; the CLI contract."""

import json

import numpy as np
import pytest

from dagsim import dagio
from dagsim.cli import main
from dagsim.errors import DomainError, ValidationError
from dagsim.game.payoff import gibbs
from dagsim.generators import arithmetic_dag, arithmetic_problem, random_dag
from dagsim.grpo.batch import union_of
from dagsim.grpo.effective import effective_reward
from dagsim.grpo.simulator import SimulationConfig, simulate
from dagsim.marginals import answer_marginal, edge_policy, logit_gradient, trace_kl_gradient
from dagsim.objectives import make_objective

#: Natural-gradient ascent converges linearly; 200 steps put the marginal within ~1e-12 of the optimum.
ATOL_EXACT_MODE = 1e-8


def _dag(seed=0, k=4):
    rng = np.random.default_rng(seed)
    reward = np.zeros(k)
    reward[0] = 1.0
    return random_dag(rng, 10, k).with_reward(reward)


@pytest.mark.parametrize("natural,steps,lr", [(True, 200, 0.5), (False, 3000, 3.0)])
def test_exact_mode_reaches_closed_form(natural, steps, lr):
    dag = _dag()
    cfg = SimulationConfig(algorithm="diversity-grpo", objective="entropy", beta=1.0, tau=0.5, mode="exact",
                           steps=steps, lr=lr, natural=natural)
    res = simulate([dag], cfg, log_every=steps)
    star = make_objective("entropy", n_answers=4, reward=dag.reward, tau=0.5).closed_form(answer_marginal(dag), 1.0)
    final = np.array(list(res.final[0]["answer_distribution"].values()))
    assert np.abs(final - star).max() <= (ATOL_EXACT_MODE if natural else 1e-6)
    assert res.history[-1]["exploitability"] <= 1e-10


def test_expected_mode_stationary_point_is_effective_reward_fixed_point():
    """T10: the expected GRPO update's fixed point solves ν = Gibbs(ν0, ḡ_G(ν), β) — not the true optimum."""
    dag = _dag(1)
    nu0 = answer_marginal(dag)
    G, beta, tau = 4, 1.0, 1.0
    cfg = SimulationConfig(algorithm="diversity-grpo", objective="entropy", beta=beta, tau=tau, mode="expected",
                           group_size=G, estimator="plugin", steps=400, lr=0.5, natural=True)
    res = simulate([dag], cfg, log_every=400)
    nu = np.array(list(res.final[0]["answer_distribution"].values()))
    g = effective_reward("entropy", nu, G, tau=tau, task_reward=dag.reward, estimator="plugin")
    assert np.abs(gibbs(nu0, g, beta) - nu).max() <= 1e-8
    assert res.history[-1]["distance_to_optimum"] > 1e-3  # the finite-G bias is real (plug-in log)


def test_gt_grpo_expected_mode_is_unbiased():
    """With a fixed per-answer reward, RLOO's effective reward is r − ⟨r, ν⟩: the optimum is exact at any G."""
    dag = _dag(2)
    cfg = SimulationConfig(algorithm="gt-grpo", beta=0.5, mode="expected", group_size=4, steps=300, lr=0.5,
                           natural=True)
    res = simulate([dag], cfg, log_every=300)
    assert res.history[-1]["distance_to_optimum"] <= 1e-9


def test_union_marginals_match_prompts():
    dags = [_dag(s, k) for s, k in ((0, 3), (1, 4), (2, 2))]
    u = union_of(dags)
    thetas = [np.random.default_rng(i).normal(size=d.n_edges) for i, d in enumerate(dags)]
    theta = u.gather_logits(thetas)
    blocks = u.split_answers(answer_marginal(u.union, theta) * u.n_prompts)
    for d, t, b in zip(dags, thetas, blocks):
        assert np.abs(b - answer_marginal(d, t)).max() <= 1e-14
    pi = edge_policy(u.union, theta)
    for d, t, edges in zip(dags, thetas, u.edge_maps):
        assert np.abs(pi[edges] - edge_policy(d, t)).max() <= 1e-15
        assert np.abs(trace_kl_gradient(u.union, theta)[edges] * u.n_prompts - trace_kl_gradient(d, t)).max() <= 1e-13


@pytest.mark.parametrize("batched", [True, False])
def test_sampled_step_matches_exact_expected_update(batched):
    """One sampled gt-grpo step with a huge group ≈ the exact policy-gradient step (both paths)."""
    dags = [_dag(3), _dag(4)]
    G, lr, beta = 40_000, 0.1, 0.5
    cfg = SimulationConfig(algorithm="gt-grpo", beta=beta, mode="sampled", group_size=G, steps=1, lr=lr,
                           baseline="rloo", seed=7)
    res = simulate(dags, cfg, log_every=1, batched=batched)
    for d, state in zip(dags, res.prompts):
        theta0 = d.reference_logits
        expected = lr * (logit_gradient(d, theta0, d.reward) - beta * trace_kl_gradient(d, theta0))
        moved = state.logits[0] - theta0
        assert np.abs(moved - expected).max() <= 0.02 * lr  # Monte Carlo error ~ 1/sqrt(G)


def test_sampled_mode_converges_near_optimum():
    prompts = [arithmetic_dag(arithmetic_problem(np.random.default_rng(s), 3), 0.2) for s in range(4)]
    cfg = SimulationConfig(algorithm="gt-grpo", beta=0.5, mode="sampled", group_size=16, steps=400, lr=0.5, seed=1)
    res = simulate(prompts, cfg, log_every=400)
    assert res.history[0]["distance_to_optimum"] > 0.2
    assert res.history[-1]["distance_to_optimum"] < 0.05


def test_bad_configs_fail_fast():
    with pytest.raises(ValidationError, match="group_size"):
        simulate([_dag()], SimulationConfig(group_size=1))
    with pytest.raises(DomainError, match="unknown algorithm"):
        simulate([_dag()], SimulationConfig(algorithm="ppo"))
    with pytest.raises(DomainError, match="takes --objective"):
        simulate([_dag()], SimulationConfig(algorithm="diversity-grpo", objective="sharpen"))
    with pytest.raises(DomainError, match="constraints"):
        simulate([_dag()], SimulationConfig(algorithm="constrained-grpo"))


def test_cli_simulate_json_and_trajectory(tmp_path, capsys):
    path = tmp_path / "a.json"
    dagio.save(_dag(5), path)
    out = tmp_path / "run.jsonl"
    code = main(["simulate", str(path), "--algorithm", "diversity-grpo", "--objective", "entropy", "--tau", "0.5",
                 "--mode", "exact", "--steps", "50", "--natural", "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(report) >= {"answer_distribution", "distance_to_optimum", "trajectory"}
    assert report["distance_to_optimum"] < 1e-6
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["config"]["algorithm"] == "diversity-grpo"
    assert len(lines) == 1 + 51 and not (tmp_path / "run.jsonl.partial").exists()


# ------------------------------------------------------------------ issue 12: doubly-LOO, AQP, RLOO-aware
@pytest.mark.parametrize("batched", [True, False])
def test_doubly_loo_equals_rloo_for_a_count_free_reward(batched):
    """T11c/T11b: with a per-answer reward the recounted baseline is the plain leave-one-out mean."""
    dags = [_dag(3), _dag(4)]
    finals = {}
    for baseline in ("rloo", "doubly-loo"):
        cfg = SimulationConfig(algorithm="gt-grpo", beta=0.5, mode="sampled", group_size=6, steps=5, lr=0.3,
                               baseline=baseline, seed=11)
        res = simulate(dags, cfg, log_every=5, batched=batched)
        finals[baseline] = np.concatenate([s.logits[0] for s in res.prompts])
    np.testing.assert_allclose(finals["doubly-loo"], finals["rloo"], atol=1e-12)


def test_doubly_loo_sampled_step_matches_its_effective_reward():
    """One sampled doubly-LOO step with a huge group ≈ the exact policy-gradient step of ḡ_G (T10, T11b)."""
    dags = [_dag(3)]
    G, lr, beta, tau = 40_000, 0.1, 0.5, 1.0
    cfg = SimulationConfig(algorithm="diversity-grpo", objective="entropy", beta=beta, tau=tau, mode="sampled",
                           group_size=G, steps=1, lr=lr, baseline="doubly-loo", estimator="plugin", seed=7)
    res = simulate(dags, cfg, log_every=1)
    d = dags[0]
    theta0 = d.reference_logits
    g = effective_reward("entropy", answer_marginal(d), G, baseline="doubly-loo", tau=tau, task_reward=d.reward,
                         estimator="plugin")
    expected = lr * (logit_gradient(d, theta0, g) - beta * trace_kl_gradient(d, theta0))
    moved = res.prompts[0].logits[0] - theta0
    assert np.abs(moved - expected).max() <= 0.03 * lr


@pytest.mark.parametrize("baseline,rloo_aware", [("doubly-loo", True), ("rloo", True), ("rloo", False)])
def test_expected_mode_fixed_point_per_baseline(baseline, rloo_aware):
    """Expected mode's fixed point = Gibbs(ν0, ḡ_G) for the configured baseline and table size (T11a/b)."""
    dag = _dag(1)
    nu0 = answer_marginal(dag)
    G, beta, tau = 6, 1.0, 1.0
    cfg = SimulationConfig(algorithm="diversity-grpo", objective="entropy", beta=beta, tau=tau, mode="expected",
                           group_size=G, estimator="aqp", steps=400, lr=0.5, natural=True, baseline=baseline,
                           rloo_aware=rloo_aware)
    res = simulate([dag], cfg, log_every=400)
    nu = np.array(list(res.final[0]["answer_distribution"].values()))
    ts = G - 1 if baseline == "rloo" and rloo_aware else None
    g = effective_reward("entropy", nu, G, baseline=baseline, tau=tau, task_reward=dag.reward, estimator="aqp",
                         table_size=ts)
    assert np.abs(gibbs(nu0, g, beta) - nu).max() <= 1e-8
    other = effective_reward("entropy", nu, G, baseline=baseline, tau=tau, task_reward=dag.reward,
                             estimator="aqp", table_size=None if ts else G - 1)
    if baseline == "rloo":  # control: the other table size is a different fixed point
        assert np.abs(gibbs(nu0, other, beta) - nu).max() > 1e-6


def test_multiview_doubly_loo_sampled_and_cli(tmp_path, capsys):
    from dagsim.generators import arithmetic_task

    task = arithmetic_task(arithmetic_problem(np.random.default_rng(0), 3), [[0.2, 0.2, 0.2], [0.3, 0.1, 0.1]])
    cfg = SimulationConfig(algorithm="coherence-grpo", objective="consensus", beta=0.5, tau=0.5, mode="sampled",
                           group_size=5, steps=3, lr=0.2, baseline="doubly-loo", estimator="aqp", seed=2)
    res = simulate([task], cfg, log_every=3)
    assert np.isfinite(res.history[-1]["distance_to_optimum"])
    path = tmp_path / "a.json"
    dagio.save(_dag(5), path)
    code = main(["simulate", str(path), "--algorithm", "diversity-grpo", "--objective", "entropy", "--mode", "expected",
                 "--group-size", "8", "--estimator", "aqp", "--baseline", "doubly-loo", "--steps", "5", "--json"])
    assert code == 0 and "distance_to_optimum" in json.loads(capsys.readouterr().out)
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(path), "--algorithm", "diversity-grpo", "--objective", "entropy", "--mode", "expected",
              "--baseline", "bogus", "--steps", "5", "--json"])
    assert exc.value.code == 2


@pytest.mark.parametrize("baseline", ["rloo", "doubly-loo"])
@pytest.mark.parametrize("batched", [False, True])
def test_advantage_eps_reaches_the_sampled_update(baseline, batched):
    """``advantage_eps`` (the ε of A/(std+ε) under scale="group") changes the sampled run for every baseline —
    doubly-LOO included (its advantages are rescaled separately) — and the default ε reproduces a run that does
    not set it."""
    dags = [_dag(3), _dag(4)]

    def final(**kw):
        cfg = SimulationConfig(algorithm="diversity-grpo", objective="entropy", beta=0.5, tau=1.0, mode="sampled",
                               group_size=6, steps=4, lr=0.3, baseline=baseline, scale="group", seed=3, **kw)
        res = simulate(dags, cfg, log_every=4, batched=batched)
        return np.concatenate([s.logits[0] for s in res.prompts])

    default = final()
    np.testing.assert_array_equal(final(advantage_eps=SimulationConfig().advantage_eps), default)
    assert np.abs(final(advantage_eps=5.0) - default).max() > 1e-6
