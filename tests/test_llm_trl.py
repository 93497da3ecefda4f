"""TRL bridge: group integrity, parity with the trainer's rewards, and two real GRPOTrainer steps."""

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
    # the bridge's estimator and G-tables (issue 12 moved the trainer's defaults to aqp + RLOO-aware tables)
    config = TrainConfig(algorithm=algorithm, group_size=G, consensus="none", estimator="minimax_monotone",
                         rloo_aware=False)
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


def test_split_group_is_a_clear_error_naming_the_fix():
    f = trl_rewards.make_reward_func("ttrl", group_size=4)
    with pytest.raises(ValidationError, match="multiple of num_generations"):
        f(prompts=["p"] * 6, completions=_texts(["1"] * 6))
    with pytest.raises(ValidationError, match="arrived split"):
        f(prompts=["p", "p", "q", "q"], completions=_texts(["1"] * 4))


def test_multi_view_consensus_through_problem_ids():
    from dagsim.grpo.rewards import consensus_group_rewards

    f = trl_rewards.make_reward_func("coherence-grpo", group_size=2, consensus="geometric")
    got = f(prompts=["v0", "v0", "v1", "v1"], completions=_texts(["3", "4", "3", "3"]), problem_id=["p"] * 4)
    expected = consensus_group_rewards(
        [np.array([0, 1]), np.array([0, 0])], n_answers=2, tau=1.0, consensus="geometric"
    )
    np.testing.assert_array_equal(np.array(got), np.concatenate(expected))
    with pytest.raises(ValidationError, match="problem_id"):
        f(prompts=["v0", "v0"], completions=_texts(["3", "4"]))


def test_two_real_grpo_trainer_steps_on_the_tiny_model(tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from llm.model import ModelConfig, load_model
    from llm.pretrain import PretrainConfig, pretrain
    from llm.tasks import ArithmeticTaskConfig, split_problems

    base = tmp_path / "base"
    pretrain(
        PretrainConfig(
            out=str(base),
            model=ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64, max_positions=96),
            steps=5,
            batch_size=8,
            vocab_size=160,
            progress=False,
            task=ArithmeticTaskConfig(n_views=1),
        )
    )
    model, tok = load_model(base)
    train, _ = split_problems(ArithmeticTaskConfig(n_views=1))
    data = Dataset.from_list([{"prompt": p.views[0], "answer": p.answer} for p in train[:8]])
    G = 4
    args = GRPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=G,
        num_generations=G,
        max_completion_length=12,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        beta=0.0,
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
        temperature=1.0,
    )
    reward = trl_rewards.make_reward_func("coherence-grpo", group_size=G, consensus="none")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=data, processing_class=tok
    )
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [h for h in trainer.state.log_history if "alft/answer_entropy" in h]
    assert logged and all(0.0 <= h["alft/answer_entropy"] <= np.log(G) + 1e-9 for h in logged)
    changed = any(
        not np.array_equal(before[k].numpy(), v.detach().numpy()) for k, v in model.named_parameters()
    )
    zero_adv = all(
        h.get("frac_reward_zero_std", 0.0) == 1.0 for h in trainer.state.log_history if "loss" in h
    )
    assert changed or zero_adv  # parameters move unless every group had zero reward variance
