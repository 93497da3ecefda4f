"""Real (Coherence-)GRPO fine-tuning of a transformers causal LM, in plain torch (THEORY.md §6).

One step (:func:`train_step`):

1. :func:`select_problems` -- ``prompts_per_step`` problems, each with all its views (sampled together so a
   consensus target sees every view's group);
2. :func:`llm.sampling.sample_completions` -- G completions per (problem, view) at ``temperature``;
3. :func:`score_groups` -- answers extracted and indexed per problem in one shared answer space, rewards
   from ``dagsim.grpo.rewards`` (via :mod:`llm.rewards`), advantages from ``dagsim.grpo.advantages``;
4. :func:`optimize_policy` -- token-level clipped policy loss (:func:`clipped_policy_loss`) with ``grpo`` /
   ``dr_grpo`` / ``dapo`` normalization (:func:`token_weights`), optional k3 KL to the frozen reference
   (:func:`k3_kl`), AdamW, gradient clipping.

A run folder (``out``) is one unit: ``run.json`` (the manifest: the full resolved config, the code version,
the base model's hash, the status running | finished | interrupted | failed), ``metrics.jsonl``, the
checkpoints and ``final/``. Every flag is validated and the folder's state checked before any file is
touched; a non-empty ``out`` is refused unless the run is resumed or ``overwrite`` moves it aside.
Checkpoints (``checkpoint-N/``: model, tokenizer, optimizer, RNG states, dual multipliers, and
``checksums.json`` of every file, written last) are written atomically every ``checkpoint_every`` steps and
on SIGINT/SIGTERM; ``resume`` picks the newest checkpoint that verifies and continues the exact trajectory
of an uninterrupted run (same model/optimizer/RNG states => same samples and updates).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dagsim.divergences import count_entropy
from dagsim.divergences import majority_ratio as group_majority_ratio
from dagsim.errors import ValidationError
from llm.answers import (
    NO_ANSWER,
    answer_timeouts,
    extract_answers,
    parser_clusters,
    resolve_answer_parser,
)
from llm.model import atomic_directory, atomic_write_text, default_device, load_model
from llm.rewards import (
    ALGORITHMS,
    NO_ANSWER_CHOICES,
    TIE_BREAK_CHOICES,
    RewardSettings,
    constrain,
    constraint_values,
    doubly_loo_baselines,
    dual_step,
    forbidden_coefs,
    get_algorithm,
    group_advantages,
    pseudo_label,
    score_problem,
)
from llm.sampling import Batch, sample_completions, sequence_token_logprobs
from llm.tasks import (
    Problem,
    apply_prompt_format,
    load_data,
    split_data,
    split_problems,
    task_config_of,
    task_rewards,
)
from llm.tokenizer import load_tokenizer

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
CONSENSUS = ("none", "arithmetic", "geometric", "majority")
KL_MODES = ("seq-reward", "k3-loss")
STATE_FILE = "trainer_state.pt"
CHECKSUM_FILE = "checksums.json"
RUN_FILE = "run.json"
RUN_FORMAT = "alft-llm-run/v1"


@dataclass(frozen=True)
class TrainConfig:
    """GRPO-loop fine-tuning. Paper symbols in brackets."""

    algorithm: str = "coherence-grpo"
    """gt-grpo | ttrl | empo | coherence-grpo | diversity-grpo | pairwise-coherence-grpo | constrained-grpo"""
    model: str = "runs/llm/base"
    """Local HF checkpoint directory of the initial policy (also the frozen reference π0)."""
    out: str = "runs/llm/train"
    """Run directory: checkpoints, metrics.jsonl, final/ model."""
    data: str = ""
    """GSM8K-style JSONL training file; empty = the embedded task (its config read from MODEL/task.json)."""
    steps: int = 60
    """Optimizer steps."""
    prompts_per_step: int = 8
    """Problems per step; each contributes one group per view."""
    group_size: int = 8
    """Completions per prompt [G]."""
    views: int = 0
    """Views per problem used for training (0 = all the task has)."""
    temperature: float = 1.0
    """Sampling temperature (the policy's log-probabilities use the same temperature)."""
    max_new_tokens: int = 40
    """Completion length limit L_max (also the dr_grpo normalizer)."""
    lr: float = 1e-4
    """AdamW learning rate (2e-4 destabilized the 0.9 M-parameter base model; see llm/PROGRESS.md)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping threshold (global L2 norm)."""
    beta: float = 0.0
    """Weight of the KL penalty to the reference [β]; 0 skips the reference model."""
    kl: str = "seq-reward"
    """How β·KL(π‖π0) enters: seq-reward (−β·log π(y)/π0(y) of the whole completion added to its reward
    before the advantages: the exact score-function gradient of the sequence KL of E1, whose optimum is the
    answer-level one; see results/theory_vs_training.md) | k3-loss (β·k3 per token in the loss, as TRL
    does: its expected gradient is that of the forward per-token KL(π0‖π), a different target)."""
    tau: float = 1.0
    """Objective weight [τ] (sharpening, entropy, consensus, majority; unused by ttrl and empo, whose
    published rewards have no weight)."""
    estimator: str = "aqp"
    """Estimator of log q from a group (T8, T12, dagsim.estimators): aqp (default: the least worst-case bias
    under a variance budget of 2× the Cramér–Rao floor; in sampled GRPO at G = 8 it ends 7 % closer to ν* than
    minimax_monotone with 20 % less structural bias, bench/experiments_aqp.py) | minimax_monotone (the
    minimax LP restricted to nondecreasing tables; the default before issue 12) | minimax (oscillates in
    sign, too noisy past G ≈ 8) | plugin | loo. Use plugin with consensus=arithmetic (its reward subtracts
    this estimate from a plug-in log q̂)."""
    consensus: str = "geometric"
    """coherence-grpo target: none (single-view sharpen) | arithmetic | geometric | majority (E5)."""
    baseline: str = "rloo"
    """Advantage centering (T11): rloo | mean | none."""
    scale: str = "none"
    """Advantage scaling (T11): none | group | batch."""
    loss_type: str = "dapo"
    """Token normalization: grpo (per-sequence mean) | dr_grpo (÷ G·L_max) | dapo (÷ all tokens)."""
    epsilon: float = 0.2
    """Lower clip range [ε]."""
    epsilon_high: float = 0.2
    """Upper clip range (DAPO's clip-higher uses 0.28)."""
    num_iterations: int = 1
    """Policy updates per batch of samples [μ]; > 1 makes the ratio and clipping active."""
    micro_batch_rows: int = 0
    """Rows per forward/backward chunk (gradient accumulation; 0 = whole batch at once)."""
    forbidden: str = "odd"
    """constrained-grpo: forbidden answer set (odd | even | none-answer | comma list)."""
    constraint_cap: float = 0.2
    """constrained-grpo: cap b on the mass of the forbidden set, ⟨h, ν⟩ <= b."""
    dual_lr: float = 2.0
    """constrained-grpo: dual ascent step size on λ."""
    base_objective: str = "sharpen"
    """constrained-grpo: objective whose rewards are constrained (reward | sharpen | entropy | ...)."""
    checkpoint_every: int = 0
    """Save checkpoint-N every N steps (0 = only at the end and on SIGINT/SIGTERM)."""
    resume: str = ""
    """Checkpoint or run directory (its newest checkpoint that verifies) to continue from; on the command line
    the run's run.json supplies every flag not given, and continues into that run unless --out says otherwise."""
    seed: int = 0
    """Seeds prompt selection and sampling."""
    progress: bool = True
    """tqdm progress bar with live metrics."""
    # --- #13 generation and user data: stop rule, chat template, held-out split of --data -------------
    stop_strings: tuple[str, ...] = ()
    """Stop strings ending a completion (with every EOS id of model and tokenizer; llm.sampling.StopRule)."""
    chat_template: bool = False
    """Format prompts with the tokenizer's chat template (automatic for 'messages' data when it has one)."""
    eval_fraction: float = 0.2
    """--data only: fraction held out for evaluation (seeded by split_seed; 0 = train on all of it)."""
    split_seed: int = 0
    """--data only: seed of the held-out split (sft/train/evaluate agree given the same fraction and seed)."""
    skip_bad_lines: bool = False
    """--data only: skip (and count) lines whose answer cannot be parsed instead of failing."""
    # --- answer layer (issue 13 §1)
    answer_parser: str = ""
    """How final answers are read: '' = the task's default (marker: '#### N' numbers, for the embedded task;
    full: last \\boxed{}, then '####', then 'the answer is', with math-verify for symbolic answers, for --data)
    | full | marker | module:function | path/to/file.py:function (a str -> str | None callable)."""
    # --- issue 12 (T11a, T11b, T12): RLOO-aware tables; baseline doubly-loo and estimator aqp are accepted above
    rloo_aware: bool = True
    """With baseline rloo or mean, design the count tables for G − 1 samples (both apply them to Bin(G−2) counts,
    T11a/T11d)."""
    # --- Baselines faithful to their originals (issue #16) and the no-answer rule (issue #13) ---
    no_answer: str = "auto"
    """Unparseable completions: auto (the published rule: ttrl drop = out of the vote, reward 0; empo
    singleton = own cluster, 1/G) | drop | singleton | pool (one ordinary answer that can win: the earlier
    convention). For majority/consensus the bucket is never a label unless pool."""
    tie_break: str = "first"
    """ttrl pseudo-label among tied modes: first (TTRL: first in sample order) | split (credit 1/#modes)."""
    entropy_gate: bool = False
    """empo: EMPO's TRL gate — every reward 0 in a group whose G answers are all distinct (entropy log G);
    with --no-answer drop this is EMPO's TRL reward."""
    advantage_eps: float = 1e-4
    """ε added to the std in group/batch advantage scaling (1e-4 = TRL's GRPO; verl uses 1e-6)."""
    n_votes: int = 0
    """ttrl/empo: TTRL's vote/train split — sample n_votes >= G completions per prompt, vote on all, train
    on the first G (0 = G, no split)."""
    # --- run folders (issue 18): refuse to mix runs
    overwrite: bool = False
    """Start afresh in a non-empty ``out``: the old folder is first moved aside to OUT.old-<time> (never mixed)."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError(f"train.{f.name} must be a finite number, got {value!r}")
        get_algorithm(self.algorithm)
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValidationError(f"train.eval_fraction must be in [0, 1), got {self.eval_fraction}")
        positive_ints = ("steps", "prompts_per_step", "max_new_tokens", "num_iterations")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ValidationError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValidationError(f"train.group_size (G) must be >= 2, got {self.group_size}")
        for name in ("views", "micro_batch_rows", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValidationError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("temperature", "lr"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if not self.dual_lr > 0:
            raise ValidationError(f"train.dual_lr must be > 0, got {self.dual_lr}")
        for name in ("beta", "tau", "weight_decay", "epsilon", "epsilon_high"):
            if getattr(self, name) < 0:
                raise ValidationError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.max_grad_norm > 0:
            raise ValidationError(f"train.max_grad_norm must be > 0, got {self.max_grad_norm}")
        choices = {
            "estimator": ("minimax", "minimax_monotone", "plugin", "loo", "aqp"),
            "consensus": CONSENSUS,
            "baseline": ("rloo", "mean", "none", "doubly-loo"),
            "scale": ("none", "group", "batch"),
            "loss_type": LOSS_TYPES,
            "kl": KL_MODES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValidationError(f"train.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.baseline == "doubly-loo" and self.group_size < 3:
            raise ValidationError("train.baseline doubly-loo recomputes rewards on groups of G − 1: "
                                  "needs group_size >= 3")
        if not 0.0 <= self.constraint_cap <= 1.0:
            raise ValidationError(f"train.constraint_cap must be in [0, 1], got {self.constraint_cap}")
        for name, allowed in (("no_answer", NO_ANSWER_CHOICES), ("tie_break", TIE_BREAK_CHOICES)):
            if getattr(self, name) not in allowed:
                raise ValidationError(f"train.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not (np.isfinite(self.advantage_eps) and self.advantage_eps >= 0):
            raise ValidationError(f"train.advantage_eps must be finite and >= 0, got {self.advantage_eps}")
        if self.n_votes != 0 and (
            self.algorithm not in ("ttrl", "empo") or self.n_votes < self.group_size or self.baseline == "doubly-loo"
        ):
            raise ValidationError(
                f"train.n_votes must be 0 or >= group_size = {self.group_size}, for ttrl/empo only, not with "
                "baseline doubly-loo "
                f"(got {self.n_votes} with {self.algorithm})"
            )
        self.parser()  # fails fast on a bad --answer-parser

    def parser(self, answer_parser=None):
        """The answer parser of this run: ``answer_parser`` (a callable) if given, else ``answer_parser`` the
        field, else the task's default (``####`` numbers for the embedded task, the full locator for data)."""
        return answer_parser or _resolve_parser(self.answer_parser, not self.data)

    @property
    def reward_settings(self) -> RewardSettings:
        consensus = self.consensus if self.algorithm == "coherence-grpo" else "none"
        return RewardSettings(
            self.tau, self.estimator, consensus, self.base_objective,
            rloo_aware=self.baseline in ("rloo", "mean") and self.rloo_aware,
            no_answer=self.no_answer, tie_break=self.tie_break, entropy_gate=self.entropy_gate,
            advantage_eps=self.advantage_eps,
        )


# ----------------------------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=16)
def _resolve_parser(spec: str, embedded_task: bool):
    return resolve_answer_parser(spec, embedded_task=embedded_task, flag="--answer-parser (train.answer_parser)")


def load_training_problems(config: TrainConfig) -> tuple[list[Problem], list[Problem]]:
    """``(train, held_out)``: the embedded task's split (config in MODEL/task.json), or ``--data`` split by
    ``eval_fraction``/``split_seed`` (:func:`llm.tasks.split_data`); prompts formatted for the model's tokenizer
    (chat template: :func:`llm.tasks.apply_prompt_format`)."""
    if config.data:
        train, held = split_data(
            load_data(
                config.data,
                skip_bad_lines=config.skip_bad_lines,
                answer_parser=config.parser() if config.answer_parser else None,
            ), config.eval_fraction, config.split_seed
        )
        if not (Path(config.model) / "config.json").is_file():
            raise ValidationError(f"--model {config.model}: not a model directory (no config.json)")
        tokenizer = load_tokenizer(config.model)
        return apply_prompt_format(train, tokenizer, config.chat_template), apply_prompt_format(
            held, tokenizer, config.chat_template
        )
    train, held = split_problems(task_config_of(config.model))
    if config.chat_template:
        tokenizer = load_tokenizer(config.model)
        return apply_prompt_format(train, tokenizer, True), apply_prompt_format(held, tokenizer, True)
    return train, held


def check_compatible(config: TrainConfig, problems: list[Problem]) -> int:
    """Fail fast on algorithm/data mismatches; returns the number of views used per problem."""
    algorithm = get_algorithm(config.algorithm)
    n_views = min(p.n_views for p in problems)
    views = n_views if config.views == 0 else config.views
    if views > n_views:
        raise ValidationError(f"train.views={config.views} but the data has only {n_views} view(s) per problem")
    multi_view = algorithm.needs_views or config.reward_settings.consensus != "none"
    if multi_view and views < 2:
        raise ValidationError(
            f"{config.algorithm} with consensus={config.consensus!r} needs >= 2 views per problem, "
            f"data has {views};"
            " use --consensus none for single-view coherence"
        )
    needs_labels = algorithm.needs_labels or (
        config.algorithm == "constrained-grpo" and config.base_objective in ("reward", "entropy", "gini", "tsallis")
    )
    if needs_labels and any(p.answer is None for p in problems):
        raise ValidationError(f"{config.algorithm} needs ground-truth answers ('#### N') for every training problem")
    if config.prompts_per_step > len(problems):
        raise ValidationError(
            f"train.prompts_per_step={config.prompts_per_step} exceeds the {len(problems)} training problems"
        )
    return views


def select_problems(problems: list[Problem], rng: np.random.Generator, n: int) -> list[Problem]:
    """``n`` distinct problems, uniformly without replacement."""
    return [problems[int(i)] for i in rng.choice(len(problems), size=n, replace=False)]


# -------------------------------------------------------------------------------------------- scoring


@dataclass
class GroupScores:
    """Rewards/advantages of one step, rows in sampling order (problem-major, then view, then sample)."""

    rewards: np.ndarray  # (n_groups, G)
    advantages: np.ndarray  # (n_groups, G)
    metrics: dict[str, float]
    constraint_value: float | None = None
    baselines: np.ndarray | None = None  # (n_groups, G) doubly-LOO baselines (T11b), else None


def first_rows_per_group(batch: Batch, n_per_group: int, n_keep: int) -> Batch:
    """The first ``n_keep`` rows of every consecutive block of ``n_per_group`` rows (TTRL's
    ``select_top_k_per_prompt``)."""
    n_groups = len(batch.texts) // n_per_group
    rows = [g * n_per_group + s for g in range(n_groups) for s in range(n_keep)]
    index = torch.tensor(rows, device=batch.prompt_ids.device)
    return Batch(
        batch.prompt_ids[index], batch.prompt_mask[index], batch.completion_ids[index],
        batch.completion_mask[index], [batch.texts[r] for r in rows],
    )


def score_groups(
    problems: list[Problem],
    texts: list[str],
    *,
    views: int,
    config: TrainConfig,
    multipliers: np.ndarray,
    answer_parser=None,
) -> GroupScores:
    """Extract answers; rewards (dagsim) per problem in one shared answer space; advantages (dagsim).

    Answers are read by ``answer_parser`` (a ``str -> key | None`` callable) or the config's parser
    (:meth:`TrainConfig.parser`); symbolic keys are merged into equivalence classes per problem.
    With TTRL's vote/train split (``n_votes`` > G) ``texts`` hold ``n_votes`` completions per group: all
    vote, the rewards and advantages are those of the first G (the trained ones); the group metrics
    (entropy, pseudo-label, n_unextracted, train accuracy) describe all ``n_votes``.
    """
    G = config.group_size
    V = config.n_votes or G  # samples per group in ``texts``
    algorithm = ALGORITHMS[config.algorithm]
    settings = config.reward_settings
    parser = config.parser(answer_parser)
    cluster = parser_clusters(parser)
    timeouts_before = answer_timeouts()
    answers = extract_answers(texts, parser=parser)
    rewards_rows, majority_ok, agree, h_mass, entropies, majority_ratio = [], [], [], [], [], []
    correct: list[float] = []
    baseline_rows = []  # doubly-LOO baselines (T11b)
    for p, problem in enumerate(problems):
        per_view = [answers[(p * views + v) * V : (p * views + v + 1) * V] for v in range(views)]
        has_truth = problem.answer is not None or problem.scorer is not None
        # the data's own scorer where it has one, else 1 for the ground truth's class
        scored = score_problem(
            algorithm, per_view, None, settings, cluster=cluster,
            task_reward_fn=(lambda strings, problem=problem: task_rewards(problem, strings, NO_ANSWER, cluster=cluster))
            if has_truth else None,
        )
        idx_per_view, strings, task_reward = scored.indices, scored.answer_strings, scored.task_reward
        rewards = [r[:G] for r in scored.rewards]  # vote on V, train on the first G (TTRL)
        post = None
        if config.algorithm == "constrained-grpo":
            coefs = forbidden_coefs(strings, config.forbidden)  # (1, n_answers)
            rewards = [constrain(r, idx, coefs, multipliers) for r, idx in zip(rewards, idx_per_view, strict=True)]
            h_mass.extend(float(constraint_values(idx, coefs)[0]) for idx in idx_per_view)

            def post(r, idx, coefs=coefs):
                return constrain(r, idx, coefs, multipliers)
        if config.baseline == "doubly-loo":
            baseline_rows.extend(doubly_loo_baselines(algorithm.rewards, idx_per_view, len(strings), task_reward,
                                                      settings, post, no_answer=scored.no_answer))
        rewards_rows.extend(rewards)
        modes = []
        for idx in idx_per_view:
            counts = np.bincount(idx, minlength=len(strings))  # (n_answers,)
            entropies.append(count_entropy(counts, V))
            # The pseudo-label is a real answer (the no-answer bucket is never a label, issue #13).
            label = pseudo_label(idx, strings, scored.no_answer)
            majority_ratio.append(0.0 if label is None else group_majority_ratio(counts, V, strings.index(label)))
            modes.append(None if label is None else strings.index(label))
            if task_reward is not None:
                correct.extend(task_reward[idx].tolist())
        if task_reward is not None:
            majority_ok.extend(m is not None and bool(task_reward[m]) for m in modes)
        if views > 1:
            pairs = [(a, b) for a in range(views) for b in range(a + 1, views)]
            agree.append(np.mean([modes[a] is not None and modes[a] == modes[b] for a, b in pairs]))
    rewards = np.stack(rewards_rows)  # (n_groups, G)
    baselines = np.stack(baseline_rows) if baseline_rows else None  # (n_groups, G)
    adv, n_zero = group_advantages(
        rewards, config.baseline, config.scale, doubly_loo=baselines, eps=config.advantage_eps
    )
    metrics = {
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()),
        "frac_zero_std_groups": n_zero / rewards.shape[0],
        "answer_entropy": float(np.mean(entropies)),
        "majority_ratio": float(np.mean(majority_ratio)),
        "n_unextracted": int(sum(a is None for a in answers)),
        "n_answer_timeouts": answer_timeouts() - timeouts_before,
    }
    if majority_ok:
        metrics["pseudo_label_accuracy"] = float(np.mean(majority_ok))
        metrics["train_accuracy"] = float(np.mean(correct))
    if agree:
        metrics["cross_view_agreement"] = float(np.mean(agree))
    constraint_value = float(np.mean(h_mass)) if h_mass else None
    if constraint_value is not None:
        metrics["constraint_value"] = constraint_value
    return GroupScores(rewards, adv, metrics, constraint_value, baselines)


# ----------------------------------------------------------------------------------------------- loss


def token_weights(mask: torch.Tensor, loss_type: str, max_completion_length: int) -> torch.Tensor:
    """Per-token weights whose weighted sum is the batch loss. ``mask`` (N, C) -> (N, C).

    grpo: mean over each sequence's tokens, then over sequences; dr_grpo: sum ÷ (N·L_max);
    dapo: sum ÷ total number of tokens. Chunking rows (gradient accumulation) leaves the sum exact.
    """
    mask = mask.float()
    n_rows = mask.shape[0]
    if loss_type == "grpo":
        return mask / (mask.sum(dim=1, keepdim=True).clamp(min=1.0) * n_rows)
    if loss_type == "dr_grpo":
        return mask / (n_rows * max_completion_length)
    if loss_type == "dapo":
        return mask / mask.sum().clamp(min=1.0)
    raise ValidationError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def clipped_policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO/GRPO token loss ``−min(ρ A, clip(ρ, 1−ε_low, 1+ε_high) A)``, ρ = π/π_old; and where clipping binds.

    ``logp``, ``old_logp``: (N, C); ``advantages``: (N,). Returns ((N, C) loss, (N, C) bool clipped).
    """
    ratio = torch.exp(logp - old_logp)  # (N, C)
    adv = advantages.unsqueeze(1)  # (N, 1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    return -torch.minimum(unclipped, clipped), clipped < unclipped


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(π‖π_ref): ``e^{d} − d − 1`` with d = log π_ref − log π (>= 0). (N, C)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def _row_chunks(n_rows: int, micro: int) -> list[slice]:
    size = micro or n_rows
    return [slice(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]


def _slice_batch(batch: Batch, rows: slice) -> Batch:
    return Batch(
        batch.prompt_ids[rows],
        batch.prompt_mask[rows],
        batch.completion_ids[rows],
        batch.completion_mask[rows],
        batch.texts[rows],
    )


def sequence_log_ratio(model, ref_model, batch: Batch, config: TrainConfig) -> np.ndarray:
    """``log π(y|x) − log π0(y|x)`` of every sampled completion (N,), at the sampling temperature."""
    mask = batch.completion_mask.float()  # (N, C)
    out = []
    with torch.no_grad():
        for rows in _row_chunks(mask.shape[0], config.micro_batch_rows):
            part = _slice_batch(batch, rows)
            diff = sequence_token_logprobs(model, part, config.temperature) - sequence_token_logprobs(
                ref_model, part, config.temperature
            )  # (n, C)
            out.append((diff * mask[rows]).sum(dim=1))
    return torch.cat(out).double().cpu().numpy()


def optimize_policy(model, ref_model, optimizer, batch: Batch, advantages: np.ndarray, config: TrainConfig):
    """``num_iterations`` clipped policy-gradient updates on one batch of samples; returns loss statistics."""
    device = batch.completion_ids.device
    adv = torch.as_tensor(advantages.reshape(-1), dtype=torch.float32, device=device)  # (N,)
    mask = batch.completion_mask.float()  # (N, C)
    weights = token_weights(batch.completion_mask, config.loss_type, config.max_new_tokens)  # (N, C)
    n_tokens = mask.sum().clamp(min=1.0)
    chunks = _row_chunks(mask.shape[0], config.micro_batch_rows)
    ref_logp = [None] * len(chunks)
    k3 = config.beta > 0 and config.kl == "k3-loss"
    if k3:
        with torch.no_grad():
            ref_logp = [sequence_token_logprobs(ref_model, _slice_batch(batch, c), config.temperature) for c in chunks]
    old_logp: list[torch.Tensor | None] = [None] * len(chunks)
    stats = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "grad_norm": 0.0}
    for _ in range(config.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        loss_total, kl_total, clip_total = 0.0, 0.0, 0.0
        for k, rows in enumerate(chunks):
            logp = sequence_token_logprobs(model, _slice_batch(batch, rows), config.temperature)  # (n, C)
            if old_logp[k] is None:
                old_logp[k] = logp.detach()
            token_loss, was_clipped = clipped_policy_loss(
                logp, old_logp[k], adv[rows], config.epsilon, config.epsilon_high
            )
            if k3:
                kl = k3_kl(logp, ref_logp[k])  # (n, C)
                token_loss = token_loss + config.beta * kl
                kl_total += float((kl.detach() * mask[rows]).sum())
            loss = (token_loss * weights[rows]).sum()
            loss.backward()
            loss_total += float(loss.detach())
            clip_total += float((was_clipped.float() * mask[rows]).sum())
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        stats = {
            "loss": loss_total,
            "kl": kl_total / float(n_tokens),
            "clip_fraction": clip_total / float(n_tokens),
            "grad_norm": float(grad_norm),
        }
    stats["completion_length"] = float(mask.sum(dim=1).mean())
    return stats


# ------------------------------------------------------------------------------------------ run state


@dataclass
class RunState:
    """Everything that evolves during training (what a checkpoint holds)."""

    model: object
    tokenizer: object
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    rng: np.random.Generator
    multipliers: np.ndarray = field(default_factory=lambda: np.zeros(1))
    step: int = 0


def make_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_checksums(root: Path) -> dict[str, dict]:
    """``{relative path: {"sha256", "bytes"}}`` of every file under ``root`` (sorted)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE)
    return {p.relative_to(root).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files}


def save_checkpoint(state: RunState, config: TrainConfig, path: str | Path) -> Path:
    """Write ``path`` (model, tokenizer, optimizer, RNG states, multipliers, step, config) atomically.

    ``checksums.json`` (sha256 and size of every other file) is written last, inside the temporary folder:
    a checkpoint whose files do not all match it was truncated or modified (:func:`verify_checkpoint`).
    """
    with atomic_directory(path) as tmp:
        state.model.save_pretrained(tmp)
        state.tokenizer.save_pretrained(tmp)
        for name in ("task.json",):
            src = Path(config.model) / name
            if src.is_file():
                (tmp / name).write_text(src.read_text())
        torch.save(
            {
                "step": state.step,
                "optimizer": state.optimizer.state_dict(),
                "generator_state": state.generator.get_state(),
                "rng_state": state.rng.bit_generator.state,
                "multipliers": state.multipliers.copy(),
                "config": dataclasses.asdict(config),
            },
            tmp / STATE_FILE,
        )
        (tmp / CHECKSUM_FILE).write_text(json.dumps({"files": _file_checksums(tmp)}, indent=1), encoding="utf-8")
    return Path(path)


def verify_checkpoint(path: str | Path) -> str | None:
    """``None`` when every file listed in ``checksums.json`` is present with its size and sha256, else why not.

    A checkpoint written before checksums existed (no ``checksums.json``) passes when its state file and
    ``config.json`` are present; loading it (:func:`load_checkpoint`) is then the check.
    """
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        return f"no {STATE_FILE}"
    listing = path / CHECKSUM_FILE
    if not listing.is_file():
        return None if (path / "config.json").is_file() else "no config.json"
    try:
        files = json.loads(listing.read_text(encoding="utf-8"))["files"]
        items = [(str(name), str(entry["sha256"]), int(entry["bytes"])) for name, entry in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{CHECKSUM_FILE} is unreadable"
    for name, sha, size in items:
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, its checksum lists {size} (truncated?)"
        if _sha256(file) != sha:
            return f"{name} does not match its sha256 in {CHECKSUM_FILE} (modified or corrupted)"
    return None


def _checkpoint_step(path: Path) -> int | None:
    head, _, tail = path.name.rpartition("-")
    return int(tail) if head == "checkpoint" and tail.isdigit() else None


def checkpoint_candidates(path: str | Path) -> list[Path]:
    """``[path]`` if it is a checkpoint, else the run directory's ``checkpoint-N`` folders, newest first."""
    path = Path(path)
    if (path / STATE_FILE).is_file() or _checkpoint_step(path) is not None:
        return [path]
    found = [p for p in path.glob("checkpoint-*") if p.is_dir() and _checkpoint_step(p) is not None]
    return sorted(found, key=_checkpoint_step, reverse=True)


def _newest_intact(path: str | Path, load=None):
    """The newest checkpoint under ``path`` that verifies (and, with ``load``, loads): ``(candidate, loaded,
    skipped reasons)``; a ValidationError listing every reason when none does."""
    path = Path(path)
    candidates = checkpoint_candidates(path)
    if not candidates:
        raise ValidationError(f"--resume {path}: no checkpoint found (expected {STATE_FILE} or checkpoint-N/)")
    skipped = []
    for candidate in candidates:
        why = verify_checkpoint(candidate)
        if why is None:
            if load is None:
                return candidate, None, skipped
            try:
                return candidate, load(candidate), skipped
            except CheckpointError as exc:
                why = str(exc).split(": ", 1)[-1]
        skipped.append(f"{candidate.name} skipped: {why}")
    raise ValidationError(f"--resume {path}: no intact checkpoint ({'; '.join(skipped)})")


def find_checkpoint(path: str | Path) -> Path:
    """``path`` itself if it is a checkpoint, else the run directory's newest ``checkpoint-N`` that verifies."""
    return _newest_intact(path)[0]


#: Fields that may differ between a run and its resumption: its length, checkpoint cadence, display,
#: memory chunking (the loss sum is exact under any chunking) and where the continuation is written.
RESUME_MAY_CHANGE = ("steps", "checkpoint_every", "progress", "micro_batch_rows", "out", "resume", "overwrite")


def _same(a, b) -> bool:
    """Equal as JSON values (a tuple saved to run.json comes back as a list)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def _from_saved(saved: dict) -> dict:
    """Saved config values as field values: lists back to tuples where the field's default is a tuple."""
    defaults = TrainConfig()
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return {
        k: tuple(v) if isinstance(getattr(defaults, k), tuple) and isinstance(v, list) else v
        for k, v in saved.items()
        if k in known
    }


def _config_conflicts(saved: dict, config: TrainConfig) -> list[str]:
    """Fields (outside :data:`RESUME_MAY_CHANGE`) whose saved value differs from ``config``'s.

    A field the saved config lacks (written by an older version) is compared with the field's default.
    """
    defaults = TrainConfig()
    conflicts = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in RESUME_MAY_CHANGE:
            continue
        if not _same(saved.get(f.name, getattr(defaults, f.name)), getattr(config, f.name)):
            conflicts.append(f.name)
    return conflicts


def _conflict_message(where: str, saved: dict, config: TrainConfig, names: list[str]) -> str:
    defaults = TrainConfig()
    parts = [
        f"{n} (run: {saved.get(n, getattr(defaults, n))!r}, given: {getattr(config, n)!r})" for n in names
    ]
    return f"--resume {where}: config differs from the run's in {'; '.join(parts)}"


class CheckpointError(ValidationError):
    """A checkpoint that fails verification or cannot be loaded (resume falls back to an older one)."""


def load_checkpoint(path: Path, config: TrainConfig, device) -> RunState:
    """Restore a :class:`RunState`; fails fast if the checkpoint came from a different trajectory config.

    A damaged checkpoint (unreadable state, weights or config) raises :class:`CheckpointError`.
    """
    try:
        saved = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)  # our own file
        saved_config = saved["config"]
    except Exception as exc:  # noqa: BLE001 - any failure to read our own file means it is damaged
        raise CheckpointError(f"{path.name}: {STATE_FILE} cannot be read ({type(exc).__name__}: {exc})") from None
    diffs = _config_conflicts(saved_config, config)
    if diffs:
        raise ValidationError(_conflict_message(str(path), saved_config, config, diffs))
    try:
        model, tokenizer = load_model(path, device)
        optimizer = make_optimizer(model, config)
        optimizer.load_state_dict(saved["optimizer"])
        generator = torch.Generator(device=device)
        generator.set_state(saved["generator_state"])
        rng = np.random.default_rng()
        rng.bit_generator.state = saved["rng_state"]
        multipliers, step = np.asarray(saved["multipliers"]), int(saved["step"])
    except Exception as exc:  # noqa: BLE001 - weights/tokenizer/config of the checkpoint are damaged
        raise CheckpointError(f"{path.name}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    return RunState(model, tokenizer, optimizer, generator, rng, multipliers, step)


def load_newest_checkpoint(path: str | Path, config: TrainConfig, device) -> tuple[RunState, Path, list[str]]:
    """The newest checkpoint under ``path`` that verifies and loads: ``(state, its path, skipped reasons)``."""
    candidate, state, skipped = _newest_intact(path, lambda c: load_checkpoint(c, config, device))
    return state, candidate, skipped


def fresh_state(config: TrainConfig, device) -> RunState:
    model, tokenizer = load_model(config.model, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    return RunState(model, tokenizer, make_optimizer(model, config), generator, rng, np.zeros(1), 0)


def load_reference(config: TrainConfig, device):
    """The frozen reference policy π0 (the initial model), or None when β = 0."""
    if config.beta == 0:
        return None
    ref, _ = load_model(config.model, device)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def _rewrite_metrics(source: Path, dest: Path, up_to_step: int) -> None:
    """``dest`` = the metric rows of ``source`` with steps <= ``up_to_step`` (a resumed run rewrites the rest)."""
    rows = []
    if source.is_file():
        for line in source.read_text(encoding="utf-8").splitlines():
            try:
                if line.strip() and json.loads(line)["step"] <= up_to_step:
                    rows.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a row cut short by a crash: the resumed run writes that step again
    atomic_write_text(dest, "".join(r + "\n" for r in rows))


# ------------------------------------------------------------------------------------------ run folder


def run_dir_of(path: str | Path) -> Path:
    """The run folder of ``path``: its parent when ``path`` is a checkpoint (or ``final``), else ``path``."""
    path = Path(path)
    if (path / STATE_FILE).is_file() or _checkpoint_step(path) is not None or path.name == "final":
        return path.parent
    return path


def read_manifest(run: str | Path) -> dict | None:
    """``run.json`` of a run folder, or None when there is none (a run written before manifests existed)."""
    path = Path(run) / RUN_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest.get("config"), dict):
            raise ValueError("no config")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValidationError(f"{path}: not a readable run manifest ({exc})") from None
    return manifest


def _saved_config(run: Path) -> dict | None:
    """The config a run folder was trained with: ``run.json``, else the older ``train_config.json``."""
    manifest = read_manifest(run)
    if manifest is not None:
        return manifest["config"]
    legacy = run / "train_config.json"
    if legacy.is_file():
        try:
            return json.loads(legacy.read_text(encoding="utf-8"))
        except ValueError:
            return None
    return None


def resolve_resume(config: TrainConfig, given: set[str] | frozenset[str] = frozenset()) -> TrainConfig:
    """The config of ``--resume DIR`` completed from DIR's manifest (the CLI's view of a resumption).

    ``given`` names the fields set explicitly (on the command line); those outside :data:`RESUME_MAY_CHANGE`
    must equal the run's, else a :class:`ValidationError` names them. Without ``out`` among them the run
    continues into DIR's own folder. Without ``resume``, ``config`` is returned unchanged.
    """
    if not config.resume:
        return config
    run = run_dir_of(config.resume)
    if not run.exists():
        raise ValidationError(f"--resume {config.resume}: no such folder")
    saved = _saved_config(run)
    if saved is None:
        return config if "out" in given else dataclasses.replace(config, out=str(run))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    defaults = TrainConfig()
    conflicts = [
        name
        for name in sorted(given)
        if name in known
        and name not in RESUME_MAY_CHANGE
        and not _same(saved.get(name, getattr(defaults, name)), getattr(config, name))
    ]
    if conflicts:
        raise ValidationError(_conflict_message(str(run), saved, config, conflicts))
    values = _from_saved(saved)
    values.update({name: getattr(config, name) for name in given if name in known})
    values["resume"], values["overwrite"] = config.resume, config.overwrite  # per invocation, not inherited
    if "out" not in given:
        values["out"] = str(run)
    resolved = TrainConfig(**values)
    resolved.validate()
    return resolved


def code_version() -> dict:
    """Which code trained a run: ``git describe`` of the source tree, else the package version + a source hash."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    info: dict = {}
    try:
        from importlib.metadata import version

        info["package"] = f"alft-games {version('alft-games')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution (source checkout on sys.path)
        info["package"] = "alft-games (not installed)"
    try:
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10
        )
        if top.returncode == 0 and Path(top.stdout.strip()).resolve() == root:
            described = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if described.returncode == 0:
                info["git"] = described.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    if "git" not in info:
        digest = hashlib.sha256()
        for package in ("dagsim", "llm"):
            for path in sorted((root / package).rglob("*.py")):
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        info["source_sha256"] = digest.hexdigest()
    return info


def model_hash(model_dir: str | Path) -> str:
    """sha256 over the (name, sha256) of every file of a model folder (weights, config, tokenizer)."""
    root = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(path.name.encode() + b"\0" + _sha256(path).encode() + b"\n")
    return digest.hexdigest()


def _write_manifest(out: Path, manifest: dict) -> None:
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_text(out / RUN_FILE, json.dumps(manifest, indent=2, allow_nan=False) + "\n")


def _stale_temporaries(out: Path) -> list[Path]:
    """Leftovers of atomic writes killed midway: ``.checkpoint-N.tmp.*``, ``.final.old.*``, ``.metrics.jsonl.*``."""
    if not out.is_dir():
        return []
    return sorted(
        p
        for p in out.iterdir()
        if p.name.startswith(".")
        and (".tmp." in p.name or ".old." in p.name or p.name.startswith((".metrics.jsonl.", f".{RUN_FILE}.")))
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _RunPlan:
    """What :func:`train` will do to ``out``, decided (and checked) before any file is touched."""

    out: Path
    move_aside: Path | None  # the old run's new name when ``overwrite`` moves it
    source_run: Path | None  # the run a resumed state comes from (its metrics are carried over)


def _plan_run(config: TrainConfig) -> _RunPlan:
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"--out {out}: exists and is not a folder")
    source = run_dir_of(config.resume) if config.resume else None
    same = source is not None and out.exists() and source.resolve() == out.resolve()
    occupied = out.is_dir() and any(p not in _stale_temporaries(out) for p in out.iterdir())
    if config.overwrite and same:
        raise ValidationError(
            f"--overwrite with --resume {config.resume} into its own folder {out}: choose one (resume continues "
            "the run; overwrite moves it aside and starts afresh)"
        )
    move_aside = None
    if occupied and not same:
        if not config.overwrite:
            hint = f"--resume {out} to continue it, " if (out / RUN_FILE).is_file() else ""
            raise ValidationError(
                f"--out {out} is not empty: pass {hint}another --out, or --overwrite to move the old folder "
                "aside (it is never mixed with a new run)"
            )
        move_aside = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while move_aside.exists():
            n += 1
            move_aside = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(f"--out {out}: {parent} is not writable")
    return _RunPlan(out, move_aside, source)


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM during training; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class _Signals:
    """SIGINT and SIGTERM raise :class:`Interrupted`, deferred while :meth:`protect` is active (a metrics row or
    checkpoint being written); after the first signal, later ones only record themselves (the save finishes).

    Installed only in the main thread (``signal`` allows no other).
    """

    def __init__(self):
        self.depth = 0
        self.pending: int | None = None
        self.stopping = False
        self.previous: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.stopping or self.depth:
            self.pending = self.pending or signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def protect(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None and not self.stopping:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)


# ------------------------------------------------------------------------------------------------ loop


def train_step(
    state: RunState, ref_model, problems: list[Problem], views: int, config: TrainConfig, answer_parser=None
) -> dict:
    """One full GRPO step (sample, score, update); returns the step's metrics."""
    t0 = time.perf_counter()
    chosen = select_problems(problems, state.rng, config.prompts_per_step)
    prompts = [p.views[v] for p in chosen for v in range(views)]
    batch = sample_completions(
        state.model,
        state.tokenizer,
        prompts,
        n_samples=config.n_votes or config.group_size,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        generator=state.generator,
        stop_strings=config.stop_strings,
    )
    t1 = time.perf_counter()
    scores = score_groups(
        chosen, batch.texts, views=views, config=config, multipliers=state.multipliers, answer_parser=answer_parser
    )
    if config.n_votes > config.group_size:  # train on the first G of each group's n_votes samples (TTRL)
        batch = first_rows_per_group(batch, config.n_votes, config.group_size)
    advantages, seq_kl = scores.advantages, None
    if config.beta > 0 and config.kl == "seq-reward":
        log_ratio = sequence_log_ratio(state.model, ref_model, batch, config).reshape(scores.rewards.shape)
        # the sequence KL term is count-free: under doubly-LOO its baseline is plain leave-one-out
        advantages, _ = group_advantages(scores.rewards, config.baseline, config.scale, doubly_loo=scores.baselines,
                                         extra_rewards=-config.beta * log_ratio, eps=config.advantage_eps)
        seq_kl = float(log_ratio.mean())
    t2 = time.perf_counter()
    stats = optimize_policy(state.model, ref_model, state.optimizer, batch, advantages, config)
    if scores.constraint_value is not None:
        state.multipliers = dual_step(
            state.multipliers, np.array([scores.constraint_value]), config.constraint_cap, config.dual_lr
        )
    state.step += 1
    t3 = time.perf_counter()
    metrics = {"step": state.step, **scores.metrics, **stats}
    if seq_kl is not None:
        metrics["seq_kl"] = seq_kl  # mean log π(y)/π0(y): an unbiased estimate of the sequence KL(π‖π0)
    if config.algorithm == "constrained-grpo":
        metrics["multiplier"] = float(state.multipliers[0])
    metrics.update(sample_seconds=t1 - t0, reward_seconds=t2 - t1, update_seconds=t3 - t2, step_seconds=t3 - t0)
    return metrics


def train(config: TrainConfig, device=None, *, answer_parser=None) -> dict:
    """Run (or resume) training into the run folder ``config.out``; returns a summary.

    Order: validate every field, load the data, check the folder (:func:`_plan_run`) and load the starting
    state (the newest intact checkpoint when resuming) -- only then is anything written. SIGINT/SIGTERM save a
    checkpoint and return ``interrupted`` (``signal`` names it); the manifest's status follows the run.
    ``answer_parser``: a Python callable ``str -> key | None`` replacing ``config.answer_parser``.
    """
    from tqdm.auto import tqdm

    config.validate()
    device = device or default_device()
    problems, _ = load_training_problems(config)
    views = check_compatible(config, problems)
    plan = _plan_run(config)
    out = plan.out
    base_hash = model_hash(config.model) if Path(config.model).is_dir() else None
    resumed_from, skipped = None, []
    if config.resume:
        saved = _saved_config(plan.source_run)
        if saved is not None:
            diffs = _config_conflicts(saved, config)
            if diffs:
                raise ValidationError(_conflict_message(str(plan.source_run), saved, config, diffs))
        previous = read_manifest(plan.source_run)
        if previous and previous.get("base_model_sha256") not in (None, base_hash):
            raise ValidationError(
                f"--resume {config.resume}: the base model {config.model} changed since the run started "
                f"(sha256 {previous['base_model_sha256'][:12]}… then, {str(base_hash)[:12]}… now)"
            )
        state, resumed_from, skipped = load_newest_checkpoint(config.resume, config, device)
        if state.step > config.steps:
            raise ValidationError(
                f"--steps {config.steps}: the checkpoint {resumed_from} is already at step {state.step}"
            )
    else:
        state = fresh_state(config, device)
    ref_model = load_reference(config, device)

    # ---- from here on files are written
    if plan.move_aside is not None:
        os.replace(out, plan.move_aside)
        print(f"moved the previous contents of {out} to {plan.move_aside}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for stale in _stale_temporaries(out):
        _remove(stale)
        print(f"removed {stale} (left by an interrupted write)", file=sys.stderr)
    metrics_path = out / "metrics.jsonl"
    if config.resume:
        note = f"resuming from {resumed_from} (step {state.step})"
        print(note + "".join(f"; {why}" for why in skipped), file=sys.stderr)
        same = plan.source_run.resolve() == out.resolve()
        _rewrite_metrics(plan.source_run / "metrics.jsonl", metrics_path, state.step)
        if same:  # checkpoints past the resumed step belong to a trajectory this run replaces
            for p in out.iterdir():
                n = _checkpoint_step(p)
                if (n is not None and n > state.step) or (p.name == "final" and state.step < config.steps):
                    _remove(p)
    else:
        atomic_write_text(metrics_path, "")
    previous = read_manifest(out) if config.resume else None
    manifest = {
        "format": RUN_FORMAT,
        "status": "running",
        "config": dataclasses.asdict(config),
        "code_version": code_version(),
        "base_model": str(config.model),
        "base_model_sha256": base_hash,
        "created": (previous or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "step": state.step,
        "sessions": [
            *(previous or {}).get("sessions", []),
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "from_step": state.step,
                "resumed_from": str(resumed_from) if resumed_from else None,
                "skipped_checkpoints": skipped,
            },
        ],
    }
    _write_manifest(out, manifest)
    atomic_write_text(out / "train_config.json", json.dumps(dataclasses.asdict(config), indent=2))
    state.model.train()
    t_start = time.perf_counter()
    interrupted: Interrupted | None = None
    history: list[dict] = []
    signals = _Signals()
    try:
        with signals:
            bar = tqdm(
                total=config.steps,
                initial=state.step,
                desc=config.algorithm,
                disable=not config.progress,
                dynamic_ncols=True,
            )
            try:
                while state.step < config.steps:
                    snapshot = (state.generator.get_state(), state.rng.bit_generator.state, state.step)
                    try:
                        metrics = train_step(state, ref_model, problems, views, config, answer_parser)
                    except KeyboardInterrupt:
                        if state.step == snapshot[2]:  # step not applied: rewind its RNG draws for an exact resume
                            state.generator.set_state(snapshot[0])
                            state.rng.bit_generator.state = snapshot[1]
                        raise
                    with signals.protect():
                        history.append(metrics)
                        with metrics_path.open("a", encoding="utf-8") as fh:
                            fh.write(json.dumps(metrics) + "\n")
                        bar.update(1)
                        bar.set_postfix(_postfix(metrics))
                        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                            save_checkpoint(state, config, out / f"checkpoint-{state.step}")
            except KeyboardInterrupt as exc:
                interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
            finally:
                bar.close()
            signals.stopping = True  # a second signal must not cut the final save short
            save_checkpoint(state, config, out / f"checkpoint-{state.step}")
            if interrupted is None:
                save_checkpoint(state, config, out / "final")
    except BaseException as exc:
        manifest.update(status="failed", step=state.step, error=f"{type(exc).__name__}: {exc}")
        manifest["sessions"][-1].update(ended=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), to_step=state.step)
        with contextlib.suppress(OSError):
            _write_manifest(out, manifest)
        raise
    status = "interrupted" if interrupted is not None else "finished"
    manifest.update(status=status, step=state.step)
    manifest["sessions"][-1].update(
        ended=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        to_step=state.step,
        status=status,
        **({"signal": signal.Signals(interrupted.signum).name} if interrupted is not None else {}),
    )
    _write_manifest(out, manifest)
    return {
        "steps": state.step,
        "seconds": time.perf_counter() - t_start,
        "interrupted": interrupted is not None,
        "signal": signal.Signals(interrupted.signum).name if interrupted is not None else None,
        "exit_code": 128 + interrupted.signum if interrupted is not None else 0,
        "status": status,
        "resumed_from": str(resumed_from) if resumed_from else None,
        "skipped_checkpoints": skipped,
        "out": str(out),
        "history": history,
        "model": state.model,
        "tokenizer": state.tokenizer,
    }


def _postfix(metrics: dict) -> dict:
    short = {
        "reward_mean": "reward",
        "train_accuracy": "acc",
        "answer_entropy": "H",
        "majority_ratio": "maj",
        "kl": "kl",
        "clip_fraction": "clip",
    }
    return {name: f"{metrics[k]:.3f}" for k, name in short.items() if k in metrics}


__all__ = [
    "TrainConfig",
    "train",
    "train_step",
    "score_groups",
    "optimize_policy",
    "clipped_policy_loss",
    "k3_kl",
    "token_weights",
    "save_checkpoint",
    "load_checkpoint",
    "load_newest_checkpoint",
    "find_checkpoint",
    "verify_checkpoint",
    "resolve_resume",
    "read_manifest",
    "run_dir_of",
    "CheckpointError",
    "Interrupted",
]
