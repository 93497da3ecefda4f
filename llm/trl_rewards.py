"""Reward functions for ``trl.GRPOTrainer`` that use the same answer-level rewards as our trainer.

How TRL 1.16 calls a reward function: ``f(prompts=..., completions=..., completion_ids=..., **dataset_columns,
trainer_state=..., log_extra=..., log_metric=...)``, once per generation batch, on **each process's slice** of
it (one row per completion; the slices concatenated in rank order are the whole generation batch, in which
``RepeatSampler`` puts each prompt's G completions in consecutive rows). TRL then gathers the rewards and
centres them per group of ``num_generations`` rows of the whole batch. A per-process slice need not hold whole
groups (``per_device_train_batch_size = 6`` with G = 4), nor a problem's views.

So answer-level rewards, which depend on the whole group (and, for multi-view consensus, on all views of a
problem), are computed like this by :func:`make_reward_func`:

1. **G is verified, not trusted.** When TRL calls the function, the trainer is read from the bound
   ``log_metric`` it passes (``log_metric.__self__``): its ``num_generations`` (training) or
   ``num_generations_eval`` (evaluation, ``trainer.model.training`` is False) is G; a G bound by the user that
   differs is an error naming both numbers. :func:`make_reward_funcs` binds both from a ``GRPOConfig``.
   Called outside TRL (no trainer), the bound G is checked against the rows: each group one prompt and
   neighbouring groups different prompts (G bound at half the true value is an error, not two half-groups).
2. **Gather, score once, slice.** Every process sends the small per-row keys — a prompt digest, the
   extracted answer string, the ground-truth string, ``problem_id`` / ``n_views`` — to every other process
   (``torch.distributed.all_gather_object`` when a process group is initialized; no tensors, no texts). Each
   process scores every group of the whole batch, on whole groups and whole problems, and returns its own
   rows. The scores are those of one process holding the whole batch (:func:`score_generation_batch`).
3. **Multi-view.** Rows with the same ``problem_id`` are views of one problem sharing one answer space. How
   many views a problem has comes from an ``n_views`` column (or the ``n_views`` argument, or the dataset via
   :func:`make_reward_funcs`); after the gather every problem must have all its views, else an error naming
   the problem and the settings to change (``shuffle_dataset``, the generation batch size).
4. **Metrics** (``log_metric``), over the whole generation batch, the same value on every process (so TRL's
   cross-process average of them is that value): ``alft/answer_entropy`` the mean over groups of the entropy
   (nats) of the group's answer distribution, no-answer bucket included; ``alft/majority_ratio`` the mean
   over groups of the most frequent answer's share; ``alft/n_unextracted`` the **total** number of
   completions without an extractable answer in the generation batch. TRL averages each over the generation
   batches of a logging step. The extracted answer of each row goes to the completions table
   (``log_extra("alft/answer", ...)``).

``strict=True`` keeps the old contract: every process must hold whole groups (and whole problems) itself;
a split is an error naming the setting to change instead of being repaired by the gather (the error is
raised on every process, so none waits in a collective).

Every process must call the function (TRL does); with an initialized process group, calling it on one rank
only would wait forever in the gather.

Baselines. TRL's advantage is ``(R_i − mean_group R) / (std + 1e-4)`` (``scale_rewards="group"``), or without
the division (``"none"``). ``baseline="rloo"`` returns ``G/(G−1)·R``, so TRL's mean-centred advantage under
``scale_rewards="none"`` equals the RLOO advantage ``R_i − mean_{j≠i} R_j`` exactly (T11 a, d; dagsim's
default); under std scaling the factor cancels, so it is refused there. The doubly-leave-one-out baseline
(T11 b) ``A_i = R_i − mean_{j≠i} R_j^{(−i)}`` has no such form: its advantages need not sum to zero over a
group and TRL always subtracts the group mean of what the reward functions return. So ``baseline="doubly-loo"``
needs :class:`ALFTGRPOTrainer`, a ``GRPOTrainer`` subclass: the reward function (which holds the whole
generation batch after the gather) recomputes every group's rewards without each sample
(``llm.rewards.doubly_loo_baselines``, as ``llm.trainer.score_groups``), forms the advantages with
``llm.rewards.group_advantages`` and posts this process's rows to the trainer calling it, which puts them in
place of TRL's ``advantages`` (the process's rows of the generation batch, before TRL shuffles and splits the
batch over ``steps_per_generation`` steps; the completions log gets the whole batch's). The function returns
the plain rewards ``R_i`` (what TRL logs). ``scale_rewards`` is applied as ``dagsim.grpo.advantages`` does:
``"none"``; ``"group"`` divides by the group's reward std (ddof 1, as TRL) + 1e-4 and sets groups of equal
rewards to 0; ``"batch"`` divides by the whole generation batch's reward std + 1e-4. Count tables are those
of G samples for ``R_i`` and G − 1 for the baseline (T11b; ``rloo_aware`` does not apply). With plain
``GRPOTrainer`` it is an error naming ``ALFTGRPOTrainer``; the doubly-LOO reward must be the trainer's only
reward function (weight 1). Called outside a trainer it returns the rewards and keeps the advantages
(scale "none") in ``reward_func.last_advantages``.

Example (G from the config)::

    args = GRPOConfig(num_generations=8, per_device_train_batch_size=12, ...)  # 2 processes: a group split
    funcs = make_reward_funcs(args, "coherence-grpo", consensus="none")
    trainer = GRPOTrainer(model=..., reward_funcs=funcs, args=args, ...)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.divergences import count_entropy, majority_ratio
from dagsim.errors import ValidationError
from llm.answers import extract_answers, parse_ground_truth
from llm.rewards import (
    NO_ANSWER_CHOICES,
    TIE_BREAK_CHOICES,
    Algorithm,
    RewardSettings,
    doubly_loo_baselines,
    get_algorithm,
    group_advantages,
    score_problem,
)

BRIDGE_BASELINES = ("mean", "rloo", "doubly-loo")
"""``mean``: rewards as they are (TRL centres them); ``rloo``: ``G/(G−1)·R`` (exact RLOO under scale "none");
``doubly-loo``: T11b advantages put in place of TRL's by :class:`ALFTGRPOTrainer` (module docstring)."""
TRL_ADVANTAGE_EPS = 1e-4
"""The ε TRL 1.16 adds to the reward std in ``_generate_and_score_completions`` (used for doubly-LOO scaling)."""
METRIC_NAMES = ("alft/answer_entropy", "alft/majority_ratio", "alft/n_unextracted")


def completion_text(completion) -> str:
    """Text of a TRL completion: a string, or a conversational list of messages (their contents joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in completion)
    return str(completion)


def prompt_key(prompt) -> str:
    """A 16-hex-digit digest of a prompt (text or messages): what is gathered instead of the prompt itself."""
    return hashlib.blake2b(repr(prompt).encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Layout:
    """Where the reward function runs, for verification and for error messages naming the right settings."""

    mode: str
    """``train`` / ``eval`` (inside GRPOTrainer) or ``direct`` (called without a trainer)."""
    group_size: int
    """G of this call."""
    verified: bool
    """True when G was read from the trainer (then neighbouring groups may legitimately share a prompt)."""
    g_setting: str = "group_size"
    """The setting that is G (``num_generations`` / ``num_generations_eval``)."""
    per_process: str = "the rows passed"
    """The per-process batch and the settings that make it, with their values."""
    batch_settings: str = ""
    """Settings that decide which prompts share a generation batch, with their values."""


def _trainer_of(kwargs) -> object | None:
    """The GRPOTrainer calling us: TRL passes its bound ``log_metric`` / ``log_extra`` methods."""
    for key in ("log_metric", "log_extra"):
        owner = getattr(kwargs.get(key), "__self__", None)
        if owner is not None and hasattr(owner, "num_generations") and hasattr(owner, "args"):
            return owner
    return None


def _layout(trainer, group_size: int | None, eval_group_size: int | None, baseline: str) -> Layout:
    """G of this call, verified against the trainer when there is one (errors name both numbers)."""
    if trainer is None:
        if group_size is None:
            raise ValidationError(
                "group_size (G) is needed when the reward function is called outside trl.GRPOTrainer"
            )
        return Layout("direct", group_size, False)
    args = trainer.args
    n_proc = trainer.accelerator.num_processes
    if baseline == "doubly-loo" and not getattr(trainer, "alft_takes_advantages", False):
        raise ValidationError(
            f"baseline='doubly-loo' needs llm.trl_rewards.ALFTGRPOTrainer, not {type(trainer).__name__}: TRL "
            "subtracts the group mean of the returned rewards, and doubly-leave-one-out advantages need not sum "
            "to zero over a group; build the trainer as ALFTGRPOTrainer(model=..., reward_funcs=..., args=...)"
        )
    if getattr(trainer, "scale_rewards", "none") != "none" and baseline == "rloo":
        raise ValidationError(
            f"baseline='rloo' needs GRPOConfig(scale_rewards='none') (got {trainer.scale_rewards!r}): with std "
            "scaling the RLOO factor G/(G-1) cancels and TRL's advantage is the plain GRPO one"
        )
    if trainer.model.training:
        G = int(trainer.num_generations)
        if group_size is not None and group_size != G:
            raise ValidationError(
                f"the reward function is bound to G = {group_size} but the trainer's num_generations = {G}: "
                f"its groups of {G} completions would be scored as groups of {group_size}; pass "
                f"group_size={G} or build the reward with make_reward_funcs(config)"
            )
        return Layout(
            "train",
            G,
            True,
            "num_generations",
            f"per_device_train_batch_size x steps_per_generation = {args.per_device_train_batch_size} x "
            f"{args.steps_per_generation} rows per process",
            f"shuffle_dataset={trainer.shuffle_dataset}, generation_batch_size={args.generation_batch_size} "
            f"(per_device_train_batch_size x num_processes x steps_per_generation = "
            f"{args.per_device_train_batch_size} x {n_proc} x {args.steps_per_generation})",
        )
    G = int(trainer.num_generations_eval)
    bound = eval_group_size if eval_group_size is not None else group_size
    if bound is not None and bound != G:
        raise ValidationError(
            f"in evaluation the reward function is bound to G = {bound} but num_generations_eval = {G} "
            f"(per_device_eval_batch_size = {args.per_device_eval_batch_size}): pass eval_group_size={G} "
            f"(or set num_generations_eval={bound}), or build the reward with make_reward_funcs(config)"
        )
    return Layout(
        "eval",
        G,
        True,
        "num_generations_eval",
        f"per_device_eval_batch_size = {args.per_device_eval_batch_size} rows per process",
        f"TRL's evaluation sampler always shuffles prompts; per_device_eval_batch_size x num_processes = "
        f"{args.per_device_eval_batch_size} x {n_proc}",
    )


def split_groups(prompts: Sequence, group_size: int, layout: Layout | None = None) -> list[slice]:
    """Consecutive slices of ``group_size`` rows, each one prompt's whole group; else a ValidationError.

    ``prompts`` are the rows' prompts (or :func:`prompt_key` digests). Unless ``layout.verified`` (G read from
    the trainer), neighbouring groups must differ: two neighbouring groups of one prompt mean G is bound
    smaller than the trainer's ``num_generations`` (a group of 8 scored as two groups of 4).
    """
    layout = layout or Layout("direct", group_size, False)
    n = len(prompts)
    fix = (
        f"make the batch ({layout.per_process}) a multiple of {layout.g_setting} = G = {group_size}, and bind "
        f"the same G (make_reward_funcs(config) does)"
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
                f"arrived split, or G is not TRL's {layout.g_setting}; {fix}"
            )
    if not layout.verified:
        for k in range(len(groups) - 1):
            if prompts[groups[k].start] == prompts[groups[k + 1].start]:
                raise ValidationError(
                    f"groups {k} and {k + 1} (rows {groups[k].start}..{groups[k + 1].stop - 1}) have the same "
                    f"prompt: G = {group_size} looks smaller than the trainer's num_generations (or "
                    f"num_generations_eval), so one group would be scored as several; bind "
                    f"group_size=num_generations (make_reward_funcs(config)), or, outside GRPOTrainer, do not "
                    f"put two groups of one prompt next to each other"
                )
    return groups


@dataclass(frozen=True)
class BatchScores:
    """Rewards and metrics of one whole generation batch (all processes' rows, in rank order)."""

    rewards: np.ndarray
    """(N,) answer-level rewards, before the bridge's baseline factor."""
    answer_entropy: float
    """Mean over groups of the entropy (nats) of the group's answer distribution."""
    majority_ratio: float
    """Mean over groups of the share of the group's most frequent answer."""
    n_unextracted: int
    """Completions of the batch without an extractable answer (the no-answer bucket)."""
    baselines: np.ndarray | None = None
    """(N,) doubly-LOO baselines ``mean_{j≠i} R_j^{(−i)}`` (T11b) when asked for, else None."""


def _truth_of(raw) -> str | None:
    """Key of a ground-truth cell: a worked solution (``... #### 1/2``, ``\\boxed{..}``) or a bare answer."""
    return parse_ground_truth(str(raw))


def score_generation_batch(
    keys: Sequence[str],
    answers: Sequence[str | None],
    *,
    spec: Algorithm,
    settings: RewardSettings,
    layout: Layout,
    truths: Sequence | None = None,
    problem_ids: Sequence | None = None,
    n_views: Sequence[int] | None = None,
    doubly_loo: bool = False,
) -> BatchScores:
    """Rewards of a whole generation batch, computed once per group (and per problem, multi-view).

    ``keys[i]`` identifies row i's prompt, ``answers[i]`` its extracted answer (``None`` = no answer),
    ``truths[i]`` its ground truth (``#### N`` or ``N``), ``problem_ids[i]`` / ``n_views[i]`` the problem it
    is a view of and how many views that problem has (multi-view algorithms only). ``doubly_loo``: also each
    row's T11b baseline, every view's group recomputed without the row (``llm.rewards.doubly_loo_baselines``).
    """
    G = layout.group_size
    groups = split_groups(keys, G, layout)
    multi_view = problem_ids is not None
    problems: dict[object, list[slice]] = {}
    for k, g in enumerate(groups):
        problems.setdefault(problem_ids[g.start] if multi_view else k, []).append(g)
    if multi_view:
        for pid, views in problems.items():
            _check_views(pid, views, problem_ids, n_views, layout)
    rewards = np.zeros(len(keys))  # (N,)
    baselines = np.zeros(len(keys)) if doubly_loo else None  # (N,)
    entropies, majority = [], []
    for views in problems.values():
        truth = None
        if truths is not None:
            truth = _truth_of(truths[views[0].start])
            if multi_view and any(_truth_of(truths[g.start]) != truth for g in views):
                raise ValidationError(
                    f"problem {problem_ids[views[0].start]!r}: its views have different ground truths in the "
                    f"answer column"
                )
        # the trainer's own path: keys -> indices -> no-answer index -> adapter (ttrl/empo as published)
        scored = score_problem(spec, [answers[g] for g in views], truth, settings)
        if doubly_loo:
            loo = doubly_loo_baselines(
                spec.rewards, scored.indices, len(scored.answer_strings), scored.task_reward, settings,
                no_answer=scored.no_answer,
            )  # fmt: skip
            for g, b in zip(views, loo, strict=True):
                baselines[g] = b
        for g, r, i in zip(views, scored.rewards, scored.indices, strict=True):
            rewards[g] = r
            counts = np.bincount(i)
            entropies.append(count_entropy(counts, G))
            majority.append(majority_ratio(counts, G))
    return BatchScores(
        rewards, float(np.mean(entropies)), float(np.mean(majority)), int(sum(a is None for a in answers)),
        baselines,
    )  # fmt: skip


def _check_views(pid, views: list[slice], problem_ids, n_views, layout: Layout) -> None:
    """Every problem of the batch has exactly its ``n_views`` views (groups), after the gather."""
    expected = {int(n_views[g.start]) for g in views}
    if len(expected) != 1:
        raise ValidationError(f"problem {pid!r}: its rows disagree on n_views ({sorted(expected)})")
    (n,) = expected
    if n < 2:
        raise ValidationError(f"problem {pid!r}: n_views = {n}, but multi-view consensus needs >= 2 views")
    if len(views) == n:
        return
    where = f"rows {views[0].start}..{views[-1].stop - 1}"
    if layout.mode == "eval":
        hint = (
            f"{layout.batch_settings}: the views of a problem cannot be kept together in evaluation; "
            f"evaluate with a single-view reward (consensus='none') or llm.evaluate"
        )
    else:
        hint = (
            f"keep all views of a problem in one generation batch: shuffle_dataset=False, the dataset ordered "
            f"by problem_id with each problem's {n} views consecutive, and generation_batch_size a multiple of "
            f"n_views x {layout.g_setting} = {n} x {layout.group_size}"
            + (f"; now {layout.batch_settings}" if layout.batch_settings else "")
        )
    raise ValidationError(
        f"problem {pid!r} has {len(views)} of its {n} views in this generation batch ({where}); {hint}"
    )


def _all_gather(payload) -> tuple[list, int]:
    """Every process's ``payload`` in rank order, and this process's rank (one process: ``[payload], 0``)."""
    try:
        import torch.distributed as dist
    except ImportError:  # torch is an optional dependency of this module
        return [payload], 0
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return [payload], 0
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, payload)
    return out, dist.get_rank()


def _local_problem(
    algorithm: str,
    *,
    spec: Algorithm,
    multi_view: bool,
    answer_column: str,
    n_views: int | Mapping | None,
    kwargs,
    n_rows: int,
):
    """This process's ground-truth strings, problem ids and view counts (lists of length n_rows, or None)."""
    truths = kwargs.get(answer_column)
    if spec.needs_labels and truths is None:
        raise ValidationError(f"{algorithm} needs the ground truth: add an '{answer_column}' dataset column")
    if not multi_view:
        return (None if truths is None else [str(t) for t in truths]), None, None
    problem_ids = kwargs.get("problem_id")
    if problem_ids is None:
        raise ValidationError(f"{algorithm} with consensus needs a 'problem_id' column linking the views")
    column = kwargs.get("n_views")
    if column is not None:
        views = [int(v) for v in column]
    elif isinstance(n_views, Mapping):
        missing = [p for p in problem_ids if p not in n_views]
        if missing:
            raise ValidationError(f"problem {missing[0]!r} is not in the n_views mapping of the reward function")
        views = [int(n_views[p]) for p in problem_ids]
    elif n_views is not None:
        views = [int(n_views)] * n_rows
    else:
        raise ValidationError(
            f"{algorithm} with consensus needs each problem's number of views: add an 'n_views' dataset column, "
            "or pass n_views= (an int, or a problem_id -> count mapping; make_reward_funcs(config, ..., "
            "dataset=...) counts them)"
        )
    return (None if truths is None else [str(t) for t in truths]), list(problem_ids), views


def make_reward_func(
    algorithm: str,
    *,
    group_size: int | None = None,
    eval_group_size: int | None = None,
    tau: float = 1.0,
    estimator: str = "aqp",
    consensus: str = "none",
    answer_column: str = "answer",
    n_views: int | Mapping | None = None,
    baseline: str = "mean",
    strict: bool = False,
    rloo_aware: bool = True,
    no_answer: str = "auto",
    tie_break: str = "first",
    entropy_gate: bool = False,
) -> Callable[..., list[float]]:
    """A TRL reward function computing ``algorithm``'s rewards (dagsim) on whole groups of G completions.

    ``group_size`` / ``eval_group_size``: G in training / evaluation (``None``: read from the trainer;
    ``eval_group_size`` defaults to ``group_size``); a bound G that differs from the trainer's
    ``num_generations`` / ``num_generations_eval`` is an error. ``answer_column``: the ground truth (``#### N``
    strings or plain numbers), needed by gt-grpo and diversity-grpo only. ``n_views``: views per problem for
    multi-view algorithms when the dataset has no ``n_views`` column. ``baseline``: one of
    :data:`BRIDGE_BASELINES`. ``strict``: raise when a process holds a partial group or problem instead of
    gathering. ``estimator`` (default ``aqp``, T12) and ``rloo_aware`` (default True: count tables designed for
    G − 1 samples, since TRL's mean-centring is (G−1)/G × RLOO, T11a/T11d) match the trainer's defaults.
    ``no_answer`` / ``tie_break`` / ``entropy_gate``: the label-free baselines' conventions (README "Differences
    from the original implementations"; defaults = TTRL's and EMPO's published code, as in the trainer). See the
    module docstring for the gather, the checks and the logged metrics.
    """
    spec = get_algorithm(algorithm)
    for name, g in (("group_size", group_size), ("eval_group_size", eval_group_size)):
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g < 2):
            raise ValidationError(f"{name} (G) must be an integer >= 2, got {g!r}")
    if algorithm == "constrained-grpo":
        raise ValidationError(
            "constrained-grpo needs dual ascent across steps: use llm.trainer, not the TRL bridge"
        )
    if baseline not in BRIDGE_BASELINES:
        raise ValidationError(f"baseline must be one of {BRIDGE_BASELINES}, got {baseline!r}")
    doubly_loo = baseline == "doubly-loo"
    for name, g in (("group_size", group_size), ("eval_group_size", eval_group_size)):
        if doubly_loo and g is not None and g < 3:
            raise ValidationError(
                f"baseline 'doubly-loo' recomputes rewards on groups of G − 1: {name} must be >= 3, got {g}"
            )
    settings = RewardSettings(
        tau,
        estimator,
        consensus if algorithm == "coherence-grpo" else "none",
        "sharpen",
        rloo_aware=rloo_aware and not doubly_loo,  # doubly-LOO: G-tables for R_i, (G-1)-tables for b_i (T11b)
        no_answer=no_answer,
        tie_break=tie_break,
        entropy_gate=entropy_gate,
    )
    if no_answer not in NO_ANSWER_CHOICES:
        raise ValidationError(f"no_answer must be one of {NO_ANSWER_CHOICES}, got {no_answer!r}")
    if tie_break not in TIE_BREAK_CHOICES:
        raise ValidationError(f"tie_break must be one of {TIE_BREAK_CHOICES}, got {tie_break!r}")
    multi_view = spec.needs_views or settings.consensus != "none"

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        trainer = _trainer_of(kwargs)
        layout = _layout(trainer, group_size, eval_group_size, baseline)  # before any collective
        if doubly_loo and layout.group_size < 3:
            raise ValidationError(
                f"baseline 'doubly-loo' recomputes rewards on groups of G − 1: {layout.g_setting} must be >= 3, "
                f"got {layout.group_size}"
            )
        n = len(prompts)
        keys = answers = truths = problem_ids = views = None
        local_error = None
        try:  # errors here may differ between processes: they are gathered and raised on every process
            if len(completions) != n:
                raise ValidationError(f"got {n} prompts but {len(completions)} completions")
            keys = [prompt_key(p) for p in prompts]
            answers = extract_answers([completion_text(c) for c in completions])  # one math-verify request
            truths, problem_ids, views = _local_problem(
                algorithm,
                spec=spec,
                multi_view=multi_view,
                answer_column=answer_column,
                n_views=n_views,
                kwargs=kwargs,
                n_rows=n,
            )
            if strict:  # the old contract: this process's rows alone are whole groups and whole problems
                try:
                    score_generation_batch(
                        keys, answers, spec=spec, settings=settings, layout=layout, truths=truths,
                        problem_ids=problem_ids, n_views=views,
                    )  # fmt: skip
                except ValidationError as exc:
                    raise ValidationError(f"strict=True: a process holds a partial group or problem: {exc}") from None
        except ValidationError as exc:
            local_error = str(exc)
        payloads, rank = _all_gather((keys, answers, truths, problem_ids, views, local_error))
        for r, p in enumerate(payloads):
            if p[5] is not None:
                raise ValidationError(p[5] if len(payloads) == 1 else f"process {r}: {p[5]}")
        offset = sum(len(p[0]) for p in payloads[:rank])

        def cat(i):
            return None if payloads[0][i] is None else [x for p in payloads for x in p[i]]

        scores = score_generation_batch(
            cat(0), cat(1), spec=spec, settings=settings, layout=layout, truths=cat(2),
            problem_ids=cat(3), n_views=cat(4), doubly_loo=doubly_loo,
        )  # fmt: skip
        mine = scores.rewards[offset : offset + n]  # (n,) this process's rows
        if doubly_loo:
            G = layout.group_size
            scale = getattr(trainer, "scale_rewards", "none") if trainer is not None else "none"
            adv, _ = group_advantages(
                scores.rewards.reshape(-1, G), "doubly-loo", scale, doubly_loo=scores.baselines.reshape(-1, G),
                eps=TRL_ADVANTAGE_EPS,
            )  # fmt: skip
            adv = adv.ravel()  # (N,) the whole generation batch, rank order
            reward_func.last_advantages = adv[offset : offset + n]
            if trainer is not None:
                trainer.alft_take_advantages(adv[offset : offset + n], adv)
        if baseline == "rloo":
            mine = mine * (layout.group_size / (layout.group_size - 1))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric("alft/answer_entropy", scores.answer_entropy)
            log_metric("alft/majority_ratio", scores.majority_ratio)
            log_metric("alft/n_unextracted", float(scores.n_unextracted))
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra("alft/answer", ["" if a is None else a for a in answers])
        return mine.tolist()

    reward_func.__name__ = f"alft_{algorithm.replace('-', '_')}"
    reward_func.baseline = baseline
    reward_func.last_advantages = None
    return reward_func


def views_per_problem(problem_ids: Sequence) -> dict:
    """``problem_id -> number of rows`` of a dataset column (each row one view of its problem)."""
    counts: dict = {}
    for p in problem_ids:
        counts[p] = counts.get(p, 0) + 1
    return counts


def make_reward_funcs(config, algorithm: str, *, dataset=None, **options) -> list[Callable[..., list[float]]]:
    """``[make_reward_func(...)]`` with G and G_eval from a ``trl.GRPOConfig``, checked against it up front.

    ``config.num_generations`` is G in training and ``config.num_generations_eval`` (or G) in evaluation.
    ``dataset`` (optional, with a ``problem_id`` column and no ``n_views`` column): the views per problem are
    counted from it. Multi-view algorithms are checked against the config: ``shuffle_dataset`` must be False
    and ``generation_batch_size`` a multiple of ``n_views x num_generations``. ``options`` go to
    :func:`make_reward_func` (``tau``, ``estimator``, ``consensus``, ``answer_column``, ``n_views``,
    ``baseline``, ``strict``).
    """
    for key in ("group_size", "eval_group_size"):
        if key in options:
            raise ValidationError(f"make_reward_funcs takes G from the GRPOConfig: do not pass {key}")
    G = int(config.num_generations)
    G_eval = int(config.num_generations_eval or G)
    if options.get("baseline") == "rloo" and getattr(config, "scale_rewards", "none") != "none":
        raise ValidationError(
            f"baseline='rloo' needs GRPOConfig(scale_rewards='none') (got {config.scale_rewards!r}): with std "
            "scaling the RLOO factor G/(G-1) cancels"
        )
    spec = get_algorithm(algorithm)
    multi_view = spec.needs_views or (algorithm == "coherence-grpo" and options.get("consensus", "none") != "none")
    if multi_view:
        columns = getattr(dataset, "column_names", None) or []
        if dataset is not None and "problem_id" in columns and "n_views" not in columns:
            options.setdefault("n_views", views_per_problem(dataset["problem_id"]))
        if getattr(config, "shuffle_dataset", False):
            raise ValidationError(
                f"{algorithm} with consensus scores all views of a problem together: set "
                "GRPOConfig(shuffle_dataset=False) and order the dataset by problem_id (TRL's default "
                "shuffle_dataset=True scatters a problem's views over generation batches)"
            )
        counts = options.get("n_views")
        if "n_views" in columns:
            sizes = {int(v) for v in dataset["n_views"]}
        elif isinstance(counts, Mapping):
            sizes = {int(v) for v in counts.values()}
        else:
            sizes = {int(counts)} if counts else set()
        for nv in sizes:
            if config.generation_batch_size % (nv * G):
                raise ValidationError(
                    f"generation_batch_size = {config.generation_batch_size} (per_device_train_batch_size x "
                    f"num_processes x steps_per_generation) is not a multiple of n_views x num_generations = "
                    f"{nv} x {G}: a problem's views would straddle two generation batches"
                )
    return [make_reward_func(algorithm, group_size=G, eval_group_size=G_eval, **options)]


def _alft_grpo_trainer_class():
    """Build :class:`ALFTGRPOTrainer` on first use (``trl`` and ``torch`` are optional for this module)."""
    import torch
    from trl import GRPOTrainer

    class ALFTGRPOTrainer(GRPOTrainer):
        """``trl.GRPOTrainer`` whose advantages are those a reward function posted for the same rows (T11b).

        A reward function of :func:`make_reward_func` with ``baseline="doubly-loo"`` calls
        :meth:`alft_take_advantages` with this process's rows (and the whole batch's, for the completions log)
        while TRL scores a generation batch; :meth:`_generate_and_score_completions` then replaces TRL's
        ``output["advantages"]`` (this process's rows of the generation batch, in the order the reward function
        saw them, before TRL shuffles and splits the batch over ``steps_per_generation`` steps) by them. With
        no doubly-LOO reward function it is exactly ``GRPOTrainer``.
        """

        alft_takes_advantages = True
        """Marker the reward functions check (plain GRPOTrainer has none: an error naming this class)."""

        def alft_take_advantages(self, local, whole) -> None:
            """Keep the advantages of this call: ``local`` (n,) this process's rows, ``whole`` (N,) all rows."""
            self._alft_posted = (np.asarray(local, dtype=np.float64), np.asarray(whole, dtype=np.float64))

        def _generate_and_score_completions(self, inputs):
            self._alft_posted = None
            output = super()._generate_and_score_completions(inputs)
            posted, self._alft_posted = getattr(self, "_alft_posted", None), None
            if posted is None:
                return output
            local, whole = posted
            weights = [float(w) for w in self.reward_weights.tolist()]
            if len(self.reward_funcs) != 1 or weights != [1.0]:
                raise ValidationError(
                    f"baseline='doubly-loo' replaces TRL's advantages by those of its reward function, so it must "
                    f"be the only reward function with weight 1 (got {len(self.reward_funcs)} reward functions, "
                    f"reward_weights={weights})"
                )
            advantages = output["advantages"]  # (n,) this process's rows
            if tuple(advantages.shape) != local.shape:
                raise RuntimeError(
                    f"the doubly-LOO reward posted {local.shape[0]} advantages for {advantages.shape[0]} rows"
                )
            output["advantages"] = torch.as_tensor(local, dtype=advantages.dtype, device=advantages.device)
            logged = self._logs["advantages"]  # TRL appended the whole batch's advantages last
            for _ in range(min(len(whole), len(logged))):
                logged.pop()
            logged.extend(whole.tolist())
            return output

    ALFTGRPOTrainer.__module__ = __name__
    ALFTGRPOTrainer.__qualname__ = "ALFTGRPOTrainer"
    return ALFTGRPOTrainer


_LAZY: dict = {}


def __getattr__(name: str):
    """``ALFTGRPOTrainer`` is built when first imported (``from llm.trl_rewards import ALFTGRPOTrainer``)."""
    if name == "ALFTGRPOTrainer":
        if name not in _LAZY:
            _LAZY[name] = _alft_grpo_trainer_class()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
