"""Issue 15 §3: predicting each algorithm's held-out accuracy from the base model (llm.predict_outcome)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from dagsim.objectives import make_objective  # noqa: E402
from dagsim.solvers import solve_answer_level  # noqa: E402
from llm.predict_outcome import (  # noqa: E402
    GAME_OF_ALGORITHM,
    Game,
    _candidates,
    finite_group_attractor,
    game_of,
    hard_coherence,
    limit_optimum,
    markdown,
    partition,
    predict_all,
    predict_game,
    prompt_key,
    seed_summary,
    summarize_row,
    table_rows,
)
from llm.theory import REST  # noqa: E402
from llm.trainer import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: Agreement of a β → 0+ limit with dagsim's solver at small β (TV).
LIMIT_TV = 0.02


def _game(objective, beta=0.0, tau=1.0, consensus="none", labelled=False, algorithm="coherence-grpo", G=8):
    return Game(row=objective, algorithm=algorithm, objective=objective, beta=beta, tau=tau, consensus=consensus,
                labelled=labelled, group_size=G, estimator="aqp", rloo_aware=True)


def _tv(p, q):
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


# ------------------------------------------------------------------------------------- hand computations


def test_sharpen_two_answers_matches_the_closed_form_power_law():
    """Two answers, β = 1 > τ = 0.5: ν* ∝ ν0^{β/(β−τ)} = ν0² → (0.49, 0.09)/0.58 (THEORY §4 table)."""
    nu0 = np.array([[0.7, 0.3]])
    cand = np.array([True, True])
    got = predict_game(_game("sharpen", beta=1.0, tau=0.5), nu0, np.zeros(2), cand)[0]
    np.testing.assert_allclose(got, [0.49 / 0.58, 0.09 / 0.58], atol=1e-9)
    # β = 0 (the experiment's): the vertex on the mode, predicted accuracy 1 if the mode is correct else 0
    np.testing.assert_allclose(predict_game(_game("sharpen"), nu0, np.zeros(2), cand)[0], [1.0, 0.0])


def test_hard_coherence_two_views_by_hand():
    """β → 0+ consensus: q* ∝ sqrt(ν1 ν2); views (0.6, 0.4) and (0.1, 0.9) give (√.06, √.36)/Σ."""
    nus = np.array([[0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    q = hard_coherence(nus, np.array([True, True, False]))
    a, b = math.sqrt(0.06), math.sqrt(0.36)
    np.testing.assert_allclose(q, [a / (a + b), b / (a + b), 0.0], atol=1e-9)


def test_rest_bucket_and_no_answer_are_never_targets():
    from llm.answers import NO_ANSWER

    labels = ["3", NO_ANSWER, REST]
    nu0 = np.array([[0.2, 0.3, 0.5]])  # the biggest buckets are not answers a vote can pick
    for objective in ("majority", "collision", "consensus"):
        cand = _candidates(labels, objective)
        assert cand.tolist() == [True, False, False]
        if objective == "consensus":
            continue
        np.testing.assert_allclose(predict_game(_game(objective), nu0, np.zeros(3), cand)[0], [1, 0, 0])
    assert partition([{"answer_bounds": {"7": [0.5, 0.6], "8": [1e-6, 0.1]}, "covered_mass": 0.9}], "9", 1e-4) == [
        "7", "9", REST]


# collision at β = 0.05 (τ/β = 10): dagsim's collision scan raises ValueError (no root found) from τ/β ≈ 25 on
@pytest.mark.parametrize("objective,tau,beta", [("sharpen", 1.0, 1e-3), ("majority", 1.0, 1e-3),
                                                ("collision", 0.5, 0.05), ("reward", 0.0, 1e-3),
                                                ("entropy", 0.15, 1e-3)])
def test_limits_agree_with_dagsim_at_small_beta(objective, tau, beta):
    """The β → 0+ closed forms equal dagsim's exact optimum of (E2) at small β."""
    rng = np.random.default_rng(3)
    nu0 = rng.dirichlet(np.ones(5))
    reward = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    got = limit_optimum(objective, nu0, tau, reward=reward, candidates=np.ones(5, bool))
    kw = {} if objective == "reward" else {"tau": tau}
    r = reward if objective in ("reward", "entropy") else np.zeros(5)
    ref = solve_answer_level(make_objective(objective, n_answers=5, reward=r, **kw), nu0, beta).nu
    assert _tv(got, ref) < LIMIT_TV, (objective, got, ref)


def test_consensus_limit_agrees_with_dagsim_at_small_beta():
    rng = np.random.default_rng(4)
    nus = rng.dirichlet(np.ones(4), size=2)
    q = hard_coherence(nus, np.ones(4, bool))
    for consensus in ("arithmetic", "geometric"):
        obj = make_objective("consensus", n_answers=4, tau=1.0, consensus=consensus, n_views=2)
        sol = np.asarray(solve_answer_level(obj, nus, 1e-3).nu)
        assert max(_tv(q, v) for v in sol) < LIMIT_TV, consensus


def test_finite_group_flow_sends_diversity_to_the_correct_answer():
    """T10 at β = 0: the entropy reward's bounded log table cannot outweigh r = 1 — the flow ends on the
    correct answer, while the G → ∞ limit e^{r/τ} leaves mass on every answer of the support."""
    nu0 = np.array([0.5, 0.2, 0.2, 0.1])
    reward = np.array([0.0, 1.0, 0.0, 0.0])
    game = _game("entropy", tau=0.15, labelled=True, algorithm="diversity-grpo")
    nu_g = finite_group_attractor(game, nu0[None, :], reward)[0]
    assert nu_g[1] > 0.999
    lim = limit_optimum("entropy", nu0, 0.15, reward=reward, candidates=np.ones(4, bool))
    e = math.exp(1 / 0.15)
    assert lim[1] == pytest.approx(e / (e + 3))
    # sharpen's flow keeps the mode (the same vertex as the G → ∞ limit)
    sharp = finite_group_attractor(_game("sharpen"), nu0[None, :], np.zeros(4))[0]
    assert sharp[0] > 0.999
    # arithmetic consensus at G = 8 (plug-in): the views meet and keep sharpening, unlike q* (G → ∞)
    views = np.array([[0.5, 0.3, 0.2, 0.0], [0.2, 0.6, 0.1, 0.1]])
    arith = Game(row="a", algorithm="coherence-grpo", objective="consensus", beta=0.0, tau=1.0,
                 consensus="arithmetic", labelled=False, group_size=8, estimator="plugin", rloo_aware=True)
    flow = finite_group_attractor(arith, views, np.zeros(4))
    assert np.abs(flow[0] - flow[1]).max() < 1e-3 and flow.max() > 0.99
    assert hard_coherence(views, np.ones(4, bool)).max() < 0.6
    assert finite_group_attractor(_game("majority", algorithm="ttrl"), views, np.zeros(4)) is None


# ------------------------------------------------------------------------------------ objective mapping


def test_game_mapping_comes_from_the_trainer_config():
    from llm.experiment import VARIANTS

    table = dict(VARIANTS)
    games = {n: game_of(n, TrainConfig(**table[n])) for n in (
        "gt-grpo", "ttrl", "empo", "coherence-grpo[single-view]", "coherence-grpo[arithmetic]",
        "coherence-grpo[geometric]", "diversity-grpo")}
    assert {n: g.objective for n, g in games.items()} == {
        "gt-grpo": "reward", "ttrl": "majority", "empo": "collision", "coherence-grpo[single-view]": "sharpen",
        "coherence-grpo[arithmetic]": "consensus", "coherence-grpo[geometric]": "consensus",
        "diversity-grpo": "entropy"}
    assert games["diversity-grpo"].tau == 0.15 and games["coherence-grpo[single-view]"].tau == TrainConfig().tau
    assert games["coherence-grpo[arithmetic]"].consensus == "arithmetic"
    assert games["coherence-grpo[arithmetic]"].estimator == "plugin"
    assert all(g.beta == TrainConfig().beta for g in games.values())
    assert games["gt-grpo"].labelled and not games["ttrl"].labelled


def test_ttrl_and_empo_rewards_are_the_mapped_objectives():
    """The published rewards (llm.rewards, the trainer's path) equal the mapped dagsim objective's rewards:
    TTRL = majority with τ = 1; EMPO = collision with τ = 1/2 up to the factor (G−1)/G and a constant."""
    from dagsim.grpo.rewards import group_rewards
    from llm.rewards import RewardSettings, score_problem

    G = 8
    # a clear mode (also without any one sample): TTRL's self-inclusive vote and dagsim's majority agree;
    # with a near-tie they differ at finite G (the G → ∞ game is the same, T10)
    answers = ["4", "4", "5", "6", "4", "4", "5", "4"]
    settings = RewardSettings(tau=TrainConfig().tau, estimator="aqp", consensus="none", base_objective="sharpen")
    ttrl = score_problem("ttrl", [answers], None, settings)
    idx = np.asarray(ttrl.indices[0])
    maj = group_rewards("majority", idx[None, :], n_answers=len(ttrl.answer_strings),
                        tau=GAME_OF_ALGORITHM["ttrl"][1])[0]
    np.testing.assert_allclose(ttrl.rewards[0], maj)
    empo = score_problem("empo", [answers], None, settings).rewards[0]
    col = group_rewards("collision", idx[None, :], n_answers=len(ttrl.answer_strings),
                        tau=GAME_OF_ALGORITHM["empo"][1])[0]
    slope = np.polyfit(col, empo, 1)
    np.testing.assert_allclose(np.polyval(slope, col), empo, atol=1e-12)
    assert slope[0] == pytest.approx((G - 1) / G)


def test_wrong_mapping_control_fails_on_a_misread_prompt():
    """Control: predicting ttrl as if it were gt-grpo (reward) gives the opposite answer where the base's mode
    is the misreading — the mapping matters and the test above would catch the swap."""
    nu0 = np.array([[0.55, 0.35, 0.10]])  # mode = the misread answer, index 1 = correct
    reward = np.array([0.0, 1.0, 0.0])
    cand = np.array([True, True, False])
    ttrl = predict_game(_game("majority", algorithm="ttrl"), nu0, reward, cand)[0]
    as_gt = predict_game(_game("reward", labelled=True, algorithm="gt-grpo"), nu0, reward, cand)[0]
    assert ttrl[1] == 0.0 and as_gt[1] == 1.0


# ------------------------------------------------------------------------- records, table and JSON agree


def _fake_problem(pid, truth, operands=()):
    from llm.tasks import Problem

    return Problem(pid, ("Q: a\nA:", "Q: b\nA:"), truth, "external", operands)


def _fake_results():
    problems = [_fake_problem("p1", "5"), _fake_problem("p2", "7")]
    marg = {
        prompt_key("p1", 0): {"answer_bounds": {"5": [0.6, 0.61], "6": [0.39, 0.4]}, "covered_mass": 0.99},
        prompt_key("p1", 1): {"answer_bounds": {"6": [0.7, 0.71], "5": [0.29, 0.3]}, "covered_mass": 0.99},
        prompt_key("p2", 0): {"answer_bounds": {"7": [0.5, 0.52], "8": [0.48, 0.5]}, "covered_mass": 0.98},
        prompt_key("p2", 1): {"answer_bounds": {"7": [0.9, 0.95]}, "covered_mass": 0.95},
    }
    games = [_game("sharpen"), _game("reward", labelled=True, algorithm="gt-grpo")]
    pred = predict_all(games, problems, marg, 1e-4, finite_g=False)
    measured = {0: {prompt_key("p1", 0): 0.75, prompt_key("p1", 1): 0.25, prompt_key("p2", 0): 0.5,
                    prompt_key("p2", 1): 1.0},
                1: {prompt_key("p1", 0): 0.875, prompt_key("p1", 1): 0.125, prompt_key("p2", 0): 0.625,
                    prompt_key("p2", 1): 1.0}}
    rows = {}
    for g in games:
        rows[g.row] = summarize_row(g, pred[g.row], measured)
        rows[g.row]["prompts"] = pred[g.row]
    return {"format": "alft-llm-prediction/v1", "n_problems": 2, "n_prompts": 4, "rows": rows,
            "certified": {"covered_mass_min": 0.95, "covered_mass_median": 0.985, "seconds": 1.0,
                          "search_seconds_total": 3.0}}


def test_summary_by_hand_and_table_matches_json():
    res = _fake_results()
    s = res["rows"]["sharpen"]["summary"]["all"]
    # sharpen at β = 0: mode of each view → correct, wrong, correct, correct
    assert s["predicted"] == pytest.approx(0.75)
    assert s["measured"]["values"] == pytest.approx([0.625, 0.65625])
    # t quantile 0.975 at 1 degree of freedom: 12.706 (tables)
    assert s["measured"]["ci95"] == pytest.approx(12.706 * np.std([0.625, 0.65625], ddof=1) / math.sqrt(2), rel=1e-4)
    assert res["rows"]["reward"]["summary"]["all"]["predicted"] == 1.0
    agree = res["rows"]["sharpen"]["per_prompt"]  # predicted 1, 0, 1, 1; measured seed means below
    assert agree["measured_where_predicted_high"] == pytest.approx((0.8125 + 0.5625 + 1.0) / 3)
    assert agree["measured_where_predicted_low"] == pytest.approx(0.1875)
    assert agree["pearson_r"] == pytest.approx(np.corrcoef([1, 0, 1, 1], [0.8125, 0.1875, 0.5625, 1.0])[0, 1])
    _check_table_against_json(markdown(res), res)


def _check_table_against_json(md: str, res: dict):
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| algorithm")]
    cells = table_rows(res)
    body = rows[: len(cells)]
    assert len(body) == len(cells)
    for line, want in zip(body, cells, strict=True):
        got = [c.strip() for c in line.strip("|").split("|")]
        assert got == want
        name, _, cname = want[:3]
        s = res["rows"][name]["summary"][cname]
        assert float(got[5]) == pytest.approx(s["predicted"], abs=5e-4)
        if "measured" in s:
            assert float(re.split(r" ± ", got[7])[0]) == pytest.approx(s["measured"]["mean"], abs=5e-4)


def test_step_calibration_by_hand():
    from llm.predict_outcome import calibrate_steps

    def cell(base, pred, meas, pred_g=None):
        e = {"base": base, "predicted": pred, "measured": {"mean": meas}}
        return e if pred_g is None else {**e, "predicted_G": pred_g}

    res = {"rows": {
        "gt-grpo": {"summary": {"all": cell(0.5, 1.0, 0.8), "misread": cell(0.2, 1.0, 0.7)}},
        "sharpen": {"summary": {"misread": cell(0.3, 0.0, 0.1), "other": cell(0.6, 1.0, 0.9)}},
        "consensus": {"summary": {"other": cell(0.6, 0.65, 0.8, pred_g=1.0)}},
    }}
    calibrate_steps(res)
    cal = res["step_calibration"]
    assert cal["fraction"] == pytest.approx(0.6) and cal["n_cells"] == 3  # gt-grpo's own cells are excluded
    assert res["rows"]["sharpen"]["summary"]["misread"]["predicted_after_steps"] == pytest.approx(0.12)
    assert res["rows"]["consensus"]["summary"]["other"]["predicted_after_steps"] == pytest.approx(0.84)
    assert cal["mean_abs_error"]["predicted"] == pytest.approx((0.1 + 0.1 + 0.15) / 3)
    assert cal["mean_abs_error"]["predicted_after_steps"] == pytest.approx((0.02 + 0.06 + 0.04) / 3)


def test_seed_summary_t_interval():
    s = seed_summary([0.5, 0.6, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)
    assert s["ci95"] == pytest.approx(4.303 * 0.1 / math.sqrt(3), rel=1e-4)  # t(0.975, 2 dof) = 4.303
    assert seed_summary([0.4])["ci95"] == 0.0


def test_committed_results_keys_and_table_agree():
    path = ROOT / "results" / "llm_prediction.json"
    if not path.is_file():
        pytest.skip("results/llm_prediction.json not committed yet")
    res = json.loads(path.read_text())
    assert res["format"] == "alft-llm-prediction/v1"
    assert {"config", "n_prompts", "certified", "rows"} <= set(res)
    for row in res["rows"].values():
        assert {"game", "summary", "prompts", "seeds"} <= set(row)
        assert len(row["prompts"]) == res["n_prompts"]
        preds = [p["predicted_accuracy"] for p in row["prompts"]]
        assert row["summary"]["all"]["predicted"] == pytest.approx(float(np.mean(preds)))
    md = (ROOT / "results" / "llm_prediction.md").read_text()
    _check_table_against_json(md, res)


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_help_and_bad_flags(capsys, tmp_path):
    from llm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--base-model", "--experiment", "--gap-prompts", "--min-answer-mass", "--cache"):
        assert flag in out
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--no-such-flag"])
    assert exc.value.code == 2 and "--no-such-flag" in capsys.readouterr().err
    assert main(["predict", "--base-model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "predict.base_model" in err
    assert main(["predict", "--base-model", str(tmp_path), "--mass", "2"]) == 2
    assert "predict.mass" in capsys.readouterr().err


# ------------------------------------------------------------------- end to end on a tiny real model


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    """A tiny random 2-view Llama as the base, and a fake finished experiment whose two rows point at copies
    of it: gt-grpo (per-prompt answers stored, two seeds) and ttrl (none stored: evaluated here)."""
    import dataclasses
    import shutil

    from llm.model import ModelConfig, build_model, save_model
    from llm.pretrain import sft_corpus
    from llm.tasks import ArithmeticTaskConfig, split_problems
    from llm.tokenizer import build_tokenizer

    task = ArithmeticTaskConfig(n_views=2)
    train, held = split_problems(task)
    tokenizer = build_tokenizer(sft_corpus(train[:40], np.random.default_rng(0), task.step_noise), vocab_size=100)
    model = build_model(ModelConfig(hidden_size=16, n_layers=2, n_heads=2, intermediate_size=32, max_positions=96),
                        tokenizer, seed=0)
    root = tmp_path_factory.mktemp("tiny_predict")
    base = root / "base"
    save_model(model, tokenizer, base, extra_files={"task.json": json.dumps(dataclasses.asdict(task))})
    exp = root / "exp"
    (exp / "runs").mkdir(parents=True)
    (exp / "results.json").write_text(json.dumps({"rows": []}))
    eval_cfg = {"k": 2, "seed": 5, "max_new_tokens": 8, "batch_prompts": 64}
    for name, seed, per_prompt in (("gt-grpo@seed0", 0, True), ("gt-grpo@seed1", 1, True), ("ttrl", 0, False)):
        d = exp / "runs" / name
        shutil.copytree(base, d / "final")
        algorithm = name.split("@")[0]
        recs = [{"problem_id": p.problem_id, "view": v, "accuracy": 0.25 * (seed + 1)}
                for p in held[:2] for v in range(2)] if per_prompt else None
        (d / "row.json").write_text(json.dumps({
            "row": {"algorithm": name}, "history": [{"answer_entropy": 1.0 - 0.01 * i} for i in range(12)],
            "fingerprint": {"train": {"algorithm": algorithm, "seed": seed, "model": str(base)}, "eval": eval_cfg},
            **({"per_prompt": recs} if per_prompt else {})}))
    return base, exp, held[:2]


def test_end_to_end_tiny_model(tiny_experiment, tmp_path, monkeypatch):
    import torch

    import llm.certified
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import load_model
    from llm.predict_outcome import PredictConfig, run, write_results

    torch.set_num_threads(1)
    base, exp, problems = tiny_experiment
    cache = tmp_path / "nu0.json"
    config = PredictConfig(base_model=str(base), experiment=str(exp), out=str(tmp_path), cache=str(cache),
                           max_problems=2, budget_seconds=0.3, max_new_tokens=8, gap_prompts=1, progress=False)
    res = run(config)
    assert set(res["rows"]) == {"gt-grpo", "ttrl"}
    gt = res["rows"]["gt-grpo"]
    assert gt["seeds"] == [0, 1] and gt["summary"]["all"]["measured"]["values"] == pytest.approx([0.25, 0.5])
    assert gt["game"]["objective"] == "reward" and res["rows"]["ttrl"]["game"]["objective"] == "majority"
    for rec in gt["prompts"]:
        assert rec["predicted_accuracy"] == pytest.approx(1.0)  # reward at β = 0: all mass on the truth
        assert sum(res["prompts"][prompt_key(rec["problem_id"], rec["view"])]["nu0"]) == pytest.approx(1, abs=1e-6)
    # ttrl stored no per-prompt answers: evaluated here with the experiment's seed — the same samples as
    # llm.evaluate.evaluate, so the same mean accuracy
    model, tok = load_model(str(exp / "runs" / "ttrl" / "final"))
    want = evaluate(model, tok, problems, EvalConfig(k=2, seed=5, max_new_tokens=8))["mean_accuracy"]
    assert res["rows"]["ttrl"]["summary"]["all"]["measured"]["mean"] == pytest.approx(want)
    assert set(res["gap"]) == {"gt-grpo", "ttrl"} and res["gap"]["ttrl"]["prompts"]
    assert res["rows"]["gt-grpo"]["train_entropy"]["slope_last10"] == pytest.approx(-0.01)
    paths = write_results(res, tmp_path, "llm_prediction")
    _check_table_against_json(Path(paths["md"]).read_text(), json.loads(Path(paths["json"]).read_text()))
    # the cache makes a second run certify nothing
    monkeypatch.setattr(llm.certified, "certified_marginal", lambda *a, **k: pytest.fail("re-certified"))
    again = run(dataclasses_replace(config, gap_prompts=0))
    assert again["rows"]["gt-grpo"]["summary"] == gt["summary"]


def dataclasses_replace(config, **kw):
    import dataclasses

    return dataclasses.replace(config, **kw)


def test_cache_recertifies_only_budget_stopped_records(tmp_path, monkeypatch):
    import llm.certified
    import llm.model
    from llm.predict_outcome import certify_prompts

    calls = []

    class Fake:
        def __init__(self, key, stopped):
            self.key, self.stopped = key, stopped

        def to_json(self):
            return {"answer_bounds": {"1": [0.9, 0.95]}, "covered_mass": 0.95, "stopped_by": self.stopped}

    def fake_certify(model, tok, text, *, budget_seconds, **kw):
        calls.append((text, budget_seconds))
        return Fake(text, "budget" if text == "slow" else "mass")

    monkeypatch.setattr(llm.certified, "certified_marginal", fake_certify)
    monkeypatch.setattr(llm.model, "load_model", lambda path: (None, None))
    prompts = [("a|0", "fast"), ("b|0", "slow")]
    kw = dict(mass=0.99, max_new_tokens=8, cache=tmp_path / "c.json")
    certify_prompts(tmp_path, prompts, budget_seconds=1.0, **kw)
    certify_prompts(tmp_path, prompts, budget_seconds=1.0, **kw)  # all reused
    certify_prompts(tmp_path, prompts, budget_seconds=5.0, **kw)  # only the budget-stopped one again
    certify_prompts(tmp_path, prompts, budget_seconds=2.0, **kw)  # certified with 5 s already: reused
    assert calls == [("fast", 1.0), ("slow", 1.0), ("slow", 5.0)]
    out = certify_prompts(tmp_path, prompts, budget_seconds=1.0, mass=0.9, max_new_tokens=8, cache=tmp_path / "c.json")
    assert len(calls) == 5 and out["b|0"]["budget_seconds"] == 1.0  # other mass: the cache does not apply
