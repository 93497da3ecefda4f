"""Supervised fine-tuning on user data: ``dagsim llm sft --model PATH|new --data FILE.jsonl --out DIR``.

The data is any :func:`llm.tasks.load_data` source (JSONL ``question``/``answer``, ``prompt``/``completion``,
``messages``; or ``reasoning-gym:NAME?...``). Its seeded held-out part (:func:`llm.tasks.split_data`, the same
split ``train`` and ``evaluate`` make with the same ``--eval-fraction``/``--split-seed``) is never trained on.
Each example is ``prompt + target + EOS``: the prompt encoded exactly as the sampler encodes it
(:func:`llm.tokenizer.encode_prompt`, through the chat template when :func:`llm.tasks.apply_prompt_format`
chooses it), the target (worked solution and final answer) without special tokens, then the tokenizer's EOS
(``<|im_end|>`` for the byte-level ChatML tokenizer); the loss is on target + EOS only.

``--model new`` builds a fresh model as ``pretrain`` does, from :class:`~llm.model.ModelConfig`
(``--model-family llama|qwen2``) with a tokenizer trained on the training split: the embedded-style BPE
(llama) or a byte-level BPE with a ChatML template and two EOS ids (qwen2).

Why a short torch loop and not TRL's ``SFTTrainer``: it needs the ``datasets`` package and its own
``Trainer`` checkpoint layout, and the prompt tokenization must be the sampler's (BOS, chat template) so
the fine-tuned model is trained on exactly the prompts it is later sampled from; the loop below is that
and no more (AdamW, warmup + cosine, gradient clipping, tqdm, atomic checkpoints).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dagsim.errors import ValidationError
from llm.model import ModelConfig

NEW = "new"


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on user data."""

    model: str = NEW
    """Local HF checkpoint directory to fine-tune, or 'new' for a freshly built model (see --model-family)."""
    data: str = ""
    """JSONL file (question/answer, prompt/completion or messages) or reasoning-gym:NAME?size=N&seed=S."""
    out: str = "runs/llm/sft"
    """Directory of the written checkpoint (checkpoint-N/ subfolders with --checkpoint-every)."""
    arch: ModelConfig = field(default_factory=ModelConfig)
    """Architecture of a new model (--model-* flags); ignored for an existing checkpoint."""
    vocab_size: int = 0
    """Tokenizer size of a new model (0 = 256 for llama's BPE, 512 for qwen2's byte-level BPE)."""
    steps: int = 300
    """Optimizer steps (0 = only build/copy and save the model)."""
    batch_size: int = 16
    """Examples per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate (linear warmup, cosine decay to lr/10); use ~1e-4 on a pretrained model."""
    warmup: int = 30
    """Warmup steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    eval_fraction: float = 0.2
    """Fraction of the data held out (never trained on; train/evaluate split it the same way)."""
    split_seed: int = 0
    """Seed of the held-out split."""
    chat_template: bool = False
    """Format prompts with the tokenizer's chat template (automatic for 'messages' data when it has one)."""
    skip_bad_lines: bool = False
    """Skip (and count) data lines whose answer cannot be parsed instead of failing."""
    checkpoint_every: int = 0
    """Also save checkpoint-N every N steps (0 = only the final model)."""
    seed: int = 0
    """Seeds initialization and batch sampling."""
    progress: bool = True
    """tqdm progress bar."""

    def validate(self) -> None:
        if not self.data:
            raise ValidationError("sft.data is required (--data FILE.jsonl or reasoning-gym:NAME?...)")
        self.arch.validate()
        for name in ("steps", "warmup", "checkpoint_every", "vocab_size"):
            if getattr(self, name) < 0:
                raise ValidationError(f"sft.{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size < 1:
            raise ValidationError(f"sft.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValidationError(f"sft.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValidationError(f"sft.eval_fraction must be in [0, 1), got {self.eval_fraction}")


def new_tokenizer(family: str, corpus: list[str], vocab_size: int = 0):
    """The tokenizer of a new model: embedded-style BPE (llama) or byte-level ChatML BPE (qwen2)."""
    from llm.tokenizer import build_bytelevel_tokenizer, build_tokenizer

    if family == "qwen2":
        return build_bytelevel_tokenizer(corpus, vocab_size or 512)
    return build_tokenizer(corpus, vocab_size or 256)


def sft_examples(problems, tokenizer) -> list[tuple[list[int], list[int]]]:
    """``(prompt ids, target ids + [EOS])`` per problem with a target (rows for :func:`sft_batch`)."""
    from llm.tokenizer import encode_prompt

    out = []
    for p in problems:
        if p.target is None:
            continue
        target = tokenizer(p.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append((encode_prompt(tokenizer, p.views[0]), target))
    if not out:
        raise ValidationError("sft: no training problem has a target completion (an 'answer' to learn)")
    return out


def sft_batch(examples, picks, pad_token_id: int):
    """``(input_ids, attention_mask, labels)`` of the examples ``picks``, right padded; labels −100 on the
    prompt and the padding. Each ``(B, L)``."""
    import torch

    rows = [examples[int(i)] for i in picks]
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)  # (B, L)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)  # (B, L)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, L)
    for r, (p, c) in enumerate(rows):
        n = len(p) + len(c)
        ids[r, :n] = torch.tensor(p + c)
        labels[r, len(p) : n] = torch.tensor(c)
        mask[r, :n] = 1
    return ids, mask, labels


def _prepare(config: SFTConfig, device):
    """``(model, tokenizer, train problems, held-out problems)`` with prompts formatted for the tokenizer."""
    from llm.model import build_model, load_model
    from llm.tasks import apply_prompt_format, load_data, split_data

    problems = load_data(config.data, skip_bad_lines=config.skip_bad_lines)
    train, held = split_data(problems, config.eval_fraction, config.split_seed)
    if config.model == NEW:
        corpus = [v for p in train for v in p.views] + [p.target for p in train if p.target]
        tokenizer = new_tokenizer(config.arch.family, corpus, config.vocab_size)
        train_f = apply_prompt_format(train, tokenizer, config.chat_template)
        longest = max(len(p) + len(c) for p, c in sft_examples(train_f, tokenizer))
        arch = config.arch
        if longest + 64 > arch.max_positions:  # room for the sampler's completions beyond the targets
            arch = dataclasses.replace(arch, max_positions=64 * ((longest + 64) // 64 + 1))
        model = build_model(arch, tokenizer, seed=config.seed).to(device)
    else:
        model, tokenizer = load_model(config.model, device)
        train_f = apply_prompt_format(train, tokenizer, config.chat_template)
    held_f = apply_prompt_format(held, tokenizer, config.chat_template)
    return model, tokenizer, train_f, held_f


def sft(config: SFTConfig, device=None) -> dict:
    """Fine-tune (or build and fine-tune) on ``config.data``; save to ``config.out``; a summary dict with the
    trained ``model``/``tokenizer`` and the formatted ``held_out`` problems."""
    import torch
    from tqdm.auto import tqdm

    from llm.model import default_device, n_parameters, save_model
    from llm.pretrain import lr_at

    config.validate()
    device = device or default_device()
    model, tokenizer, train, held = _prepare(config, device)
    examples = sft_examples(train, tokenizer)
    limit = getattr(model.config, "max_position_embeddings", None)
    too_long = [p.problem_id for p, (a, b) in zip(train, examples) if limit and len(a) + len(b) > limit]
    if too_long:
        raise ValidationError(
            f"sft: {len(too_long)} example(s) exceed the model's {limit} positions (first: {too_long[0]})"
        )
    rng = np.random.default_rng(config.seed)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    extra = {"sft.json": ""}
    model.train()
    t0 = time.perf_counter()
    ema = None
    bar = tqdm(range(config.steps), desc="sft", disable=not config.progress, dynamic_ncols=True)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, peak=config.lr, warmup=config.warmup, total=config.steps)
        ids, mask, labels = sft_batch(examples, rng.integers(len(examples), size=config.batch_size),
                                      tokenizer.pad_token_id)
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        bar.set_postfix(loss=f"{ema:.3f}")
        if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            save_model(model, tokenizer, Path(config.out) / f"checkpoint-{step + 1}")
    model.eval()
    summary = {
        "n_parameters": n_parameters(model),
        "n_train": len(examples),
        "n_held_out": len(held),
        "final_loss_ema": ema,
        "seconds": time.perf_counter() - t0,
        "config": {k: v for k, v in dataclasses.asdict(config).items()},
    }
    extra["sft.json"] = json.dumps(summary, indent=2)
    save_model(model, tokenizer, Path(config.out), extra_files=extra)
    return {**summary, "model": model, "tokenizer": tokenizer, "held_out": held}
