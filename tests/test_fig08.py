"""Figure 8 reads the LLM experiment's outputs: pinned on a synthetic experiment folder in the exact format
`dagsim llm experiment` writes (results.json + runs/<name>/metrics.jsonl)."""

import json

import pytest

from dagsim.errors import DomainError
from figures import fig08_llm_training as fig8


def _fake_experiment(root):
    rows = [{"algorithm": "base", "greedy_accuracy": 0.9, "mean_accuracy": 0.5, "maj_at_k": 0.8, "pass_at_k": 0.99,
             "answer_entropy": 1.1, "steps": 0, "seconds": 1.0},
            {"algorithm": "coherence-grpo[single-view]", "greedy_accuracy": 1.0, "mean_accuracy": 0.7,
             "maj_at_k": 0.95, "pass_at_k": 1.0, "answer_entropy": 0.6, "steps": 3, "seconds": 2.0}]
    (root / "results.json").write_text(json.dumps({"config": {"eval_k": 8}, "rows": rows}))
    run = root / "runs" / "coherence-grpo-single-view"
    run.mkdir(parents=True)
    run.joinpath("metrics.jsonl").write_text("\n".join(
        json.dumps({"step": s, "train_accuracy": 0.4 + 0.1 * s, "answer_entropy": 1.2 - 0.2 * s}) for s in (1, 2, 3)))


def test_figure8_from_experiment_outputs(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    _fake_experiment(exp)
    paths = fig8.make(tmp_path / "figs", experiment=exp)
    data = json.loads((tmp_path / "figs" / "fig08_llm_training.json").read_text())
    assert [r["algorithm"] for r in data["rows"]] == ["base", "coherence-grpo[single-view]"]
    assert data["curves"]["coherence-grpo[single-view]"]["answer_entropy"] == pytest.approx([1.0, 0.8, 0.6])
    for ext in ("png", "pdf"):
        assert (tmp_path / "figs" / f"fig08_llm_training.{ext}").stat().st_size > 1000
    assert paths["json"].endswith("fig08_llm_training.json")


def test_figure8_without_experiment_is_a_clear_error(tmp_path):
    with pytest.raises(DomainError, match="needs an LLM experiment"):
        fig8.compute(experiment=tmp_path / "missing")
