"""GRPO trainer on a tiny 2-layer model: reward parity with dagsim, degenerate groups, the loss, resume."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from dagsim.errors import ValidationError  # noqa: E402
from llm.model import ModelConfig  # noqa: E402
from llm.pretrain import PretrainConfig, pretrain  # noqa: E402
from llm.tasks import ArithmeticTaskConfig, Problem  # noqa: E402
from llm.trainer import (  # noqa: E402
    TrainConfig,
    clipped_policy_loss,
    k3_kl,
    score_groups,
    token_weights,
    train,
)

pytestmark = pytest.mark.llm

TINY = ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64, max_positions=96)
#: Resumed and uninterrupted CPU runs execute the same float32 kernels on the same inputs: bitwise equal.
ATOL_RESUME = 0.0


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer model briefly pretrained on the embedded task (seconds on a CPU)."""
    out = tmp_path_factory.mktemp("tiny") / "base"
    summary = pretrain(
        PretrainConfig(
            out=str(out),
            model=TINY,
            steps=15,
            batch_size=16,
            lr=1e-2,
            warmup=2,
            vocab_size=160,
            progress=False,
            task=ArithmeticTaskConfig(n_views=2),
        )
    )
    assert summary["n_parameters"] < 100_000
    return out


def test_pretrained_checkpoint_loads_with_auto_classes(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    assert model.config.num_hidden_layers == 2 and len(tok) == model.config.vocab_size
    summary = json.loads((tiny_model_dir / "pretrain.json").read_text())
    assert summary["final_loss_ema"] < np.log(len(tok))  # learned something beyond uniform


# ------------------------------------------------------------------------------------ reward parity


def _problem(answer="7", views=2):
    return Problem("p", tuple(f"Q: view {v}\nA:" for v in range(views)), answer)


def _texts(answers):
    return [" x" if a is None else f" 1+1=2. #### {a}" for a in answers]


@pytest.mark.parametrize(
    "algorithm, extra",
    [
        ("gt-grpo", {}),
        ("ttrl", {}),
        ("empo", {}),
        ("coherence-grpo", {"consensus": "none"}),
        ("coherence-grpo", {"consensus": "arithmetic"}),
        ("coherence-grpo", {"consensus": "geometric"}),
        ("diversity-grpo", {"tau": 0.3}),
        ("pairwise-coherence-grpo", {}),
        ("constrained-grpo", {"base_objective": "reward"}),
    ],
)
def test_rewards_and_advantages_equal_dagsim_on_the_same_groups(algorithm, extra):
    """The trainer's rewards are exactly dagsim's on hand-indexed answer groups (one space per problem)."""
    from dagsim.grpo.advantages import advantages
    from dagsim.grpo.rewards import (
        consensus_group_rewards,
        constrained_rewards,
        group_rewards,
        pairwise_group_rewards,
    )

    config = TrainConfig(algorithm=algorithm, group_size=4, **extra)
    view0 = ["7", "7", "8", None]
    view1 = ["9", "7", "9", "9"]
    # Shared index space in order of first appearance: 7 -> 0, 8 -> 1, none -> 2, 9 -> 3.
    idx = [np.array([0, 0, 1, 2]), np.array([3, 0, 3, 3])]
    n, r = 4, np.array([1.0, 0.0, 0.0, 0.0])
    multipliers = np.array([0.7])
    scores = score_groups(
        [_problem()], _texts(view0 + view1), views=2, config=config, multipliers=multipliers
    )
    tau, est = config.tau, config.estimator
    ts = config.group_size - 1 if config.baseline in ("rloo", "mean") and config.rloo_aware else None  # T11a
    if algorithm == "gt-grpo":
        expected = group_rewards("reward", np.stack(idx), n_answers=n, task_reward=r, estimator=est)
    elif algorithm in ("ttrl", "empo"):
        expected = group_rewards(algorithm, np.stack(idx), n_answers=n, tau=tau, estimator=est)
    elif algorithm == "coherence-grpo" and config.consensus == "none":
        expected = group_rewards("sharpen", np.stack(idx), n_answers=n, tau=tau, estimator=est, table_size=ts)
    elif algorithm == "coherence-grpo":
        expected = np.stack(
            consensus_group_rewards(idx, n_answers=n, tau=tau, consensus=config.consensus, estimator=est,
                                    rloo_aware=ts is not None)
        )
    elif algorithm == "diversity-grpo":
        expected = group_rewards("entropy", np.stack(idx), n_answers=n, tau=tau, task_reward=r, estimator=est,
                                 table_size=ts)
    elif algorithm == "pairwise-coherence-grpo":
        expected = np.stack(pairwise_group_rewards(idx, n_answers=n, tau=tau))
    else:
        base = group_rewards("reward", np.stack(idx), n_answers=n, task_reward=r, estimator=est)
        odd = np.array([[1.0, 0.0, 0.0, 1.0]])  # 7 and 9 are odd, 8 and the no-answer bucket are not
        expected = np.stack(
            [
                constrained_rewards(b, i, constraint_coefs=odd, multipliers=multipliers)
                for b, i in zip(base, idx, strict=True)
            ]
        )
        assert scores.constraint_value == pytest.approx(np.mean([0.5, 1.0]))
    np.testing.assert_array_equal(scores.rewards, np.asarray(expected, dtype=np.float64))
    adv, n_zero = advantages(np.asarray(expected, dtype=np.float64), baseline="rloo", scale="none")
    np.testing.assert_array_equal(scores.advantages, adv)
    assert scores.metrics["frac_zero_std_groups"] == n_zero / 2
    assert scores.metrics["n_unextracted"] == 1


@pytest.mark.parametrize("scale", ["none", "group", "batch"])
@pytest.mark.parametrize(
    "answers, zero_std",
    [(["5"] * 4, True), (["1", "2", "3", "4"], False), ([None] * 4, True)],
    ids=["all-equal", "all-distinct", "all-unparseable"],
)
@pytest.mark.parametrize("algorithm", ["gt-grpo", "ttrl", "empo", "coherence-grpo", "diversity-grpo"])
def test_degenerate_groups_give_finite_advantages_and_are_counted(algorithm, answers, zero_std, scale):
    config = TrainConfig(algorithm=algorithm, group_size=4, consensus="none", scale=scale)
    scores = score_groups(
        [_problem("5", views=1)], _texts(answers), views=1, config=config, multipliers=np.zeros(1)
    )
    assert np.all(np.isfinite(scores.rewards)) and np.all(np.isfinite(scores.advantages))
    if zero_std or np.ptp(scores.rewards) == 0:  # e.g. gt reward of an all-wrong group
        np.testing.assert_array_equal(scores.advantages, 0.0)
        assert scores.metrics["frac_zero_std_groups"] == 1.0
    assert scores.metrics["n_unextracted"] == sum(a is None for a in answers)
    expected_entropy = 0.0 if len(set(answers)) == 1 else np.log(4)
    assert scores.metrics["answer_entropy"] == pytest.approx(expected_entropy)


# --------------------------------------------------------------------------------------------- loss


def test_loss_pieces_pinned():
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    old = torch.log(torch.tensor([[0.25, 0.25]]))
    loss, clipped = clipped_policy_loss(logp, old, torch.tensor([1.0]), 0.2, 0.2)
    np.testing.assert_allclose(loss, [[-1.2, -1.0]], rtol=1e-6)  # ratio 2 clipped to 1.2; ratio 1 unclipped
    assert clipped.tolist() == [[True, False]]
    loss, clipped = clipped_policy_loss(logp, old, torch.tensor([-1.0]), 0.2, 0.2)
    np.testing.assert_allclose(loss, [[2.0, 1.0]], rtol=1e-6)  # negative advantage: pessimistic, unclipped
    kl = k3_kl(torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25])))
    assert float(kl) == pytest.approx(0.5 - np.log(0.5) - 1)  # e^d − d − 1 at d = log(1/2)
    assert float(k3_kl(logp, logp).abs().max()) == 0.0
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(token_weights(mask, "grpo", 3), [[0.25, 0.25, 0], [0.5, 0, 0]])
    np.testing.assert_allclose(token_weights(mask, "dapo", 3), [[1 / 3, 1 / 3, 0], [1 / 3, 0, 0]])
    np.testing.assert_allclose(token_weights(mask, "dr_grpo", 3), [[1 / 6, 1 / 6, 0], [1 / 6, 0, 0]])


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_two_steps_move_logprobs_along_the_advantages(tiny_model_dir, loss_type):
    """On a fixed batch, two updates raise the log-likelihood of positive-advantage completions relative
    to negative ones, and lower the surrogate loss; zero advantages (β = 0) leave the policy unchanged."""
    from llm.model import load_model
    from llm.sampling import sample_completions, sequence_token_logprobs
    from llm.trainer import make_optimizer, optimize_policy

    model, tok = load_model(tiny_model_dir, torch.device("cpu"))
    config = TrainConfig(model=str(tiny_model_dir), lr=3e-3, loss_type=loss_type, group_size=4)
    gen = torch.Generator().manual_seed(0)
    batch = sample_completions(
        model, tok, ["Q: a\nA:", "Q: b\nA:"], n_samples=4, temperature=1.0, max_new_tokens=12, generator=gen
    )
    adv = np.array([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]])
    sign = torch.tensor(adv.reshape(-1), dtype=torch.float32)
    mask = batch.completion_mask.float()

    def seq_logp():
        with torch.no_grad():
            return (sequence_token_logprobs(model, batch) * mask).sum(dim=1)

    before = seq_logp()
    opt = make_optimizer(model, config)
    for _ in range(2):
        optimize_policy(model, None, opt, batch, adv, config)
    after = seq_logp()
    gain = (after - before) * sign
    assert float(gain.sum()) > 0 and float((after - before)[sign > 0].mean()) > float(
        (after - before)[sign < 0].mean()
    )

    state = {k: v.clone() for k, v in model.state_dict().items()}
    optimize_policy(model, None, make_optimizer(model, config), batch, np.zeros_like(adv), config)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- resume


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_checkpoint_resume_reproduces_the_uninterrupted_trajectory(tiny_model_dir, tmp_path):
    base = dict(
        model=str(tiny_model_dir),
        algorithm="coherence-grpo",
        consensus="geometric",
        prompts_per_step=2,
        group_size=4,
        max_new_tokens=16,
        lr=1e-3,
        beta=0.05,
        progress=False,
        seed=5,
    )
    full = train(TrainConfig(out=str(tmp_path / "full"), steps=4, **base))
    train(TrainConfig(out=str(tmp_path / "part"), steps=2, **base))
    resumed = train(TrainConfig(out=str(tmp_path / "part"), steps=4, resume=str(tmp_path / "part"), **base))
    for k, v in _params(full["model"]).items():
        torch.testing.assert_close(_params(resumed["model"])[k], v, rtol=0, atol=ATOL_RESUME)
    rows_full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rows_part = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    drop = ("seconds",)
    strip = [{k: v for k, v in r.items() if not k.endswith(drop)} for r in rows_full]
    assert strip == [{k: v for k, v in r.items() if not k.endswith(drop)} for r in rows_part]
    assert [r["step"] for r in rows_part] == [1, 2, 3, 4]
    assert (tmp_path / "part" / "checkpoint-4" / "trainer_state.pt").is_file()
    assert (tmp_path / "full" / "final" / "model.safetensors").is_file()
    with pytest.raises(ValidationError, match="group_size"):
        train(
            TrainConfig(
                out=str(tmp_path / "part"),
                steps=5,
                resume=str(tmp_path / "part"),
                **{**base, "group_size": 3},
            )
        )


def test_bad_configs_fail_fast_naming_the_field(tiny_model_dir, tmp_path):
    with pytest.raises(ValidationError, match="algorithm"):
        TrainConfig(algorithm="nope").validate()
    with pytest.raises(ValidationError, match="group_size"):
        TrainConfig(group_size=1).validate()
    with pytest.raises(ValidationError, match="loss_type"):
        TrainConfig(loss_type="ppo").validate()
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "1+1?", "answer": "#### 2"}\n')
    with pytest.raises(ValidationError, match="views"):
        train(
            TrainConfig(
                model=str(tiny_model_dir),
                data=str(data),
                out=str(tmp_path / "o"),
                prompts_per_step=1,
                consensus="geometric",
                progress=False,
                eval_fraction=0.0,  # one problem: nothing to hold out
            )
        )


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tiny_model_dir, tmp_path, monkeypatch):
    import llm.trainer as trainer_mod

    base = dict(
        model=str(tiny_model_dir),
        algorithm="ttrl",
        prompts_per_step=2,
        group_size=4,
        max_new_tokens=12,
        lr=1e-3,
        progress=False,
        seed=2,
    )
    full = train(TrainConfig(out=str(tmp_path / "full"), steps=3, **base))
    real_step, calls = trainer_mod.train_step, []

    def interrupted_step(state, *args):
        calls.append(1)
        if len(calls) == 2:
            state.rng.random()  # consume randomness mid-step, as a real interrupt inside sampling would
            raise KeyboardInterrupt
        return real_step(state, *args)

    monkeypatch.setattr(trainer_mod, "train_step", interrupted_step)
    part = train(TrainConfig(out=str(tmp_path / "part"), steps=3, **base))
    assert part["interrupted"] and part["steps"] == 1
    assert (tmp_path / "part" / "checkpoint-1" / "trainer_state.pt").is_file()
    monkeypatch.setattr(trainer_mod, "train_step", real_step)
    resumed = train(TrainConfig(out=str(tmp_path / "part"), steps=3, resume=str(tmp_path / "part"), **base))
    for k, v in _params(full["model"]).items():
        torch.testing.assert_close(_params(resumed["model"])[k], v, rtol=0, atol=ATOL_RESUME)


def test_sequence_log_ratio_matches_a_direct_forward_pass(tiny_model_dir):
    """log π(y)/π0(y) of sampled completions vs an independent full-sequence log-softmax; 0 when π = π0."""
    from llm.model import load_model
    from llm.sampling import sample_completions
    from llm.trainer import sequence_log_ratio

    model, tok = load_model(tiny_model_dir, "cpu")
    ref, _ = load_model(tiny_model_dir, "cpu")
    cfg = TrainConfig(model=str(tiny_model_dir), max_new_tokens=12, temperature=0.7, micro_batch_rows=3)
    batch = sample_completions(model, tok, ["Q: 1+2\nA:"], n_samples=6, temperature=0.7,
                               max_new_tokens=12, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(sequence_log_ratio(model, ref, batch, cfg), 0.0, atol=1e-6)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))

    def direct(m):
        ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)  # (N, P + C)
        att = torch.cat([batch.prompt_mask, batch.completion_mask], dim=1)
        with torch.no_grad():
            logits = m(input_ids=ids, attention_mask=att).logits[:, :-1] / 0.7  # (N, P + C − 1, V)
        lp = torch.log_softmax(logits.double(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        P = batch.prompt_ids.shape[1]
        return (lp[:, P - 1 :] * batch.completion_mask.double()).sum(dim=1).numpy()  # (N,)

    assert batch.prompt_mask.all()  # one prompt: no padding, so plain positions match generation's
    expected = direct(model) - direct(ref)
    assert np.abs(expected).max() > 1e-2  # the perturbation moved the policy
    np.testing.assert_allclose(sequence_log_ratio(model, ref, batch, cfg), expected, atol=1e-3)


def test_seq_reward_kl_centers_rewards_minus_beta_log_ratio(tiny_model_dir, monkeypatch):
    """kl=seq-reward: the update receives RLOO(rewards − β log π/π0); kl=k3-loss: RLOO(rewards) plus k3."""
    import llm.trainer as trainer
    from dagsim.grpo.advantages import advantages

    def rloo_advantages(g):
        return advantages(g, baseline="rloo")[0]

    seen = {}
    real_optimize, real_ratio = trainer.optimize_policy, trainer.sequence_log_ratio

    def spy_optimize(model, ref, opt, batch, advantages, config):
        seen["adv"] = advantages.copy()
        return real_optimize(model, ref, opt, batch, advantages, config)

    def spy_ratio(*args):
        seen["ratio"] = real_ratio(*args)
        return seen["ratio"]

    def spy_scores(*args, **kwargs):
        seen["scores"] = real_scores(*args, **kwargs)
        return seen["scores"]

    real_scores = trainer.score_groups
    monkeypatch.setattr(trainer, "optimize_policy", spy_optimize)
    monkeypatch.setattr(trainer, "sequence_log_ratio", spy_ratio)
    monkeypatch.setattr(trainer, "score_groups", spy_scores)
    from llm.trainer import fresh_state, load_reference, load_training_problems, train_step

    for kl in ("seq-reward", "k3-loss"):
        cfg = TrainConfig(model=str(tiny_model_dir), algorithm="coherence-grpo", consensus="none", beta=0.5,
                          kl=kl, prompts_per_step=2, group_size=4, max_new_tokens=12, lr=5e-2, views=1)
        state, ref = fresh_state(cfg, "cpu"), load_reference(cfg, "cpu")
        problems = load_training_problems(cfg)[0]
        seen.clear()
        train_step(state, ref, problems, 1, cfg)  # moves π away from π0
        seen.clear()
        metrics = train_step(state, ref, problems, 1, cfg)
        rewards = seen["scores"].rewards
        if kl == "seq-reward":
            ratio = seen["ratio"].reshape(rewards.shape)
            assert np.abs(ratio).max() > 1e-3 and metrics["seq_kl"] == pytest.approx(ratio.mean())
            np.testing.assert_allclose(seen["adv"], rloo_advantages(rewards - 0.5 * ratio), atol=1e-12)
            assert np.abs(seen["adv"] - rloo_advantages(rewards)).max() > 1e-4
        else:
            assert "ratio" not in seen and metrics["kl"] > 0
            np.testing.assert_allclose(seen["adv"], rloo_advantages(rewards), atol=1e-12)
