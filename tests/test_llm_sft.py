"""``dagsim llm sft`` on user data, new or existing models (Llama, Qwen2 + chat template), and the
sft -> train -> evaluate path end to end (reasoning-gym when installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm.cli import main  # noqa: E402
from llm.tasks import ArithmeticTaskConfig, all_problems, sample_trace, split_data  # noqa: E402

pytestmark = pytest.mark.llm

TINY_FLAGS = ["--model-hidden-size", "32", "--model-n-layers", "2", "--model-n-heads", "2",
              "--model-intermediate-size", "64"]


def _export_embedded(path, n: int, seed: int = 0):
    """The embedded generator exported as GSM8K-style JSONL (noise-free worked solutions)."""
    rng = np.random.default_rng(seed)
    problems = all_problems(ArithmeticTaskConfig(n_views=1))
    rows = []
    for i in rng.permutation(len(problems))[:n]:
        p = problems[int(i)]
        completion, _ = sample_trace(p, 0, rng, step_noise=0.0)
        rows.append({"question": p.views[0][3:-3], "answer": completion.strip()})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sft_labels_are_the_target_and_eos_only():
    from llm.sft import sft_batch, sft_examples
    from llm.tasks import Problem
    from tests.test_llm_generation import _bos_tokenizer

    tok = _bos_tokenizer()
    examples = sft_examples([Problem("p", ("Q: a",), "1", target="b a"), Problem("u", ("Q: b",), None)], tok)
    assert examples == [([2, 6, 4], [5, 4, 1])]  # BOS-prompt as the sampler encodes it; target + EOS
    ids, mask, labels = sft_batch(examples * 2, [0, 1], tok.pad_token_id)
    assert ids[0].tolist() == [2, 6, 4, 5, 4, 1] and mask.sum().item() == 12
    assert labels[0].tolist() == [-100, -100, -100, 5, 4, 1]


def test_sft_new_model_learns_on_the_training_part_only(tmp_path):
    import dataclasses

    from llm.model import ModelConfig
    from llm.sft import SFTConfig, sft
    from llm.tasks import load_jsonl

    data = _export_embedded(tmp_path / "emb.jsonl", 60)
    config = SFTConfig(data=str(data), out=str(tmp_path / "m"), steps=40, batch_size=8, lr=1e-2, warmup=2,
                       vocab_size=160, progress=False, eval_fraction=0.25, split_seed=3,
                       arch=ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64))
    first = sft(dataclasses.replace(config, steps=1, out=str(tmp_path / "m0")))
    result = sft(config)
    assert result["n_train"] == 45 and result["n_held_out"] == 15
    held_ids = [p.problem_id for p in split_data(load_jsonl(data), 0.25, 3)[1]]
    assert [p.problem_id for p in result["held_out"]] == held_ids
    assert result["final_loss_ema"] < 0.6 * first["final_loss_ema"]  # it learns
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).config.model_type == "llama"
    assert json.loads((tmp_path / "m" / "sft.json").read_text())["n_train"] == 45


def test_sft_cli_on_an_existing_model_and_bad_input(tmp_path, capsys):
    data = _export_embedded(tmp_path / "emb.jsonl", 30)
    base = tmp_path / "base"
    assert main(["sft", "--data", str(data), "--out", str(base), "--steps", "2", "--vocab-size", "160",
                 "--no-progress", "--no-eval", *TINY_FLAGS]) == 0
    out = tmp_path / "ft"
    assert main(["sft", "--model", str(base), "--data", str(data), "--out", str(out), "--steps", "2",
                 "--lr", "1e-4", "--no-progress", "--eval-k", "1", "--eval-max-problems", "2"]) == 0
    text = capsys.readouterr().out
    assert "24 training examples, 6 held out" in text and "held-out evaluation:" in text
    assert main(["sft", "--out", str(tmp_path / "x")]) == 2
    assert "sft.data is required" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": "n/a"}\n')
    assert main(["sft", "--data", str(bad), "--out", str(tmp_path / "y"), "--no-progress"]) == 2
    assert "bad.jsonl:2: no parseable final answer" in capsys.readouterr().err


def test_data_scorer_is_the_task_reward():
    """gt-grpo's task reward comes from a problem's own scorer (reasoning-gym's score_answer) when it has one.
    Control: without a scorer the same texts get the 0/1 ground-truth reward."""
    from llm.tasks import Problem
    from llm.trainer import TrainConfig, score_groups

    texts = [" #### 3", " #### 4", " x", " #### 3"]
    cfg = TrainConfig(algorithm="gt-grpo", group_size=4, views=1)
    scored = Problem("p", ("Q: a\nA:",), "3", scorer=lambda a: {"3": 1.0, "4": 0.5}.get(a, 0.0))
    rewards = score_groups([scored], texts, views=1, config=cfg, multipliers=np.zeros(1)).rewards
    assert rewards.tolist() == [[1.0, 0.5, 0.0, 1.0]]
    plain = Problem("p", ("Q: a\nA:",), "3")
    assert score_groups([plain], texts, views=1, config=cfg, multipliers=np.zeros(1)).rewards.tolist() == [
        [1.0, 0.0, 0.0, 1.0]
    ]


def test_reasoning_gym_sft_train_evaluate_end_to_end_on_qwen2(tmp_path, capsys):
    """reasoning-gym data -> sft a new Qwen2 (byte-level BPE, chat template, two EOS ids) -> 4 steps of
    coherence-grpo (consensus none) on the training part -> evaluate on the held-out part."""
    pytest.importorskip("reasoning_gym")
    spec = "reasoning-gym:chain_sum?size=40&seed=1&min_terms=2&max_terms=2&min_digits=1&max_digits=1"
    base, run = tmp_path / "base", tmp_path / "run"
    assert main(["sft", "--model", "new", "--model-family", "qwen2", "--data", spec, "--chat-template",
                 "--out", str(base), "--steps", "30", "--batch-size", "8", "--lr", "1e-2", "--warmup", "2",
                 "--no-progress", "--no-eval", *TINY_FLAGS]) == 0
    config = json.loads((base / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert json.loads((base / "generation_config.json").read_text())["eos_token_id"] == [2, 0]
    assert main(["train", "--model", str(base), "--data", spec, "--chat-template", "--out", str(run),
                 "--algorithm", "coherence-grpo", "--consensus", "none", "--steps", "4", "--prompts-per-step", "2",
                 "--group-size", "4", "--max-new-tokens", "8", "--no-progress", "--eval-k", "2",
                 "--stop-string", "\\n"]) == 0
    assert "held-out evaluation:" in capsys.readouterr().out
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["completion_length"] <= 8 for r in rows)
    metrics_path = tmp_path / "m.json"
    assert main(["evaluate", "--model", str(run / "final"), "--data", spec, "--eval-fraction", "0.2",
                 "--chat-template", "--eval-k", "2", "--eval-max-new-tokens", "8", "--json", str(metrics_path)]) == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["n_prompts"] == 8 and 0.0 <= metrics["mean_accuracy"] <= metrics["pass_at_k"] <= 1.0
