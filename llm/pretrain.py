"""Supervised pretraining (SFT) of the tiny base model on noisy traces of the embedded task.

The model learns the *noisy* trace distribution of :func:`llm.tasks.sample_trace` (a fraction
``task.step_noise`` of wrong steps, with a view-dependent error pattern), so the base model is imperfect
and diverse: its sampled accuracy is well below its majority-vote accuracy. That gap is what label-free
answer-level fine-tuning (ttrl, empo, coherence-grpo) can close.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dagsim.errors import ValidationError
from llm.model import ModelConfig
from llm.tasks import ArithmeticTaskConfig, Problem, sample_trace, split_problems


@dataclass(frozen=True)
class PretrainConfig:
    """Supervised pretraining of the base model."""

    out: str = "runs/llm/base"
    """Directory of the written checkpoint (loadable by AutoModelForCausalLM.from_pretrained)."""
    task: ArithmeticTaskConfig = field(default_factory=ArithmeticTaskConfig)
    """The embedded task (its step_noise sets how imperfect the base model is)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Architecture."""
    vocab_size: int = 256
    """BPE vocabulary size (digits are always single tokens)."""
    steps: int = 1500
    """Optimizer steps."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate (linear warmup, cosine decay to lr/10)."""
    warmup: int = 100
    """Warmup steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    seed: int = 0
    """Seeds initialization, data sampling and noise."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def validate(self) -> None:
        self.task.validate()
        self.model.validate()
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValidationError(f"pretrain.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValidationError(f"pretrain.lr must be > 0, got {self.lr}")
        if self.warmup < 0:
            raise ValidationError(f"pretrain.warmup must be >= 0, got {self.warmup}")


def lr_at(step: int, *, peak: float, warmup: int, total: int) -> float:
    """Linear warmup to ``peak`` then cosine decay to ``peak/10`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def sft_corpus(
    problems: list[Problem], rng: np.random.Generator, step_noise: float, misconception_rate: float = 0.0
) -> list[str]:
    """One noisy trace per (problem, view): text used to train the tokenizer."""
    return [
        q + sample_trace(p, v, rng, step_noise, misconception_rate)[0]
        for p in problems
        for v, q in enumerate(p.views)
    ]


def sft_batch(
    problems: list[Problem],
    tokenizer,
    rng: np.random.Generator,
    *,
    batch_size: int,
    step_noise: float,
    misconception_rate: float = 0.0,
    prompt_cache: dict[str, list[int]],
):
    """``(input_ids, attention_mask, labels)`` of one SFT batch; labels are -100 on prompt and padding."""
    import torch

    rows, labels = [], []
    picks = rng.integers(len(problems), size=batch_size)
    for i in picks:
        problem = problems[int(i)]
        view = int(rng.integers(problem.n_views))
        prompt = problem.views[view]
        completion, _ = sample_trace(problem, view, rng, step_noise, misconception_rate)
        if prompt not in prompt_cache:
            prompt_cache[prompt] = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        p_ids = prompt_cache[prompt]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p_ids + c_ids)
        labels.append([-100] * len(p_ids) + c_ids)
    width = max(len(r) for r in rows)
    ids = torch.full((batch_size, width), tokenizer.pad_token_id, dtype=torch.long)  # (B, L) right padded
    lab = torch.full((batch_size, width), -100, dtype=torch.long)  # (B, L)
    mask = torch.zeros((batch_size, width), dtype=torch.long)  # (B, L)
    for r, (row, lrow) in enumerate(zip(rows, labels, strict=True)):
        ids[r, : len(row)] = torch.tensor(row)
        lab[r, : len(row)] = torch.tensor(lrow)
        mask[r, : len(row)] = 1
    return ids, mask, lab


def pretrain(config: PretrainConfig, device=None) -> dict:
    """Build the tokenizer and model, run SFT, save to ``config.out``; returns a summary dict."""
    import torch
    from tqdm.auto import tqdm

    from llm.model import build_model, default_device, n_parameters, save_model
    from llm.tokenizer import build_tokenizer

    config.validate()
    device = device or default_device()
    rng = np.random.default_rng(config.seed)
    train, _ = split_problems(config.task)
    tokenizer = build_tokenizer(
        sft_corpus(train, rng, config.task.step_noise, config.task.misconception_rate), config.vocab_size
    )
    model = build_model(config.model, tokenizer, seed=config.seed).to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    cache: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    bar = tqdm(range(config.steps), desc="pretrain", disable=not config.progress, dynamic_ncols=True)
    ema = None
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, peak=config.lr, warmup=config.warmup, total=config.steps)
        ids, mask, lab = sft_batch(
            train,
            tokenizer,
            rng,
            batch_size=config.batch_size,
            step_noise=config.task.step_noise,
            misconception_rate=config.task.misconception_rate,
            prompt_cache=cache,
        )
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=lab.to(device)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        bar.set_postfix(loss=f"{ema:.3f}")
    seconds = time.perf_counter() - t0
    summary = {
        "n_parameters": n_parameters(model),
        "final_loss_ema": ema,
        "seconds": seconds,
        "config": dataclasses.asdict(config),
    }
    save_model(
        model,
        tokenizer,
        Path(config.out),
        extra_files={
            "task.json": json.dumps(dataclasses.asdict(config.task), indent=2),
            "pretrain.json": json.dumps(summary, indent=2),
        },
    )
    return summary
