"""Issue 15: ``dagsim llm experiment --seeds`` (rows per seed, resume, intervals) and the task's
``misconception_overlap`` (0 = today's task bit for bit, 1 = identical misreadings)."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from dagsim.errors import ValidationError
from llm.cli import main
from llm.experiment import ExperimentConfig, parse_seeds, run_experiment, seed_row_name, split_row_name
from llm.intervals import bootstrap_problems, per_prompt_metrics, problem_index, seed_summary, t_interval
from llm.tasks import (
    KINDS,
    ArithmeticTaskConfig,
    all_problems,
    misconception,
    misconception_answer,
    sample_trace,
    split_problems,
    task_config_of,
)

pytestmark = pytest.mark.llm


# ----------------------------------------------------------------------------------------------- --seeds
@pytest.mark.parametrize(
    ("seeds", "message"),
    [("0,x", "'x' is not an integer"), ("0,-1", "must be >= 0"), ("1,2,1", "seed 1 is repeated"),
     ("0,,1", "'' is not an integer")],
)
def test_bad_seeds_exit_2_with_one_line(seeds, message, tmp_path, capsys):
    assert main(["experiment", "--seeds", seeds, "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "experiment.seeds" in err and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()  # rejected before anything is written


def test_one_seed_is_the_single_seed_run():
    assert parse_seeds("") == () and parse_seeds(" 2, 0 ,5") == (2, 0, 5)
    one = ExperimentConfig(seeds="3").resolved()
    assert one == ExperimentConfig(seed=3).resolved() and one.train_seeds() is None
    assert ExperimentConfig(seeds="0,1").resolved().train_seeds() == (0, 1)
    assert split_row_name(seed_row_name("coherence-grpo[arithmetic]", 12)) == ("coherence-grpo[arithmetic]", 12)
    assert split_row_name("gt-grpo") == ("gt-grpo", None)


def test_seed_rows_are_trained_per_seed_reused_on_resume_and_summarised(tmp_path):
    common = dict(pretrain_steps=3, steps=1, prompts_per_step=2, group_size=2, eval_k=2, eval_max_problems=2,
                  progress=False, algorithms="gt-grpo,ttrl", workers=1)
    out = tmp_path / "exp"
    r1 = run_experiment(ExperimentConfig(out=str(out), seeds="0,1", **common))
    names = [r["algorithm"] for r in r1["rows"]]
    assert names == ["base", "gt-grpo@seed0", "ttrl@seed0", "gt-grpo@seed1", "ttrl@seed1"]
    rows = {json.loads((p / "row.json").read_text())["fingerprint"]["train"]["seed"]
            for p in (out / "runs").iterdir()}
    assert rows == {0, 1}
    stamps = {p.name: (p / "row.json").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = ExperimentConfig(out=str(out), seeds="0,1", resume=True, base_model=str(out / "base"), **common)
    r2 = run_experiment(again)
    assert {p.name: (p / "row.json").stat().st_mtime_ns for p in (out / "runs").iterdir()} == stamps
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(r2["rows"]) == strip(r1["rows"])
    payload = json.loads((out / "results.json").read_text())
    assert list(payload)[:4] == ["config", "total_seconds", "rows", "summary"]
    summary = {e["algorithm"]: e for e in payload["summary"]}
    assert list(summary) == ["base", "gt-grpo", "ttrl"] and summary["ttrl"]["seeds"] == [0, 1]
    by_name = {r["algorithm"]: r for r in payload["rows"]}
    m = summary["ttrl"]["metrics"]["mean_accuracy"]
    assert m["per_seed"] == [by_name["ttrl@seed0"]["mean_accuracy"], by_name["ttrl@seed1"]["mean_accuracy"]]
    per_prompt = json.loads((out / "per_prompt.json").read_text())
    assert len(per_prompt["ttrl@seed1"]) == 4  # 2 problems x 2 views
    assert [p["problem_id"] for p in per_prompt["base"]] == [p["problem_id"] for p in per_prompt["ttrl@seed0"]]
    assert "| ttrl | 2 |" in (out / "results.md").read_text()
    redo = run_experiment(dataclasses.replace(again, resume=False, reevaluate=True))
    assert all(r["reevaluation_changed"] == {} for r in redo["rows"])  # same weights and evaluation seed
    assert json.loads((out / "results.json").read_text())["summary"] == payload["summary"]


# ----------------------------------------------------------------------------------------------- intervals
def test_t_interval_against_a_hand_computed_example():
    # 0.7, 0.8, 0.9: mean 0.8, s = 0.1; t_{0.975, 2} = 4.303 (t table) -> half-width 4.303 * 0.1 / sqrt(3)
    out = t_interval([0.7, 0.8, 0.9])
    assert out["mean"] == pytest.approx(0.8) and out["sd"] == pytest.approx(0.1)
    assert out["half_width"] == pytest.approx(4.303 * 0.1 / np.sqrt(3), abs=1e-4)
    assert out["half_width"] == pytest.approx(0.2484, abs=1e-4)
    wrong_z = 1.96 * 0.1 / np.sqrt(3)  # the normal quantile would be far too narrow with 3 seeds
    assert abs(out["half_width"] - wrong_z) > 0.1
    assert t_interval([0.5])["half_width"] is None
    with pytest.raises(ValidationError):
        t_interval([0.5, float("nan")])


def test_bootstrap_is_seeded_and_matches_a_loop_oracle():
    rng = np.random.default_rng(7)
    values = rng.random((3, 20))  # (n_seeds, n_prompts): 10 problems x 2 views
    problems = problem_index([f"p{i // 2}" for i in range(20)])
    a = bootstrap_problems(values, problems, np.random.default_rng(1), n_resamples=300)
    b = bootstrap_problems(values, problems, np.random.default_rng(1), n_resamples=300)
    c = bootstrap_problems(values, problems, np.random.default_rng(2), n_resamples=300)
    assert a == b and a != c
    draws = np.random.default_rng(1).integers(10, size=(300, 10))  # the same draws, resampled in a loop
    stats = [np.mean([values[s, j] for s in range(3) for p in d for j in np.flatnonzero(problems == p)])
             for d in draws]
    assert (a["low"], a["high"]) == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])), abs=1e-12)
    assert a["estimate"] == pytest.approx(values.mean())


def test_bootstrap_resamples_problems_not_prompts():
    """Two identical views per problem: the problem bootstrap's 95 % width is the per-problem one,
    2 * 1.96 * sd / sqrt(n_problems); resampling prompts would shrink it by sqrt(2)."""
    n = 400
    x = np.random.default_rng(3).random(n)  # (n_problems,)
    values = np.repeat(x, 2)  # (2 n,) view 0 and view 1 equal
    out = bootstrap_problems(values, problem_index(np.repeat(np.arange(n).astype(str), 2)),
                             np.random.default_rng(0), n_resamples=3000)
    width = out["high"] - out["low"]
    expected = 2 * 1.96 * x.std(ddof=1) / np.sqrt(n)
    assert width == pytest.approx(expected, rel=0.1)
    assert abs(width - expected / np.sqrt(2)) > 0.1 * expected


def test_seed_summary_recomputes_the_rows_and_rejects_a_mismatch():
    rec = lambda pid, answers: {"problem_id": pid, "view": 0, "truth": "1", "answers": answers}  # noqa: E731
    recs = {"a@seed0": [rec("p", ["1", "2"]), rec("q", ["2", "2"])],
            "a@seed1": [rec("p", ["1", "1"]), rec("q", ["1", "2"])]}
    rows = []
    for name, r in recs.items():
        m = per_prompt_metrics(r)
        rows.append({"algorithm": name, "variant": "a", "train_seed": int(name[-1]),
                     **{k: float(v.mean()) for k, v in m.items()}})
    assert rows[0]["mean_accuracy"] == 0.25 and rows[1]["maj_at_k"] == 0.75  # tie on q split 1/2
    (entry,) = seed_summary(rows, recs, np.random.default_rng(0), n_resamples=50)
    assert entry["metrics"]["mean_accuracy"]["seeds"]["mean"] == pytest.approx(0.5)
    bad = [dict(rows[0], mean_accuracy=0.3), rows[1]]
    with pytest.raises(ValidationError, match="does not reproduce"):
        seed_summary(bad, recs, np.random.default_rng(0), n_resamples=50)


# ----------------------------------------------------------------------------------------------- overlap
#: sha256 of the joined SFT traces (one per train (problem, view), rng seed 0, step noise 0.1, rate 0.6)
#: computed with llm/tasks.py at commit 23bed72, before the misconception_overlap field existed.
TODAY_SFT_SHA256 = "949e063de0e4209ca97ef7e93edb8d590b7294adb4b7e621795eb0808d14bb8f"


def _sft_sha(config: ArithmeticTaskConfig) -> str:
    train, _ = split_problems(config)
    rng = np.random.default_rng(0)
    text = "\n".join(q + sample_trace(p, v, rng, 0.1, 0.6)[0] for p in train for v, q in enumerate(p.views))
    return hashlib.sha256(text.encode()).hexdigest()


def test_overlap_zero_is_todays_task_bit_for_bit():
    assert _sft_sha(ArithmeticTaskConfig(misconception_overlap=0.0)) == TODAY_SFT_SHA256
    assert _sft_sha(ArithmeticTaskConfig(misconception_overlap=0.5)) != TODAY_SFT_SHA256  # the pin can fail
    for p in all_problems(ArithmeticTaskConfig()):
        assert p.misread_views is None
        assert [misconception(p, v) is not None for v in range(2)] == [KINDS[v] == p.kind for v in range(2)]


def test_overlap_one_gives_identical_misreadings():
    problems = all_problems(ArithmeticTaskConfig(misconception_overlap=1.0))
    for p in problems:
        answers = [misconception_answer(p, v) for v in range(p.n_views)]
        assert answers[0] == answers[1]
        assert (answers[0] is not None) == (p.kind == KINDS[0])


@pytest.mark.parametrize("n_views", [2, 3])
def test_partial_overlap_shares_a_nested_seeded_fraction(n_views):
    def sets(f):
        ps = all_problems(ArithmeticTaskConfig(misconception_overlap=f, n_views=n_views))
        shared = {p.problem_id for p in ps if p.kind == KINDS[0] and 1 in p.misread_views}
        own = {p.problem_id for p in ps if p.kind == KINDS[1] and 1 in p.misread_views}
        return ps, shared, own

    ps, shared3, own3 = sets(0.3)
    _, shared6, own6 = sets(0.6)
    n0 = sum(p.kind == KINDS[0] for p in ps)
    n1 = sum(p.kind == KINDS[1] for p in ps)
    assert len(shared3) == round(0.3 * n0) and len(own3) == n1 - round(0.3 * n1)
    assert shared3 <= shared6 and own6 <= own3  # nested in f
    for p in ps:
        assert 0 in p.misread_views if p.kind == KINDS[0] else 0 not in p.misread_views
        if n_views == 3 and p.kind == KINDS[0]:
            assert (1 in p.misread_views) == (2 in p.misread_views)  # views >= 1 share the same problems
    again = all_problems(ArithmeticTaskConfig(misconception_overlap=0.3, n_views=n_views))
    assert again == ps  # deterministic


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_overlap_is_validated(bad):
    with pytest.raises(ValidationError, match="task.misconception_overlap"):
        ArithmeticTaskConfig(misconception_overlap=bad).validate()
    with pytest.raises(ValidationError, match="experiment.misconception_overlap"):
        ExperimentConfig(misconception_overlap=bad).resolved().validate()


def test_task_file_round_trips_and_old_files_load(tmp_path):
    cfg = ArithmeticTaskConfig(misconception_overlap=0.5)
    (tmp_path / "task.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    assert task_config_of(tmp_path) == cfg
    old = {k: v for k, v in dataclasses.asdict(ArithmeticTaskConfig()).items() if k != "misconception_overlap"}
    (tmp_path / "task.json").write_text(json.dumps(old))
    assert task_config_of(tmp_path).misconception_overlap == 0.0


def test_misread_flags_follow_the_overlap():
    from llm.evaluate import misread_flags

    _, held = split_problems(ArithmeticTaskConfig(misconception_overlap=1.0))
    _, hit = misread_flags(held, [p.answer for p in held for _ in p.views])
    flags = np.array(hit).reshape(len(held), 2)  # (n_problems, n_views)
    kinds = np.array([p.kind == KINDS[0] for p in held])
    wrong = np.array([misconception_answer(p, 0) != p.answer if p.kind == KINDS[0] else False for p in held])
    assert (flags[:, 0] == flags[:, 1]).all() and (flags[:, 0] == (kinds & wrong)).all()


# ----------------------------------------------------------------------------------------------- sweep + figures
def _fake_level(folder, overlap, accuracies, seed_suffix=""):
    """An experiment folder in the format `dagsim llm experiment` writes: results.json, per_prompt.json and
    the base's task.json; ``accuracies[name]``: per-prompt correct-sample counts out of 2 (4 prompts)."""
    from llm.overlap_sweep import ALGORITHMS

    folder.mkdir(parents=True)
    (folder / "base").mkdir()
    (folder / "base" / "task.json").write_text(json.dumps({"misconception_overlap": overlap}))
    per_prompt, rows = {}, []
    for name in ALGORITHMS:
        recs = [{"problem_id": f"p{i // 2}", "view": i % 2, "truth": "1",
                 "answers": ["1"] * c + ["0"] * (2 - c)} for i, c in enumerate(accuracies[name])]
        row_name = name if name == "base" else name + seed_suffix
        per_prompt[row_name] = recs
        m = per_prompt_metrics(recs)
        rows.append({"algorithm": row_name, **{k: float(v.mean()) for k, v in m.items()}, "misread_prompts": 1,
                     "mean_accuracy_misread_prompts": 0.0, "mean_accuracy_other_prompts": 1.0})
    (folder / "results.json").write_text(json.dumps({"config": {"base_model": ""}, "rows": rows}))
    (folder / "per_prompt.json").write_text(json.dumps(per_prompt))


def test_overlap_sweep_pairs_the_consensus_with_its_references(tmp_path):
    from llm.overlap_sweep import ALGORITHMS, main, sweep

    counts = {a: [1, 1, 1, 1] for a in ALGORITHMS}
    counts["coherence-grpo[arithmetic]"] = [2, 2, 2, 1]
    _fake_level(tmp_path / "l0", 0.0, counts, seed_suffix="@seed0")
    _fake_level(tmp_path / "l1", 1.0, {a: [1, 1, 1, 1] for a in ALGORITHMS})
    data = sweep({0.0: tmp_path / "l0", 1.0: tmp_path / "l1"}, n_resamples=200)
    adv = data["levels"][0]["advantage"]["coherence-grpo[arithmetic] - coherence-grpo[single-view]"]
    assert adv["mean_accuracy"] == pytest.approx(0.875 - 0.5)
    assert data["levels"][1]["advantage"]["coherence-grpo[arithmetic] - ttrl"]["bootstrap"] == [0.0, 0.0]
    with pytest.raises(ValidationError, match="misconception_overlap 1.0, not 0.5"):
        sweep({0.5: tmp_path / "l1"})
    out = tmp_path / "sweep"
    assert main(["--level", f"0={tmp_path / 'l0'}", "--level", f"1={tmp_path / 'l1'}", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["levels"][0]["overlap"] == 0.0
    assert "+0.375" in out.with_suffix(".md").read_text()
    assert main(["--level", "x", "--out", str(out)]) == 2

    from figures import fig12_overlap_sweep as fig12

    paths = fig12.make(tmp_path / "figs", results=out.with_suffix(".json"))
    assert json.loads((tmp_path / "figs" / "fig12_overlap_sweep.json").read_text())["overlap"] == [0.0, 1.0]
    assert paths["png"].endswith(".png")


def test_figure8_draws_seed_means_with_error_bars(tmp_path):
    from figures import fig08_llm_training as fig8

    rows = [{"algorithm": "base", "greedy_accuracy": 0.5, "mean_accuracy": 0.4, "maj_at_k": 0.5, "pass_at_k": 0.9,
             "answer_entropy": 1.0, "steps": 0}]
    for s, acc in enumerate((0.7, 0.8, 0.9)):
        rows.append({"algorithm": f"ttrl@seed{s}", "variant": "ttrl", "train_seed": s, "greedy_accuracy": acc,
                     "mean_accuracy": acc, "maj_at_k": acc, "pass_at_k": 1.0, "answer_entropy": 0.5, "steps": 2})
        run = tmp_path / "exp" / "runs" / f"ttrl@seed{s}"
        run.mkdir(parents=True)
        run.joinpath("metrics.jsonl").write_text("\n".join(
            json.dumps({"step": t, "train_accuracy": acc, "answer_entropy": 1.0 - 0.1 * t}) for t in (1, 2)))
    summary = seed_summary(rows, {}, np.random.default_rng(0))
    (tmp_path / "exp" / "results.json").write_text(json.dumps({"config": {"eval_k": 8, "seeds": "0,1,2"},
                                                                "rows": rows, "summary": summary}))
    fig8.make(tmp_path / "figs", experiment=tmp_path / "exp")
    data = json.loads((tmp_path / "figs" / "fig08_llm_training.json").read_text())
    ttrl = data["rows"][1]
    assert ttrl["algorithm"] == "ttrl" and ttrl["n_seeds"] == 3 and ttrl["mean_accuracy"] == pytest.approx(0.8)
    assert ttrl["mean_accuracy_ci95"] == pytest.approx(4.303 * 0.1 / np.sqrt(3), abs=1e-4)
    assert data["rows"][0]["mean_accuracy_ci95"] == 0.0  # one base model
    assert data["curves"]["ttrl"]["train_accuracy"] == pytest.approx([0.8, 0.8])


def test_gap_fraction_per_seed_against_hand_values():
    from llm.intervals import gap_fractions

    rows = [{"algorithm": "base", "mean_accuracy": 0.5}]
    for s, (gt, x) in enumerate(((0.9, 0.7), (0.7, 0.6))):
        rows += [{"algorithm": f"gt-grpo@seed{s}", "variant": "gt-grpo", "train_seed": s, "mean_accuracy": gt},
                 {"algorithm": f"x@seed{s}", "variant": "x", "train_seed": s, "mean_accuracy": x}]
    (gap,) = gap_fractions(rows)
    assert gap["per_seed_gap_fraction"] == pytest.approx([0.5, 0.5])  # (0.7-0.5)/(0.9-0.5), (0.6-0.5)/(0.7-0.5)
    assert gap["gain_points"]["mean"] == pytest.approx(15.0)
    assert gap["gap_fraction"]["half_width"] == pytest.approx(0.0, abs=1e-12)


def test_committed_sweep_and_figure12_agree(tmp_path):
    """results/llm_overlap_sweep.json (python -m llm.overlap_sweep on the sweep's folders): 3 levels, the
    markdown is its rendering, and figure 12 plots exactly its numbers."""
    from pathlib import Path

    from figures import fig12_overlap_sweep as fig12
    from llm.overlap_sweep import ALGORITHMS, markdown

    results = Path(__file__).resolve().parent.parent / "results"
    data = json.loads((results / "llm_overlap_sweep.json").read_text())
    assert [e["overlap"] for e in data["levels"]] == [0.0, 0.5, 1.0]
    assert (results / "llm_overlap_sweep.md").read_text().startswith(markdown(data))
    for e in data["levels"]:
        for a in ALGORITHMS:
            lo, hi = e["rows"][a]["mean_accuracy_bootstrap"]
            assert lo <= e["rows"][a]["mean_accuracy"] <= hi
    fig = fig12.compute()
    assert fig["rows"]["ttrl"] == [e["rows"]["ttrl"] for e in data["levels"]]
