"""Tokenizers built locally with ``tokenizers`` and saved as ``PreTrainedTokenizerFast``; prompt encoding.

:func:`build_tokenizer` -- the embedded task's small BPE: digits are always single tokens
(``Digits(individual_digits=True)``), so arithmetic is learned digit by digit; spaces are kept by a Metaspace
pre-tokenizer/decoder so ``decode(encode(s)) == s`` for any text over its alphabet. The alphabet always holds
:data:`BASE_ALPHABET` (the embedded task's characters) and :data:`EXTRA_ALPHABET` (the rest of printable ASCII
and the usual typographic characters of third-party arithmetic text: ``( ) / % $ , € × ÷ − ’ …``), so a
GSM8K-style prompt encodes without ``<unk>``. It has no BOS and no post-processor.

:func:`build_bytelevel_tokenizer` -- a Qwen2-style byte-level BPE (any text encodes, no ``<unk>``) with the
ChatML special tokens ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` and a ChatML chat template; EOS is
``<|im_end|>`` (the end of an assistant turn) and the model built for it stops at either of the two.

:func:`encode_prompt` -- how every prompt is tokenized (sampler, certified marginals, SFT): with the
tokenizer's own special tokens (``add_special_tokens=True``: a Llama tokenizer's ``<s>`` is added), except
that a text already starting with the BOS token (a rendered chat template) gets no second BOS, and an EOS a
post-processor appends is removed (a prompt must not end its own completion).
"""

from __future__ import annotations

from collections.abc import Iterable

from dagsim.errors import ValidationError

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
# Characters always in the vocabulary, whatever the corpus: digits, arithmetic and answer marker.
BASE_ALPHABET = list("0123456789+-*/=.,#?:!'\n ") + list(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
#: Added on top of ``vocab_size`` (so the embedded task's merges are unchanged): the rest of printable ASCII,
#: tab, and typographic characters common in third-party arithmetic text.
EXTRA_ALPHABET = [c for c in (
    "()%$&;\"[]{}<>_^|~@`\\\t"
    "\u00d7\u00f7\u2212\u2013\u2014\u2018\u2019\u201c\u201d\u20ac\u00a3\u00b0\u00bd\u00bc\u00be\u2026\u00a0"
) if c not in BASE_ALPHABET]
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 256):
    """Train a BPE tokenizer on ``corpus`` and wrap it as a left-padding ``PreTrainedTokenizerFast``.

    ``vocab_size`` counts the special tokens, :data:`BASE_ALPHABET` and the merges; the
    ``len(EXTRA_ALPHABET)`` extra characters come on top (``len(tok) <= vocab_size + len(EXTRA_ALPHABET)``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(BASE_ALPHABET) + 4:
        raise ValidationError(f"vocab_size must be at least {len(BASE_ALPHABET) + 4}, got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + len(EXTRA_ALPHABET),
        special_tokens=[PAD, EOS, UNK],
        initial_alphabet=BASE_ALPHABET + EXTRA_ALPHABET + ["\u2581"],
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    return fast


def build_bytelevel_tokenizer(corpus: Iterable[str], vocab_size: int = 512):
    """A Qwen2-style byte-level BPE trained on ``corpus``, with ChatML special tokens and chat template.

    Specials: ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (EOS, ends an assistant turn).
    Digits are single tokens, as in Qwen2's pre-tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    if vocab_size < 256 + len(specials):
        raise ValidationError(f"vocab_size must be >= {256 + len(specials)} for a byte-level BPE, got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    roles = [f"{role}\n" for role in ("system", "user", "assistant")] * 50  # so the template's role lines merge
    tok.train_from_iterator(list(corpus) + roles, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        padding_side="left",
        chat_template=CHATML_TEMPLATE,
    )


def load_tokenizer(path: str):
    """Reload a saved tokenizer (ours or any HF tokenizer dir); pads on the left, has a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt, special tokens added as the tokenizer defines (module docstring)."""
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    eos, eos_text = tokenizer.eos_token_id, getattr(tokenizer, "eos_token", None)
    if ids and eos is not None and ids[-1] == eos and not (eos_text and text.endswith(eos_text)):
        ids = ids[:-1]
    return ids


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer, messages) -> str:
    """The prompt text of ``messages`` (``[{"role", "content"}, ...]``) with the assistant's generation prompt."""
    if not has_chat_template(tokenizer):
        raise ValidationError("--chat-template: the tokenizer has no chat template")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
