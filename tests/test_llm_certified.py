"""Certified answer marginals (llm/certified.py) against exact oracles, Monte Carlo sampling and the ledger.

Oracles:
  * a hand-built Llama whose next-token law depends only on the current token (a Markov chain with a known
    logit table): the exact answer marginal is a brute-force sum over all sequences, in numpy, without the
    model;
  * a random tiny Llama: the exact marginal by brute force over every prefix with unbatched, uncached
    forward passes;
  * Monte Carlo: the project's sampler (``llm.sampling.sample_completions``, i.e. ``model.generate``).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from llm.answers import NO_ANSWER  # noqa: E402
from llm.certified import (  # noqa: E402
    LEDGER_ATOL,
    _KVTreeExpander,
    _PromptCacheExpander,
    _RecomputeExpander,
    certified_marginal,
    main_marginals,
)

pytestmark = pytest.mark.llm

#: The model computes logits in float32: ~1e-7 relative error on each probability versus the float64 oracle.
ATOL_FLOAT32 = 1e-6
#: Logits of one prefix from batches of different shapes (padding, cache layout) agree to float32 noise.
ATOL_BATCHED_LOGITS = 1e-5
#: Monte Carlo check: a sampled frequency lies within this many standard errors of the certified interval.
MC_SIGMAS = 4.0

CHARS = "01# "
PAD, EOS = 0, 1


def char_tokenizer():
    """A character-level tokenizer: <pad>=0, <eos>=1, <unk>=2, then one token per character of CHARS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": PAD, "<eos>": EOS, "<unk>": 2}
    for c in CHARS:
        vocab[c] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def last_digit(text: str) -> str | None:
    """Test extractor: the last digit of the completion, or None (the no-answer bucket)."""
    digits = [c for c in text if c.isdigit()]
    return digits[-1] if digits else None


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _llama_config(vocab_size, **kw):
    from transformers import LlamaConfig

    base = dict(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=EOS,
    )
    base.update(kw)
    return LlamaConfig(**base)


def markov_model(table: np.ndarray):
    """A Llama whose next-token logits are ``table[current token]``, whatever the position and the past.

    Attention and MLP outputs are zeroed, so the residual stream is the one-hot embedding e_t; the final
    RMSNorm maps it to sqrt(h)·e_t and the (untied) head, ``W[:, t] = table[t] / sqrt(h)``, gives table[t].
    """
    from transformers import LlamaForCausalLM

    v = table.shape[0]
    h = v + v % 2  # one-hot embeddings need hidden_size >= vocab_size; RoPE needs an even head_dim
    config = _llama_config(
        v,
        hidden_size=h,
        intermediate_size=4,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        tie_word_embeddings=False,
        rms_norm_eps=1e-12,
    )
    torch.manual_seed(0)  # irrelevant: every weight is overwritten
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(v, h))
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight[:, :v] = torch.tensor(table.T / math.sqrt(h), dtype=torch.float32)  # (V, h)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = PAD, EOS
    return model.eval()


def random_model(vocab_size: int, seed: int, init_std: float = 0.3):
    """A random 2-layer Llama; a large init spread makes its next-token laws far from uniform."""
    from transformers import LlamaForCausalLM

    gen = torch.Generator().manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(vocab_size))
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * init_std)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = PAD, EOS
    return model.eval()


def _softmax64(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def brute_force(next_probs, tok, prompt_ids, *, max_new_tokens, extract, stop_strings=(), stop_ids=(EOS,)):
    """Exact answer marginal and every leaf's probability, by depth-first enumeration of all completions.

    ``next_probs(path) -> (V,)`` float64 is the oracle's next-token law after ``prompt + path``.
    """
    marginal: dict[str, float] = defaultdict(float)
    leaves: list[float] = []

    def visit(path: list[int], prob: float) -> None:
        probs = next_probs(path)
        for t in range(len(probs)):
            p = prob * probs[t]
            if p == 0.0:
                continue
            new = path + [t]
            text = tok.decode(new, skip_special_tokens=True)
            if t in stop_ids or any(s in text for s in stop_strings) or len(new) == max_new_tokens:
                answer = extract(text)
                marginal[NO_ANSWER if answer is None else answer] += p
                leaves.append(p)
            else:
                visit(new, p)

    if max_new_tokens == 0:
        return {NO_ANSWER if extract("") is None else extract(""): 1.0}, [1.0]
    visit([], 1.0)
    return dict(marginal), leaves


def markov_oracle(table, temperature, prompt_ids):
    probs = _softmax64(table, temperature)  # (V, V)
    return lambda path: probs[(list(prompt_ids) + path)[-1]]


def model_oracle(model, prompt_ids, temperature):
    cache = {}

    def next_probs(path):
        key = tuple(path)
        if key not in cache:
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([list(prompt_ids) + path])).logits[0, -1]  # (V,)
            cache[key] = _softmax64(logits.double().numpy(), temperature)
        return cache[key]

    return next_probs


def assert_contains(result, exact: dict[str, float], atol: float = ATOL_FLOAT32) -> None:
    for label in set(exact) | set(result.answer_bounds):
        lo, hi = result.bounds(label)
        truth = exact.get(label, 0.0)
        assert lo - atol <= truth <= hi + atol, (label, lo, truth, hi)


def _table(seed: int, v: int = 3 + len(CHARS), scale: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=(v, v))  # (V, V): row = current token


# ----------------------------------------------------------------------------------------- exact oracle
@pytest.mark.parametrize("temperature", [1.0, 0.6])
@pytest.mark.parametrize("stops", ["eos", "eos+string", "eos+id"])
def test_markov_model_exhaustive_is_exact_and_tight(tok, temperature, stops):
    stop_strings = ("#",) if stops == "eos+string" else ()
    stop_token_ids = tuple(tok(" ", add_special_tokens=False)["input_ids"]) if stops == "eos+id" else ()
    table = _table(1)
    model = markov_model(table)
    prompt = "1#0"
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    exact, _ = brute_force(
        markov_oracle(table, temperature, prompt_ids),
        tok,
        prompt_ids,
        max_new_tokens=4,
        extract=last_digit,
        stop_strings=stop_strings,
        stop_ids=(EOS, *stop_token_ids),
    )
    res = certified_marginal(
        model,
        tok,
        prompt,
        extract_answer=last_digit,
        mass=1.0,
        max_new_tokens=4,
        temperature=temperature,
        budget_seconds=None,
        stop_strings=stop_strings,
        stop_token_ids=stop_token_ids,
        batch_size=8,
    )
    assert res.stopped_by == "exhausted"
    assert res.residual <= 1e-9
    assert set(res.answer_bounds) == set(exact)
    for label, (lo, hi) in res.answer_bounds.items():
        assert abs(lo - exact[label]) <= ATOL_FLOAT32 and hi - lo <= 1e-9
    assert res.truncated_mass > 0  # max_new_tokens = 4 cuts some completions; they are leaves, not lost mass


def test_wrong_temperature_is_detected(tok):
    """Control: the exact oracle at T = 0.6 lies outside intervals computed at T = 1 (the check can fail)."""
    table = _table(1)
    prompt_ids = tok("1#0", add_special_tokens=False)["input_ids"]
    exact, _ = brute_force(
        markov_oracle(table, 0.6, prompt_ids), tok, prompt_ids, max_new_tokens=4, extract=last_digit
    )
    res = certified_marginal(
        markov_model(table),
        tok,
        "1#0",
        extract_answer=last_digit,
        mass=1.0,
        max_new_tokens=4,
        temperature=1.0,
        budget_seconds=None,
    )
    with pytest.raises(AssertionError):
        assert_contains(res, exact)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    temperature=st.floats(0.3, 2.0),
    max_new_tokens=st.integers(0, 4),
    mass=st.floats(0.2, 1.0),
    batch_size=st.sampled_from([1, 1, 3, 32]),
)
def test_markov_intervals_contain_truth_and_enumeration_is_best_first(
    seed, temperature, max_new_tokens, mass, batch_size
):
    tok = char_tokenizer()
    table = _table(seed)
    prompt_ids = tok("0", add_special_tokens=False)["input_ids"]
    exact, leaves = brute_force(
        markov_oracle(table, temperature, prompt_ids),
        tok,
        prompt_ids,
        max_new_tokens=max_new_tokens,
        extract=last_digit,
    )
    res = certified_marginal(
        markov_model(table),
        tok,
        "0",
        extract_answer=last_digit,
        mass=mass,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        budget_seconds=None,
        batch_size=batch_size,
    )
    assert_contains(res, exact)
    assert res.covered_mass >= mass or res.stopped_by == "exhausted"
    # Best-first: with batch_size = 1 the enumerated completions are the n most likely ones (ties have
    # probability zero here); larger batches may record a leaf before the children of prefixes in the batch.
    top = math.fsum(sorted(leaves, reverse=True)[: res.n_completions])
    tol = ATOL_FLOAT32 * max(1, res.n_completions)
    if batch_size == 1:
        assert math.isclose(res.covered_mass, top, abs_tol=tol)
    assert res.covered_mass <= top + tol
    assert abs(res.covered_mass + res.frontier_mass - 1.0) <= LEDGER_ATOL


def test_random_llama_matches_uncached_brute_force(tok):
    model = random_model(len(tok), seed=3)
    prompt = "10#"
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    exact, _ = brute_force(
        model_oracle(model, prompt_ids, 0.8), tok, prompt_ids, max_new_tokens=4, extract=last_digit
    )
    for strategy in ("kv-tree", "prompt-cache", "recompute"):
        res = certified_marginal(
            model,
            tok,
            prompt,
            extract_answer=last_digit,
            mass=1.0,
            max_new_tokens=4,
            temperature=0.8,
            budget_seconds=None,
            batch_size=16,
            strategy=strategy,
        )
        assert res.strategy == strategy and res.stopped_by == "exhausted"
        assert_contains(res, exact)
        assert max(hi - lo for lo, hi in res.answer_bounds.values()) <= 1e-9
    partial = certified_marginal(
        model,
        tok,
        prompt,
        extract_answer=last_digit,
        mass=0.7,
        max_new_tokens=4,
        temperature=0.8,
        budget_seconds=None,
    )
    assert partial.stopped_by == "mass" and partial.residual > 0.0
    assert_contains(partial, exact)


# ------------------------------------------------------------------------------------------ Monte Carlo
def test_monte_carlo_frequencies_fall_inside_the_intervals(tok):
    from llm.sampling import sample_completions

    model = random_model(len(tok), seed=7)
    prompt, temperature, n = "0 1", 0.7, 4000
    batch = sample_completions(
        model,
        tok,
        [prompt],
        n_samples=n,
        temperature=temperature,
        max_new_tokens=5,
        generator=torch.Generator().manual_seed(0),
    )
    counts: dict[str, int] = defaultdict(int)
    for text in batch.texts:
        answer = last_digit(text)
        counts[NO_ANSWER if answer is None else answer] += 1

    def n_outside(res) -> int:
        bad = 0
        for label in set(counts) | set(res.answer_bounds):
            freq = counts.get(label, 0) / n
            lo, hi = res.bounds(label)
            se = math.sqrt(max(freq * (1 - freq), 1.0 / n) / n)
            bad += not (lo - MC_SIGMAS * se <= freq <= hi + MC_SIGMAS * se)
        return bad

    res = certified_marginal(
        model,
        tok,
        prompt,
        extract_answer=last_digit,
        mass=0.999,
        max_new_tokens=5,
        temperature=temperature,
        budget_seconds=None,
    )
    assert res.residual <= 1e-3 and n_outside(res) == 0
    # Control: the same samples reject intervals certified at another temperature.
    wrong = certified_marginal(
        model,
        tok,
        prompt,
        extract_answer=last_digit,
        mass=0.999,
        max_new_tokens=5,
        temperature=2 * temperature,
        budget_seconds=None,
    )
    assert n_outside(wrong) > 0


# ------------------------------------------------------------------------------------- ledger and budget
def test_ledger_and_budget_stops(tok):
    table = _table(5, scale=0.5)  # flat: thousands of completions, so budgets bind
    model = markov_model(table)
    prompt_ids = tok("1", add_special_tokens=False)["input_ids"]
    exact, _ = brute_force(
        markov_oracle(table, 1.0, prompt_ids), tok, prompt_ids, max_new_tokens=5, extract=last_digit
    )
    kw = dict(extract_answer=last_digit, mass=1.0, max_new_tokens=5, budget_seconds=None)

    by_count = certified_marginal(model, tok, "1", max_expansions=7, batch_size=4, **kw)
    assert by_count.stopped_by == "budget" and by_count.n_expansions == 7
    assert 0.0 < by_count.residual < 1.0
    assert abs(by_count.covered_mass + by_count.frontier_mass - 1.0) <= LEDGER_ATOL
    assert_contains(by_count, exact)

    by_time = certified_marginal(model, tok, "1", **{**kw, "budget_seconds": 0.0})
    assert by_time.stopped_by == "budget" and by_time.n_expansions == 1  # only the prompt pass
    assert abs(by_time.covered_mass + by_time.frontier_mass - 1.0) <= LEDGER_ATOL
    assert_contains(by_time, exact)

    nothing = certified_marginal(model, tok, "1", max_expansions=0, **kw)
    assert nothing.stopped_by == "budget" and nothing.answer_bounds == {} and nothing.residual == 1.0
    assert nothing.bounds("0") == (0.0, 1.0)

    full = certified_marginal(model, tok, "1", **kw)
    assert full.stopped_by == "exhausted" and abs(full.covered_mass + full.frontier_mass - 1.0) <= LEDGER_ATOL
    assert full.n_completions > 1000  # the budgets above really cut the search short


def test_zero_new_tokens_is_one_truncated_leaf(tok):
    res = certified_marginal(markov_model(_table(0)), tok, "1", extract_answer=last_digit, max_new_tokens=0)
    assert res.stopped_by == "exhausted" and res.answer_bounds == {NO_ANSWER: (1.0, 1.0)}
    assert res.n_expansions == 0 and res.truncated_mass == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mass": 0.0},
        {"mass": 1.5},
        {"temperature": 0.0},
        {"batch_size": 0},
        {"max_new_tokens": -1},
        {"strategy": "beam"},
    ],
)
def test_invalid_arguments_raise(tok, kwargs):
    from dagsim.errors import ValidationError

    with pytest.raises(ValidationError):
        certified_marginal(markov_model(_table(0)), tok, "1", extract_answer=last_digit, **kwargs)


# ------------------------------------------------------------------------------ batched == unbatched logits
def other_family(family: str, vocab_size: int):
    """Random tiny Qwen2 (grouped KV heads) or GPT-2 (absolute positions): other cache/position schemes."""
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    if family == "qwen2":
        config = Qwen2Config(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            bos_token_id=EOS,
            eos_token_id=EOS,
            pad_token_id=PAD,
        )
        return Qwen2ForCausalLM(config).eval()
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        bos_token_id=EOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize(
    "family, expander_cls",
    [
        ("llama", _KVTreeExpander),
        ("llama", _PromptCacheExpander),
        ("llama", _RecomputeExpander),
        ("qwen2", _KVTreeExpander),
        ("gpt2", _KVTreeExpander),
    ],
)
def test_batched_logits_equal_unbatched(tok, family, expander_cls):
    """Rows of different lengths in one batch (middle/left padding) give a plain forward pass's logits."""
    model = random_model(len(tok), seed=11) if family == "llama" else other_family(family, len(tok))
    prompt_ids = tok("1#0 1", add_special_tokens=False)["input_ids"]
    exp = expander_cls(model, torch.tensor([prompt_ids]))
    slots: dict[tuple[int, ...], int] = {}

    def run_batch(paths):
        ancestors = [
            [slots[p[:i]] for i in range(1, len(p))] for p in paths
        ]  # every prefix was expanded before
        with torch.no_grad():
            logits, new = exp.expand([p[-1] for p in paths], [list(p) for p in paths], ancestors)
        for p, s in zip(paths, new, strict=True):
            slots[p] = s
        for r, p in enumerate(paths):
            with torch.no_grad():
                ref = model(input_ids=torch.tensor([prompt_ids + list(p)])).logits[0, -1]  # (V,)
            torch.testing.assert_close(logits[r], ref, atol=ATOL_BATCHED_LOGITS, rtol=0.0)

    with torch.no_grad():
        ref_root = model(input_ids=torch.tensor([prompt_ids])).logits[0, -1]
    torch.testing.assert_close(exp.root_logits[0], ref_root, atol=ATOL_BATCHED_LOGITS, rtol=0.0)
    run_batch([(3,), (4,), (5,)])
    run_batch([(3, 6), (4, 0)])
    run_batch([(3, 6, 5), (4,), (3,)])  # lengths 3, 1, 1: padding between prompt and path
    run_batch([(3, 6, 5, 1), (4, 0, 2), (5, 3)])  # lengths 4, 3, 2


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def bpe_checkpoint(tmp_path_factory):
    """A random tiny model of the project's own builder and BPE tokenizer, saved as a checkpoint."""
    from llm.model import ModelConfig, build_model, save_model
    from llm.tasks import ArithmeticTaskConfig, split_problems
    from llm.tokenizer import build_tokenizer

    train, _ = split_problems(ArithmeticTaskConfig())
    tokenizer = build_tokenizer([v for p in train[:50] for v in p.views], vocab_size=100)
    model = build_model(
        ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64), tokenizer, seed=0
    )
    out = tmp_path_factory.mktemp("cert") / "base"
    save_model(model, tokenizer, out)
    return out


def test_cli_json_and_table(bpe_checkpoint, capsys):
    import re

    from llm.answers import resolve_answer_parser
    from llm.model import load_model
    from llm.tasks import split_problems, task_config_of

    argv = [
        "--model",
        str(bpe_checkpoint),
        "--task",
        "default",
        "--n-prompts",
        "2",
        "--max-new-tokens",
        "3",
        "--max-expansions",
        "60",  # enough for a finished completion on this random model (20 finish none: empty bounds)
        "--budget-seconds",
        "0",  # no wall-clock stop: the run is deterministic, so it can be compared field by field
        "--temperature",
        "0.5",
        "--device",
        "cpu",
    ]
    assert main_marginals(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["prompts"] and len(out["prompts"]) == 2
    # The prompts are the first views of the embedded task's held-out split, in order.
    held_out = [v for p in split_problems(task_config_of(str(bpe_checkpoint)))[1] for v in p.views][:2]
    assert [row["prompt"] for row in out["prompts"]] == held_out
    # Oracle for the wiring: the library called directly with the arguments the flags name.
    model, tokenizer = load_model(str(bpe_checkpoint), device="cpu")
    keys = ["prompt", "answer_bounds", "covered_mass", "residual", "truncated_mass", "n_completions",
            "n_expansions", "seconds", "stopped_by", "strategy"]
    for row, prompt in zip(out["prompts"], held_out):
        assert list(row) == keys
        direct = certified_marginal(
            model, tokenizer, prompt, extract_answer=resolve_answer_parser("", embedded_task=True), mass=0.99,
            max_new_tokens=3, temperature=0.5, budget_seconds=None, max_expansions=60, batch_size=64,
        ).to_json()
        assert {k: v for k, v in row.items() if k != "seconds"} == {
            k: (v if k != "answer_bounds" else {a: list(b) for a, b in v.items()})
            for k, v in direct.items() if k != "seconds"
        }
        assert row["n_expansions"] == 60 and row["stopped_by"] == "budget"  # the expansion budget stopped it
        assert row["n_completions"] >= 1 and row["answer_bounds"] and 0.0 < row["covered_mass"] < 1.0
        assert row["residual"] == pytest.approx(1.0 - row["covered_mass"])
        assert math.fsum(lo for lo, _ in row["answer_bounds"].values()) == pytest.approx(
            row["covered_mass"], abs=LEDGER_ATOL)
        for lo, hi in row["answer_bounds"].values():
            assert 0.0 <= lo <= hi <= 1.0 and math.isclose(hi - lo, row["residual"], abs_tol=1e-12)
    assert main_marginals(argv) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    for index, row in enumerate(out["prompts"]):
        header = [ln for ln in lines if ln.startswith(f"prompt {index}: ")]
        assert header == [f"prompt {index}: {row['prompt']!r}"]
        assert f"covered {row['covered_mass']:.6f} ({row['stopped_by']}), residual {row['residual']:.2e}, " \
            f"{row['n_completions']} completions, {row['n_expansions']} expansions, " in text
    cells = [re.findall(r"[^\s│┃]+", ln) for ln in lines]
    for row in out["prompts"]:
        for label, (lo, hi) in list(row["answer_bounds"].items())[:15]:
            assert [*label.split(), f"{lo:.6f}", f"{hi:.6f}"] in cells, (label, lo, hi, text)
        assert ["(any", "other)", "0", f"{row['residual']:.6f}"] in cells


def test_cli_reports_errors(bpe_checkpoint, tmp_path, capsys):
    assert main_marginals(["--model", str(tmp_path), "--task", "default"]) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert main_marginals(["--model", str(bpe_checkpoint), "--data", str(tmp_path / "missing.jsonl")]) == 2


def test_marginals_flags_come_from_the_config_dataclass():
    """Every MarginalsConfig field is exactly one flag of `dagsim llm marginals` (the one dataclass→CLI helper),
    with the field's docstring as its help; parsed values keep the documented forms."""
    import dataclasses

    from dagsim.cli_args import field_docs
    from llm.certified import MarginalsConfig, build_marginals_parser

    parser = build_marginals_parser()
    actions = {a.dest: a for a in parser._actions if a.dest != "help"}
    names = [f.name for f in dataclasses.fields(MarginalsConfig)]
    assert sorted(actions) == sorted(names)
    docs = field_docs(MarginalsConfig)
    for name in names:
        assert actions[name].help == docs[name], name
    args = parser.parse_args(["--model", "m", "--data", "d.jsonl", "--stop-string", "Q:", "--stop-string", "##"])
    assert (args.task, args.data, args.stop_string, args.json, args.max_expansions) == (
        None, "d.jsonl", ["Q:", "##"], False, None,
    )
    assert args.n_prompts == MarginalsConfig().n_prompts and args.mass == MarginalsConfig().mass
