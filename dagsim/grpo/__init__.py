"""GRPO-compatible finite-group machinery (THEORY §6): rewards, advantages, exact effective reward."""

from dagsim.grpo.advantages import ADVANTAGE_EPS, advantages
from dagsim.grpo.effective import effective_reward, effective_reward_multiview
from dagsim.grpo.rewards import (
    REWARD_OBJECTIVES,
    consensus_group_rewards,
    constrained_rewards,
    constraint_values,
    count_objective,
    count_reward_table,
    dual_ascent_step,
    group_objective,
    group_rewards,
    leq_system,
    pairwise_group_rewards,
)

__all__ = [
    "ADVANTAGE_EPS",
    "REWARD_OBJECTIVES",
    "advantages",
    "consensus_group_rewards",
    "constrained_rewards",
    "constraint_values",
    "count_objective",
    "count_reward_table",
    "dual_ascent_step",
    "effective_reward",
    "effective_reward_multiview",
    "group_objective",
    "group_rewards",
    "leq_system",
    "pairwise_group_rewards",
]
