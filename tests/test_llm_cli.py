"""``dagsim llm`` entry point: the experiment pipeline end to end (tiny settings) and fail-fast errors."""

import json

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
    payload = json.loads((out / "results.json").read_text())
    rows = payload["rows"]
    assert [r["algorithm"] for r in rows] == ["base", "gt-grpo", "coherence-grpo[geometric]"]
    for r in rows:
        for key in (
            "greedy_accuracy",
            "mean_accuracy",
            "maj_at_k",
            "pass_at_k",
            "answer_entropy",
            "steps",
            "seconds",
        ):
            assert key in r
        assert 0.0 <= r["mean_accuracy"] <= r["pass_at_k"] <= 1.0
    assert rows[1]["steps"] == 1
    assert "| gt-grpo |" in (out / "results.md").read_text()
    assert (out / "accuracy.png").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0
    assert (out / "runs" / "gt-grpo" / "final" / "config.json").is_file()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(out / "base"),
                "--eval-k",
                "2",
                "--eval-max-problems",
                "1",
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "m.json").read_text())["k"] == 2
