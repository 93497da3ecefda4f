"""Theory vs training (llm/theory/): the (E2) predictions against closed forms, and the pipeline end to end."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from dagsim.constraints import LinearConstraint  # noqa: E402
from dagsim.objectives import make_objective  # noqa: E402
from dagsim.solvers import solve_answer_level  # noqa: E402
from llm.theory import (  # noqa: E402
    REST,
    TheoryConfig,
    answer_labels,
    combine,
    marginal_vector,
    markdown_table,
    predict_constrained,
    predict_optimum,
    run,
    total_variation,
    write_results,
)

pytestmark = pytest.mark.llm

#: Closed forms and dagsim's solvers are both float64 formulas on ≤ 6 answers: agreement to rounding.
ATOL_CLOSED = 1e-9
#: Brent's root of the shared multiplier (xtol 1e-10) moves the constrained optimum by ≪ this.
ATOL_CONSTRAINED = 1e-6

NU0 = np.array([0.45, 0.25, 0.15, 0.1, 0.05])
R = np.array([0.0, 1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("beta, tau", [(1.0, 0.5), (0.5, 1.0), (2.0, 0.25)])
def test_entropy_prediction_is_the_closed_form(beta, tau):
    expected = NU0 ** (beta / (beta + tau))  # THEORY §4: ν ∝ ν0^{β/(β+τ)} (task reward 0)
    expected /= expected.sum()
    np.testing.assert_allclose(predict_optimum("entropy", NU0, beta, tau), expected, atol=ATOL_CLOSED)
    wrong = NU0 ** (2 * beta / (2 * beta + tau))  # β -> 2β must not match
    assert np.abs(predict_optimum("entropy", NU0, beta, tau) - wrong / wrong.sum()).max() > 1e-3


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_reward_prediction_is_the_gibbs_tilt(beta):
    expected = NU0 * np.exp(R / beta)  # P4: ν ∝ ν0 e^{r/β}
    expected /= expected.sum()
    np.testing.assert_allclose(predict_optimum("reward", NU0, beta, 0.5, reward=R), expected, atol=ATOL_CLOSED)
    flipped = NU0 * np.exp(-R / beta)
    assert np.abs(predict_optimum("reward", NU0, beta, 0.5, reward=R) - flipped / flipped.sum()).max() > 1e-2


def test_sharpen_prediction_is_the_power_law():
    beta, tau = 1.0, 0.5
    expected = NU0 ** (beta / (beta - tau))  # β > τ: ν ∝ ν0^{β/(β−τ)}
    np.testing.assert_allclose(predict_optimum("sharpen", NU0, beta, tau), expected / expected.sum(),
                               atol=ATOL_CLOSED)


def test_shared_constraint_on_one_prompt_is_dagsims_constrained_optimum():
    h, cap, beta, tau = np.array([0.0, 1.0, 1.0, 0.0, 0.0]), 0.1, 1.0, 0.5
    (nu,), lam = predict_constrained([NU0], [h], cap, beta, tau)
    obj = make_objective("sharpen", n_answers=5, tau=tau)
    ref = solve_answer_level(obj, NU0, beta, constraints=[LinearConstraint(h, "<=", cap)]).nu
    np.testing.assert_allclose(nu, ref, atol=ATOL_CONSTRAINED)
    assert lam > 0 and abs(h @ nu - cap) < ATOL_CONSTRAINED  # active: complementary slackness
    _, lam_loose = predict_constrained([NU0], [h], 0.9, beta, tau)
    assert lam_loose == 0.0


def test_partition_vector_puts_residual_and_small_answers_in_rest():
    bounds = {"8": (0.6, 0.65), "9": (0.3, 0.35), "1": (1e-6, 0.05)}
    labels = answer_labels(bounds, 1e-4)
    assert labels == ["8", "9", REST]
    nu = marginal_vector(bounds, labels)
    np.testing.assert_allclose(nu, [0.6, 0.3, 0.1], atol=1e-12)
    later = marginal_vector({"9": (0.9, 0.92), "7": (0.08, 0.1)}, labels)  # '7' is outside: goes to REST
    np.testing.assert_allclose(later, [0.0, 0.9, 0.1], atol=1e-12)
    assert total_variation(nu, later) == pytest.approx(0.6)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly-initialized 2-layer Llama with a small BPE vocabulary, saved with the task config."""
    import dataclasses

    from llm.model import ModelConfig, build_model, save_model
    from llm.pretrain import sft_corpus
    from llm.tasks import ArithmeticTaskConfig, split_problems
    from llm.tokenizer import build_tokenizer

    task = ArithmeticTaskConfig(n_views=1)
    train, _ = split_problems(task)
    tokenizer = build_tokenizer(sft_corpus(train[:40], np.random.default_rng(0), task.step_noise), vocab_size=100)
    model = build_model(ModelConfig(hidden_size=16, n_layers=2, n_heads=2, intermediate_size=32, max_positions=96),
                        tokenizer, seed=0)
    out = tmp_path_factory.mktemp("tiny_theory") / "base"
    save_model(model, tokenizer, out, extra_files={"task.json": json.dumps(dataclasses.asdict(task))})
    return out


def test_pipeline_end_to_end_writes_finite_tvs(tiny_model_dir, tmp_path):
    import torch

    torch.set_num_threads(1)
    config = TheoryConfig(model=str(tiny_model_dir), n_prompts=2, objectives=("sharpen", "entropy"), steps=2,
                          eval_every=1, group_size=4, max_new_tokens=8, budget_seconds=0.3, lr=1e-3,
                          min_answer_mass=0.0)
    results = run(config)
    paths = write_results(results, tmp_path)
    data = json.loads(open(paths["json"]).read())
    assert set(data["objectives"]) == {"sharpen", "entropy"}
    for res in data["objectives"].values():
        assert [e["step"] for e in res["summary"]["tv_vs_step"]] == [0, 1, 2]
        for rec in res["prompts"]:
            for key in ("nu0", "nu_star", "nu_T"):
                assert list(rec[key]) == list(rec["nu0"]) and rec[key]["<rest>"] >= 0
                assert sum(rec[key].values()) == pytest.approx(1.0, abs=1e-9)
            assert 0.0 <= rec["tv_star_T"] <= 1.0 and 0.0 <= rec["tv_star_0"] <= 1.0
            assert 0.0 <= rec["covered_mass_T"] <= 1.0 + 1e-9
            assert np.all(np.isfinite([t for _, t in rec["tv_series"]]))
        assert res["train_config"]["temperature"] == 1.0 and res["train_config"]["loss_type"] == "dapo"
    beta, tau = config.beta, config.tau
    exponent = {"sharpen": beta / (beta - tau), "entropy": beta / (beta + tau)}  # THEORY §4 power laws
    for name, res in data["objectives"].items():
        for rec, other in zip(res["prompts"], data["objectives"]["sharpen"]["prompts"], strict=True):
            assert rec["nu0"] == other["nu0"]  # one base certification shared by every objective
            labels = list(rec["nu0"])
            assert labels[-1] == REST
            nu0, star, nu_t = (np.array([rec[k][z] for z in labels]) for k in ("nu0", "nu_star", "nu_T"))
            # Independent oracle for ν*: the closed form on the (floored) base marginal, not dagsim's solver.
            expected = np.maximum(nu0, 1e-15) ** exponent[name]
            np.testing.assert_allclose(star, expected / expected.sum(), atol=ATOL_CLOSED)
            assert rec["tv_star_0"] == pytest.approx(0.5 * np.abs(star - nu0).sum(), abs=1e-12)
            assert rec["tv_star_T"] == pytest.approx(0.5 * np.abs(star - nu_t).sum(), abs=1e-12)
            assert rec["tv_0_T"] == pytest.approx(0.5 * np.abs(nu0 - nu_t).sum(), abs=1e-12)
            assert rec["tv_series"][0] == [0, rec["tv_star_0"]] and rec["tv_series"][-1] == [2, rec["tv_star_T"]]
            assert rec["nu_series"][-1] == [2, rec["nu_T"]]
            assert rec["mode_star"] == labels[int(np.argmax(star))]
            assert rec["mode_agree"] == (rec["mode_star"] == rec["mode_T"])
        s = res["summary"]
        for key in ("tv_star_T", "tv_star_0", "tv_0_T"):
            vals = [rec[key] for rec in res["prompts"]]
            assert s[key]["median"] == pytest.approx(float(np.median(vals)), abs=1e-15)
            assert s[key]["mean"] == pytest.approx(float(np.mean(vals)), abs=1e-15)
        assert s["tv_vs_step"][0]["median"] == s["tv_star_0"]["median"]
        assert s["tv_vs_step"][-1]["median"] == pytest.approx(s["tv_star_T"]["median"], abs=1e-15)
    md = open(paths["md"]).read()
    for name, res in data["objectives"].items():  # each objective's table row is the JSON's summary
        s = res["summary"]
        row = [ln for ln in md.splitlines() if ln.startswith(f"| {name} | ")]
        assert len(row) == 1
        assert row[0].startswith(f"| {name} | {res['algorithm']} | {s['tv_star_T']['median']:.3f} "
                                 f"| {s['tv_star_T']['p90']:.3f} | {s['tv_star_0']['median']:.3f} "
                                 f"| {s['tv_star_0']['p90']:.3f} | {s['tv_star_G']['median']:.3f} "
                                 f"| {s['mode_agreement']:.2f} | ")
    assert {data["objectives"]["sharpen"]["algorithm"], data["objectives"]["entropy"]["algorithm"]} == {
        "coherence-grpo", "diversity-grpo"}
    merged = combine([data], ablation=data)
    assert list(merged["objectives"]) == ["sharpen", "entropy"] and "Ablation" in markdown_table(merged)


#: The damped fixed-point iteration of k3_loss_stationary converges to round-off on NU0 (measured ≤ 4e-13).
ATOL_K3_STATIONARY = 1e-10


@pytest.mark.parametrize("objective", ["sharpen", "entropy", "reward"])
def test_k3_bandit_point_satisfies_its_stationarity_condition(objective):
    """g(ν) + β ν0/ν is the same for every answer (g = ∇Φ written here: τ log ν, −τ log ν, r, up to a constant);
    control: the Gibbs optimum ν* of (E2) does not satisfy it."""
    from llm.theory import k3_loss_stationary

    beta, tau = 1.0, 0.5
    g = {"sharpen": lambda nu: tau * np.log(nu), "entropy": lambda nu: -tau * np.log(nu), "reward": lambda nu: R}
    reward = R if objective == "reward" else None
    nu = k3_loss_stationary(objective, NU0, beta, tau, reward=reward)
    assert np.ptp(g[objective](nu) + beta * NU0 / nu) <= ATOL_K3_STATIONARY
    star = predict_optimum(objective, NU0, beta, tau, reward=reward)
    assert np.ptp(g[objective](star) + beta * NU0 / star) > 1e-2
