"""Batched sampling with ``model.generate`` driven by an explicit ``torch.Generator``, and the stop rule.

``generate`` draws from the global RNG of the model's device; :func:`generator_scope` forks that RNG,
loads the caller's generator state into it and writes the advanced state back, so sampling is a pure
function of the generator passed in and the global RNG is left untouched.

**The stop rule** (:class:`StopRule`, built by :func:`stop_rule`) is the one definition of where a completion
ends; the sampler, the loss mask (``Batch.completion_mask``) and the certified marginals
(:mod:`llm.certified`) all use it, so they describe the same process. A completion ends

1. at the first token whose id is a stop id: every id of the model's ``generation_config.eos_token_id``
   (an int or a list, as Qwen2/Llama-3 instruct models have), the tokenizer's ``eos_token_id`` and any
   extra ``stop_token_ids`` -- that token is part of the completion (in the loss mask);
2. or at the first token after which the decoded completion (``skip_special_tokens=True``) *contains* a
   stop string -- that token is part of the completion (the model produced it; it stays in the loss mask)
   but the completion's *text* is cut just before the stop string's first occurrence, so characters of the
   boundary token after the stop string, and the stop string itself, never reach the answer extractor;
3. or after ``max_new_tokens`` tokens (truncated; the text is whatever was produced).

Token boundary, in one sentence: the stop is decided on whole tokens (the first token whose decoded prefix
holds the string), the text is cut on characters. A stop string split over several tokens is detected at the
token that completes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from dagsim.errors import ValidationError


@contextlib.contextmanager
def generator_scope(generator: torch.Generator):
    """Run the body with the device's global RNG temporarily equal to ``generator`` (state written back)."""
    device = generator.device
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index]):
            torch.cuda.set_rng_state(generator.get_state(), index)
            yield
            generator.set_state(torch.cuda.get_rng_state(index))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(generator.get_state())
            yield
            generator.set_state(torch.get_rng_state())


# ------------------------------------------------------------------------------------------- stop rule
@dataclass(frozen=True)
class StopRule:
    """Where a completion ends (module docstring): stop token ids and stop strings."""

    token_ids: frozenset[int]
    """Ids that end a completion (the token itself is part of it)."""
    strings: tuple[str, ...] = ()
    """Strings that end a completion at the first token whose decoded prefix contains one."""

    def text_stops(self, text: str) -> bool:
        """True when ``text`` (a decoded completion prefix) contains a stop string."""
        return any(s in text for s in self.strings)

    def cut(self, text: str) -> str:
        """``text`` up to (excluding) the first occurrence of any stop string; unchanged when none occurs."""
        hits = [i for i in (text.find(s) for s in self.strings) if i >= 0]
        return text[: min(hits)] if hits else text


def _as_ids(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [int(v) for v in value]
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(value)]


def stop_rule(model, tokenizer, stop_strings: Sequence[str] = (), stop_token_ids: Sequence[int] = ()) -> StopRule:
    """The :class:`StopRule` of ``model`` + ``tokenizer``: every id of ``model.generation_config.eos_token_id``
    (int or list), the tokenizer's EOS, ``stop_token_ids``; and the non-empty ``stop_strings``."""
    if isinstance(stop_strings, str):
        stop_strings = (stop_strings,)
    if any(not isinstance(s, str) or s == "" for s in stop_strings):
        raise ValidationError(f"stop strings must be non-empty strings, got {list(stop_strings)!r}")
    ids = set(_as_ids(stop_token_ids)) | set(_as_ids(getattr(tokenizer, "eos_token_id", None)))
    ids |= set(_as_ids(getattr(getattr(model, "generation_config", None), "eos_token_id", None)))
    if not ids:
        raise ValidationError("no stop token: the tokenizer and the model have no eos_token_id and none was given")
    return StopRule(frozenset(ids), tuple(dict.fromkeys(stop_strings)))


def completion_end(rule: StopRule, ids: Sequence[int], tokenizer) -> int | None:
    """Index of the last token of the completion ``ids`` under ``rule`` (inclusive), or None (no stop:
    the completion runs to the end of ``ids``)."""
    ids = list(ids)
    first_token = next((t for t, tok in enumerate(ids) if tok in rule.token_ids), None)
    if rule.strings:
        upto = len(ids) if first_token is None else first_token
        prefixes = tokenizer.batch_decode([ids[: t + 1] for t in range(upto)], skip_special_tokens=True)
        for t, text in enumerate(prefixes):
            if rule.text_stops(text):
                return t
    return first_token


def completion_mask_from_ids(completion_ids: torch.Tensor, rule: StopRule | int, tokenizer=None) -> torch.Tensor:
    """1 up to and including the end token of each row under ``rule``, 0 after. ``(N, C) -> (N, C)`` long.

    ``rule`` may be a bare EOS id (no stop strings). Stop strings need ``tokenizer`` (to decode prefixes).
    """
    if not isinstance(rule, StopRule):
        rule = StopRule(frozenset(_as_ids(rule)))
    stop_ids = torch.tensor(sorted(rule.token_ids), dtype=completion_ids.dtype, device=completion_ids.device)
    is_end = torch.isin(completion_ids, stop_ids)  # (N, C)
    if rule.strings:
        if tokenizer is None:
            raise ValueError("stop strings need the tokenizer to decode completion prefixes")
        is_end = torch.zeros_like(is_end)
        for r, row in enumerate(completion_ids.tolist()):
            end = completion_end(rule, row, tokenizer)
            if end is not None:
                is_end[r, end] = True
    is_end = is_end.long()
    before = torch.cumsum(is_end, dim=1) - is_end  # ends strictly before t
    return (before == 0).long()


class _StopStrings:
    """``generate`` stopping criterion: a row is done once its decoded completion holds a stop string."""

    def __init__(self, rule: StopRule, tokenizer, n_prompt: int):
        self.rule, self.tokenizer, self.n_prompt = rule, tokenizer, n_prompt

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.n_prompt :], skip_special_tokens=True)
        return torch.tensor([self.rule.text_stops(t) for t in texts], dtype=torch.bool, device=input_ids.device)


# ----------------------------------------------------------------------------------------------- batch
@dataclass
class Batch:
    """Prompts and sampled completions as token tensors (one row per completion).

    ``prompt_ids`` is left padded, ``completion_ids`` right padded; masks are 1 on real tokens (a
    completion's mask includes its stop token, see :class:`StopRule`).
    """

    prompt_ids: torch.Tensor  # (N, P)
    prompt_mask: torch.Tensor  # (N, P)
    completion_ids: torch.Tensor  # (N, C)
    completion_mask: torch.Tensor  # (N, C)
    texts: list[str]  # N decoded completions, cut at their first stop string

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)  # (N, P + C)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.completion_mask], dim=1)  # (N, P + C)


def encode_prompts(tokenizer, prompts: Sequence[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``(ids, mask)`` of ``prompts``, each encoded by :func:`llm.tokenizer.encode_prompt`."""
    from llm.tokenizer import encode_prompt

    rows = [encode_prompt(tokenizer, p) for p in prompts]
    if any(not r for r in rows):
        raise ValidationError("a prompt encodes to no tokens")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)  # (B, P)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, P)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def sample_completions(
    model,
    tokenizer,
    prompts: list[str],
    *,
    n_samples: int,
    temperature: float,
    max_new_tokens: int,
    generator: torch.Generator | None,
    greedy: bool = False,
    stop_strings: Sequence[str] = (),
) -> Batch:
    """``n_samples`` completions of every prompt, rows prompt-major (``[p0 s0, p0 s1, ..., p1 s0, ...]``).

    ``greedy=True`` decodes the argmax (``n_samples`` must then be 1 and ``generator`` may be None).
    Completions end by :func:`stop_rule` (every EOS id of the model and tokenizer, and ``stop_strings``).
    """
    from transformers import StoppingCriteriaList

    device = next(model.parameters()).device
    rule = stop_rule(model, tokenizer, stop_strings)
    ids, mask = encode_prompts(tokenizer, prompts, device)
    prompt_ids = ids.repeat_interleave(n_samples, dim=0)  # (N, P)
    prompt_mask = mask.repeat_interleave(n_samples, dim=0)  # (N, P)
    kwargs = dict(
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=sorted(rule.token_ids),
    )
    if rule.strings:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopStrings(rule, tokenizer, prompt_ids.shape[1])])
    was_training = model.training
    model.eval()
    if greedy:
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, do_sample=False, **kwargs)
    else:
        if generator is None:
            raise ValueError("sampling needs an explicit torch.Generator")
        with generator_scope(generator):
            out = model.generate(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                **kwargs,
            )
    model.train(was_training)
    completion_ids = out[:, prompt_ids.shape[1] :]  # (N, C)
    completion_mask = completion_mask_from_ids(completion_ids, rule, tokenizer)  # (N, C)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, tokenizer.pad_token_id)
    texts = [rule.cut(t) for t in tokenizer.batch_decode(completion_ids, skip_special_tokens=True)]
    return Batch(prompt_ids, prompt_mask, completion_ids, completion_mask, texts)


def sequence_token_logprobs(model, batch: Batch, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities of each completion token under ``model`` at ``temperature``. ``(N, C)``.

    Position ids follow the attention mask (left padding), matching what ``generate`` used.
    """
    input_ids = batch.input_ids  # (N, L)
    attention_mask = batch.attention_mask  # (N, L)
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)  # (N, L)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    n_prompt = batch.prompt_ids.shape[1]
    logits = logits[:, n_prompt - 1 : -1, :].float() / temperature  # (N, C, V): logits predicting completion
    logprobs = torch.log_softmax(logits, dim=-1)
    return torch.gather(logprobs, 2, batch.completion_ids.unsqueeze(-1)).squeeze(-1)  # (N, C)
