"""A small BPE tokenizer for the embedded task, built with ``tokenizers``, saved as a PreTrainedTokenizerFast.

Digits are always single tokens (``Digits(individual_digits=True)``), so arithmetic is learned digit by digit;
spaces are kept by a Metaspace pre-tokenizer/decoder so ``decode(encode(s)) == s`` for any text over the
training alphabet. The saved directory reloads with ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagsim.errors import ValidationError

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
# Characters always in the vocabulary, whatever the corpus: digits, arithmetic and answer marker.
BASE_ALPHABET = list("0123456789+-*/=.,#?:!'\n ") + list(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 256):
    """Train a BPE tokenizer on ``corpus`` and wrap it as a left-padding ``PreTrainedTokenizerFast``."""
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
        vocab_size=vocab_size, special_tokens=[PAD, EOS, UNK], initial_alphabet=BASE_ALPHABET + ["\u2581"]
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    return fast


def load_tokenizer(path: str):
    """Reload a saved tokenizer (ours or any HF tokenizer dir); pads on the left, has a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
