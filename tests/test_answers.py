"""The answer layer (llm.answers): a corpus of realistic completions with expected keys and classes, read the
same way by index_answers, the trainer's scoring, evaluation and the TRL bridge; exact numeric keys
(Hypothesis); timeouts; pluggable parsers."""

import json
import threading
import time
from decimal import Decimal, getcontext
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dagsim.errors import ValidationError
from llm.answers import (
    FULL_PARSER,
    MARKER_PARSER,
    NO_ANSWER,
    answer_timeouts,
    canonical_group,
    extract_answer,
    index_answers,
    number_key,
    parse_ground_truth,
    resolve_answer_parser,
    task_reward_vector,
)
from llm.answers import symbolic as sym

pytest.importorskip("math_verify")

CORPUS = json.loads((Path(__file__).parent / "data" / "answer_corpus.json").read_text(encoding="utf-8"))
#: Written after the layer was finished and never used while developing it (26/26 on its first run).
HIDDEN = json.loads((Path(__file__).parent / "data" / "answer_corpus_hidden.json").read_text(encoding="utf-8"))
TEXTS = [row["text"] for row in CORPUS]
N = len(CORPUS)


def classes_of(rows):
    """Class name per row (None = the completion has no final answer)."""
    return [row["class"] for row in rows]


def same_partition(idx: np.ndarray, names, strings, rows=CORPUS) -> list[str]:
    """Disagreements between a partition by indices and the expected class names (empty = equal)."""
    bad = []
    for i in range(len(names)):
        if names[i] is None and strings[idx[i]] != NO_ANSWER:
            bad.append(f"{rows[i]['id']}: expected no answer, got {strings[idx[i]]!r}")
        for j in range(i + 1, len(names)):
            if names[i] is not None and names[j] is not None and (names[i] == names[j]) != (idx[i] == idx[j]):
                bad.append(f"{rows[i]['id']} vs {rows[j]['id']}: expected same={names[i] == names[j]}")
    return bad


@pytest.mark.parametrize("rows", [CORPUS, HIDDEN], ids=["corpus", "hidden"])
def test_every_answer_matches_its_gold(rows):
    """Each extracted key is in the class of the gold answer parsed as a ground truth (singletons included)."""
    bad = []
    for row in rows:
        key = extract_answer(row["text"])
        if row["gold"] is None:
            if key is not None:
                bad.append(f"{row['id']}: expected no answer, got {key!r}")
        elif key is None or task_reward_vector([key], parse_ground_truth(row["gold"]))[0] != 1.0:
            bad.append(f"{row['id']}: {key!r} is not {row['gold']!r}")
    assert bad == []


def test_hidden_corpus_classes():
    (idx,), strings = index_answers([[extract_answer(r["text"]) for r in HIDDEN]])
    assert len(HIDDEN) >= 20 and same_partition(idx, classes_of(HIDDEN), strings, HIDDEN) == []


@pytest.fixture(scope="module")
def keys():
    return [extract_answer(t) for t in TEXTS]


def test_corpus_is_large_and_varied():
    assert N >= 60 and sum(r["realistic"] for r in CORPUS) >= 30
    assert sum(r["gold"] is None for r in CORPUS) >= 5  # completions without a final answer


@pytest.mark.parametrize("row", CORPUS, ids=[r["id"] for r in CORPUS])
def test_corpus_keys(row):
    key = extract_answer(row["text"])
    if "key" in row:
        assert key == row["key"]
    assert (key is None) == (row["gold"] is None)


def test_corpus_classes_through_index_answers(keys):
    (idx,), strings = index_answers([keys])
    assert same_partition(idx, classes_of(CORPUS), strings) == []


def test_without_equivalence_clustering_the_symbolic_classes_split(keys):
    """Control: string keys alone do not give the classes (sqrt{18} vs 3sqrt{2}, (x+1)^2 vs x^2+2x+1)."""
    (idx,), strings = index_answers([keys], cluster=False)
    bad = same_partition(idx, classes_of(CORPUS), strings)
    assert bad and all("expected same=True" in b for b in bad)


def test_views_share_one_space_and_ground_truth_matches_its_class():
    idx, strings = index_answers([[r"\sqrt{18}", "5", None], [r"3\sqrt{2}", r"\frac{\pi}{2}", r"\pi/2"]])
    assert idx[0].tolist() == [0, 1, 2] and idx[1].tolist() == [0, 3, 3]
    assert task_reward_vector(strings, parse_ground_truth(r"3\sqrt{2}")).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert task_reward_vector(strings, "5").tolist() == [0.0, 1.0, 0.0, 0.0]
    assert canonical_group([r"\sqrt{18}", None, "7"], r"3\sqrt{2}") == [r"3\sqrt{2}", None, "7"]


def test_certified_marginals_merge_equivalent_answers():
    from llm.answers import merge_equivalent

    merged = merge_equivalent({r"\sqrt{18}": 0.25, "5": 0.5, r"3\sqrt{2}": 0.125, NO_ANSWER: 0.125})
    assert merged == {r"\sqrt{18}": 0.375, "5": 0.5, NO_ANSWER: 0.125}


def test_stop_strings_cut_before_locating():
    text = "The answer is 5. STOP The answer is 6."
    assert extract_answer(text) == "6" and extract_answer(text, stop_strings=["STOP"]) == "5"


# -------------------------------------------------------------------- the same corpus, every caller


def truth_classes():
    """(class name, ground-truth key) for every class with >= 2 members plus three singletons."""
    names = classes_of(CORPUS)
    multi = sorted({c for c in names if c is not None and names.count(c) >= 2})
    singles = [c for c in ("=1,2", "interval12closed", "=1024") if c in names]
    out = []
    for c in [*multi, *singles]:
        gold = next(r["gold"] for r in CORPUS if r["class"] == c)
        out.append((c, parse_ground_truth(gold)))
    return out


def membership(cls):
    return np.array([1.0 if r["class"] == cls else 0.0 for r in CORPUS])


def test_trainer_scoring_reads_the_corpus_the_same_way():
    pytest.importorskip("torch")
    from llm.tasks import Problem
    from llm.trainer import TrainConfig, score_groups

    truths = truth_classes()
    problems = [Problem(f"p{k}", ("Q: ?\nA:",), key) for k, (_, key) in enumerate(truths)]
    config = TrainConfig(algorithm="gt-grpo", data="user.jsonl", group_size=N, prompts_per_step=len(problems),
                         views=1, progress=False)
    scores = score_groups(problems, TEXTS * len(problems), views=1, config=config, multipliers=np.zeros(1))
    for row, (cls, _) in zip(scores.rewards, truths, strict=True):
        assert row.tolist() == membership(cls).tolist(), cls
    assert scores.metrics["n_unextracted"] == len(problems) * sum(r["gold"] is None for r in CORPUS)
    assert scores.metrics["n_answer_timeouts"] == 0


def test_evaluation_reads_the_corpus_the_same_way(monkeypatch):
    torch = pytest.importorskip("torch")
    import llm.sampling
    from llm.evaluate import EvalConfig, evaluate
    from llm.tasks import Problem

    def fake_sampling(model, tokenizer, texts, *, n_samples, greedy=False, **kw):
        return SimpleNamespace(texts=(TEXTS[:n_samples] if greedy else TEXTS) * len(texts))

    monkeypatch.setattr(llm.sampling, "sample_completions", fake_sampling)
    truths = truth_classes()
    problems = [Problem(f"p{k}", ("Q: ?\nA:",), key) for k, (_, key) in enumerate(truths)]
    metrics = evaluate(torch.nn.Linear(1, 1), None, problems, EvalConfig(k=N, batch_prompts=len(problems)))
    expected = np.mean([membership(c).mean() for c, _ in truths])
    assert metrics["mean_accuracy"] == pytest.approx(expected)
    assert metrics["n_unextracted"] == len(problems) * sum(r["gold"] is None for r in CORPUS)
    first = CORPUS[0]["class"]
    assert metrics["greedy_accuracy"] == pytest.approx(np.mean([c == first for c, _ in truths]))


def test_trl_bridge_reads_the_corpus_the_same_way():
    trl_rewards = pytest.importorskip("llm.trl_rewards")
    truths = truth_classes()
    golds = [next(r["gold"] for r in CORPUS if r["class"] == c) for c, _ in truths]
    reward = trl_rewards.make_reward_func("gt-grpo", group_size=N)
    prompts = [f"prompt {k}" for k in range(len(truths)) for _ in range(N)]
    out = reward(prompts=prompts, completions=TEXTS * len(truths), answer=[g for g in golds for _ in range(N)])
    got = np.array(out).reshape(len(truths), N)
    for row, (cls, _) in zip(got, truths, strict=True):
        assert row.tolist() == membership(cls).tolist(), cls


# ------------------------------------------------------------------------------------- ground truths


def test_ground_truths_parse_like_completions(tmp_path):
    from llm.tasks import load_jsonl

    rows = [("#### 1/2", "0.5"), ("#### 1{,}000", "1000"), ("-5", "-5"), (r"\frac{1}{2}", "0.5"),
            (r"so \boxed{\sqrt{2}}", r"\sqrt{2}"), ("#### 10/3", "10/3"), ("2+2=4\n#### 4", "4")]
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps({"question": f"q{i}", "answer": a}) + "\n" for i, (a, _) in enumerate(rows)))
    assert [p.answer for p in load_jsonl(f)] == [k for _, k in rows]
    # an answer field without a final answer is never silently unlabelled: an error naming its line
    f.write_text(f.read_text() + json.dumps({"question": "q", "answer": "none"}) + "\n")
    with pytest.raises(ValidationError, match=rf"d.jsonl:{len(rows) + 1}: no parseable final answer"):
        load_jsonl(f)
    assert [p.answer for p in load_jsonl(f, skip_bad_lines=True)] == [k for _, k in rows]


def test_embedded_task_reads_only_marker_numbers():
    pytest.importorskip("torch")
    from llm.trainer import TrainConfig

    assert TrainConfig().parser() is MARKER_PARSER and TrainConfig(data="x.jsonl").parser() is FULL_PARSER
    assert MARKER_PARSER(r"so \boxed{5}") is None and MARKER_PARSER(" 3+5=8. #### 8") == "8"
    assert MARKER_PARSER("#### 1/2") == "0.5" and MARKER_PARSER(r"#### \sqrt{2}") is None


# ------------------------------------------------------------------------------------------- numbers

getcontext().prec = 60
DENOMS = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 25, 40, 125, 1000]


def surface_forms(n: int, d: int, scale: int) -> list[str]:
    """Different ways a model writes n/d (d > 0), built independently of llm.answers."""
    q = Fraction(n, d)
    sign = "-" if q < 0 else ""
    forms = [f"#### {n * scale}/{d * scale}", rf"\boxed{{\frac{{{n * scale}}}{{{d * scale}}}}}",
             rf"The answer is $\dfrac{{{n}}}{{{d}}}$.", rf"**Answer:** {n}/{d}"]
    if q.denominator in (1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 125, 1000) or all(
        p in (2, 5) for p in _prime_factors(q.denominator)
    ):
        dec = format(Decimal(q.numerator) / Decimal(q.denominator), "f")
        whole, _, frac = dec.lstrip("-").partition(".")
        grouped = f"{int(whole):,}"
        frac = (frac + "0" * scale)[: len(frac) + scale % 3]
        tail = f".{frac}" if frac else ""
        forms += [f"#### {sign}{grouped}{tail}", rf"\boxed{{{sign}{grouped.replace(',', '{,}')}{tail}}}",
                  f"The answer is {sign.replace('-', chr(0x2212))}{grouped.replace(',', chr(0x202F))}{tail}.",
                  f"Final answer: ${sign}{grouped}{tail}"]
    return forms


def _prime_factors(k: int) -> set[int]:
    out, p = set(), 2
    while p * p <= k:
        while k % p == 0:
            out.add(p)
            k //= p
        p += 1
    return out | ({k} if k > 1 else set())


@given(st.integers(-10**7, 10**7), st.sampled_from(DENOMS), st.integers(1, 9))
def test_equal_numbers_in_different_forms_get_one_key(n, d, scale):
    keys = {extract_answer(f) for f in surface_forms(n, d, scale)}
    assert keys == {number_key(Fraction(n, d))}


@given(st.integers(-10**6, 10**6), st.sampled_from(DENOMS), st.integers(-10**6, 10**6), st.sampled_from(DENOMS))
def test_different_numbers_get_different_keys(n1, d1, n2, d2):
    assume(Fraction(n1, d1) != Fraction(n2, d2))
    k1 = {extract_answer(f) for f in surface_forms(n1, d1, 1)}
    k2 = {extract_answer(f) for f in surface_forms(n2, d2, 1)}
    assert len(k1) == len(k2) == 1 and k1 != k2


# ------------------------------------------------------------------------------------------- timeouts


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(sym.ORACLE, "timeout_seconds", 0.5)
    assert extract_answer(r"\boxed{\sqrt{7}}") == r"\sqrt{7}"  # worker started: its start-up is not timed
    return 0.5


def test_a_pathological_answer_times_out_into_the_no_answer_bucket_and_is_counted(short_timeout):
    before = answer_timeouts()
    t0 = time.perf_counter()
    key = extract_answer(r"\boxed{10^{10^{9}} + 10^{10^{9}}}")  # a 10^9-digit integer: sympy would take minutes
    elapsed = time.perf_counter() - t0
    assert key is None and answer_timeouts() == before + 1
    assert elapsed < short_timeout + sym.KILL_GRACE_SECONDS + sym.STARTUP_SECONDS  # bounded (a restart included)
    (idx,), strings = index_answers([[key, "3"]])
    assert strings[idx[0]] == NO_ANSWER


def test_timeouts_are_counted_per_training_step(short_timeout):
    pytest.importorskip("torch")
    from llm.tasks import Problem
    from llm.trainer import TrainConfig, score_groups

    texts = [r"\boxed{3}", r"\boxed{10^{10^{9}} - 1}", r"\boxed{3}", r"\boxed{\sqrt{7}}"]
    config = TrainConfig(algorithm="coherence-grpo", consensus="none", data="u.jsonl", group_size=4,
                         prompts_per_step=1, views=1, progress=False)
    scores = score_groups([Problem("p", ("Q",), None)], texts, views=1, config=config, multipliers=np.zeros(1))
    assert scores.metrics["n_answer_timeouts"] == 1 and scores.metrics["n_unextracted"] == 1


def test_symbolic_answers_work_off_the_main_thread():
    out = []
    worker = threading.Thread(target=lambda: out.append(extract_answer(r"\boxed{\sqrt{50}}")))
    worker.start()
    worker.join(timeout=120)
    assert out == [r"\sqrt{50}"]


def test_a_worker_stuck_in_c_is_killed_and_restarted(tmp_path):
    """No reply (as when sympy is stuck in C, where no signal reaches it): the parent's deadline kills it."""
    stub = tmp_path / "stuck_worker.py"
    stub.write_text("import sys, time\nprint('{\"ready\": true}', flush=True)\nsys.stdin.readline()\ntime.sleep(60)\n")
    oracle = sym.Oracle(timeout_seconds=0.2, worker=stub)
    try:
        t0 = time.perf_counter()
        assert oracle.parse("x^2") == ("timeout", None)
        assert time.perf_counter() - t0 < 0.2 + sym.KILL_GRACE_SECONDS + 5.0
        assert oracle.timeouts == 1 and oracle.restarts == 1
        assert oracle.cluster(["a", "b"]) == [-1, -1] and oracle.timeouts == 3  # restarted, stuck again
    finally:
        oracle.close()


def test_without_math_verify_symbolic_keys_fall_back_to_strings(tmp_path):
    stub = tmp_path / "broken_worker.py"
    stub.write_text("print('{\"ready\": false, \"error\": \"ModuleNotFoundError\"}', flush=True)\n")
    oracle = sym.Oracle(worker=stub)
    with pytest.warns(RuntimeWarning, match="math-verify"):
        assert oracle.parse(r"\sqrt{2}") == ("expr", r"\sqrt{2}")
    assert oracle.cluster([r"\sqrt{18}", r"3\sqrt{2}"]) == [0, 1]


# ------------------------------------------------------------------------------------- user parsers


def test_user_parsers_by_module_path_and_callable(tmp_path):
    f = tmp_path / "myparse.py"
    f.write_text("def last_word(text):\n    w = text.split()\n    return w[-1].lower() if w else None\n"
                 "def bad(text):\n    return 3\nNOT_CALLABLE = 1\n")
    p = resolve_answer_parser(f"{f}:last_word")
    assert p("it is Blue") == "blue" and p("") is None
    assert resolve_answer_parser("llm.answers:extract_answer")(r"\boxed{7}") == "7"
    assert resolve_answer_parser(lambda t: "x")("anything") == "x"
    assert resolve_answer_parser("", embedded_task=True) is MARKER_PARSER
    assert resolve_answer_parser("full") is FULL_PARSER
    with pytest.raises(ValidationError, match="--answer-parser .* returned int"):
        resolve_answer_parser(f"{f}:bad")("x")
    for spec, why in [(f"{f}:missing", "no attribute"), (f"{f}:NOT_CALLABLE", "not callable"),
                      ("no_such_module_xyz:f", "cannot import"), (f"{tmp_path}/nope.py:f", "file not found"),
                      ("justaname", "expected")]:
        with pytest.raises(ValidationError, match=f"--answer-parser.*{why}"):
            resolve_answer_parser(spec)


def test_cli_flags_take_an_answer_parser(tmp_path, capsys):
    pytest.importorskip("torch")
    from llm.certified import build_marginals_parser
    from llm.cli import _parser, main
    from llm.theory import build_parser

    assert _parser().parse_args(["evaluate", "--model", "m", "--answer-parser", "full"]).eval_answer_parser == "full"
    assert _parser().parse_args(["train", "--answer-parser", "a:b"]).answer_parser == "a:b"
    assert build_marginals_parser().parse_args(["--model", "m", "--task", "default", "--answer-parser", "x:y"]
                                               ).answer_parser == "x:y"
    assert build_parser().parse_args(["--answer-parser", "full"]).answer_parser == "full"
    code = main(["train", "--answer-parser", "no_such_module_xyz:f", "--out", str(tmp_path / "run")])
    assert code == 2 and "--answer-parser" in capsys.readouterr().err


def test_batched_extraction_equals_one_by_one(keys):
    from llm.answers import extract_answers

    assert extract_answers(TEXTS) == keys
    assert extract_answers([r"\boxed{\sqrt{11}}", r"\boxed{\sqrt{11}}", "#### 4", r"\boxed{2^{5}}"]) == [
        r"\sqrt{11}", r"\sqrt{11}", "4", "32"]


def test_a_timeout_inside_a_batch_is_counted_per_completion(short_timeout):
    from llm.answers import extract_answers

    before = answer_timeouts()
    bad = r"\boxed{10^{10^{9}} \cdot 3}"
    out = extract_answers([bad, r"\boxed{\sqrt{13}}", bad])
    assert out == [None, r"\sqrt{13}", None] and answer_timeouts() == before + 2
