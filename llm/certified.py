"""Certified answer marginals of a causal LM: best-first enumeration of completions with an exact mass ledger.

The answer marginal ``ν_π(z) = Σ_{y: a(y)=z} π(y | prompt)`` (THEORY.md §1) is a sum over all token sequences
and cannot be computed on an LLM. It can be *bounded*: enumerate completions best-first by log-probability
until the enumerated mass reaches a level or a budget runs out. Every completion not yet enumerated lies
below an unexpanded prefix, so the total mass of all of them is the **residual**

    residual = 1 − Σ_{enumerated completions} π(y | prompt),

and each answer z gets the certified interval

    ν_π(z) ∈ [ m(z),  m(z) + residual ],      m(z) = Σ_{enumerated y: a(y)=z} π(y | prompt).

An answer never enumerated has the interval ``[0, residual]`` (it is not listed in ``answer_bounds``).

Conventions (the process :func:`llm.sampling.sample_completions` samples, so the bounds hold for its samples):

- **Temperature**: next-token law ``softmax(logits / T)``, T = 1 by default. top-k / top-p are *not*
  supported: certification needs the full next-token distribution (a truncated one would certify a different
  process). Other logits processors of ``model.generation_config`` (repetition penalty, …) are ignored.
- **Numerics**: the model's logits (float32, or its dtype) are cast to float64 before ``/ T`` and
  ``log_softmax``, so every expansion's children sum to its mass to ~1e-16 and the ledger below closes to
  1e-9; path log-probabilities are summed in float64 and masses are ``exp`` of the sums. The interval is
  exact for the softmax of the logits the model returns; sampling's float32 softmax differs by ~1e-7
  relative, and logits of one prefix differ between batch shapes by ~1e-6 (see the tests).
- **Stops**: the sampler's rule, :func:`llm.sampling.stop_rule` (one definition for sampling, the loss mask
  and this search): a completion ends at the first token in its stop ids (every id of the model's
  ``generation_config.eos_token_id``, int or list, the tokenizer's EOS, and ``stop_token_ids``), or at the
  first token after which its decoded text *contains* one of ``stop_strings``, or after ``max_new_tokens``
  tokens. Its text is decoded with ``skip_special_tokens=True`` (so EOS is not in it) and cut before the
  first stop string; the answer is ``extract_answer(text)`` (any
  :mod:`llm.answers` parser; the CLI's ``--answer-parser``, default per task); ``None`` puts it in the
  :data:`~llm.answers.NO_ANSWER` bucket.
- **Prompt**: encoded by :func:`llm.tokenizer.encode_prompt`, as the sampler does (the tokenizer's BOS
  included where it defines one).
- **Truncation**: a completion cut at ``max_new_tokens`` is a finished leaf of the sampling process (the
  sampler cuts it too): its answer is whatever the extractor reads in the cut text, usually ``None`` (the
  no-answer bucket). Its mass is also reported separately as ``truncated_mass``.
- **Pruning**: only children of probability exactly 0 (logit −inf) are dropped; nothing else is.

Search: a best-first search over prefixes. Each expanded prefix stores its children sorted by probability and
the heap holds only its best unpopped child (popping a child pushes the next sibling), so the heap pops
completions in decreasing order of probability while holding one entry per expanded prefix. The top
``batch_size`` prefixes are expanded in one forward pass; leaves popped while a batch fills are recorded at
once, so with ``batch_size > 1`` a leaf may be enumerated before a more likely completion below a prefix of
that batch (best-first up to one batch; with ``batch_size = 1`` the order is exact). The bounds hold either
way. Strategies (``strategy=``, measured in ``bench/bench_llm_certified.py``):

- ``"kv-tree"`` (default): the prompt runs once; each expanded prefix stores the key/value vectors of its
  *own last token* in a pool, so a prefix's cache is the gather of the prompt's and its ancestors' pool slots.
  A batch feeds one new token per row, its gathered caches middle-padded ``[prompt | pad | path]`` with a
  0 in the attention mask over the pads and explicit ``position_ids`` (RoPE keys are stored already rotated,
  so a key's cache slot does not matter). Needs a cache of plain full-attention ``DynamicLayer`` s (tested:
  Llama, Qwen2 with grouped KV heads, GPT-2); other caches (sliding window, …) fall back to ``"recompute"``.
- ``"prompt-cache"``: the prompt cache is shared and each row recomputes its whole completion prefix.
- ``"recompute"``: no cache at all; each row is ``prompt + prefix``, left padded (with ``batch_size=1`` this
  is the unbatched, no-cache baseline).

Measured on the 0.9 M-parameter base model (2 shared CPU cores, one torch thread): ``"kv-tree"`` at batch 32
expands ~20x faster than the unbatched no-cache baseline, ~3x faster than ``"prompt-cache"`` and ~5x faster
than batched ``"recompute"``; batch 64 is ~1.3x faster again per expansion but spends more expansions on
unlikely prefixes.

Ledger: every unit of probability is in exactly one of *finished* (per answer; truncated leaves included),
*frontier* (unpopped children of expanded prefixes, and popped prefixes not yet expanded). The frontier mass
is summed independently of the finished mass at the end, and ``|finished + frontier − 1| ≤ LEDGER_ATOL`` is
checked (a :class:`RuntimeError` otherwise: a bookkeeping bug, never a user error).

Memory: one pool slot (2 · n_layers · n_kv_heads · head_dim numbers) and one sorted child table
(``vocab_size`` float64 + int32) per expanded prefix; the tables of fully popped prefixes are freed.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from dagsim.cli_args import add_dataclass_args, field_docs
from dagsim.errors import DagsimError, ValidationError
from llm.answers import NO_ANSWER
from llm.sampling import stop_rule
from llm.tokenizer import encode_prompt

#: |finished + frontier − 1| allowed at the end of a search: float64 sums over ≤ 10^7 children, ~1e-16 each.
LEDGER_ATOL = 1e-9
STRATEGIES = ("kv-tree", "prompt-cache", "recompute")
STOPPED_BY = ("mass", "budget", "exhausted")


@dataclass(frozen=True)
class CertifiedMarginal:
    """Certified bounds on the answer marginal ν_π(· | prompt) (THEORY.md §1), from best-first enumeration.

    ``answer_bounds[z] = (lo, hi)`` with ``lo = m(z)`` the enumerated mass of answer z and
    ``hi = min(1, lo + residual)``; answers not listed have ``[0, residual]``.
    """

    prompt: str
    answer_bounds: dict[str, tuple[float, float]]
    """label -> (lower, upper) bound of its probability; the no-answer bucket is labelled ``NO_ANSWER``."""
    covered_mass: float
    """Σ of the enumerated completions' probabilities (finished and truncated), in [0, 1]."""
    n_completions: int
    """Enumerated completions (leaves), truncated ones included."""
    n_expansions: int
    """Prefixes expanded (rows of forward passes; the empty completion counts as one)."""
    seconds: float
    """Wall time of the search, prompt forward pass included."""
    stopped_by: str
    """``"mass"`` (covered_mass ≥ mass), ``"budget"`` (seconds or expansions spent) or ``"exhausted"``
    (every completion enumerated; ``mass = 1`` asks for this)."""
    truncated_mass: float = 0.0
    """Part of ``covered_mass`` in leaves cut at ``max_new_tokens`` (already in their answers' bounds)."""
    frontier_mass: float = 0.0
    """Mass of all unexplored completions, summed over the frontier independently of ``covered_mass``."""
    strategy: str = "kv-tree"
    """Expansion strategy actually used (``"recompute"`` when ``"kv-tree"`` is unsupported by the model)."""
    extra: dict = field(default_factory=dict, compare=False)
    """Free-form diagnostics (``frontier_size``, ``max_depth``)."""

    @property
    def residual(self) -> float:
        """Upper bound on the mass of all unexplored completions: ``max(0, 1 − covered_mass, frontier_mass)``.

        The two sums agree to ``LEDGER_ATOL``; the larger is kept so float rounding never tightens a bound.
        """
        return max(0.0, 1.0 - self.covered_mass, self.frontier_mass)

    def bounds(self, label: str) -> tuple[float, float]:
        """Interval of any label, listed or not (an unlisted label gets ``(0, residual)``)."""
        return self.answer_bounds.get(label, (0.0, self.residual))

    def to_json(self) -> dict:
        return {
            "prompt": self.prompt,
            "answer_bounds": {k: [lo, hi] for k, (lo, hi) in self.answer_bounds.items()},
            "covered_mass": self.covered_mass,
            "residual": self.residual,
            "truncated_mass": self.truncated_mass,
            "n_completions": self.n_completions,
            "n_expansions": self.n_expansions,
            "seconds": self.seconds,
            "stopped_by": self.stopped_by,
            "strategy": self.strategy,
        }


# ------------------------------------------------------------------------------------------- numerics
def next_token_logprobs(logits, temperature: float):
    """``log softmax(logits / T)`` in float64: ``(B, V)`` any float dtype -> ``(B, V)`` float64.

    The cast comes first so that each row sums to 1 to float64 precision (the ledger relies on it).
    """
    return torch.log_softmax(logits.double() / temperature, dim=-1)  # (B, V)


# ------------------------------------------------------------------------------------------ expanders
class _Unsupported(Exception):
    """The model's cache is not made of plain full-attention DynamicLayers: the kv-tree cannot be used."""


def _cache_from_tensors(keys: Sequence, values: Sequence):
    """A ``DynamicCache`` holding ``keys[l], values[l]`` (each ``(B, H, S, D)``) for layer l, without copying.

    ``DynamicCache(ddp_cache_data=...)`` would copy every tensor once more (concatenating onto an empty one);
    the batched-vs-unbatched logits test pins this construction against a plain forward pass.
    """
    layers = []
    for k, v in zip(keys, values, strict=True):
        layer = DynamicLayer()
        layer.lazy_initialization(k, v)
        layer.keys, layer.values = k, v
        layers.append(layer)
    cache = DynamicCache()
    cache.layers = layers
    return cache


def _check_plain_cache(cache, n_prompt: int) -> None:
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        raise _Unsupported("cache layers are not plain DynamicLayers")
    if any(layer.keys.shape[-2] != n_prompt for layer in layers):
        raise _Unsupported("cache length differs from the prompt length")


class _SlottedLayer(DynamicLayer):
    """A cache layer whose keys/values ``(B, H, S + q, D)`` are preallocated (any strides): the first
    ``n_filled`` slots hold the past, and the forward pass writes its q new tokens into the next slots
    instead of concatenating (which would copy the whole cache once more)."""

    def __init__(self, keys, values, n_filled: int):
        super().__init__()
        self.lazy_initialization(keys, values)
        self.keys, self.values, self.n_filled = keys, values, n_filled

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.n_filled + key_states.shape[-2]
        if end > self.keys.shape[-2]:
            raise RuntimeError(f"slotted cache overflow: {end} > {self.keys.shape[-2]} slots")
        self.keys[:, :, self.n_filled : end] = key_states
        self.values[:, :, self.n_filled : end] = value_states
        self.n_filled = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.n_filled



def _run_prompt(expander, model, prompt_ids):
    """Forward the prompt once with the cache on; set the expander's model, device, n_prompt, root_logits."""
    expander.model = model
    expander.device = prompt_ids.device
    expander.n_prompt = prompt_ids.shape[1]
    out = model(input_ids=prompt_ids, use_cache=True, logits_to_keep=1)
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    _check_plain_cache(cache, expander.n_prompt)
    expander.root_logits = out.logits[:, -1, :]  # (1, V)
    return cache


class _KVTreeExpander:
    """Pooled per-token key/value vectors: a prefix's cache = the prompt's slots + its ancestors' slots.

    ``pool[0 or 1, layer, slot]`` is the key or value ``(H, D)`` of one token; slots ``0..P−1`` are the
    prompt, every expanded prefix owns the slot of its last token. One gather builds a batch's caches,
    middle padded ``[prompt | pad | ancestors | own slot]``; the forward pass writes the new token's key and
    value into the own slot of the gathered buffer, and they are copied back to the pool.
    """

    name = "kv-tree"
    needs_paths = False

    def __init__(self, model, prompt_ids):
        cache = _run_prompt(self, model, prompt_ids)
        k0 = torch.stack([layer.keys[0] for layer in cache.layers])  # (L, H, P, D)
        v0 = torch.stack([layer.values[0] for layer in cache.layers])  # (L, H, P, D)
        n_layers, n_heads, _, head_dim = k0.shape
        capacity = max(1024, 2 * self.n_prompt)
        self.pool = k0.new_empty((2, n_layers, capacity, n_heads, head_dim))  # (2, L, N, H, D)
        self.pool[0, :, : self.n_prompt] = k0.transpose(1, 2)
        self.pool[1, :, : self.n_prompt] = v0.transpose(1, 2)
        self.n_used = self.n_prompt

    def _reserve(self, n: int) -> range:
        capacity = self.pool.shape[2]
        if self.n_used + n > capacity:
            grow = max(self.n_used + n, 2 * capacity) - capacity
            shape = self.pool.shape[:2] + (grow,) + self.pool.shape[3:]
            self.pool = torch.cat([self.pool, self.pool.new_empty(shape)], dim=2)  # (2, L, N', H, D)
        slots = range(self.n_used, self.n_used + n)
        self.n_used += n
        return slots

    def expand(
        self, tokens: Sequence[int], paths: Sequence[Sequence[int]], ancestor_slots: Sequence[Sequence[int]]
    ):
        """``(logits (B, V) after each prefix, new_slots)``; a new slot holds its row's last token's keys."""
        b, p = len(tokens), self.n_prompt
        width = max(len(s) for s in ancestor_slots)  # A: longest ancestor path
        new = self._reserve(b)
        lengths = np.fromiter((len(s) for s in ancestor_slots), dtype=np.int64, count=b)  # (B,)
        idx = np.zeros((b, p + width + 1), dtype=np.int64)  # (B, P + A + 1); pads point at slot 0
        idx[:, :p] = np.arange(p)
        idx[:, -1] = np.arange(new.start, new.stop)
        # Row r's ancestors go right-aligned into columns p + width - lengths[r] .. p + width - 1.
        rows = np.repeat(np.arange(b), lengths)  # (Σ lengths,): row of each ancestor slot
        rank_in_row = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # (Σ lengths,)
        cols = p + width - np.repeat(lengths, lengths) + rank_in_row  # (Σ lengths,)
        idx[rows, cols] = np.fromiter((x for s in ancestor_slots for x in s), dtype=np.int64, count=len(rows))
        col = np.arange(p + width + 1)[None, :]  # (1, P + A + 1)
        is_real = (col < p) | (col >= p + width - lengths[:, None])  # (B, P + A + 1): False on the pads
        mask = torch.from_numpy(is_real).long()  # (B, P + A + 1)
        flat = torch.from_numpy(idx).to(self.device).flatten()  # (B * (P + A + 1),)
        buf = self.pool.index_select(2, flat).view(self.pool.shape[:2] + idx.shape + self.pool.shape[3:])
        # buf: (2, L, B, P + A + 1, H, D); index_select copies whole (H, D) rows, faster than fancy indexing
        cache = DynamicCache()
        # Layer l sees buf[·, l] as (B, H, P + A + 1, D) views; the last slot is written by the forward pass.
        cache.layers = [
            _SlottedLayer(buf[0, layer].transpose(1, 2), buf[1, layer].transpose(1, 2), p + width)
            for layer in range(buf.shape[1])
        ]
        input_ids = torch.as_tensor(tokens, dtype=torch.long, device=self.device)[:, None]  # (B, 1)
        positions = torch.as_tensor(p + lengths, device=self.device)  # (B,): prompt + ancestors
        position_ids = positions[:, None]  # (B, 1)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask.to(self.device),
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        new_kv = buf[:, :, :, -1]  # (2, L, B, H, D): keys/values of the rows' own tokens
        self.pool[:, :, new.start : new.stop] = new_kv
        return out.logits[:, -1, :], list(new)  # (B, V)


class _PromptCacheExpander:
    """Shared prompt cache; each row recomputes its whole completion prefix (middle padded)."""

    name = "prompt-cache"
    needs_paths = True

    def __init__(self, model, prompt_ids):
        cache = _run_prompt(self, model, prompt_ids)
        self.keys = [layer.keys for layer in cache.layers]  # L x (1, H, P, D)
        self.values = [layer.values for layer in cache.layers]

    def expand(self, tokens, paths, ancestor_slots):
        b = len(paths)
        p = self.n_prompt
        width = max(len(x) for x in paths)  # A + 1
        ids = torch.zeros((b, width), dtype=torch.long)  # (B, A + 1) left padded after the prompt
        mask = torch.ones((b, p + width), dtype=torch.long)  # (B, P + A + 1)
        pos = torch.zeros((b, width), dtype=torch.long)  # (B, A + 1)
        for r, path in enumerate(paths):
            pad = width - len(path)
            ids[r, pad:] = torch.as_tensor(path, dtype=torch.long)
            mask[r, p : p + pad] = 0
            pos[r, pad:] = torch.arange(p, p + len(path))
            pos[r, :pad] = p
        cache = _cache_from_tensors(
            [k.expand(b, -1, -1, -1) for k in self.keys], [v.expand(b, -1, -1, -1) for v in self.values]
        )
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :], [-1] * b  # (B, V)


class _RecomputeExpander:
    """No cache: each row is ``prompt + prefix``, left padded, positions from the attention mask."""

    name = "recompute"
    needs_paths = True

    def __init__(self, model, prompt_ids):
        self.model = model
        self.device = prompt_ids.device
        self.prompt = prompt_ids[0].tolist()
        self.root_logits = model(input_ids=prompt_ids, use_cache=False, logits_to_keep=1).logits[:, -1, :]

    def expand(self, tokens, paths, ancestor_slots):
        rows = [self.prompt + list(path) for path in paths]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)  # (B, P + A + 1) left padded
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, P + A + 1)
        for r, row in enumerate(rows):
            ids[r, width - len(row) :] = torch.as_tensor(row, dtype=torch.long)
            mask[r, width - len(row) :] = 1
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)  # (B, P + A + 1)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=position_ids.to(self.device),
            use_cache=False,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :], [-1] * len(rows)  # (B, V)


_EXPANDERS = {
    "kv-tree": _KVTreeExpander,
    "prompt-cache": _PromptCacheExpander,
    "recompute": _RecomputeExpander,
}


def _make_expander(strategy: str, model, prompt_ids):
    try:
        return _EXPANDERS[strategy](model, prompt_ids)
    except _Unsupported:
        return _RecomputeExpander(model, prompt_ids)


# ---------------------------------------------------------------------------------------------- search
def _validate(
    mass, max_new_tokens, temperature, budget_seconds, max_expansions, batch_size, strategy
) -> None:
    if not 0.0 < mass <= 1.0:
        raise ValidationError(f"mass must be in (0, 1], got {mass}")
    if max_new_tokens < 0:
        raise ValidationError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValidationError(f"temperature must be a finite number > 0, got {temperature}")
    if budget_seconds is not None and not budget_seconds >= 0:
        raise ValidationError(f"budget_seconds must be >= 0 or None, got {budget_seconds}")
    if max_expansions is not None and max_expansions < 0:
        raise ValidationError(f"max_expansions must be >= 0 or None, got {max_expansions}")
    if batch_size < 1:
        raise ValidationError(f"batch_size must be >= 1, got {batch_size}")
    if strategy not in STRATEGIES:
        raise ValidationError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def certified_marginal(
    model,
    tokenizer,
    prompt: str,
    *,
    extract_answer: Callable[[str], str | None],
    mass: float = 0.99,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    budget_seconds: float | None = 10.0,
    max_expansions: int | None = None,
    batch_size: int = 64,
    stop_strings: Sequence[str] = (),
    stop_token_ids: Sequence[int] = (),
    device=None,
    strategy: str = "kv-tree",
) -> CertifiedMarginal:
    """Certified intervals ``[m(z), m(z) + residual]`` on the answer marginal ν_π(z | prompt) (THEORY.md §1).

    Enumerates completions of ``prompt`` (tokenized by :func:`llm.tokenizer.encode_prompt`, as the sampler does)
    best-first    by probability under ``softmax(logits / temperature)`` until the enumerated mass reaches ``mass``, the
    tree is exhausted, or ``budget_seconds`` / ``max_expansions`` is spent (checked before each forward pass,
    so the time budget can be exceeded by one batch; the prompt pass always runs unless the expansion budget
    is 0). ``device`` defaults to the model's; a different one is an error (the model is not moved).
    See the module docstring for stops, truncation and numerics.
    """
    _validate(mass, max_new_tokens, temperature, budget_seconds, max_expansions, batch_size, strategy)
    model_device = next(model.parameters()).device
    wanted = None if device is None else torch.device(device)
    if wanted is not None and (
        wanted.type != model_device.type or wanted.index not in (None, model_device.index)
    ):
        raise ValidationError(
            f"device {device} differs from the model's device {model_device}; move the model first"
        )
    prompt_list = encode_prompt(tokenizer, prompt)
    if not prompt_list:
        raise ValidationError("the prompt encodes to no tokens")
    rule = stop_rule(model, tokenizer, stop_strings, stop_token_ids)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            search = _BestFirstSearch(
                model,
                tokenizer,
                torch.tensor([prompt_list], device=model_device),
                extract_answer=extract_answer,
                rule=rule,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                strategy=strategy,
            )
            stopped_by = search.run(
                mass=mass,
                t0=t0,
                budget_seconds=budget_seconds,
                max_expansions=max_expansions,
                batch_size=batch_size,
            )
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - t0
    return search.result(prompt, stopped_by, seconds)


class _BestFirstSearch:
    """The prefix tree, its heap and its ledger. Node 0 is the empty completion (the prompt alone).

    Heap entries are ``(−log π(child), parent, rank)``: the ``rank``-th most likely child of ``parent``;
    popping it pushes ``rank + 1``, so each expanded prefix has at most one heap entry.
    """

    def __init__(
        self,
        model,
        tokenizer,
        prompt_ids,
        *,
        extract_answer,
        rule,
        max_new_tokens,
        temperature,
        strategy,
    ):
        self.model, self.tokenizer, self.prompt_ids = model, tokenizer, prompt_ids
        self.extract_answer, self.rule = extract_answer, rule
        self.max_new_tokens, self.temperature, self.strategy = max_new_tokens, temperature, strategy
        self.expander = None
        # Node arrays (index = node id).
        self.parent: list[int] = [-1]
        self.token: list[int] = [-1]
        self.depth: list[int] = [0]
        self.logp: list[float] = [0.0]
        self.slot: list[int] = [-1]
        # Sorted children of expanded prefixes: node -> (tokens int32 (K,), log-probs float64 (K,)), K = #p>0.
        self.children: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.heap: list[tuple[float, int, int]] = []
        self.pending: list[int] = []  # popped prefixes awaiting expansion (frontier mass)
        self.finished: dict[str, float] = {}
        self.covered = 0.0
        self.truncated = 0.0
        self.n_completions = 0
        self.n_expansions = 0
        self.max_depth = 0

    # -- tree helpers
    def _path(self, node: int) -> list[int]:
        path = []
        while node > 0:
            path.append(self.token[node])
            node = self.parent[node]
        return path[::-1]

    def _ancestor_slots(self, node: int) -> list[int]:
        slots = []
        node = self.parent[node]
        while node > 0:
            slots.append(self.slot[node])
            node = self.parent[node]
        return slots[::-1]

    def _text(self, node: int) -> str:
        return self.tokenizer.decode(self._path(node), skip_special_tokens=True)

    def _finish(self, node: int, truncated: bool) -> None:
        answer = self.extract_answer(self.rule.cut(self._text(node)))  # text cut at its first stop string
        label = NO_ANSWER if answer is None else answer
        m = math.exp(self.logp[node])
        self.finished[label] = self.finished.get(label, 0.0) + m
        self.covered += m
        self.truncated += m if truncated else 0.0
        self.n_completions += 1

    def _classify(self, node: int) -> bool:
        """Finish ``node`` if it is a leaf; return True if it still needs expanding."""
        depth = self.depth[node]
        if depth > 0 and self.token[node] in self.rule.token_ids:  # the shared llm.sampling.StopRule
            self._finish(node, truncated=False)
            return False
        if depth > 0 and self.rule.strings:
            if self.rule.text_stops(self._text(node)):
                self._finish(node, truncated=False)
                return False
        if depth >= self.max_new_tokens:
            self._finish(node, truncated=True)
            return False
        return True

    def _add_children(self, nodes: Sequence[int], logits) -> None:
        logprobs = next_token_logprobs(logits, self.temperature)  # (B, V) float64
        sorted_lp, order = torch.sort(logprobs, dim=-1, descending=True)  # (B, V)
        n_positive = torch.isfinite(sorted_lp).sum(dim=-1).tolist()  # (B,) children with p > 0
        sorted_lp = sorted_lp.cpu().numpy()
        order = order.to(torch.int32).cpu().numpy()
        for r, node in enumerate(nodes):
            k = n_positive[r]
            if k == 0:
                raise RuntimeError(f"the model gave no token a positive probability after node {node}")
            lps = sorted_lp[r, :k].copy()  # (K,)
            self.children[node] = (order[r, :k].copy(), lps)
            heapq.heappush(self.heap, (-(self.logp[node] + float(lps[0])), node, 0))

    def _pop(self) -> int:
        """Pop the most likely unexplored child, push its next sibling, and return the new node."""
        _, parent, rank = heapq.heappop(self.heap)
        tokens, lps = self.children[parent]
        if rank + 1 < len(lps):
            heapq.heappush(self.heap, (-(self.logp[parent] + float(lps[rank + 1])), parent, rank + 1))
        else:
            del self.children[parent]  # every child popped: its table is no longer needed
        node = len(self.parent)
        self.parent.append(parent)
        self.token.append(int(tokens[rank]))
        self.depth.append(self.depth[parent] + 1)
        self.logp.append(self.logp[parent] + float(lps[rank]))
        self.slot.append(-1)
        self.max_depth = max(self.max_depth, self.depth[node])
        return node

    def _expand(self, nodes: list[int]) -> None:
        if self.expander is None:  # the root: one forward pass over the prompt
            self.expander = _make_expander(self.strategy, self.model, self.prompt_ids)
            self._add_children([0], self.expander.root_logits)
        else:
            paths = [self._path(n) for n in nodes] if self.expander.needs_paths else None
            logits, slots = self.expander.expand(
                [self.token[n] for n in nodes], paths, [self._ancestor_slots(n) for n in nodes]
            )
            for n, s in zip(nodes, slots, strict=True):
                self.slot[n] = s
            self._add_children(nodes, logits)
        self.n_expansions += len(nodes)

    # -- main loop
    def run(self, *, mass, t0, budget_seconds, max_expansions, batch_size) -> str:
        if mass >= 1.0:
            mass = math.inf  # a float sum can round up to 1 before the tree is exhausted: 1 means exhaustive
        if self._classify(0):
            self.pending = [0]
        while True:
            if not self.pending and not self.heap:
                return "exhausted"
            if self.covered >= mass:
                return "mass"
            while self.heap and len(self.pending) < batch_size:
                node = self._pop()
                if self._classify(node):
                    self.pending.append(node)
                elif self.covered >= mass:
                    return "mass"
            if not self.pending:
                continue
            over_time = budget_seconds is not None and time.perf_counter() - t0 >= budget_seconds
            n_allowed = len(self.pending) if max_expansions is None else max_expansions - self.n_expansions
            if n_allowed <= 0 or (over_time and self.expander is not None):
                return "budget"
            batch, self.pending = self.pending[:n_allowed], self.pending[n_allowed:]
            self._expand(batch)

    # -- ledger and result
    def frontier_mass(self) -> float:
        """Σ of unexplored mass: unpopped children of every heap entry plus popped, unexpanded prefixes."""
        parts = [math.exp(self.logp[n]) for n in self.pending]
        for _, parent, rank in self.heap:
            lps = self.children[parent][1][rank:]  # (K − rank,)
            parts.append(float(np.exp(self.logp[parent] + lps).sum()))
        return math.fsum(parts)

    def result(self, prompt: str, stopped_by: str, seconds: float) -> CertifiedMarginal:
        frontier = self.frontier_mass()
        covered = math.fsum(self.finished.values())
        if abs(covered + frontier - 1.0) > LEDGER_ATOL:
            raise RuntimeError(
                f"mass ledger broken: finished {covered!r} + frontier {frontier!r} "
                f"= {covered + frontier!r} != 1"
            )
        covered = min(1.0, covered)
        residual = max(0.0, 1.0 - covered, frontier)  # = CertifiedMarginal.residual
        finished = self.finished
        if getattr(self.extract_answer, "clusters", False) and len(finished) > 1:
            from llm.answers import merge_equivalent

            finished = merge_equivalent(finished)  # symbolic answers: one label per equivalence class
        bounds = {
            label: (m, min(1.0, m + residual))
            for label, m in sorted(finished.items(), key=lambda kv: (-kv[1], kv[0]))
        }
        if stopped_by not in STOPPED_BY:
            raise RuntimeError(f"unknown stop reason {stopped_by!r}")
        return CertifiedMarginal(
            prompt=prompt,
            answer_bounds=bounds,
            covered_mass=covered,
            n_completions=self.n_completions,
            n_expansions=self.n_expansions,
            seconds=seconds,
            stopped_by=stopped_by,
            truncated_mass=self.truncated,
            frontier_mass=frontier,
            strategy=self.expander.name if self.expander is not None else self.strategy,
            extra={"frontier_size": len(self.heap) + len(self.pending), "max_depth": self.max_depth},
        )


# ------------------------------------------------------------------------------------------------- CLI
def _prompts(args, tokenizer=None) -> list[str]:
    from llm.tasks import apply_prompt_format, load_data, split_problems, task_config_of

    if args.data:
        problems = load_data(args.data)
        if tokenizer is not None:  # conversational data goes through the chat template, as the sampler sees it
            problems = apply_prompt_format(problems, tokenizer)
    else:
        # held out: the problems a fine-tuned model never trained on
        problems = split_problems(task_config_of(args.model))[1]
    prompts = [view for p in problems for view in p.views]
    return prompts[: args.n_prompts]


@dataclass(frozen=True)
class MarginalsConfig:
    """``dagsim llm marginals``: its flags, generated by :func:`dagsim.cli_args.add_dataclass_args`."""

    model: str = ""
    """local HF checkpoint directory (model + tokenizer)"""
    task: str | None = None
    """prompts of the embedded task's held-out problems"""
    data: str | None = None
    """GSM8K-style JSONL file: one {"question", "answer"} per line"""
    n_prompts: int = 4
    """first N prompts (each view is a prompt)"""
    mass: float = 0.99
    """stop once the enumerated mass reaches this level"""
    budget_seconds: float = 10.0
    """time budget per prompt (<= 0: none)"""
    max_expansions: int | None = None
    """expansion budget per prompt"""
    temperature: float = 1.0
    """sampling temperature T (softmax(logits/T))"""
    max_new_tokens: int = 64
    """completion length limit (tokens)"""
    batch_size: int = 64
    """prefixes expanded per forward pass"""
    stop_string: tuple[str, ...] = ()
    """extra stop string (repeatable)"""
    answer_parser: str = ""
    """how final answers are read: '' = the task's default (marker for --task, full for --data) | full | marker |
    module:function | path/to/file.py:function"""
    device: str | None = None
    """cpu, cuda, ... (default: cuda when present)"""
    json: bool = False
    """print {"prompts": [...]} as JSON"""


#: Flags whose argparse form is not the generated one (required, choices, None defaults, repeatable).
_MARGINALS_CUSTOM = {
    "model": {"required": True},
    "task": {"choices": ["default"]},
    "data": {},
    "max_expansions": {"type": int, "default": None},
    "stop_string": {"action": "append", "default": []},
    "device": {"default": None},
    "json": {"action": "store_true"},
}


def build_marginals_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="dagsim llm marginals",
        description="Certified answer marginals of a causal LM: best-first enumeration of completions; each "
        "answer gets [enumerated mass, enumerated mass + residual] (see llm/certified.py).",
    )
    docs = field_docs(MarginalsConfig)
    custom = {name: {"help": docs[name], **kw} for name, kw in _MARGINALS_CUSTOM.items()}
    names = [f.name for f in dataclasses.fields(MarginalsConfig)]

    def add(parser, keep: tuple[str, ...]) -> None:
        add_dataclass_args(
            parser, MarginalsConfig, skip=tuple(n for n in names if n not in keep),
            help_text=lambda name, default, doc: doc, custom=custom,
        )

    add(ap, ("model",))
    add(ap.add_mutually_exclusive_group(required=True), ("task", "data"))  # exactly one prompt source
    add(ap, tuple(n for n in names if n not in ("model", "task", "data")))
    return ap


def _print_table(result: CertifiedMarginal, index: int, max_rows: int = 15) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    console.print(
        f"[bold]prompt {index}[/bold]: {result.prompt!r}\n"
        f"covered {result.covered_mass:.6f} ({result.stopped_by}), residual {result.residual:.2e}, "
        f"{result.n_completions} completions, {result.n_expansions} expansions, {result.seconds:.2f} s",
        markup=True,
        highlight=False,
    )
    table = Table()
    table.add_column("answer", justify="left")
    table.add_column("lower", justify="right")
    table.add_column("upper", justify="right")
    items = list(result.answer_bounds.items())
    for label, (lo, hi) in items[:max_rows]:
        table.add_row(label, f"{lo:.6f}", f"{hi:.6f}")
    if len(items) > max_rows:
        table.add_row(f"... {len(items) - max_rows} more", "", "")
    table.add_row("(any other)", "0", f"{result.residual:.6f}")
    console.print(table)


def main_marginals(argv: list[str]) -> int:
    """``dagsim llm marginals``: certified answer marginals for the first prompts of a task or data file."""
    args = build_marginals_parser().parse_args(argv)
    try:
        from llm.answers import resolve_answer_parser
        from llm.model import load_model

        if args.n_prompts < 1:
            raise ValidationError(f"--n-prompts must be >= 1, got {args.n_prompts}")
        extract_answer = resolve_answer_parser(args.answer_parser, embedded_task=not args.data)
        model, tokenizer = load_model(args.model, device=args.device)
        results = []
        for i, prompt in enumerate(_prompts(args, tokenizer)):
            result = certified_marginal(
                model,
                tokenizer,
                prompt,
                extract_answer=extract_answer,
                mass=args.mass,
                max_new_tokens=args.max_new_tokens,
                temperature=args.temperature,
                budget_seconds=args.budget_seconds if args.budget_seconds > 0 else None,
                max_expansions=args.max_expansions,
                batch_size=args.batch_size,
                stop_strings=args.stop_string,
            )
            results.append(result)
            if not args.json:
                _print_table(result, i)
        if args.json:
            print(json.dumps({"prompts": [r.to_json() for r in results]}, indent=2, allow_nan=False))
        return 0
    except DagsimError as exc:
        print(f"dagsim llm marginals: error: {exc}", file=sys.stderr)
        return 2
