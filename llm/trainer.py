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

Checkpoints (``checkpoint-N/``: model, tokenizer, optimizer, RNG states, dual multipliers) are written
atomically every ``checkpoint_every`` steps and on Ctrl-C; ``resume`` continues the exact trajectory of an
uninterrupted run (same model/optimizer/RNG states => same samples and updates).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dagsim.errors import ValidationError
from llm.answers import (
    NO_ANSWER,
    answer_timeouts,
    extract_answers,
    index_answers,
    parser_clusters,
    resolve_answer_parser,
)
from llm.model import atomic_directory, atomic_write_text, default_device, load_model
from llm.rewards import (
    ALGORITHMS,
    RewardSettings,
    constrain,
    constraint_values,
    doubly_loo_baselines,
    dual_step,
    forbidden_coefs,
    get_algorithm,
    group_advantages,
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
    """Objective weight [τ] (sharpening, entropy, consensus, ttrl/empo scale)."""
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
    """Save checkpoint-N every N steps (0 = only at the end and on Ctrl-C)."""
    resume: str = ""
    """Checkpoint directory (or run directory: its latest checkpoint) to continue from."""
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

    def validate(self) -> None:
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
        self.parser()  # fails fast on a bad --answer-parser

    def parser(self, answer_parser=None):
        """The answer parser of this run: ``answer_parser`` (a callable) if given, else ``answer_parser`` the
        field, else the task's default (``####`` numbers for the embedded task, the full locator for data)."""
        return answer_parser or _resolve_parser(self.answer_parser, not self.data)

    @property
    def reward_settings(self) -> RewardSettings:
        consensus = self.consensus if self.algorithm == "coherence-grpo" else "none"
        return RewardSettings(self.tau, self.estimator, consensus, self.base_objective,
                              rloo_aware=self.baseline in ("rloo", "mean") and self.rloo_aware)


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
    (:meth:`TrainConfig.parser`); symbolic keys are merged into equivalence classes per problem."""
    G = config.group_size
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
        per_view = [answers[(p * views + v) * G : (p * views + v + 1) * G] for v in range(views)]
        idx_per_view, strings = index_answers(per_view, cluster=cluster)
        has_truth = problem.answer is not None or problem.scorer is not None
        # the data's own scorer where it has one, else 1 for the ground truth's class
        task_reward = task_rewards(problem, strings, NO_ANSWER, cluster=cluster) if has_truth else None
        rewards = algorithm.rewards(idx_per_view, len(strings), task_reward, settings)
        post = None
        if config.algorithm == "constrained-grpo":
            coefs = forbidden_coefs(strings, config.forbidden)  # (1, n_answers)
            rewards = [constrain(r, idx, coefs, multipliers) for r, idx in zip(rewards, idx_per_view, strict=True)]
            h_mass.extend(float(constraint_values(idx, coefs)[0]) for idx in idx_per_view)

            def post(r, idx, coefs=coefs):
                return constrain(r, idx, coefs, multipliers)
        if config.baseline == "doubly-loo":
            baseline_rows.extend(doubly_loo_baselines(algorithm.rewards, idx_per_view, len(strings), task_reward,
                                                      settings, post))
        rewards_rows.extend(rewards)
        modes = []
        for idx in idx_per_view:
            counts = np.bincount(idx, minlength=len(strings))  # (n_answers,)
            p_hat = counts[counts > 0] / G
            entropies.append(float(-(p_hat * np.log(p_hat)).sum()))
            majority_ratio.append(counts.max() / G)
            modes.append(int(np.argmax(counts)))
            if task_reward is not None:
                correct.extend(task_reward[idx].tolist())
        if task_reward is not None:
            majority_ok.extend(bool(task_reward[m]) and strings[m] != NO_ANSWER for m in modes)
        if views > 1:
            agree.append(np.mean([modes[a] == modes[b] for a in range(views) for b in range(a + 1, views)]))
    rewards = np.stack(rewards_rows)  # (n_groups, G)
    baselines = np.stack(baseline_rows) if baseline_rows else None  # (n_groups, G)
    adv, n_zero = group_advantages(rewards, config.baseline, config.scale, doubly_loo=baselines)
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


def save_checkpoint(state: RunState, config: TrainConfig, path: str | Path) -> Path:
    """Write ``path`` (model, tokenizer, optimizer, RNG states, multipliers, step, config) atomically."""
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
    return Path(path)


def find_checkpoint(path: str | Path) -> Path:
    """``path`` itself if it is a checkpoint, else the run directory's highest ``checkpoint-N``."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    candidates = sorted(
        (p for p in path.glob("checkpoint-*") if (p / STATE_FILE).is_file()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    if not candidates:
        raise ValidationError(f"--resume {path}: no checkpoint found (expected {STATE_FILE} or checkpoint-N/)")
    return candidates[-1]


_RESUME_MUST_MATCH = (
    "algorithm",
    "model",
    "data",
    "prompts_per_step",
    "group_size",
    "views",
    "temperature",
    "max_new_tokens",
    "lr",
    "beta",
    "kl",
    "tau",
    "estimator",
    "consensus",
    "baseline",
    "scale",
    "loss_type",
    "seed",
    "num_iterations",
)


def load_checkpoint(path: Path, config: TrainConfig, device) -> RunState:
    """Restore a :class:`RunState`; fails fast if the checkpoint came from a different trajectory config."""
    saved = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)  # our own file
    diffs = [k for k in _RESUME_MUST_MATCH if saved["config"].get(k) != getattr(config, k)]
    if diffs:
        raise ValidationError(f"--resume {path}: config differs from the checkpoint's in {', '.join(diffs)}")
    model, tokenizer = load_model(path, device)
    optimizer = make_optimizer(model, config)
    optimizer.load_state_dict(saved["optimizer"])
    generator = torch.Generator(device=device)
    generator.set_state(saved["generator_state"])
    rng = np.random.default_rng()
    rng.bit_generator.state = saved["rng_state"]
    return RunState(model, tokenizer, optimizer, generator, rng, np.asarray(saved["multipliers"]), saved["step"])


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


def _rewrite_metrics(path: Path, up_to_step: int) -> None:
    """Keep the metric rows of steps <= ``up_to_step`` (a resumed run rewrites what follows)."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= up_to_step]
    atomic_write_text(path, "".join(r + "\n" for r in rows))


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
        n_samples=config.group_size,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        generator=state.generator,
        stop_strings=config.stop_strings,
    )
    t1 = time.perf_counter()
    scores = score_groups(
        chosen, batch.texts, views=views, config=config, multipliers=state.multipliers, answer_parser=answer_parser
    )
    advantages, seq_kl = scores.advantages, None
    if config.beta > 0 and config.kl == "seq-reward":
        log_ratio = sequence_log_ratio(state.model, ref_model, batch, config).reshape(scores.rewards.shape)
        # the sequence KL term is count-free: under doubly-LOO its baseline is plain leave-one-out
        advantages, _ = group_advantages(scores.rewards, config.baseline, config.scale, doubly_loo=scores.baselines,
                                         extra_rewards=-config.beta * log_ratio)
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
    """Run (or resume) training; returns a summary. Ctrl-C saves a checkpoint and returns ``interrupted``.

    ``answer_parser``: a Python callable ``str -> key | None`` replacing ``config.answer_parser``."""
    from tqdm.auto import tqdm

    config.validate()
    device = device or default_device()
    problems, _ = load_training_problems(config)
    views = check_compatible(config, problems)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    if config.resume:
        state = load_checkpoint(find_checkpoint(config.resume), config, device)
        _rewrite_metrics(metrics_path, state.step)
    else:
        state = fresh_state(config, device)
        atomic_write_text(metrics_path, "")
    ref_model = load_reference(config, device)
    state.model.train()
    atomic_write_text(out / "train_config.json", json.dumps(dataclasses.asdict(config), indent=2))
    bar = tqdm(
        total=config.steps,
        initial=state.step,
        desc=config.algorithm,
        disable=not config.progress,
        dynamic_ncols=True,
    )
    t_start = time.perf_counter()
    interrupted = False
    history: list[dict] = []
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
            history.append(metrics)
            with metrics_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(metrics) + "\n")
            bar.update(1)
            bar.set_postfix(_postfix(metrics))
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                save_checkpoint(state, config, out / f"checkpoint-{state.step}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    save_checkpoint(state, config, out / f"checkpoint-{state.step}")
    if not interrupted:
        save_checkpoint(state, config, out / "final")
    return {
        "steps": state.step,
        "seconds": time.perf_counter() - t_start,
        "interrupted": interrupted,
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
    "find_checkpoint",
]
