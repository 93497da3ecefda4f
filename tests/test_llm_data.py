"""Embedded task, answer extraction, tokenizer round trip and evaluation metrics (llm/ data layer)."""

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dagsim.errors import ValidationError
from llm.answers import NO_ANSWER, canonicalize_number, extract_answer, index_answers, task_reward_vector
from llm.evaluate import answer_metrics, cross_view_agreement, empirical_entropy, plurality_correct
from llm.tasks import (
    ArithmeticTaskConfig,
    Problem,
    all_problems,
    load_jsonl,
    sample_trace,
    split_problems,
    trace_styles,
)

pytestmark = pytest.mark.llm


def _eval_steps(completion: str) -> list[tuple[int, str, int, int]]:
    """Parse ' x+y=z. ...' into (x, op, y, z) tuples."""
    steps = []
    for part in completion.split("####")[0].split("."):
        part = part.strip()
        if not part:
            continue
        lhs, rhs = part.split("=")
        op = next(c for c in "+-*" if c in lhs[1:])
        x, y = lhs[0] + lhs[1:].split(op, 1)[0], lhs[1:].split(op, 1)[1]
        steps.append((int(x), op, int(y), int(rhs)))
    return steps


def test_split_is_disjoint_seeded_and_covers_all():
    cfg = ArithmeticTaskConfig(seed=3)
    train, held = split_problems(cfg)
    ids_t, ids_h = {p.problem_id for p in train}, {p.problem_id for p in held}
    assert not ids_t & ids_h
    assert len(ids_t | ids_h) == len(all_problems(cfg))
    assert [p.problem_id for p in split_problems(cfg)[1]] == [p.problem_id for p in held]
    assert [p.problem_id for p in split_problems(ArithmeticTaskConfig(seed=4))[1]] != [
        p.problem_id for p in held
    ]


def test_every_trace_style_reaches_the_answer_without_noise():
    rng = np.random.default_rng(0)
    for p in all_problems(ArithmeticTaskConfig(n_views=3)):
        assert len(trace_styles(p)) >= 2
        seen = set()
        for _ in range(6):
            for v in range(p.n_views):
                text, final = sample_trace(p, v, rng, step_noise=0.0)
                assert final == p.answer and extract_answer(text) == p.answer
                seen.add(text)
                for x, op, y, z in _eval_steps(text):  # every step is correct arithmetic
                    assert z == (x + y if op == "+" else x - y if op == "-" else x * y)
        assert len(seen) >= 2  # several trace styles actually occur


def test_noise_rate_and_view_specific_error_patterns():
    """Wrong steps occur at the configured rate; view 0 errs upward, view 1 downward (disjoint errors)."""
    rng = np.random.default_rng(1)
    problems = all_problems(ArithmeticTaskConfig(n_views=2))
    wrong_steps, n_steps, signs = 0, 0, {0: Counter(), 1: Counter()}
    for p in problems[::3]:
        for v in (0, 1):
            text, final = sample_trace(p, v, rng, step_noise=0.25)
            for x, op, y, z in _eval_steps(text):
                true = x + y if op == "+" else x - y if op == "-" else x * y
                n_steps += 1
                if z != true:
                    wrong_steps += 1
                    signs[v][np.sign(z - true)] += 1
    assert abs(wrong_steps / n_steps - 0.25) < 0.03  # ~1000 steps: 3 standard errors ≈ 0.04
    assert signs[0][-1] <= 0.05 * sum(signs[0].values())  # view 0 overshoots (except clamp at 0)
    assert signs[1][1] <= 0.2 * sum(signs[1].values())  # view 1 undershoots unless that would go negative


def test_misconceptions_are_view_specific_and_become_the_view_mode_above_one_half():
    """View v misreads exactly the problems of kind KINDS[v]; at rate 0.6 the misread answer is that view's
    most frequent answer while the other view's mode stays correct (so a 2-view consensus can recover)."""
    from llm.tasks import KINDS, misconception_answer

    problems = all_problems(ArithmeticTaskConfig(n_views=3))
    for p in problems:
        for v in range(3):
            wrong = misconception_answer(p, v)
            assert (wrong is not None) == (p.kind == KINDS[v])
    rng = np.random.default_rng(5)
    for kind, trapped in (("add_sub", 0), ("mul_add", 1)):
        p = next(q for q in problems if q.kind == kind and misconception_answer(q, trapped) != q.answer)
        for v in (0, 1):
            counts = Counter(sample_trace(p, v, rng, 0.2, 0.6)[1] for _ in range(2000))
            mode = counts.most_common(1)[0][0]
            assert mode == (misconception_answer(p, v) if v == trapped else p.answer), (p.problem_id, v, counts)
        text, final = sample_trace(p, trapped, rng, 0.0, 1.0)
        assert final == misconception_answer(p, trapped) and extract_answer(text) == final
        for x, op, y, z in _eval_steps(text):  # a misreading is a wrong formula, computed correctly
            assert z == (x + y if op == "+" else x - y if op == "-" else x * y)
    assert all(sample_trace(p, 2, rng, 0.0, 1.0)[1] == p.answer for p in problems[:50] if p.kind != KINDS[2])


def test_misconception_breakdown_splits_prompts_by_their_views_misreading():
    from llm.evaluate import misconception_breakdown
    from llm.tasks import misconception_answer

    problems = all_problems(ArithmeticTaskConfig(n_views=2))
    p = next(q for q in problems if q.kind == "add_sub" and misconception_answer(q, 0) != q.answer)
    wrong = misconception_answer(p, 0)  # view 0 misreads add_sub; view 1 does not
    sampled = [[wrong, wrong, p.answer, None], [p.answer, p.answer, p.answer, "999"]]
    out = misconception_breakdown([p], sampled, [p.answer, p.answer])
    assert out == {"misread_prompts": 1, "mean_accuracy_misread_prompts": 0.25, "misread_answer_rate": 0.5,
                   "mean_accuracy_other_prompts": 0.75}
    external = Problem("x-1", ("Q: 1+1?\nA:",), "2")
    assert misconception_breakdown([external], [["2", "3"]], ["2"]) == {}


@pytest.mark.parametrize(
    "text, expected",
    [
        (" 3+5=8. 8*4=32. #### 32", "32"),
        ("#### 1,234", "1234"),
        ("x #### 7 then #### -3", "-3"),
        ("#### 32.0", "32"),
        ("#### -0", "0"),
        ("#### 0.50", "0.5"),
        ("no marker 42", None),
        ("#### ", None),
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_index_answers_shares_one_space_across_views_and_buckets_unparseable():
    idx, strings = index_answers([["3", None, "3"], ["5", "3", None]])
    assert strings == ["3", NO_ANSWER, "5"]
    assert idx[0].tolist() == [0, 1, 0] and idx[1].tolist() == [2, 0, 1]
    assert task_reward_vector(strings, "5").tolist() == [0.0, 0.0, 1.0]
    assert task_reward_vector(strings, None).tolist() == [0.0, 0.0, 0.0]


def test_canonicalize_rejects_non_numbers():
    assert canonicalize_number("abc") is None and canonicalize_number("inf") is None


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n\n")
    return path


def test_load_jsonl(tmp_path):
    f = _write(tmp_path / "d.jsonl", [{"question": "What is 2+2?", "answer": "2+2=4\n#### 4"}, {"question": "Q2"}])
    problems = load_jsonl(f)
    assert [p.answer for p in problems] == ["4", None]  # no 'answer' field: explicitly unlabelled
    assert problems[0].views == ("Q: What is 2+2?\nA:",) and problems[0].target == " 2+2=4\n#### 4"
    f.write_text('{"answer": "#### 1"}\n')
    with pytest.raises(ValidationError, match="question"):
        load_jsonl(f)
    with pytest.raises(ValidationError, match="not found"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_load_jsonl_formats_and_plain_answers(tmp_path):
    rows = [
        {"question": "Ann has 3 pens and loses 8. What now?", "answer": "-5"},  # plain final answer
        {"question": "Q b", "answer": 12},  # a JSON number
        {"question": "Q c", "answer": "1,000 + 234 = 1,234\n#### 1,234"},
        {"prompt": "Compute 7*6.\n", "completion": "7*6=42 #### 42"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "3+4?"},
                      {"role": "assistant", "content": "3+4=7 #### 7"}]},
        {"messages": [{"role": "user", "content": "8-1?"}, {"role": "assistant", "content": "seven"}], "answer": "7"},
    ]
    problems = load_jsonl(_write(tmp_path / "f.jsonl", rows))
    assert [p.answer for p in problems] == ["-5", "12", "1234", "42", "7", "7"]
    assert problems[0].target == " #### -5"  # a plain answer is taught with the marker the parser reads
    assert problems[3].views == ("Compute 7*6.\n",) and problems[3].target == "7*6=42 #### 42"
    assert problems[4].messages == (("system", "Be brief."), ("user", "3+4?"))
    assert problems[4].views == ("Q: 3+4?\nA:",)  # plain form until a chat template renders it
    assert [p.problem_id for p in problems] == [f"f-{i}" for i in range(1, 7)]


def test_load_jsonl_boxed_answers(tmp_path):
    rows = [{"question": "a", "answer": "So $x = \\boxed{3}$."}, {"question": "b", "answer": "\\boxed{-12}"}]
    assert [p.answer for p in load_jsonl(_write(tmp_path / "b.jsonl", rows))] == ["3", "-12"]


def test_unparseable_answer_is_reported_with_its_line_or_skipped_with_a_count(tmp_path, capsys):
    from llm.tasks import read_jsonl

    rows = [{"question": "a", "answer": "#### 1"}, {"question": "b", "answer": "no idea"},
            {"question": "c", "answer": "#### 3"}, {"question": "d", "answer": ""}]
    f = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValidationError, match=r"bad.jsonl:2: no parseable final answer"):
        load_jsonl(f)
    problems, skipped = read_jsonl(f, skip_bad_lines=True)
    assert [p.answer for p in problems] == ["1", "3"] and skipped == [2, 4]
    load_jsonl(f, skip_bad_lines=True)
    assert "skipped 2 line(s)" in capsys.readouterr().err
    _write(f, ['{"question": "a", "answer": "#### 1"}', "{not json"])
    with pytest.raises(ValidationError, match="bad.jsonl:2: not valid JSON"):
        load_jsonl(f, skip_bad_lines=True)  # malformed JSON is never skipped
    _write(f, [{"messages": [{"role": "user", "content": "x"}]}])
    with pytest.raises(ValidationError, match="bad.jsonl:1: 'messages' must end with the assistant"):
        load_jsonl(f)


def test_cli_reports_a_bad_data_line_and_exits_2(tmp_path, capsys):
    from llm.cli import main

    f = _write(tmp_path / "bad.jsonl", [{"question": "a", "answer": "#### 1"}, {"question": "b", "answer": "?"}])
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert main(["train", "--model", str(tmp_path / "m"), "--data", str(f), "--no-progress"]) == 2
    assert "bad.jsonl:2: no parseable final answer" in capsys.readouterr().err


def test_split_data_is_seeded_disjoint_and_complete():
    from llm.tasks import split_data

    problems = [Problem(f"p{i}", (f"q{i}",), str(i)) for i in range(50)]
    train, held = split_data(problems, 0.2, seed=3)
    assert len(held) == 10 and len(train) == 40
    assert {p.problem_id for p in train} | {p.problem_id for p in held} == {p.problem_id for p in problems}
    assert not {p.problem_id for p in train} & {p.problem_id for p in held}
    assert split_data(problems, 0.2, seed=3) == (train, held)
    assert split_data(problems, 0.2, seed=4)[1] != held
    assert split_data(problems, 0.0, seed=3) == (problems, [])
    with pytest.raises(ValidationError, match="eval_fraction"):
        split_data(problems, 1.0, seed=0)
    # Repeated questions (procedural generators repeat them) never straddle the split. Control: the
    # repeated question does land in the held-out part for some seeds, whole.
    repeated = problems + [Problem(f"r{i}", ("q7",), "7") for i in range(5)]
    sides = set()
    for seed in range(20):
        tr, he = split_data(repeated, 0.2, seed)
        in_train, in_held = sum(p.views == ("q7",) for p in tr), sum(p.views == ("q7",) for p in he)
        assert in_train * in_held == 0 and in_train + in_held == 6
        sides.add(in_held > 0)
    assert sides == {True, False}


def test_reasoning_gym_spec_parsing():
    from llm.tasks import parse_reasoning_gym_spec

    spec = "reasoning-gym:chain_sum?size=200&seed=1"
    assert parse_reasoning_gym_spec(spec) == ("chain_sum", {"size": 200, "seed": 1})
    assert parse_reasoning_gym_spec("reasoning-gym:basic_arithmetic") == ("basic_arithmetic", {})
    with pytest.raises(ValidationError, match="reasoning-gym:NAME"):
        parse_reasoning_gym_spec("reasoning-gym:?size=2")


def test_reasoning_gym_loader_uses_its_own_scorer():
    pytest.importorskip("reasoning_gym")
    from llm.tasks import load_data, task_rewards

    problems = load_data("reasoning-gym:chain_sum?size=12&seed=1&min_terms=2&max_terms=2")
    assert len(problems) == 12 and all(p.answer is not None and p.scorer is not None for p in problems)
    p = problems[0]
    wrong = str(int(p.answer) + 1)
    assert task_rewards(p, [p.answer, wrong, NO_ANSWER], NO_ANSWER).tolist() == [1.0, 0.0, 0.0]
    assert load_data("reasoning-gym:chain_sum?size=12&seed=1&min_terms=2&max_terms=2") == problems  # seeded
    with pytest.raises(ValidationError, match="could not build"):
        load_data("reasoning-gym:no_such_task?size=3")


def test_task_config_fails_fast_naming_the_field():
    with pytest.raises(ValidationError, match="n_views"):
        ArithmeticTaskConfig(n_views=4).validate()
    with pytest.raises(ValidationError, match="step_noise"):
        ArithmeticTaskConfig(step_noise=1.5).validate()
    with pytest.raises(ValidationError, match="misconception_rate"):
        ArithmeticTaskConfig(misconception_rate=-0.1).validate()



def test_task_config_of_a_checkpoint_folder(tmp_path):
    import dataclasses

    from llm.tasks import task_config_of

    assert task_config_of(tmp_path) == ArithmeticTaskConfig()  # no task.json: the default task
    (tmp_path / "task.json").write_text(json.dumps(dataclasses.asdict(ArithmeticTaskConfig(n_views=3, seed=4))))
    assert task_config_of(tmp_path) == ArithmeticTaskConfig(n_views=3, seed=4)
    (tmp_path / "task.json").write_text('{"n_views": 7}')
    with pytest.raises(ValidationError, match="n_views"):
        task_config_of(tmp_path)
    (tmp_path / "task.json").write_text('{"bogus": 1}')
    with pytest.raises(ValidationError, match="task.json: not a task config"):
        task_config_of(tmp_path)


def test_tokenizer_round_trip_and_reload(tmp_path):
    from llm.pretrain import sft_corpus
    from llm.tokenizer import build_tokenizer, load_tokenizer

    train, held = split_problems(ArithmeticTaskConfig())
    corpus = sft_corpus(train, np.random.default_rng(0), 0.25)
    tok = build_tokenizer(corpus, vocab_size=200)
    tok.save_pretrained(tmp_path)
    loaded = load_tokenizer(str(tmp_path))
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tmp_path)).vocab_size == tok.vocab_size
    texts = corpus[:20] + [held[0].views[0] + " 12*3=-36. #### -36", "#### 1,000\n"]
    for text in texts:
        ids = loaded(text, add_special_tokens=False)["input_ids"]
        assert loaded.decode(ids) == text
        digit_tokens = [t for t in loaded.convert_ids_to_tokens(ids) if any(c.isdigit() for c in t)]
        assert all(len(t) == 1 for t in digit_tokens)  # digits are always single tokens
    assert loaded.padding_side == "left" and loaded.pad_token_id != loaded.eos_token_id


GSM8K_STYLE_PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty needs $100 (she has 1/2 of it). Her parents give $15; her grandparents give twice that [2 x 15]. "
    "What % is still missing?",
    "A store sells pens at 3 for $1.50 \u2014 that\u2019s 20% off \u201cthe usual\u201d \u20ac2 price; "
    "5 \u00d7 4 \u00f7 2 = ? "
    "(answer in {dollars}) <about 10 & ~ 12> @ 9:30 am; x^2 | y_1 `code` \\ end\tok",
]


def test_embedded_tokenizer_has_no_unk_on_third_party_arithmetic_prompts(tmp_path):
    """The embedded task's corpus has none of ( ) / % $ ... ; the alphabet still covers them (no <unk>), and
    the text round-trips; control: a character outside the alphabet does give <unk>."""
    from llm.pretrain import sft_corpus
    from llm.tokenizer import EXTRA_ALPHABET, build_tokenizer, load_tokenizer

    train, _ = split_problems(ArithmeticTaskConfig())
    tok = build_tokenizer(sft_corpus(train, np.random.default_rng(0), 0.1), vocab_size=160)
    tok.save_pretrained(tmp_path)
    tok = load_tokenizer(str(tmp_path))
    assert len(tok) <= 160 + len(EXTRA_ALPHABET)
    for text in GSM8K_STYLE_PROMPTS:
        ids = tok("Q: " + text + "\nA:", add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, [t for t in tok.convert_ids_to_tokens(ids) if t == "<unk>"]
        assert tok.decode(ids) == "Q: " + text + "\nA:"
    assert tok.unk_token_id in tok("\u4e2d", add_special_tokens=False)["input_ids"]


@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=12))
@example([None, None])
def test_empirical_entropy_matches_counts(answers):
    counts = np.array(list(Counter(answers).values()), dtype=float)
    p = counts / counts.sum()
    assert empirical_entropy(answers) == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-12)


def test_answer_metrics_pinned_example():
    sampled = [["1", "1", "2", None], ["3", "4", "4", "3"], [None, None, None, None]]
    truths = ["1", "3", "5"]
    m = answer_metrics(sampled, ["1", "4", None], truths)
    assert m["mean_accuracy"] == pytest.approx((2 / 4 + 2 / 4 + 0) / 3)
    assert m["maj_at_k"] == pytest.approx((1 + 0.5 + 0) / 3)  # the 3/4 tie splits
    assert m["pass_at_k"] == pytest.approx(2 / 3)
    assert m["greedy_accuracy"] == pytest.approx(1 / 3)
    assert m["no_answer_rate"] == pytest.approx(5 / 12)
    assert plurality_correct([None, None, "5"], "5") == 0.0
    assert cross_view_agreement([["1", "1"], ["1", "2"], ["3"]]) == pytest.approx(0.5)


def test_export_data_writes_correct_worked_solutions(tmp_path, capsys):
    from llm.cli import main

    out = tmp_path / "emb.jsonl"
    assert main(["export-data", "--out", str(out), "--n", "40", "--seed", "2"]) == 0
    assert "40 problems" in capsys.readouterr().out
    problems = load_jsonl(out)
    truth = {p.views[0]: p.answer for p in all_problems(ArithmeticTaskConfig(n_views=1))}
    assert len(problems) == 40 and all(truth[p.views[0]] == p.answer for p in problems)
    for p in problems:  # every step of the exported solution is correct arithmetic
        for x, op, y, z in _eval_steps(p.target):
            assert z == (x + y if op == "+" else x - y if op == "-" else x * y)
    assert main(["export-data", "--out", str(out), "--n", "100000"]) == 2
