"""Tiny causal LMs built from a transformers config (no hub download): Llama (default) or Qwen2; loading/saving.

``family="qwen2"`` builds a ``Qwen2ForCausalLM`` (grouped KV heads, QKV biases) whose generation config
lists **every** EOS id of its tokenizer: with :func:`llm.tokenizer.build_bytelevel_tokenizer` that is
``<|im_end|>`` (end of an assistant turn) and ``<|endoftext|>``, as Qwen2 instruct checkpoints have.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dagsim.errors import ValidationError
from dagsim.io import apply_umask

FAMILIES = ("llama", "qwen2")
#: End-of-text tokens that also stop generation when the tokenizer has them (Qwen2 lists both ids).
EXTRA_EOS_TOKENS = ("<|endoftext|>", "<|im_end|>")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the tiny causal LM (a ``LlamaConfig``); about 1 M parameters by default."""

    hidden_size: int = 128
    """Width d of the residual stream."""
    n_layers: int = 4
    """Number of transformer blocks."""
    n_heads: int = 4
    """Attention heads (hidden_size must be divisible by it)."""
    intermediate_size: int = 384
    """Width of the SwiGLU MLP."""
    max_positions: int = 128
    """Longest prompt + completion, in tokens (RoPE table size)."""
    family: str = "llama"
    """Architecture family: llama (LlamaForCausalLM) | qwen2 (Qwen2ForCausalLM, half as many KV heads)."""

    def validate(self) -> None:
        if self.family not in FAMILIES:
            raise ValidationError(f"model.family must be one of {FAMILIES}, got {self.family!r}")
        for name in ("hidden_size", "n_layers", "n_heads", "intermediate_size", "max_positions"):
            if getattr(self, name) < 1:
                raise ValidationError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.n_heads:
            raise ValidationError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.n_heads ({self.n_heads})"
            )


def default_device():
    """``cuda`` when present, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def runtime_info() -> dict:
    """Where torch runs: ``{"device": "cuda" | "cpu", "torch_threads": n}`` (for benchmark reports)."""
    import torch

    return {"device": default_device().type, "torch_threads": torch.get_num_threads()}


def eos_token_ids(tokenizer) -> list[int]:
    """The tokenizer's EOS id first, then the ids of :data:`EXTRA_EOS_TOKENS` it has (no duplicates)."""
    ids = [tokenizer.eos_token_id]
    vocab = tokenizer.get_vocab()
    ids += [vocab[t] for t in EXTRA_EOS_TOKENS if t in vocab]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def build_model(config: ModelConfig, tokenizer, seed: int = 0):
    """A freshly initialized causal LM of ``config.family`` sized by ``config`` for ``tokenizer``'s vocabulary.

    Initialization is reproducible from ``seed`` (the global torch RNG is forked, not altered). The
    generation config's ``eos_token_id`` is :func:`eos_token_ids` (a list when there are several).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config.validate()
    eos = eos_token_ids(tokenizer)
    # The two families share every size; they differ in grouped-query heads, BOS and the EOS list.
    shared = dict(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    if config.family == "qwen2":
        eos_id = eos if len(eos) > 1 else eos[0]
        kv_heads = config.n_heads // 2 if config.n_heads % 2 == 0 else config.n_heads
        hf_config = Qwen2Config(**shared, num_key_value_heads=kv_heads, eos_token_id=eos_id, bos_token_id=None)
        model_class = Qwen2ForCausalLM
    else:
        eos_id = tokenizer.eos_token_id
        hf_config = LlamaConfig(**shared, num_key_value_heads=config.n_heads, eos_token_id=eos_id,
                                bos_token_id=tokenizer.eos_token_id)
        model_class = LlamaForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(hf_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = eos_id
    return model


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def load_model(path: str | Path, device=None):
    """``(model, tokenizer)`` from a local HF checkpoint directory (ours or any causal LM)."""
    from transformers import AutoModelForCausalLM

    from llm.tokenizer import load_tokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValidationError(f"--model {path}: not a model directory (no config.json)")
    tokenizer = load_tokenizer(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config.eos_token_id is None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.to(device or default_device()), tokenizer


@contextlib.contextmanager
def atomic_directory(path: str | Path):
    """Yield a temporary sibling directory; on success it replaces ``path`` (os.replace), else is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp.", dir=path.parent))
    try:
        yield tmp
        _apply_umask_tree(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "d")
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _apply_umask_tree(root: Path) -> None:
    """Files and folders under ``root`` (and ``root``) get the user's umask: ``mkdtemp`` creates 0700 and
    safetensors' ``save_file`` writes ``model.safetensors`` 0600 (teammates could not read a run otherwise)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            apply_umask(Path(dirpath) / name)
        for name in dirnames:
            apply_umask(Path(dirpath) / name, directory=True)
    apply_umask(root, directory=True)


def save_model(model, tokenizer, path: str | Path, extra_files: dict[str, str] | None = None) -> None:
    """Write model + tokenizer (+ small text files) to ``path`` atomically."""
    with atomic_directory(path) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (temp file in the same directory, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        apply_umask(tmp)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
