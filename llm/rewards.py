"""Algorithms of the GRPO loop as thin adapters onto the single source of truth, ``dagsim.grpo.rewards``.

No reward or advantage formula lives here: each algorithm only chooses which ``dagsim`` reward function
to call on a problem's answer groups (THEORY.md §4, §6) and with which arguments. The answers of one
problem arrive as index arrays in one answer space shared by its views (``llm.answers.index_answers``).

=========================  =========================================================================
algorithm                  rewards (per sample of view j, answer z; r = 1[z = ground truth])
=========================  =========================================================================
gt-grpo                    ``reward``: r(z)                                          (needs labels)
ttrl                       ``majority`` with r = 0: τ·1[z = mode of the group]      (label free)
empo                       ``empo``: the answer's own group frequency               (label free)
coherence-grpo             consensus none: ``sharpen`` τ log q(z), minimax log estimator; consensus
                           arithmetic / geometric / majority: ``consensus_group_rewards`` over all
                           views of the problem (E5)                                 (label free)
diversity-grpo             ``entropy``: r(z) − τ log q(z)                           (needs labels)
pairwise-coherence-grpo    ``pairwise_group_rewards`` (squared-Euclidean coherence)  (label free)
constrained-grpo           base objective rewards − Σ_k λ_k h_k(z) (``constrained_rewards``), λ by
                           ``dual_ascent_step`` on the batch estimate of ⟨h_k, ν⟩    (T5)
=========================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.errors import ValidationError


@dataclass(frozen=True)
class RewardSettings:
    """What the reward adapters need from the training config."""

    tau: float
    estimator: str
    consensus: str
    base_objective: str
    rloo_aware: bool = False
    """T11a (issue 12): count tables designed for G − 1 samples (the trainer sets it under RLOO)."""


@dataclass(frozen=True)
class Algorithm:
    """One GRPO-loop algorithm: whether it reads labels, whether it needs several views, and its rewards."""

    name: str
    needs_labels: bool
    needs_views: bool
    rewards: Callable[..., list[np.ndarray]]
    """``rewards(answers_per_view, n_answers, task_reward, settings) -> list of (G,) arrays``."""


def _grpo():
    import dagsim.grpo.rewards as grpo_rewards  # imported lazily: the module is optional at import time

    return grpo_rewards


def _per_view(objective: str, answers_per_view, n_answers, task_reward, tau, estimator, rloo_aware=False):
    G = len(answers_per_view[0])
    if any(len(a) != G for a in answers_per_view):  # doubly-LOO subgroups: one view one sample short
        return [_per_view(objective, [a], n_answers, task_reward, tau, estimator, rloo_aware)[0]
                for a in answers_per_view]
    stacked = np.stack(answers_per_view)  # (n_views, G): each view's group is its own GRPO group
    table_size = G - 1 if rloo_aware and G > 2 else None  # T11a
    out = _grpo().group_rewards(
        objective, stacked, n_answers=n_answers, tau=tau, task_reward=task_reward, estimator=estimator,
        table_size=table_size,
    )
    return list(np.asarray(out, dtype=np.float64))


def _gt(answers_per_view, n_answers, task_reward, s: RewardSettings):
    return _per_view("reward", answers_per_view, n_answers, task_reward, 0.0, s.estimator, s.rloo_aware)


def _ttrl(answers_per_view, n_answers, task_reward, s: RewardSettings):
    return _per_view("ttrl", answers_per_view, n_answers, None, s.tau, s.estimator, s.rloo_aware)


def _empo(answers_per_view, n_answers, task_reward, s: RewardSettings):
    return _per_view("empo", answers_per_view, n_answers, None, s.tau, s.estimator, s.rloo_aware)


def _coherence(answers_per_view, n_answers, task_reward, s: RewardSettings):
    if s.consensus == "none":
        return _per_view("sharpen", answers_per_view, n_answers, None, s.tau, s.estimator, s.rloo_aware)
    out = _grpo().consensus_group_rewards(
        list(answers_per_view), n_answers=n_answers, tau=s.tau, consensus=s.consensus, estimator=s.estimator,
        rloo_aware=s.rloo_aware,
    )
    return [np.asarray(r, dtype=np.float64) for r in out]


def _diversity(answers_per_view, n_answers, task_reward, s: RewardSettings):
    return _per_view("entropy", answers_per_view, n_answers, task_reward, s.tau, s.estimator, s.rloo_aware)


def _pairwise(answers_per_view, n_answers, task_reward, s: RewardSettings):
    out = _grpo().pairwise_group_rewards(list(answers_per_view), n_answers=n_answers, tau=s.tau)
    return [np.asarray(r, dtype=np.float64) for r in out]


def _constrained_base(answers_per_view, n_answers, task_reward, s: RewardSettings):
    tr = task_reward if s.base_objective in ("reward", "entropy", "gini", "tsallis") else None
    tau = 0.0 if s.base_objective == "reward" else s.tau
    return _per_view(s.base_objective, answers_per_view, n_answers, tr, tau, s.estimator, s.rloo_aware)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("gt-grpo", True, False, _gt),
        Algorithm("ttrl", False, False, _ttrl),
        Algorithm("empo", False, False, _empo),
        Algorithm("coherence-grpo", False, False, _coherence),
        Algorithm("diversity-grpo", True, False, _diversity),
        Algorithm("pairwise-coherence-grpo", False, True, _pairwise),
        Algorithm("constrained-grpo", False, False, _constrained_base),
    )
}
LABEL_FREE_OBJECTIVES = ("sharpen", "collision", "majority", "ttrl", "empo")


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ValidationError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name]


def forbidden_coefs(answer_strings: Sequence[str], forbidden: str) -> np.ndarray:
    """Constraint row h(z) = 1[z is forbidden] over one problem's answer space. Shape (1, n_answers).

    ``forbidden`` is ``"odd"`` / ``"even"`` (integer answers), ``"none-answer"`` (the no-answer bucket) or a
    comma-separated list of answers.
    """
    from llm.answers import NO_ANSWER

    def is_forbidden(a: str) -> bool:
        if forbidden in ("odd", "even"):
            if a == NO_ANSWER or not a.lstrip("-").isdigit():
                return False
            return (int(a) % 2 == 1) == (forbidden == "odd")
        if forbidden == "none-answer":
            return a == NO_ANSWER
        return a in {x.strip() for x in forbidden.split(",")}

    return np.array([[1.0 if is_forbidden(a) else 0.0 for a in answer_strings]])  # (1, n_answers)


def constrain(base_rewards: np.ndarray, answers: np.ndarray, coefs: np.ndarray, multipliers: np.ndarray):
    """``dagsim`` Lagrangian rewards ``g − Σ_k λ_k h_k(z)`` (T5) for one group.

    Shapes: base_rewards (G,), answers (G,), coefs (n_c, n_answers), multipliers (n_c,).
    """
    return np.asarray(
        _grpo().constrained_rewards(base_rewards, answers, constraint_coefs=coefs, multipliers=multipliers),
        dtype=np.float64,
    )


def constraint_values(answers: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """``dagsim`` estimate of ``⟨h_k, ν⟩`` from one group's answers (the mean of h_k(z_i)). Shape (n_c,)."""
    return np.asarray(_grpo().constraint_values(answers, coefs), dtype=np.float64)


def dual_step(multipliers: np.ndarray, constraint_values: np.ndarray, cap: float, lr: float) -> np.ndarray:
    """One projected dual-ascent step on λ for the constraints ``⟨h_k, ν⟩ <= cap`` (T5)."""
    n_c = len(multipliers)
    return np.asarray(
        _grpo().dual_ascent_step(multipliers, constraint_values, np.full(n_c, cap), lr, ["<="] * n_c),
        dtype=np.float64,
    )


def doubly_loo_baselines(rewards_fn: Callable, idx_per_view, n_answers: int, task_reward, settings: RewardSettings,
                         post: Callable | None = None) -> list[np.ndarray]:
    """T11b: per view, ``b_i = mean_{j≠i} R_j^{(−i)}`` — the view's rewards recomputed on its group without
    sample i (every other view unchanged), O(G²) reward calls' work. ``post(rewards, answers)`` is applied
    to the recomputed rewards (e.g. the constraint penalty). Returns one (G,) array per view."""
    out = []
    for v, idx in enumerate(idx_per_view):
        b = np.empty(len(idx))
        for i in range(len(idx)):
            views = list(idx_per_view)
            views[v] = np.delete(np.asarray(idx), i)
            r = np.asarray(rewards_fn(views, n_answers, task_reward, settings)[v], dtype=np.float64)
            b[i] = (post(r, views[v]) if post is not None else r).mean()
        out.append(b)
    return out


def group_advantages(rewards: np.ndarray, baseline: str, scale: str, *, doubly_loo: np.ndarray | None = None,
                     extra_rewards: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``dagsim.grpo.advantages`` on (n_groups, G) rewards (T11): (adv, n_zero_std_groups).

    ``baseline="doubly-loo"`` needs ``doubly_loo`` (n_groups, G), the baselines of :func:`doubly_loo_baselines`.
    ``extra_rewards`` (same shape) is a count-free per-sample term added to the rewards (the sequence-level
    −β·log π/π0): under doubly-LOO its baseline is plain leave-one-out."""
    from dagsim.grpo.advantages import advantages, rescale_advantages

    if baseline == "doubly-loo":
        if doubly_loo is None:
            raise ValidationError("baseline 'doubly-loo' needs the recomputed baselines (doubly_loo_baselines)")
        centered, total = rewards - doubly_loo, rewards
        if extra_rewards is not None:
            G = rewards.shape[1]
            centered = centered + G / (G - 1) * (extra_rewards - extra_rewards.mean(axis=1, keepdims=True))
            total = rewards + extra_rewards
        adv, n_zero = rescale_advantages(centered, total, scale=scale)
    else:
        total = rewards if extra_rewards is None else rewards + extra_rewards
        adv, n_zero = advantages(total, baseline=baseline, scale=scale)
    adv = np.asarray(adv, dtype=np.float64)
    if not np.all(np.isfinite(adv)):
        raise FloatingPointError("dagsim advantages returned non-finite values")
    return adv, int(n_zero)
