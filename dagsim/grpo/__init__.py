"""GRPO-compatible finite-group machinery (THEORY §6): rewards, advantages, exact effective reward."""

from dagsim.grpo.advantages import ADVANTAGE_EPS, advantages, doubly_loo_advantages, doubly_loo_rule
from dagsim.grpo.effective import count_table_effective_reward, effective_reward, effective_reward_multiview
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
    table_size_for,
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
    "count_table_effective_reward",
    "doubly_loo_advantages",
    "doubly_loo_rule",
    "dual_ascent_step",
    "effective_reward",
    "effective_reward_multiview",
    "group_objective",
    "group_rewards",
    "leq_system",
    "pairwise_group_rewards",
    "table_size_for",
]
