"""Algorithms of the GRPO loop as thin adapters onto the single source of truth, ``dagsim.grpo.rewards``.

No reward or advantage formula lives here: each algorithm only chooses which ``dagsim`` reward function
to call on a problem's answer groups (THEORY.md §4, §6) and with which arguments. The answers of one
problem arrive as index arrays in one answer space shared by its views (``llm.answers.index_answers``).

=========================  =========================================================================
algorithm                  rewards (per sample of view j, answer z; r = 1[z = ground truth])
=========================  =========================================================================
gt-grpo                    ``reward``: r(z)                                          (needs labels)
ttrl                       ``ttrl``: 1[z = pseudo-label], the group's most frequent answer; as TTRL's
                           code by default: ties to the first in sample order, unparseable answers
                           out of the vote with reward 0; τ unused                   (label free)
empo                       ``empo``: the answer's own cluster frequency counting itself; as EMPO's
                           verl code by default: an unparseable answer is a singleton (1/G); τ unused
                           (options: ``entropy_gate`` + no_answer drop = EMPO's TRL reward) (label free)
coherence-grpo             consensus none: ``sharpen`` τ log q(z), minimax log estimator; consensus
                           arithmetic / geometric / majority: ``consensus_group_rewards`` over all
                           views of the problem (E5)                                 (label free)
diversity-grpo             ``entropy``: r(z) − τ log q(z)                           (needs labels)
pairwise-coherence-grpo    ``pairwise_group_rewards`` (squared-Euclidean coherence)  (label free)
constrained-grpo           base objective rewards − Σ_k λ_k h_k(z) (``constrained_rewards``), λ by
                           ``dual_ascent_step`` on the batch estimate of ⟨h_k, ν⟩    (T5)
=========================  =========================================================================

The no-answer bucket (``llm.answers.NO_ANSWER``) keeps its own answer index; :func:`score_problem` finds
it and passes it to every adapter as ``no_answer`` so that no reward treats it as a candidate label
(majority and consensus targets skip it; ttrl/empo follow ``RewardSettings.no_answer``). The trainer and
the TRL bridge both go through :func:`score_problem`.

The algorithms themselves (names, objectives, whether they read labels or need views) are those of the one
registry ``dagsim.grpo.algorithms.ALGORITHMS``; this module only maps each registered name to its scoring
function (:data:`REWARD_FUNCTIONS`, checked against the registry at import) and the choice lists
(``NO_ANSWER_CHOICES``, ``TIE_BREAK_CHOICES``, estimators, consensus kinds) are ``dagsim``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.errors import ValidationError
from dagsim.estimators import ESTIMATOR_NAMES
from dagsim.grpo import algorithms as _registry
from dagsim.grpo.rewards import CONSENSUS_KINDS, NO_ANSWER_CHOICES, TIE_BREAKS, resolve_no_answer_rule
from dagsim.objectives import families_where, family
from dagsim.registry import check_name

#: The ttrl tie-break choices (``dagsim.grpo.rewards.TIE_BREAKS``); ``NO_ANSWER_CHOICES`` is dagsim's too.
TIE_BREAK_CHOICES = TIE_BREAKS
#: ``RewardSettings.consensus``: "none" (single-view rewards) or a consensus kind of the family (E5).
CONSENSUS_CHOICES = ("none", *CONSENSUS_KINDS)
#: Base objectives (constrained-grpo) whose rewards read the task reward r; the others are label-free.
#: Read from the families' own ``needs_labels`` flags (``dagsim.objectives``), the one source.
TASK_REWARD_OBJECTIVES = tuple(name for name in families_where("needs_labels") if not family(name).multiview)


@dataclass(frozen=True)
class RewardSettings:
    """What the reward adapters need from the training config."""

    tau: float
    estimator: str
    consensus: str
    base_objective: str
    rloo_aware: bool = False
    """T11a (issue 12): count tables designed for G − 1 samples (the trainer sets it under RLOO)."""
    no_answer: str = "auto"
    """drop | singleton | pool | auto (= the algorithm's published default: ttrl drop, empo singleton; the
    no-answer bucket is never a candidate label for majority/consensus unless pool)."""
    tie_break: str = "first"
    """ttrl: first (TTRL's code) | split (credit 1/#modes)."""
    entropy_gate: bool = False
    """empo: EMPO's TRL gate (all rewards 0 when the G answers are all distinct)."""
    advantage_eps: float = 1e-4
    """ε added to the std of the group/batch advantage scaling (ours 1e-4 = TRL; verl 1e-6)."""

    def __post_init__(self) -> None:
        check_name(ESTIMATOR_NAMES, self.estimator, "estimator")
        check_name(CONSENSUS_CHOICES, self.consensus, "consensus kind", "consensus")
        check_name(NO_ANSWER_CHOICES, self.no_answer, "no-answer rule", "no_answer")
        check_name(TIE_BREAK_CHOICES, self.tie_break, "tie-break", "tie_break")

    @classmethod
    def from_grpo(cls, grpo, consensus: str, base_objective: str, *, rloo_aware: bool | None = None) -> RewardSettings:
        """The reward settings of a run's ``dagsim.grpo.settings.GRPOSettings`` (``rloo_aware``: default
        ``grpo.rloo_tables``, i.e. (G−1)-tables under rloo/mean with rloo_aware, T11a)."""
        return cls(
            grpo.tau, grpo.estimator, consensus, base_objective,
            rloo_aware=grpo.rloo_tables if rloo_aware is None else rloo_aware,
            no_answer=grpo.no_answer, tie_break=grpo.tie_break, entropy_gate=grpo.entropy_gate,
            advantage_eps=grpo.advantage_eps,
        )

    @property
    def no_answer_rule(self) -> str | None:
        """The ``dagsim`` rule (None = the objective's published default)."""
        return resolve_no_answer_rule(self.no_answer)


@dataclass(frozen=True)
class Algorithm:
    """One GRPO-loop algorithm: its ``dagsim`` registry entry and its LLM scoring function."""

    spec: _registry.Algorithm
    """The algorithm in the one registry ``dagsim.grpo.algorithms.ALGORITHMS``."""
    rewards: Callable[..., list[np.ndarray]]
    """``rewards(answers_per_view, n_answers, task_reward, settings, no_answer=None) -> list of (G,) arrays``
    (``no_answer``: index of the no-answer bucket in the problem's answer space, or None)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def needs_labels(self) -> bool:
        """Its rewards read the task reward (gt-grpo, diversity-grpo)."""
        return self.spec.needs_labels

    @property
    def needs_views(self) -> bool:
        """It needs >= 2 views per problem (pairwise-coherence-grpo)."""
        return self.spec.needs_views


def _grpo():
    import dagsim.grpo.rewards as grpo_rewards  # imported lazily: the module is optional at import time

    return grpo_rewards


def _per_view(objective: str, answers_per_view, n_answers, task_reward, tau, estimator, rloo_aware=False,
              **options):
    G = len(answers_per_view[0])
    if any(len(a) != G for a in answers_per_view):  # doubly-LOO subgroups: one view one sample short
        return [_per_view(objective, [a], n_answers, task_reward, tau, estimator, rloo_aware, **options)[0]
                for a in answers_per_view]
    stacked = np.stack(answers_per_view)  # (n_views, G): each view's group is its own GRPO group
    table_size = G - 1 if rloo_aware and G > 2 else None  # T11a
    out = _grpo().group_rewards(
        objective, stacked, n_answers=n_answers, tau=tau, task_reward=task_reward, estimator=estimator,
        table_size=table_size,
        **options,
    )
    return list(np.asarray(out, dtype=np.float64))


def _marked(s: RewardSettings, no_answer: int | None) -> int | None:
    """The no-answer index our own objectives must skip (None under ``no_answer = pool``)."""
    return None if s.no_answer == "pool" else no_answer


def _gt(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    return _per_view("reward", answers_per_view, n_answers, task_reward, 0.0, s.estimator, s.rloo_aware)


def _ttrl(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    return _per_view(
        "ttrl", answers_per_view, n_answers, None, s.tau, s.estimator, s.rloo_aware,
        no_answer=no_answer, tie_break=s.tie_break, no_answer_rule=s.no_answer_rule,
    )


def _empo(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    return _per_view(
        "empo", answers_per_view, n_answers, None, s.tau, s.estimator, s.rloo_aware,
        no_answer=no_answer, no_answer_rule=s.no_answer_rule, entropy_gate=s.entropy_gate,
    )


def _coherence(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    if s.consensus == "none":
        return _per_view("sharpen", answers_per_view, n_answers, None, s.tau, s.estimator, s.rloo_aware)
    out = _grpo().consensus_group_rewards(
        list(answers_per_view), n_answers=n_answers, tau=s.tau, consensus=s.consensus, estimator=s.estimator,
        no_answer=_marked(s, no_answer),
        rloo_aware=s.rloo_aware,
    )
    return [np.asarray(r, dtype=np.float64) for r in out]


def _diversity(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    return _per_view("entropy", answers_per_view, n_answers, task_reward, s.tau, s.estimator, s.rloo_aware)


def _pairwise(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    out = _grpo().pairwise_group_rewards(list(answers_per_view), n_answers=n_answers, tau=s.tau)
    return [np.asarray(r, dtype=np.float64) for r in out]


def _constrained_base(answers_per_view, n_answers, task_reward, s: RewardSettings, no_answer=None):
    tr = task_reward if s.base_objective in TASK_REWARD_OBJECTIVES else None
    tau = 0.0 if s.base_objective == "reward" else s.tau
    return _per_view(
        s.base_objective, answers_per_view, n_answers, tr, tau, s.estimator, s.rloo_aware,
        no_answer=_marked(s, no_answer),
    )


#: The LLM scoring function of every algorithm of ``dagsim.grpo.algorithms.ALGORITHMS``, by name.
REWARD_FUNCTIONS: dict[str, Callable[..., list[np.ndarray]]] = {
    "gt-grpo": _gt,
    "ttrl": _ttrl,
    "empo": _empo,
    "coherence-grpo": _coherence,
    "diversity-grpo": _diversity,
    "pairwise-coherence-grpo": _pairwise,
    "constrained-grpo": _constrained_base,
}
if set(REWARD_FUNCTIONS) != set(_registry.ALGORITHMS):
    raise ImportError(
        "llm.rewards.REWARD_FUNCTIONS must score exactly the algorithms of dagsim.grpo.algorithms.ALGORITHMS: "
        f"missing {sorted(set(_registry.ALGORITHMS) - set(REWARD_FUNCTIONS))}, "
        f"unknown {sorted(set(REWARD_FUNCTIONS) - set(_registry.ALGORITHMS))}"
    )
#: The algorithms in registry order, each with its scoring function.
ALGORITHMS: dict[str, Algorithm] = {
    name: Algorithm(spec, REWARD_FUNCTIONS[name]) for name, spec in _registry.ALGORITHMS.items()
}


def get_algorithm(name: str, field: str = "algorithm") -> Algorithm:
    """The registered algorithm ``name`` with its scoring function (the registry's UnknownNameError otherwise)."""
    return ALGORITHMS[_registry.get_algorithm(name, field).name]


def no_answer_index(answer_strings: Sequence[str]) -> int | None:
    """Index of the no-answer bucket (``llm.answers.NO_ANSWER``) in a problem's answer space, or None."""
    from llm.answers import NO_ANSWER

    return answer_strings.index(NO_ANSWER) if NO_ANSWER in answer_strings else None


@dataclass(frozen=True)
class ProblemScores:
    """One problem's answers indexed in one shared answer space and its rewards (one array per view)."""

    indices: list[np.ndarray]  # per view (G_j,) answer indices
    answer_strings: list[str]  # (n_answers,) the answer of each index (NO_ANSWER for the bucket)
    no_answer: int | None  # index of the no-answer bucket, None if every sample answered
    task_reward: np.ndarray | None  # (n_answers,) r(z), None without a ground truth
    rewards: list[np.ndarray]  # per view (G_j,) rewards, sampling order


def score_problem(
    algorithm: Algorithm | str,
    answers_per_view: Sequence[Sequence[str | None]],
    ground_truth: str | None,
    settings: RewardSettings,
    *,
    cluster: bool = True,
    task_reward_fn: Callable[[list[str]], np.ndarray] | None = None,
) -> ProblemScores:
    """Answer keys of one problem (``None`` = no answer) -> indices -> no-answer index -> adapter rewards.

    The single path from extracted answers to ``dagsim`` rewards, shared by ``llm.trainer.score_groups``
    and the TRL bridge, so both give the same rewards (ttrl/empo as published by default).
    ``answers_per_view[j][i]``: the canonical answer key of sample i of view j, in sampling order.
    ``cluster``: merge math-verify-equivalent symbolic keys (``llm.answers.index_answers``). The task reward
    is ``task_reward_fn(answer_strings)`` when given (e.g. a data set's own scorer), else 1 for
    ``ground_truth``'s class (None: no task reward).
    """
    from llm.answers import index_answers, task_reward_vector

    spec = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    indices, strings = index_answers(answers_per_view, cluster=cluster)
    na = no_answer_index(strings)
    if task_reward_fn is not None:
        task_reward = np.asarray(task_reward_fn(strings), dtype=np.float64)
    elif ground_truth is not None:
        task_reward = task_reward_vector(strings, ground_truth, cluster=cluster)
    else:
        task_reward = None
    rewards = spec.rewards(indices, len(strings), task_reward, settings, no_answer=na)
    return ProblemScores(indices, strings, na, task_reward, [np.asarray(r, dtype=np.float64) for r in rewards])


def pseudo_label(indices: np.ndarray, answer_strings: Sequence[str], no_answer: int | None) -> str | None:
    """The group's majority answer among real answers (ties: first in sample order, as TTRL), or None."""
    real = [int(i) for i in indices if i != no_answer]
    if not real:
        return None
    counts = np.bincount(real, minlength=len(answer_strings))  # (n_answers,)
    top = counts.max()
    return answer_strings[next(i for i in real if counts[i] == top)]


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
                         post: Callable | None = None, no_answer: int | None = None) -> list[np.ndarray]:
    """T11b: per view, ``b_i = mean_{j≠i} R_j^{(−i)}`` — the view's rewards recomputed on its group without
    sample i (every other view unchanged), O(G²) reward calls' work. ``post(rewards, answers)`` is applied
    to the recomputed rewards (e.g. the constraint penalty). ``no_answer``: the problem's no-answer index
    (as for the rewards themselves). Returns one (G,) array per view."""
    out = []
    for v, idx in enumerate(idx_per_view):
        b = np.empty(len(idx))
        for i in range(len(idx)):
            views = list(idx_per_view)
            views[v] = np.delete(np.asarray(idx), i)
            r = np.asarray(rewards_fn(views, n_answers, task_reward, settings, no_answer=no_answer)[v],
                           dtype=np.float64)
            b[i] = (post(r, views[v]) if post is not None else r).mean()
        out.append(b)
    return out


def group_advantages(rewards: np.ndarray, baseline: str, scale: str, *, doubly_loo: np.ndarray | None = None,
                     extra_rewards: np.ndarray | None = None, eps: float | None = None) -> tuple[np.ndarray, int]:
    """``dagsim.grpo.advantages`` on (n_groups, G) rewards (T11): (adv, n_zero_std_groups).

    ``baseline="doubly-loo"`` needs ``doubly_loo`` (n_groups, G), the baselines of :func:`doubly_loo_baselines`.
    ``extra_rewards`` (same shape) is a count-free per-sample term added to the rewards (the sequence-level
    −β·log π/π0): under doubly-LOO its baseline is plain leave-one-out. ``eps``: the ε of the std scaling
    (None: dagsim's ``ADVANTAGE_EPS``)."""
    from dagsim.grpo.advantages import ADVANTAGE_EPS, advantages, rescale_advantages

    eps = ADVANTAGE_EPS if eps is None else eps
    if baseline == "doubly-loo":
        if doubly_loo is None:
            raise ValidationError("baseline 'doubly-loo' needs the recomputed baselines (doubly_loo_baselines)")
        centered, total = rewards - doubly_loo, rewards
        if extra_rewards is not None:
            G = rewards.shape[1]
            centered = centered + G / (G - 1) * (extra_rewards - extra_rewards.mean(axis=1, keepdims=True))
            total = rewards + extra_rewards
        adv, n_zero = rescale_advantages(centered, total, scale=scale, eps=eps)
    else:
        total = rewards if extra_rewards is None else rewards + extra_rewards
        adv, n_zero = advantages(total, baseline=baseline, scale=scale, eps=eps)
    adv = np.asarray(adv, dtype=np.float64)
    if not np.all(np.isfinite(adv)):
        raise FloatingPointError("dagsim advantages returned non-finite values")
    return adv, int(n_zero)
