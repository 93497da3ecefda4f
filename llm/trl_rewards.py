"""Reward functions for ``trl.GRPOTrainer`` that use the same answer-level rewards as our trainer.

TRL calls a reward function as ``f(prompts=..., completions=..., completion_ids=..., **dataset_columns,
trainer_state=..., log_metric=..., ...)`` on each process's slice of the generation batch, one row per
completion, and does not pass the group size G. :func:`make_reward_func` binds G in a closure, splits the
rows into consecutive groups of G completions of one prompt (TRL's sampler repeats each prompt G times in
a row), and **verifies that every group arrives whole**: a group split across processes (or batches)
would silently give wrong answer-level rewards, so it is an error naming the fix.

Multi-view consensus: rows with the same value in the ``problem_id`` column are views of one problem and
share one answer space (consensus rewards need every view's group in the same slice).

Example::

    reward = make_reward_func("coherence-grpo", group_size=8, consensus="none")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], args=GRPOConfig(num_generations=8, ...), ...)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dagsim.errors import ValidationError
from llm.answers import extract_answer, index_answers, task_reward_vector
from llm.rewards import RewardSettings, get_algorithm


def completion_text(completion) -> str:
    """Text of a TRL completion: a string, or a conversational list of messages (their contents joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in completion)
    return str(completion)


def split_groups(prompts: Sequence, group_size: int) -> list[slice]:
    """Consecutive slices of ``group_size`` rows, each one prompt's whole group; else a ValidationError."""
    n = len(prompts)
    fix = (
        f"make the per-process generation batch (per_device_train_batch_size x steps_per_generation) a "
        f"multiple of num_generations = G = {group_size}, and pass the same G to make_reward_func"
    )
    if n % group_size:
        raise ValidationError(
            f"reward function got {n} completions, not a whole number of groups of G = "
            f"{group_size}: a group was split across processes or batches; {fix}"
        )
    groups = [slice(s, s + group_size) for s in range(0, n, group_size)]
    for g in groups:
        first = prompts[g.start]
        if any(prompts[i] != first for i in range(g.start, g.stop)):
            raise ValidationError(
                f"rows {g.start}..{g.stop - 1} mix different prompts: a group of G = {group_size} "
                f"arrived split; {fix}"
            )
    return groups


def make_reward_func(
    algorithm: str,
    *,
    group_size: int,
    tau: float = 1.0,
    estimator: str = "minimax_monotone",
    consensus: str = "none",
    answer_column: str = "answer",
) -> Callable[..., list[float]]:
    """A TRL reward function computing ``algorithm``'s rewards (dagsim) on whole groups of ``group_size``.

    ``answer_column``: dataset column holding the ground truth (``#### N`` strings or plain numbers); needed
    by gt-grpo and diversity-grpo only. Logs ``alft/answer_entropy``, ``alft/majority_ratio`` and
    ``alft/n_unextracted`` through TRL's ``log_metric`` when available.
    """
    spec = get_algorithm(algorithm)
    if group_size < 2:
        raise ValidationError(f"group_size (G) must be >= 2, got {group_size}")
    if algorithm == "constrained-grpo":
        raise ValidationError(
            "constrained-grpo needs dual ascent across steps: use llm.trainer, not the TRL bridge"
        )
    settings = RewardSettings(
        tau, estimator, consensus if algorithm == "coherence-grpo" else "none", "sharpen"
    )
    multi_view = spec.needs_views or settings.consensus != "none"

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        groups = split_groups(prompts, group_size)
        answers = [extract_answer(completion_text(c)) for c in completions]
        truths = kwargs.get(answer_column)
        problem_ids = kwargs.get("problem_id")
        if spec.needs_labels and truths is None:
            raise ValidationError(
                f"{algorithm} needs the ground truth: add an '{answer_column}' dataset column"
            )
        if multi_view and problem_ids is None:
            raise ValidationError(f"{algorithm} with consensus needs a 'problem_id' column linking the views")
        # Problems: lists of groups (views). Without problem ids each group is its own problem.
        problems: dict[object, list[slice]] = {}
        for k, g in enumerate(groups):
            problems.setdefault(problem_ids[g.start] if multi_view else k, []).append(g)
        rewards = np.zeros(len(completions))  # (N,)
        entropies, majority = [], []
        for views in problems.values():
            if multi_view and len(views) < 2:
                raise ValidationError(
                    "a problem arrived with a single view: keep all views of a problem in one "
                    "per-process generation batch (order the dataset by problem_id)"
                )
            idx, strings = index_answers([answers[g] for g in views])
            truth = None
            if truths is not None:
                raw = str(truths[views[0].start])
                truth = extract_answer(raw) if "####" in raw else extract_answer(f"#### {raw}")
            task_reward = task_reward_vector(strings, truth) if truth is not None else None
            for g, r, i in zip(
                views, spec.rewards(idx, len(strings), task_reward, settings), idx, strict=True
            ):
                rewards[g] = r
                counts = np.bincount(i)
                p = counts[counts > 0] / group_size
                entropies.append(float(-(p * np.log(p)).sum()))
                majority.append(counts.max() / group_size)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric("alft/answer_entropy", float(np.mean(entropies)))
            log_metric("alft/majority_ratio", float(np.mean(majority)))
            log_metric("alft/n_unextracted", float(sum(a is None for a in answers)))
        return rewards.tolist()

    reward_func.__name__ = f"alft_{algorithm.replace('-', '_')}"
    return reward_func
