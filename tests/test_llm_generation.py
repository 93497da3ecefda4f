"""Generation stops where the model stops: one stop rule for the sampler, the loss mask and the certified
marginals (several EOS ids, stop strings), BOS as the tokenizer defines it, chat templates, Qwen2 builds."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from dagsim.errors import ValidationError  # noqa: E402
from llm.answers import NO_ANSWER  # noqa: E402
from llm.certified import certified_marginal  # noqa: E402
from llm.sampling import (  # noqa: E402
    StopRule,
    completion_end,
    completion_mask_from_ids,
    sample_completions,
    stop_rule,
)
from tests.test_llm_certified import EOS, char_tokenizer, last_digit, random_model  # noqa: E402

pytestmark = pytest.mark.llm

#: A sampled frequency lies within this many standard errors of its certified interval.
MC_SIGMAS = 4.0


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _second_eos(tok) -> int:
    return tok.convert_tokens_to_ids("#")


def _two_eos_model(tok, seed=7):
    model = random_model(len(tok), seed=seed)
    model.generation_config.eos_token_id = [EOS, _second_eos(tok)]  # as Qwen2/Llama-3 instruct models list them
    return model


def _first_end(row: list[int], ids: set[int]) -> int | None:
    return next((t for t, x in enumerate(row) if x in ids), None)


def test_stop_rule_collects_every_eos_id_and_the_strings(tok):
    model = _two_eos_model(tok)
    rule = stop_rule(model, tok, ["0 ", "0 "], stop_token_ids=[3])
    assert rule.token_ids == frozenset({EOS, _second_eos(tok), 3}) and rule.strings == ("0 ",)
    model.generation_config.eos_token_id = torch.tensor([EOS, 4])
    assert stop_rule(model, tok).token_ids == frozenset({EOS, 4})
    with pytest.raises(ValidationError, match="non-empty"):
        stop_rule(model, tok, [""])
    assert StopRule(frozenset({1}), ("\nQ:", "##")).cut("a 3\nQ: b ## c") == "a 3"


def test_loss_mask_stops_at_the_first_eos_of_either_kind(tok):
    """Sampled rows end at the first of the two EOS ids; the mask (the loss) covers exactly up to it.
    Control: the old single-EOS mask would put the second EOS's row tail (padding) into the loss."""
    model = _two_eos_model(tok)
    batch = sample_completions(model, tok, ["0 1"], n_samples=300, temperature=1.0, max_new_tokens=8,
                               generator=torch.Generator().manual_seed(0))
    ends = {EOS, _second_eos(tok)}
    n_second = 0
    for row, mask in zip(batch.completion_ids.tolist(), batch.completion_mask.tolist()):
        end = _first_end(row, ends)
        length = len(row) if end is None else end + 1
        assert mask == [1] * length + [0] * (len(row) - length)
        n_second += end is not None and row[end] == _second_eos(tok)
    assert n_second > 20  # the second EOS does end many rows
    old = completion_mask_from_ids(batch.completion_ids, EOS)  # tokenizer EOS only (the previous rule)
    assert (old.sum() > batch.completion_mask.sum()).item()


def test_stop_string_mask_text_and_token_boundary(tok):
    """A stop string split over two tokens ends the completion at the token completing it; that token stays
    in the mask; the text is cut before the string."""
    rule = StopRule(frozenset({EOS}), ("0 ",))
    ids = tok("1 10 1", add_special_tokens=False)["input_ids"]  # '0 ' spans tokens 3 ('0') and 4 (' ')
    assert completion_end(rule, ids, tok) == 4
    mask = completion_mask_from_ids(torch.tensor([ids]), rule, tok)
    assert mask.tolist() == [[1, 1, 1, 1, 1, 0]]
    assert rule.cut(tok.decode(ids[:5])) == "1 1"
    assert completion_end(StopRule(frozenset({EOS})), ids, tok) is None  # control: no string, no stop


def test_sampler_and_certified_marginal_describe_the_same_process(tok):
    """Monte Carlo frequencies of the sampler's answers (two EOS ids + a stop string that changes the answer
    when the text is not cut) fall inside the exhaustive certified intervals. Controls: intervals certified
    without the stop string, or with the tokenizer's EOS only, reject the same samples."""
    model = _two_eos_model(tok, seed=3)
    prompt, temperature, n, max_new = "1 0", 0.8, 3000, 4
    stops = ("0 ",)
    batch = sample_completions(model, tok, [prompt], n_samples=n, temperature=temperature, max_new_tokens=max_new,
                               generator=torch.Generator().manual_seed(1), stop_strings=stops)
    counts: dict[str, int] = defaultdict(int)
    for text in batch.texts:
        a = last_digit(text)
        counts[NO_ANSWER if a is None else a] += 1
    assert not any("0 " in t for t in batch.texts)

    def n_outside(res) -> int:
        bad = 0
        for label in set(counts) | set(res.answer_bounds):
            freq = counts.get(label, 0) / n
            lo, hi = res.bounds(label)
            se = math.sqrt(max(freq * (1 - freq), 1.0 / n) / n)
            bad += not (lo - MC_SIGMAS * se <= freq <= hi + MC_SIGMAS * se)
        return bad

    common = dict(extract_answer=last_digit, mass=1.0, max_new_tokens=max_new, temperature=temperature,
                  budget_seconds=None)
    res = certified_marginal(model, tok, prompt, stop_strings=stops, **common)
    assert res.stopped_by == "exhausted" and n_outside(res) == 0
    assert n_outside(certified_marginal(model, tok, prompt, **common)) > 0
    single = random_model(len(tok), seed=3)  # same weights, generation config with the tokenizer's EOS only
    assert n_outside(certified_marginal(single, tok, prompt, stop_strings=stops, **common)) > 0


# ----------------------------------------------------------------------------------------------- BOS
def _bos_tokenizer(append_eos: bool = False):
    """A word-level tokenizer whose post-processor adds ``<s>`` (Llama-style), optionally ``</s>`` too."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<s>": 2, "<unk>": 3, "a": 4, "b": 5, "Q:": 6}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    single = "<s> $A </s>" if append_eos else "<s> $A"
    t.post_processor = processors.TemplateProcessing(single=single, special_tokens=[("<s>", 2), ("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=t, pad_token="<pad>", eos_token="</s>", bos_token="<s>",
                                   unk_token="<unk>", padding_side="left")


def test_bos_is_added_as_the_tokenizer_defines_and_never_doubled():
    from llm.sampling import encode_prompts
    from llm.tokenizer import encode_prompt

    tok = _bos_tokenizer()
    assert encode_prompt(tok, "Q: a b") == [2, 6, 4, 5]
    assert encode_prompt(tok, "<s> Q: a") == [2, 6, 4]  # a rendered template already holds BOS
    assert encode_prompt(_bos_tokenizer(append_eos=True), "Q: a") == [2, 6, 4]  # a prompt never ends itself
    ids, mask = encode_prompts(tok, ["Q: a b", "a"])
    assert ids.tolist() == [[2, 6, 4, 5], [0, 0, 2, 4]] and mask.tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]


def test_bos_reaches_the_sampler_and_the_certified_search():
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _bos_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         pad_token_id=0, eos_token_id=1, bos_token_id=2)).eval()
    batch = sample_completions(model, tok, ["Q: a"], n_samples=2, temperature=1.0, max_new_tokens=2,
                               generator=torch.Generator().manual_seed(0))
    assert batch.prompt_ids[0].tolist() == [2, 6, 4]
    res = certified_marginal(model, tok, "Q: a", extract_answer=lambda t: t or None, mass=1.0, max_new_tokens=1,
                             budget_seconds=None)
    with torch.no_grad():  # the certified root law is the model's after [<s>, Q:, a], not after [Q:, a]
        p = torch.softmax(model(torch.tensor([[2, 6, 4]])).logits[0, -1].double(), -1)
    assert res.bounds("b")[0] == pytest.approx(float(p[5]), abs=1e-6)


def test_embedded_tokenizer_prompts_encode_as_before():
    """The embedded tokenizer has no BOS post-processor: encode_prompt equals add_special_tokens=False."""
    from llm.pretrain import sft_corpus
    from llm.tasks import ArithmeticTaskConfig, split_problems
    from llm.tokenizer import build_tokenizer, encode_prompt

    train, held = split_problems(ArithmeticTaskConfig())
    tok = build_tokenizer(sft_corpus(train, np.random.default_rng(0), 0.1), vocab_size=160)
    for p in held[:20]:
        assert encode_prompt(tok, p.views[0]) == tok(p.views[0], add_special_tokens=False)["input_ids"]


# -------------------------------------------------------------------------------------- chat templates
@pytest.fixture(scope="module")
def chatml():
    from llm.tokenizer import build_bytelevel_tokenizer

    corpus = ["What is 3 + 5? 3+5=8 #### 8", "Q: Ann has 4 pens.\nA: #### 4"] * 20
    return build_bytelevel_tokenizer(corpus, vocab_size=300)


def test_chat_template_is_used_for_conversational_data_or_when_asked(chatml):
    from llm.tasks import Problem, apply_prompt_format

    chat = Problem("c", ("Q: 3+4?\nA:",), "7", messages=(("system", "Be brief."), ("user", "3+4?")),
                   target="3+4=7 #### 7")
    plain = Problem("p", ("Q: 2+2?\nA:",), "4", target=" #### 4")
    auto = apply_prompt_format([chat, plain], chatml)
    assert auto[0].views == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n3+4?<|im_end|>\n"
                             "<|im_start|>assistant\n",)
    assert auto[1] == plain  # plain data on a base model keeps the Q: ... A: form
    forced = apply_prompt_format([plain], chatml, chat_template=True)[0]
    assert forced.views == ("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",)
    assert forced.target == "#### 4"  # the "A:"-form leading space is dropped
    no_template = char_tokenizer()
    assert apply_prompt_format([chat], no_template)[0].views == chat.views
    with pytest.raises(ValidationError, match="no chat template"):
        apply_prompt_format([plain], no_template, chat_template=True)


def test_qwen2_model_has_two_eos_ids_and_its_loss_mask_stops_at_either(chatml):
    from llm.model import ModelConfig, build_model

    model = build_model(ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64, family="qwen2"),
                        chatml, seed=0)
    im_end, eot = chatml.convert_tokens_to_ids("<|im_end|>"), chatml.convert_tokens_to_ids("<|endoftext|>")
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.generation_config.eos_token_id == [im_end, eot] and chatml.eos_token_id == im_end
    with torch.no_grad():  # make both EOS ids likely so that both occur within a few tokens
        model.lm_head.weight[[im_end, eot]] += 0.5 * model.model.embed_tokens.weight.mean(0)
        model.model.norm.weight.fill_(8.0)
    prompt = "<|im_start|>user\n3+5?<|im_end|>\n<|im_start|>assistant\n"
    batch = sample_completions(model, chatml, [prompt], n_samples=200, temperature=1.0, max_new_tokens=6,
                               generator=torch.Generator().manual_seed(0))
    seen = set()
    for row, mask in zip(batch.completion_ids.tolist(), batch.completion_mask.tolist()):
        end = _first_end(row, {im_end, eot})
        length = len(row) if end is None else end + 1
        assert mask == [1] * length + [0] * (len(row) - length)
        if end is not None:
            seen.add(row[end])
    assert seen == {im_end, eot}
