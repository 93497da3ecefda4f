"""``dagsim llm`` entry point: the experiment pipeline end to end (tiny settings) and fail-fast errors."""

import json

import numpy as np
import pytest

from llm.cli import field_docs, main
from llm.trainer import TrainConfig

pytestmark = pytest.mark.llm


def test_every_train_field_is_documented_for_help():
    import dataclasses

    docs = field_docs(TrainConfig)
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(docs)


def test_bad_input_prints_one_message_and_exits_2(capsys, tmp_path):
    assert main(["train", "--algorithm", "nope"]) == 2
    assert "algorithm must be one of" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert main(["experiment", "--algorithms", "bogus", "--out", str(tmp_path / "x")]) == 2


def test_experiment_end_to_end_writes_results_table_and_plots(tmp_path, capsys):
    out = tmp_path / "exp"
    code = main(
        [
            "experiment",
            "--out",
            str(out),
            "--pretrain-steps",
            "3",
            "--steps",
            "1",
            "--prompts-per-step",
            "2",
            "--group-size",
            "2",
            "--eval-k",
            "2",
            "--eval-max-problems",
            "2",
            "--no-progress",
            "--algorithms",
            "gt-grpo,coherence-grpo[geometric]",
        ]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    payload = json.loads((out / "results.json").read_text())
    assert list(payload) == ["config", "total_seconds", "rows"]
    cfg = payload["config"]
    assert (cfg["pretrain_steps"], cfg["steps"], cfg["prompts_per_step"], cfg["group_size"]) == (3, 1, 2, 2)
    assert (cfg["eval_k"], cfg["eval_max_problems"]) == (2, 2)
    rows = payload["rows"]
    assert [r["algorithm"] for r in rows] == ["base", "gt-grpo", "coherence-grpo[geometric]"]
    metrics = ("greedy_accuracy", "mean_accuracy", "maj_at_k", "pass_at_k", "answer_entropy")
    for r in rows:
        assert list(r)[:8] == ["algorithm", *metrics, "steps", "seconds"]
        assert 0.0 <= r["mean_accuracy"] <= r["pass_at_k"] <= 1.0 and r["maj_at_k"] <= r["pass_at_k"]
        # 2 problems x 2 views = 4 prompts, k = 2 samples each: mean accuracy is a multiple of 1/8
        assert (8 * r["mean_accuracy"]).is_integer()
        assert 0.0 <= r["answer_entropy"] <= np.log(2) + 1e-12  # k = 2 samples: at most 2 answers per prompt
    assert [r["steps"] for r in rows] == [0, 1, 1]
    # results.md and the printed table are the JSON rows, row for row, in order.
    expected = [f"| {r['algorithm']} | {r['greedy_accuracy']:.3f} | {r['mean_accuracy']:.3f} | "
                f"{r['maj_at_k']:.3f} | {r['pass_at_k']:.3f} | {r['answer_entropy']:.3f} | {r['steps']} | "
                f"{r['seconds']:.0f} |" for r in rows]
    md = (out / "results.md").read_text().splitlines()
    assert md[0] == "| algorithm | greedy acc | mean acc | maj@2 | pass@2 | answer entropy | steps | seconds |"
    assert md[2:] == expected
    assert all(line in stdout.splitlines() for line in expected)
    assert (out / "accuracy.png").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0
    assert (out / "runs" / "gt-grpo" / "final" / "config.json").is_file()
    # (With 3 pretraining steps the model emits no parseable answer: the metrics are 0 and no_answer_rate 1.)
    assert rows[0]["no_answer_rate"] == 1.0 and rows[0]["mean_accuracy"] == 0.0
    # Independent re-evaluation: `evaluate` on the saved checkpoints with the experiment's evaluation
    # settings (seed = experiment seed + 1) reproduces the base and gt-grpo rows exactly.
    for model_dir, row in ((out / "base", rows[0]), (out / "runs" / "gt-grpo" / "final", rows[1])):
        m_json = tmp_path / f"{row['algorithm']}.json"
        argv = ["evaluate", "--model", str(model_dir), "--eval-k", "2", "--eval-max-problems", "2",
                "--eval-seed", str(cfg["seed"] + 1), "--json", str(m_json)]
        assert main(argv) == 0
        again = json.loads(m_json.read_text())
        assert again["k"] == 2
        shared = [k for k in row if k not in ("algorithm", "steps", "seconds") and not k.endswith("_last5")]
        assert set(metrics) <= set(shared) and {k: again[k] for k in shared} == {k: row[k] for k in shared}


def test_experiment_in_two_worker_processes_equals_sequential_and_resumes(tmp_path):
    """Rows do not depend on the number of workers (each algorithm is seeded on its own); --resume reuses
    the finished algorithms (row.json with a matching fingerprint) and reruns a changed one."""
    from llm.experiment import ExperimentConfig, run_experiment

    common = dict(
        pretrain_steps=3, steps=1, prompts_per_step=2, group_size=2, eval_k=2, eval_max_problems=1,
        progress=False, algorithms="gt-grpo,ttrl",
    )
    seq = run_experiment(ExperimentConfig(out=str(tmp_path / "seq"), workers=1, **common))["rows"]
    base = str(tmp_path / "seq" / "base")
    par = run_experiment(ExperimentConfig(out=str(tmp_path / "par"), workers=2, base_model=base, **common))["rows"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows[1:]]  # noqa: E731
    assert strip(par) == strip(seq)
    ttrl_row = tmp_path / "par" / "runs" / "ttrl" / "row.json"
    stamp = ttrl_row.stat().st_mtime_ns
    again = run_experiment(
        ExperimentConfig(out=str(tmp_path / "par"), workers=1, base_model=base, resume=True, **common)
    )["rows"]
    assert strip(again) == strip(par) and ttrl_row.stat().st_mtime_ns == stamp  # reused, not retrained
    redo = run_experiment(ExperimentConfig(out=str(tmp_path / "par"), base_model=base, reevaluate=True, **common))
    assert [r["algorithm"] for r in redo["rows"]] == ["base", "gt-grpo", "ttrl"]
    assert all(r["reevaluation_changed"] == {} for r in redo["rows"][1:])  # same weights, seeds, 1 thread
    changed = run_experiment(
        ExperimentConfig(out=str(tmp_path / "par"), workers=1, base_model=base, resume=True,
                         **{**common, "steps": 2})
    )["rows"]
    assert [r["steps"] for r in changed[1:]] == [2, 2] and ttrl_row.stat().st_mtime_ns != stamp
