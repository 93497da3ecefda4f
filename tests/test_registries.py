"""One registry per concept (issue #17): algorithms, estimators, baselines/scales, consensus kinds, the
ttrl/empo conventions, and the GRPO settings shared by the simulator, the trainer and the TRL bridge."""

import argparse
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from dagsim.errors import DagsimError, DomainError, UnknownNameError, ValidationError
from dagsim.estimators import (
    ESTIMATOR_NAMES,
    ESTIMATORS,
    LOG_ESTIMATOR_KINDS,
    LOG_ESTIMATORS,
    POWER_ESTIMATOR_KINDS,
    log_estimator_table,
    power_estimator_table,
)
from dagsim.grpo import algorithms as registry
from dagsim.grpo import rewards as R
from dagsim.grpo.advantages import BASELINES, CENTERINGS, SCALES, SCALINGS, advantages
from dagsim.grpo.settings import GRPO_DEFAULTS, GRPO_FIELDS, GRPOSettings
from dagsim.grpo.simulator import SimulationConfig
from dagsim.objectives.consensus import CONSENSUS_KINDS

#: TrainConfig's defaults before issue #17 (run.json manifests of older runs hold exactly these keys).
PRE_17_TRAIN_DEFAULTS = {
    "algorithm": "coherence-grpo", "model": "runs/llm/base", "out": "runs/llm/train", "data": "", "steps": 60,
    "prompts_per_step": 8, "group_size": 8, "views": 0, "temperature": 1.0, "max_new_tokens": 40, "lr": 0.0001,
    "weight_decay": 0.0, "max_grad_norm": 1.0, "beta": 0.0, "kl": "seq-reward", "tau": 1.0, "estimator": "aqp",
    "consensus": "geometric", "baseline": "rloo", "scale": "none", "loss_type": "dapo", "epsilon": 0.2,
    "epsilon_high": 0.2, "num_iterations": 1, "micro_batch_rows": 0, "forbidden": "odd", "constraint_cap": 0.2,
    "dual_lr": 2.0, "base_objective": "sharpen", "checkpoint_every": 0, "resume": "", "seed": 0, "progress": True,
    "stop_strings": (), "chat_template": False, "eval_fraction": 0.2, "split_seed": 0, "skip_bad_lines": False,
    "answer_parser": "", "rloo_aware": True, "no_answer": "auto", "tie_break": "first", "entropy_gate": False,
    "advantage_eps": 0.0001, "n_votes": 0, "overwrite": False,
}
#: SimulationConfig's defaults before issue #17.
PRE_17_SIM_DEFAULTS = {
    "algorithm": "coherence-grpo", "objective": None, "beta": 0.5, "tau": 1.0, "order": None,
    "consensus": "arithmetic", "mode": "expected", "group_size": 8, "estimator": "aqp", "baseline": "rloo",
    "scale": "none", "steps": 200, "lr": 0.5, "seed": 0, "clip_eps": 0.2, "inner_epochs": 1, "kl_estimator": "exact",
    "dual_lr": 1.0, "label_free": False, "natural": False, "rloo_aware": True, "tie_break": "first",
    "no_answer": "auto", "no_answer_label": None, "entropy_gate": False, "n_votes": 0, "advantage_eps": 0.0001,
}


def _choices(parser: argparse.ArgumentParser, flag: str) -> list:
    for action in parser._actions:
        if flag in action.option_strings:
            return list(action.choices)
    raise AssertionError(f"no flag {flag}")


def _simulate_parser() -> argparse.ArgumentParser:
    from app.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["simulate"]


# ------------------------------------------------------------------------------------------- algorithms
def test_unknown_algorithm_is_one_error_type_and_message_everywhere():
    with pytest.raises(UnknownNameError) as dag:
        registry.get_algorithm("ppo")
    with pytest.raises(UnknownNameError) as sim:
        SimulationConfig(algorithm="ppo").validate()
    from llm.rewards import get_algorithm as llm_get_algorithm

    with pytest.raises(UnknownNameError) as llm:
        llm_get_algorithm("ppo")
    assert str(dag.value) == str(sim.value) == str(llm.value)
    message = str(dag.value)
    assert message.startswith("unknown algorithm 'ppo': algorithm must be one of ")
    assert all(name in message for name in registry.ALGORITHMS)
    # one type that both historical callers catch, reported by the CLI like any DagsimError
    assert isinstance(dag.value, DomainError) and isinstance(dag.value, ValidationError)
    assert isinstance(dag.value, DagsimError)
    # a known name is returned, not an error
    assert registry.get_algorithm("ttrl") is registry.ALGORITHMS["ttrl"]


def test_llm_algorithms_are_the_dagsim_registry_with_a_scoring_function_each():
    from llm.rewards import ALGORITHMS, REWARD_FUNCTIONS

    assert list(ALGORITHMS) == list(registry.ALGORITHMS)
    assert set(REWARD_FUNCTIONS) == set(registry.ALGORITHMS)
    for name, algo in ALGORITHMS.items():
        assert algo.spec is registry.ALGORITHMS[name]
        assert algo.rewards is REWARD_FUNCTIONS[name]
        assert algo.needs_labels == registry.ALGORITHMS[name].needs_labels
    assert {n for n, a in ALGORITHMS.items() if a.needs_labels} == {"gt-grpo", "diversity-grpo"}
    assert {n for n, a in ALGORITHMS.items() if a.needs_views} == {"pairwise-coherence-grpo"}
    assert {n for n, a in registry.ALGORITHMS.items() if a.vote_split} == {"ttrl", "empo"}


def test_an_algorithm_without_an_llm_scoring_function_fails_at_import():
    """Control: register one more algorithm in dagsim only; importing llm.rewards must refuse it."""
    code = (
        "import dagsim.grpo.algorithms as a\n"
        "a.ALGORITHMS['new-grpo'] = a.Algorithm('new-grpo', 'reward', ('reward',), 'x')\n"
        "try:\n"
        "    import llm.rewards\n"
        "except ImportError as e:\n"
        "    print('refused:', e)\n"
        "else:\n"
        "    print('accepted')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused:") and "missing ['new-grpo']" in out.stdout


def test_simulate_cli_choices_come_from_the_registries():
    p = _simulate_parser()
    assert _choices(p, "--algorithm") == list(registry.ALGORITHMS)
    assert _choices(p, "--estimator") == list(ESTIMATOR_NAMES)
    assert _choices(p, "--baseline") == list(BASELINES)
    assert _choices(p, "--scale") == list(SCALES)
    assert _choices(p, "--consensus") == list(CONSENSUS_KINDS)
    assert _choices(p, "--tie-break") == list(R.TIE_BREAKS)
    assert _choices(p, "--no-answer") == list(R.NO_ANSWER_CHOICES)


# ------------------------------------------------------------------------------------------- estimators
def test_estimator_registry_is_the_one_source_of_names_and_tables():
    assert ESTIMATOR_NAMES == ("plugin", "loo", "unbiased", "minimax", "minimax_monotone", "aqp")
    assert R.ESTIMATORS == ESTIMATOR_NAMES
    from dagsim.grpo.simulator import ESTIMATORS as SIM_ESTIMATORS

    assert SIM_ESTIMATORS == ESTIMATOR_NAMES
    assert LOG_ESTIMATORS == LOG_ESTIMATOR_KINDS == ("plugin", "loo", "minimax", "minimax_monotone", "aqp")
    assert POWER_ESTIMATOR_KINDS == ("plugin", "loo", "unbiased", "minimax", "minimax_monotone")
    # T12 augmented: aqp's power terms are the U-statistics; "unbiased" has no log table (T8)
    assert ESTIMATORS["aqp"].power_kind == "minimax_monotone" and R._power_kind("aqp") == "minimax_monotone"
    assert [n for n, e in ESTIMATORS.items() if e.log_kind is None] == ["unbiased"]
    for G in (3, 6):
        for name in ("plugin", "loo", "aqp"):
            np.testing.assert_array_equal(ESTIMATORS[name].log_table(G), log_estimator_table(G, name))
        np.testing.assert_array_equal(ESTIMATORS["aqp"].power_table(G, 1.0),
                                      power_estimator_table(G, 1.0, "unbiased"))
    with pytest.raises(DomainError, match="T8"):
        ESTIMATORS["unbiased"].log_table(4)
    with pytest.raises(DomainError, match="impossible for log objectives"):
        R.group_rewards("sharpen", np.array([0, 1, 1]), n_answers=2, tau=1.0, estimator="unbiased")
    with pytest.raises(DomainError, match="impossible for the log consensus reward"):
        R.consensus_group_rewards([np.array([0, 1, 1])] * 2, n_answers=2, tau=1.0, estimator="unbiased")
    with pytest.raises(UnknownNameError, match="estimator must be one of"):
        R.group_rewards("sharpen", np.array([0, 1, 1]), n_answers=2, tau=1.0, estimator="mle")


def test_figure_and_bench_estimator_selections_are_registered_names():
    from figures import fig05_estimator_bias, fig06_finite_group_grpo

    for selection in (fig05_estimator_bias.ESTIMATORS, fig06_finite_group_grpo.ESTIMATORS):
        assert set(selection) <= set(ESTIMATOR_NAMES)


# ------------------------------------------------------------------------------------ baselines, scales
def _rloo_oracle(g: np.ndarray) -> np.ndarray:
    """g_i − mean of the others, by explicit loops (independent of the vectorized form)."""
    out = np.empty_like(g)
    for b in range(g.shape[0]):
        for i in range(g.shape[1]):
            out[b, i] = g[b, i] - np.delete(g[b], i).mean()
    return out


def test_baseline_and_scale_registries_are_dicts_of_functions():
    assert BASELINES == tuple(CENTERINGS) == ("rloo", "mean", "none", "doubly-loo")
    assert SCALES == tuple(SCALINGS) == ("none", "group", "batch")
    assert CENTERINGS["doubly-loo"] is None  # needs the answers: doubly_loo_advantages
    g = np.random.default_rng(3).normal(size=(4, 5))
    mean = g.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(CENTERINGS["rloo"](g, mean), _rloo_oracle(g), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(advantages(g, baseline="rloo")[0], _rloo_oracle(g), rtol=1e-12, atol=1e-12)
    # control: the self-inclusive mean is (G−1)/G times RLOO, not RLOO (T11d)
    assert not np.allclose(CENTERINGS["mean"](g, mean), _rloo_oracle(g))
    np.testing.assert_allclose(CENTERINGS["mean"](g, mean), 4 / 5 * _rloo_oracle(g), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(CENTERINGS["none"](g, mean), g)
    np.testing.assert_allclose(SCALINGS["group"](g, g, 0.0), g / g.std(axis=1, ddof=1, keepdims=True))
    with pytest.raises(UnknownNameError, match="baseline must be one of"):
        advantages(g, baseline="median")
    with pytest.raises(UnknownNameError, match="scale must be one of"):
        advantages(g, scale="max")


def test_no_answer_and_tie_break_choices_have_one_source():
    from llm.rewards import NO_ANSWER_CHOICES, TIE_BREAK_CHOICES

    assert R.NO_ANSWER_CHOICES == ("auto", *R.NO_ANSWER_RULES) == NO_ANSWER_CHOICES
    assert R.TIE_BREAKS == TIE_BREAK_CHOICES == ("first", "split")
    assert set(R.PUBLISHED_NO_ANSWER_RULE.values()) <= set(R.NO_ANSWER_RULES)
    assert R.resolve_no_answer_rule("auto") is None and R.resolve_no_answer_rule("pool") == "pool"
    with pytest.raises(UnknownNameError, match="no_answer must be one of"):
        R.resolve_no_answer_rule("keep")


def test_consensus_group_rewards_cover_exactly_the_family_kinds():
    assert tuple(R.CONSENSUS_REWARDS) == CONSENSUS_KINDS == R.CONSENSUS_KINDS
    with pytest.raises(UnknownNameError, match="consensus must be one of"):
        R.consensus_group_rewards([np.array([0, 1, 1])] * 2, n_answers=2, tau=1.0, consensus="median")


# ------------------------------------------------------------------------------------------ GRPOSettings
def test_simulation_config_reads_the_shared_defaults_and_keeps_its_fields():
    cfg = SimulationConfig()
    assert dataclasses.asdict(cfg) == PRE_17_SIM_DEFAULTS
    assert list(dataclasses.asdict(cfg)) == list(PRE_17_SIM_DEFAULTS)
    shared = cfg.grpo_settings
    assert isinstance(shared, GRPOSettings)
    for name in GRPO_FIELDS:
        want = 0.5 if name == "beta" else getattr(GRPO_DEFAULTS, name)  # β > 0: the exact optimum needs it
        assert getattr(shared, name) == want, name
    assert shared.table_size == 7  # T11a: (G − 1)-tables under RLOO
    assert dataclasses.replace(cfg, baseline="doubly-loo").grpo_settings.table_size is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        shared.group_size = 4


def test_grpo_settings_validate_names_the_field():
    GRPO_DEFAULTS.validate()
    with pytest.raises(UnknownNameError, match=r"train\.estimator must be one of"):
        GRPOSettings(estimator="unbiased").validate("train.", estimators=LOG_ESTIMATORS)
    GRPOSettings(estimator="unbiased").validate()  # the simulator accepts it (gini, collision, tsallis)
    with pytest.raises(ValidationError, match="group_size"):
        GRPOSettings(group_size=1).validate()
    with pytest.raises(ValidationError, match="n_votes"):
        GRPOSettings(group_size=4, n_votes=3).validate()
    with pytest.raises(ValidationError, match="advantage_eps"):
        GRPOSettings(advantage_eps=-1.0).validate()
    with pytest.raises(UnknownNameError, match="tie_break"):
        SimulationConfig(tie_break="random").validate()
    with pytest.raises(UnknownNameError, match="no_answer"):
        SimulationConfig(no_answer="keep").validate()


def test_train_config_reads_the_shared_defaults_and_keeps_every_manifest_key():
    pytest.importorskip("torch")
    from llm.rewards import RewardSettings
    from llm.trainer import TrainConfig

    cfg = TrainConfig()
    values = dataclasses.asdict(cfg)
    # every key of an older run.json is still a field with the same default (a resume of it is accepted)
    assert {k: values[k] for k in PRE_17_TRAIN_DEFAULTS} == PRE_17_TRAIN_DEFAULTS
    assert list(values)[: len(PRE_17_TRAIN_DEFAULTS)] == list(PRE_17_TRAIN_DEFAULTS)
    assert cfg.grpo_settings == GRPO_DEFAULTS
    assert dataclasses.replace(cfg, estimator="plugin").grpo_settings.estimator == "plugin"
    # the reward settings built from the shared object equal the trainer's pre-#17 construction
    for baseline, rloo_aware in (("rloo", True), ("mean", True), ("none", True), ("rloo", False)):
        c = dataclasses.replace(cfg, baseline=baseline, rloo_aware=rloo_aware, tau=0.3, no_answer="pool")
        assert c.reward_settings == RewardSettings(
            0.3, "aqp", "geometric", "sharpen", rloo_aware=baseline in ("rloo", "mean") and rloo_aware,
            no_answer="pool", tie_break="first", entropy_gate=False, advantage_eps=1e-4,
        )
    with pytest.raises(UnknownNameError, match=r"train\.estimator must be one of"):
        TrainConfig(estimator="unbiased").validate()  # the trainer's rewards have log terms (T8)
    with pytest.raises(ValidationError, match="n_votes"):
        TrainConfig(algorithm="coherence-grpo", n_votes=16).validate()


def test_train_cli_and_trl_bridge_defaults_are_the_shared_ones():
    pytest.importorskip("torch")
    import inspect

    from llm.trl_rewards import make_reward_func

    params = inspect.signature(make_reward_func).parameters
    for name in ("tau", "estimator", "rloo_aware", "no_answer", "tie_break", "entropy_gate"):
        assert params[name].default == getattr(GRPO_DEFAULTS, name), name
    assert params["baseline"].default == "mean"  # TRL centres the rewards itself (module docstring)
