"""Batched sampling with ``model.generate`` driven by an explicit ``torch.Generator``.

``generate`` draws from the global RNG of the model's device; :func:`generator_scope` forks that RNG,
loads the caller's generator state into it and writes the advanced state back, so sampling is a pure
function of the generator passed in and the global RNG is left untouched.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


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


@dataclass
class Batch:
    """Prompts and sampled completions as token tensors (one row per completion).

    ``prompt_ids`` is left padded, ``completion_ids`` right padded; masks are 1 on real tokens (a
    completion's mask includes its EOS token).
    """

    prompt_ids: torch.Tensor  # (N, P)
    prompt_mask: torch.Tensor  # (N, P)
    completion_ids: torch.Tensor  # (N, C)
    completion_mask: torch.Tensor  # (N, C)
    texts: list[str]  # N decoded completions

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)  # (N, P + C)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.completion_mask], dim=1)  # (N, P + C)


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 up to and including the first EOS of each row, 0 after. ``(N, C) -> (N, C)`` long."""
    is_eos = completion_ids == eos_token_id  # (N, C)
    before_or_at = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # EOS count strictly before t
    return (before_or_at == 0).long()


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
) -> Batch:
    """``n_samples`` completions of every prompt, rows prompt-major (``[p0 s0, p0 s1, ..., p1 s0, ...]``).

    ``greedy=True`` decodes the argmax (``n_samples`` must then be 1 and ``generator`` may be None).
    """
    device = next(model.parameters()).device
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_ids = enc["input_ids"].to(device).repeat_interleave(n_samples, dim=0)  # (N, P)
    prompt_mask = enc["attention_mask"].to(device).repeat_interleave(n_samples, dim=0)  # (N, P)
    kwargs = dict(
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
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
    completion_mask = completion_mask_from_ids(completion_ids, tokenizer.eos_token_id)  # (N, C)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
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
