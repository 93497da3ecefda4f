"""TRL bridge: G verification, group integrity, parity with the trainer's rewards, two real GRPOTrainer steps.

The two-process runs are in ``test_llm_trl_multiprocess.py``."""

from pathlib import Path

import numpy as np
import pytest

from dagsim.errors import ValidationError
from llm.tasks import Problem
from llm.trainer import TrainConfig, score_groups

pytestmark = pytest.mark.llm
trl_rewards = pytest.importorskip("llm.trl_rewards")


def _texts(answers):
    return [" x" if a is None else f" 2+2=4. #### {a}" for a in answers]


@pytest.mark.parametrize("algorithm", ["gt-grpo", "ttrl", "empo", "coherence-grpo", "diversity-grpo"])
def test_bridge_rewards_equal_the_trainers(algorithm):
    G = 4
    answers = ["4", "4", "5", None, "7", "7", "7", "7"]
    prompts = ["Q: a\nA:"] * G + ["Q: b\nA:"] * G
    logged = {}
    f = trl_rewards.make_reward_func(algorithm, group_size=G, consensus="none")
    got = f(
        prompts=prompts,
        completions=_texts(answers),
        answer=["#### 4"] * G + ["8"] * G,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    # both default to the aqp estimator with RLOO-aware (G - 1) tables: TRL's mean-centring is (G-1)/G x RLOO
    config = TrainConfig(algorithm=algorithm, group_size=G, consensus="none")
    expected = np.concatenate(
        [
            score_groups(
                [Problem("a", ("Q: a\nA:",), "4")],
                _texts(answers[:G]),
                views=1,
                config=config,
                multipliers=np.zeros(1),
            ).rewards.ravel(),
            score_groups(
                [Problem("b", ("Q: b\nA:",), "8")],
                _texts(answers[G:]),
                views=1,
                config=config,
                multipliers=np.zeros(1),
            ).rewards.ravel(),
        ]
    )
    np.testing.assert_array_equal(np.array(got), expected)
    assert logged["alft/n_unextracted"] == 1.0
    assert logged["alft/majority_ratio"] == pytest.approx((0.5 + 1.0) / 2)


TINY_BASE = "trl_tiny_base"


def build_tiny_base(root: Path) -> Path:
    """A tiny 2-view checkpoint, built once per pytest session (under ``root``), that writes ``#### N`` often.

    30 SFT steps at lr 1e-2 are enough for sampled completions to carry varied answers (so groups have
    reward variance); 5 steps at the default warm-up (the old fixture) gave no answers at all.
    """
    from llm.model import ModelConfig
    from llm.pretrain import PretrainConfig, pretrain
    from llm.tasks import ArithmeticTaskConfig

    base = root / TINY_BASE
    if not (base / "config.json").is_file():
        pretrain(
            PretrainConfig(
                out=str(base),
                model=ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64, max_positions=96),
                steps=30,
                warmup=5,
                lr=1e-2,
                batch_size=8,
                vocab_size=160,
                progress=False,
                task=ArithmeticTaskConfig(n_views=2),
            )
        )
    return base


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    return build_tiny_base(tmp_path_factory.getbasetemp())


def test_split_group_is_a_clear_error_naming_the_fix():
    f = trl_rewards.make_reward_func("ttrl", group_size=4)
    with pytest.raises(ValidationError, match="multiple of group_size = G = 4"):
        f(prompts=["p"] * 6, completions=_texts(["1"] * 6))
    with pytest.raises(ValidationError, match="arrived split"):
        f(prompts=["p", "p", "q", "q"], completions=_texts(["1"] * 4))


def test_g_bound_at_half_the_group_is_an_error_not_two_half_groups():
    """The issue's case: answers [1,1,1,2,2,2,2,2] of one prompt, G bound 4 where TRL uses 8."""
    answers = ["1", "1", "1", "2", "2", "2", "2", "2"]
    with pytest.raises(ValidationError, match="groups 0 and 1 .* same prompt: G = 4"):
        trl_rewards.make_reward_func("ttrl", group_size=4)(prompts=["p"] * 8, completions=_texts(answers))
    got = trl_rewards.make_reward_func("ttrl", group_size=8)(prompts=["p"] * 8, completions=_texts(answers))
    assert got == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # the whole group's majority is "2"


def test_multi_view_consensus_through_problem_ids():
    from dagsim.grpo.rewards import consensus_group_rewards

    f = trl_rewards.make_reward_func("coherence-grpo", group_size=2, consensus="geometric")
    prompts, texts = ["v0", "v0", "v1", "v1"], _texts(["3", "4", "3", "3"])
    got = f(prompts=prompts, completions=texts, problem_id=["p"] * 4, n_views=[2] * 4)
    expected = consensus_group_rewards(
        [np.array([0, 1]), np.array([0, 0])], n_answers=2, tau=1.0, consensus="geometric"
    )
    np.testing.assert_array_equal(np.array(got), np.concatenate(expected))
    by_arg = trl_rewards.make_reward_func("coherence-grpo", group_size=2, consensus="geometric", n_views={"p": 2})
    assert by_arg(prompts=prompts, completions=texts, problem_id=["p"] * 4) == got
    with pytest.raises(ValidationError, match="problem_id"):
        f(prompts=["v0", "v0"], completions=_texts(["3", "4"]))
    with pytest.raises(ValidationError, match="number of views: add an 'n_views'"):
        f(prompts=prompts, completions=texts, problem_id=["p"] * 4)


def test_a_problem_missing_views_names_the_problem_and_the_settings():
    f = trl_rewards.make_reward_func("coherence-grpo", group_size=2, consensus="arithmetic")
    with pytest.raises(ValidationError, match=r"problem 'q' has 1 of its 2 views.*shuffle_dataset=False"):
        f(
            prompts=["a0", "a0", "a1", "a1", "q0", "q0"],
            completions=_texts(["3", "4", "3", "3", "1", "1"]),
            problem_id=["p"] * 4 + ["q"] * 2,
            n_views=[2] * 6,
        )
    with pytest.raises(ValidationError, match="disagree on n_views"):
        f(prompts=["a0", "a0", "a1", "a1"], completions=_texts(["3"] * 4), problem_id=["p"] * 4, n_views=[2, 2, 3, 3])


def test_strict_mode_keeps_the_old_contract():
    f = trl_rewards.make_reward_func("ttrl", group_size=4, strict=True)
    with pytest.raises(ValidationError, match="strict=True: a process holds a partial group"):
        f(prompts=["p"] * 6, completions=_texts(["1"] * 6))
    assert f(prompts=["p"] * 4, completions=_texts(["1", "1", "2", None])) == [1.0, 1.0, 0.0, 0.0]


def test_rloo_transform_gives_the_rloo_advantage_after_trls_centring():
    """``baseline='rloo'`` returns G/(G-1)·R: mean-centring it is dagsim's RLOO advantage (T11 a, d)."""
    from dagsim.grpo.advantages import advantages

    G, answers = 4, ["4", "4", "5", None, "7", "7", "7", "1"]
    prompts = ["a"] * G + ["b"] * G
    plain_func = trl_rewards.make_reward_func("coherence-grpo", group_size=G)
    plain = np.array(plain_func(prompts=prompts, completions=_texts(answers)))
    scaled = np.array(
        trl_rewards.make_reward_func("coherence-grpo", group_size=G, baseline="rloo")(
            prompts=prompts, completions=_texts(answers)
        )
    ).reshape(-1, G)
    centred = scaled - scaled.mean(axis=1, keepdims=True)  # what TRL does with scale_rewards="none"
    rloo, _ = advantages(plain.reshape(-1, G), baseline="rloo", scale="none")
    np.testing.assert_allclose(centred, rloo, rtol=0, atol=1e-12)
    mean_only, _ = advantages(plain.reshape(-1, G), baseline="mean", scale="none")
    assert not np.allclose(centred, mean_only)  # control: the untransformed rewards give GRPO's mean baseline
    with pytest.raises(ValidationError, match="must be >= 3"):
        trl_rewards.make_reward_func("coherence-grpo", group_size=2, baseline="doubly-loo")


def test_make_reward_funcs_takes_g_from_the_config_and_checks_it(tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig

    def config(**kw):
        return GRPOConfig(
            output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=8, **kw
        )

    (f,) = trl_rewards.make_reward_funcs(config(num_generations=8), "ttrl")
    answers = ["1", "1", "1", "2", "2", "2", "2", "2"]
    assert f(prompts=["p"] * 8, completions=_texts(answers)) == [0.0] * 3 + [1.0] * 5
    with pytest.raises(ValidationError, match="scale_rewards='none'"):
        trl_rewards.make_reward_funcs(config(num_generations=4), "ttrl", baseline="rloo")
    views = Dataset.from_list([{"prompt": f"v{j}", "problem_id": "p"} for j in range(2)])
    with pytest.raises(ValidationError, match="shuffle_dataset=False"):
        trl_rewards.make_reward_funcs(config(num_generations=4), "coherence-grpo", consensus="geometric", dataset=views)
    three = Dataset.from_list([{"prompt": f"v{j}", "problem_id": "p"} for j in range(3)])
    with pytest.raises(ValidationError, match="not a multiple of n_views x num_generations = 3 x 4"):
        trl_rewards.make_reward_funcs(
            config(num_generations=4, shuffle_dataset=False), "coherence-grpo", consensus="geometric", dataset=three
        )
    with pytest.raises(ValidationError, match="do not pass group_size"):
        trl_rewards.make_reward_funcs(config(num_generations=4), "ttrl", group_size=4)


def test_two_real_grpo_trainer_steps_on_the_tiny_model(tmp_path, tiny_base):
    """Two real steps: TRL's advantages are the RLOO advantages of our rewards, and the parameters move."""
    pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from dagsim.grpo.advantages import advantages
    from llm.model import load_model
    from llm.tasks import ArithmeticTaskConfig, split_problems

    model, tok = load_model(tiny_base)
    train, _ = split_problems(ArithmeticTaskConfig(n_views=2))
    data = Dataset.from_list([{"prompt": p.views[0], "answer": p.answer} for p in train[:8]])
    G = 4
    args = GRPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=4 * G,
        num_generations=G,
        max_completion_length=24,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        beta=0.0,
        scale_rewards="none",
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
        temperature=1.0,
        top_k=0,
    )
    (reward,) = trl_rewards.make_reward_funcs(args, "coherence-grpo", consensus="none", baseline="rloo")
    calls, trl_advantages = [], []

    def recorded(prompts, completions, **kwargs):
        out = reward(prompts=prompts, completions=completions, **kwargs)
        calls.append((list(prompts), [trl_rewards.completion_text(c) for c in completions], out))
        return out

    class Advantages(TrainerCallback):  # TRL keeps the last generation batch's advantages in _logs
        def on_step_end(self, args, state, control, **kwargs):
            trl_advantages.append(list(trainer._logs["advantages"]))

    recorded.__name__ = reward.__name__
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = GRPOTrainer(
        model=model, reward_funcs=[recorded], args=args, train_dataset=data, processing_class=tok,
        callbacks=[Advantages()],
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == 2 and len(calls) == 2 and len(trl_advantages) == 2
    logged = [h for h in trainer.state.log_history if "alft/answer_entropy" in h]
    assert len(logged) == 2 and all(0.0 <= h["alft/answer_entropy"] <= np.log(G) + 1e-6 for h in logged)
    plain_func = trl_rewards.make_reward_func("coherence-grpo", group_size=G)
    n_signal = 0
    for (prompts, texts, _), got in zip(calls, trl_advantages):
        # TRL's advantages are dagsim's RLOO advantages of the plain (un-transformed) rewards.
        plain = np.array(plain_func(prompts=prompts, completions=texts))
        rloo, n_flat = advantages(plain.reshape(-1, G), baseline="rloo", scale="none")
        np.testing.assert_allclose(np.array(got), rloo.ravel(), rtol=0, atol=1e-5)
        n_signal += len(plain) // G - n_flat
    assert n_signal > 0, "every group had equal rewards: the test would not see a parameter update"
    changed = [k for k, v in model.named_parameters() if not np.array_equal(before[k].numpy(), v.detach().numpy())]
    assert changed, "non-zero advantages but no parameter moved"


def test_example_script_trains_and_rejects_a_layout_that_would_split_views(tmp_path, tiny_base, capsys):
    """``examples/trl_coherence_grpo.py`` in this process (its two-process launch line: the README)."""
    pytest.importorskip("trl")
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[1] / "examples" / "trl_coherence_grpo.py"
    spec = importlib.util.spec_from_file_location("trl_coherence_grpo", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    common = ["--model", str(tiny_base), "--cpu", "--steps", "1", "--problems", "4", "--max-completion-length", "8"]
    out = tmp_path / "ok"
    assert example.main([*common, "--out", str(out), "--per-device-batch", "8"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["num_processes"] == 1 and summary["num_generations"] == 4
    assert 0.0 <= summary["last_metrics"]["alft/answer_entropy"] <= np.log(4) + 1e-6
    assert (out / "final" / "config.json").is_file()
    capsys.readouterr()
    assert example.main([*common, "--out", str(tmp_path / "bad"), "--per-device-batch", "4"]) == 2
    assert "not a multiple of n_views x num_generations = 2 x 4" in capsys.readouterr().err


def test_views_scattered_by_trls_default_shuffle_name_the_problem_and_shuffle_dataset(tmp_path, tiny_base):
    """A real trainer with TRL's default shuffle_dataset=True: the error names the problem and the setting."""
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from llm.model import load_model
    from llm.tasks import ArithmeticTaskConfig, split_problems

    model, tok = load_model(tiny_base)
    train, _ = split_problems(ArithmeticTaskConfig(n_views=2))
    data = Dataset.from_list([{"prompt": v, "problem_id": p.problem_id} for p in train[:8] for v in p.views])
    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=4, max_completion_length=8,
        max_steps=2, report_to="none", save_strategy="no", use_cpu=True, bf16=False, seed=0, disable_tqdm=True,
    )  # fmt: skip
    reward = trl_rewards.make_reward_func("coherence-grpo", consensus="geometric", n_views=2)  # G from the trainer
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data, processing_class=tok)
    with pytest.raises(ValidationError, match=r"problem '.*' has 1 of its 2 views.*now shuffle_dataset=True"):
        trainer.train()


def test_bridge_gives_the_published_label_free_rewards():
    """The bridge scores through llm.rewards.score_problem, as the trainer: TTRL drops unparseable answers from
    the vote (reward 0), ties go to the first answer; EMPO (verl) counts an unparseable answer as a singleton."""
    G = 4
    prompts = ["Q: a\nA:"] * G
    ttrl = trl_rewards.make_reward_func("ttrl", group_size=G)
    assert ttrl(prompts=prompts, completions=_texts([None, None, None, "3"])) == [0.0, 0.0, 0.0, 1.0]
    assert ttrl(prompts=prompts, completions=_texts(["5", "3", "3", "5"])) == [1.0, 0.0, 0.0, 1.0]
    pooled = trl_rewards.make_reward_func("ttrl", group_size=G, no_answer="pool", tie_break="split")
    assert pooled(prompts=prompts, completions=_texts([None, None, None, "3"])) == [1.0, 1.0, 1.0, 0.0]
    assert pooled(prompts=prompts, completions=_texts(["5", "3", "3", "5"])) == [0.5] * 4
    empo = trl_rewards.make_reward_func("empo", group_size=G)
    assert empo(prompts=prompts, completions=_texts([None, None, "3", "3"])) == [0.25, 0.25, 0.5, 0.5]
    with pytest.raises(ValidationError, match="no_answer must be one of"):
        trl_rewards.make_reward_func("ttrl", group_size=G, no_answer="skip")


# ------------------------------------------------------------------ doubly-leave-one-out through ALFTGRPOTrainer


def _empo_doubly_loo_oracle(answers: list) -> np.ndarray:
    """T11b by direct recount for EMPO (verl): R_j = (#samples with z_j, itself included) / group size, an
    unparseable answer (None or "") a singleton; A_i = R_i − mean_{j≠i} R_j^{(−i)}, R_j^{(−i)} recounted on the
    group without sample i. One group's answers -> (G,) advantages."""

    def rewards(group):
        n = len(group)
        return [(1 if a in (None, "") else sum(b == a for b in group)) / n for a in group]

    full = rewards(answers)
    out = []
    for i in range(len(answers)):
        rest = answers[:i] + answers[i + 1 :]
        out.append(full[i] - np.mean(rewards(rest)))
    return np.array(out)


def _ttrl_doubly_loo_oracle(answers: list) -> np.ndarray:
    """T11b by direct recount for TTRL (published code): the pseudo-label is the most frequent parseable
    answer (ties: first in sample order; None or "" out of the vote), R_j = 1[z_j = label] (0 without a label);
    A_i = R_i − mean_{j≠i} R_j^{(−i)}, the label re-voted on the group without sample i."""

    def rewards(group):
        real = [a for a in group if a not in (None, "")]
        if not real:
            return [0.0] * len(group)
        top = max(real.count(a) for a in real)
        label = next(a for a in real if real.count(a) == top)
        return [float(a == label) for a in group]

    full = rewards(answers)
    return np.array([full[i] - np.mean(rewards(answers[:i] + answers[i + 1 :])) for i in range(len(answers))])


def test_doubly_loo_advantages_outside_a_trainer_match_the_recount():
    G = 4
    answers = ["3", "3", None, "5", "7", "7", "7", "1"]
    f = trl_rewards.make_reward_func("empo", group_size=G, baseline="doubly-loo")
    got = f(prompts=["a"] * G + ["b"] * G, completions=_texts(answers))
    assert got == [0.5, 0.5, 0.25, 0.25, 0.75, 0.75, 0.75, 0.25]  # the plain rewards are returned
    oracle = np.concatenate([_empo_doubly_loo_oracle(answers[:G]), _empo_doubly_loo_oracle(answers[G:])])
    np.testing.assert_allclose(f.last_advantages, oracle, rtol=0, atol=1e-12)
    # why TRL cannot express it: the advantages do not sum to zero over a group, mean-centring would
    assert np.abs(oracle.reshape(-1, G).sum(axis=1)).min() > 0.1
    r = np.array(got).reshape(-1, G)
    assert not np.allclose(oracle, (r - r.mean(axis=1, keepdims=True)).ravel(), atol=1e-3)
    answers = ["5", "3", "3", "5", "2", None, None, None]  # ttrl: a tie the first answer wins; a lone label
    f = trl_rewards.make_reward_func("ttrl", group_size=G, baseline="doubly-loo")
    f(prompts=["a"] * G + ["b"] * G, completions=_texts(answers))
    oracle = np.concatenate([_ttrl_doubly_loo_oracle(answers[:G]), _ttrl_doubly_loo_oracle(answers[G:])])
    np.testing.assert_allclose(f.last_advantages, oracle, rtol=0, atol=1e-12)


def _tiny_grpo_setup(tmp_path, tiny_base, **overrides):
    from datasets import Dataset
    from trl import GRPOConfig

    from llm.model import load_model
    from llm.tasks import ArithmeticTaskConfig, split_problems

    model, tok = load_model(tiny_base)
    train, _ = split_problems(ArithmeticTaskConfig(n_views=2))
    data = Dataset.from_list([{"prompt": p.views[0], "answer": p.answer} for p in train[:8]])
    G = 4
    kw = dict(
        output_dir=str(tmp_path / "trl"), per_device_train_batch_size=4 * G, num_generations=G,
        max_completion_length=24, max_steps=2, learning_rate=1e-3, logging_steps=1, report_to="none",
        save_strategy="no", beta=0.0, scale_rewards="none", use_cpu=True, bf16=False, seed=0, disable_tqdm=True,
        temperature=1.0, top_k=0,
    )  # fmt: skip
    kw.update(overrides)
    return model, tok, data, GRPOConfig(**kw)


@pytest.mark.parametrize("scale", ["none", "group"])
def test_two_real_steps_train_on_the_doubly_loo_advantages(tmp_path, tiny_base, scale):
    """ALFTGRPOTrainer trains on T11b's advantages (recounted here), not on TRL's mean-centred ones.

    steps_per_generation = 2: one generation batch buffered over the two steps, shuffled by TRL."""
    pytest.importorskip("trl")
    from llm.trl_rewards import ALFTGRPOTrainer

    G = 4
    model, tok, data, args = _tiny_grpo_setup(
        tmp_path, tiny_base, scale_rewards=scale, per_device_train_batch_size=2 * G, steps_per_generation=2
    )
    (reward,) = trl_rewards.make_reward_funcs(args, "ttrl", baseline="doubly-loo")
    generated, trained = [], []

    class Recording(ALFTGRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            n = len(inputs)
            generated.append(
                (
                    list(self._logs["extra"]["alft/answer"])[-n:],
                    list(self._logs["rewards"][reward.__name__])[-n:],
                    out["advantages"].double().numpy().copy(),
                    list(self._logs["advantages"])[-n:],
                )
            )
            return out

        def _compute_loss(self, model, inputs):
            trained.append(inputs["advantages"].double().numpy().copy())
            return super()._compute_loss(model, inputs)

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = Recording(model=model, reward_funcs=[reward], args=args, train_dataset=data, processing_class=tok)
    trainer.train()
    assert trainer.state.global_step == 2 and len(generated) == 1 and len(trained) == 2
    answers, rewards, advantages, logged = generated[0]
    assert len(answers) == 4 * G
    oracle = []
    for k in range(0, len(answers), G):
        a = _ttrl_doubly_loo_oracle(answers[k : k + G])
        if scale == "group":  # dagsim's group scaling: std (ddof 1) + 1e-4; equal-reward groups get 0
            r = np.array(rewards[k : k + G])
            a = np.zeros(G) if r.max() == r.min() else a / (r.std(ddof=1) + 1e-4)
        oracle.append(a)
    oracle = np.concatenate(oracle)
    np.testing.assert_allclose(advantages, oracle, rtol=0, atol=1e-5)
    np.testing.assert_allclose(logged, oracle, rtol=0, atol=1e-5)  # the completions log shows them too
    # what the two optimizer steps used: TRL's shuffle and split of exactly these advantages
    np.testing.assert_allclose(np.sort(np.concatenate(trained)), np.sort(advantages), rtol=0, atol=0)
    # control: TRL's own advantages of the same rewards (mean-centred, optionally / std) differ
    r = np.array(rewards).reshape(-1, G)
    plain = r - r.mean(axis=1, keepdims=True)
    if scale == "group":
        plain = plain / (r.std(axis=1, ddof=1, keepdims=True) + 1e-4)
    assert np.abs(plain.ravel() - oracle).max() > 1e-2
    assert np.abs(oracle).max() > 0
    changed = [k for k, v in model.named_parameters() if not np.array_equal(before[k].numpy(), v.detach().numpy())]
    assert changed, "non-zero advantages but no parameter moved"


def test_doubly_loo_with_plain_grpo_trainer_is_an_error_naming_the_subclass(tmp_path, tiny_base):
    pytest.importorskip("trl")
    from trl import GRPOTrainer

    model, tok, data, args = _tiny_grpo_setup(tmp_path, tiny_base, max_steps=1, max_completion_length=4)
    (reward,) = trl_rewards.make_reward_funcs(args, "empo", baseline="doubly-loo")
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data, processing_class=tok)
    with pytest.raises(ValidationError, match="needs llm.trl_rewards.ALFTGRPOTrainer, not GRPOTrainer"):
        trainer.train()


@pytest.mark.parametrize("algorithm,consensus", [("coherence-grpo", "geometric"), ("diversity-grpo", "none")])
def test_doubly_loo_advantages_equal_the_trainers(algorithm, consensus):
    """Parity with llm.trainer.score_groups under baseline doubly-loo, multi-view consensus included."""
    G = 4
    answers = ["3", "3", None, "5", "3", "7", "7", "3"]
    views = ("Q: a\nA:", "Q: a'\nA:")
    f = trl_rewards.make_reward_func(algorithm, group_size=G, consensus=consensus, baseline="doubly-loo")
    extra = {"problem_id": ["p"] * 2 * G, "n_views": [2] * 2 * G} if consensus != "none" else {}
    prompts = [views[0]] * G + [views[1]] * G if consensus != "none" else ["a"] * G + ["b"] * G
    f(prompts=prompts, completions=_texts(answers), answer=["#### 3"] * 2 * G, **extra)
    config = TrainConfig(algorithm=algorithm, group_size=G, consensus=consensus, baseline="doubly-loo", scale="none")
    if consensus != "none":
        problems = [Problem("p", views, "3")]
        expected = score_groups(problems, _texts(answers), views=2, config=config, multipliers=np.zeros(1))
        expected = expected.advantages.ravel()
    else:
        expected = np.concatenate([
            score_groups([Problem(k, (k,), "3")], _texts(answers[s : s + G]), views=1, config=config,
                         multipliers=np.zeros(1)).advantages.ravel()
            for k, s in (("a", 0), ("b", G))
        ])  # fmt: skip
    np.testing.assert_allclose(f.last_advantages, expected, rtol=0, atol=1e-12)
    plain = trl_rewards.make_reward_func(algorithm, group_size=G, consensus=consensus, baseline="mean")
    r = np.array(plain(prompts=prompts, completions=_texts(answers), answer=["#### 3"] * 2 * G, **extra))
    assert not np.allclose(f.last_advantages, (r.reshape(-1, G) - r.reshape(-1, G).mean(1, keepdims=True)).ravel())
