"""Benchmark: the answer layer (llm.answers) against the old ``####`` extractor and raw math-verify.

Four measurements, each printed with its goal and a ratio against a baseline timed in the same run:

1. ``claim``: on the 32 realistic completions of tests/data/answer_corpus.json, how many final answers the old
   extractor, this layer, and math-verify's own ``parse`` (default configuration) recover (judged by
   math-verify's ``verify`` against the gold answer; a completion without a final answer counts as recovered
   when nothing is extracted);
2. ``numeric``: plain numeric completions per second (goal >= 100,000/s; a fast path that never touches sympy);
3. ``symbolic``: a G = 16 group of symbolic answers (7 distinct surface forms of 4 classes, fresh strings on
   every repetition so no cache helps) extracted and clustered (goal <= 50 ms), vs raw math-verify parse +
   pairwise verify of the same group;
4. ``step_share``: the answer layer's part of a real training step on the embedded tiny model (parser calls +
   ``index_answers`` inside ``score_groups``, timed by wrapping them) over the measured step time (goal <= 2 %).

    python bench/bench_answers.py [--model DIR] [--steps 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from _common import base_model, emit  # bench/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "answer_corpus.json"

# The extractor llm.answers had before this layer (the number after the last '####'), kept as the baseline.
_OLD_RE = re.compile(r"####\s*([-+]?\s*[\d,]*\.?\d+)")


def old_extract_answer(completion: str) -> str | None:
    matches = _OLD_RE.findall(completion)
    if not matches:
        return None
    cleaned = matches[-1].replace(",", "").replace(" ", "").lstrip("+")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value).rstrip("0").rstrip(".")


def _mv():
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from math_verify import parse, verify

    return parse, verify


def bench_claim() -> dict:
    from llm.answers import extract_answer

    parse, verify = _mv()
    rows = [r for r in json.loads(CORPUS.read_text(encoding="utf-8")) if r["realistic"]]

    def judged(pred) -> list[bool]:
        out = []
        for r, p in zip(rows, pred, strict=True):
            if r["gold"] is None:
                out.append(p is None or p == [])
                continue
            if p is None or p == []:
                out.append(False)
                continue
            gold = parse(f"${r['gold']}$", parsing_timeout=None)
            target = p if isinstance(p, list) else parse(f"${p}$", parsing_timeout=None)
            out.append(bool(verify(gold, target, timeout_seconds=None)))
        return out

    old = judged([old_extract_answer(r["text"]) for r in rows])
    ours = judged([extract_answer(r["text"]) for r in rows])
    raw = judged([parse(r["text"], parsing_timeout=None) for r in rows])
    misses = {name: [r["id"] for r, ok in zip(rows, res, strict=True) if not ok]
              for name, res in (("old", old), ("ours", ours), ("math_verify", raw))}
    return {"n": len(rows), "old_correct": sum(old), "ours_correct": sum(ours), "math_verify_correct": sum(raw),
            "misses": misses}


def numeric_corpus(n: int) -> list[str]:
    """Plain numeric completions in the shapes real and embedded models write (all distinct)."""
    shapes = [
        " {a}+{b}={s}. {s}*3={t}. #### {t}",
        "She has {a} apples and buys {b} more, so {a} + {b} = {s}. The answer is {s}.",
        "So the total is $\\boxed{{{t}}}$.",
        "Weng earns {a} per hour, so she earned ${big}.\n#### {big}",
        "**Answer:** {s}",
        "<think>{a} and {b}</think> The answer is {s}.",
    ]
    out = []
    for i in range(n):
        a, b = i % 97 + 1, i % 89 + 2
        s = a + b
        out.append(shapes[i % len(shapes)].format(a=a, b=b, s=s, t=3 * s + i, big=f"{1000 + i:,}"))
    return out


def _rate(fn, texts, repeats=3, clock=time.perf_counter) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        for t in texts:
            fn(t)
        best = min(best, clock() - t0)
    return len(texts) / best


def bench_numeric(n: int) -> dict:
    from llm.answers import FULL_PARSER, MARKER_PARSER
    from llm.answers.symbolic import ORACLE

    texts = numeric_corpus(n)
    requests_before = ORACLE._next_id
    wrong = [t for t in texts if FULL_PARSER(t) is None]
    ours = _rate(FULL_PARSER, texts)
    ours_cpu = _rate(FULL_PARSER, texts, clock=time.process_time)
    marker = _rate(MARKER_PARSER, [t for t in texts if "####" in t])
    old = _rate(old_extract_answer, texts)
    old_cpu = _rate(old_extract_answer, texts, clock=time.process_time)
    return {"n": n, "unparsed": len(wrong), "sympy_requests": ORACLE._next_id - requests_before,
            "ours_per_second": ours, "ours_per_cpu_second": ours_cpu, "marker_per_second": marker,
            "old_per_second": old, "old_per_cpu_second": old_cpu, "ratio_ours_over_old": ours / old}


def symbolic_group(r: int) -> list[str]:
    """16 completions, 7 distinct surface forms of 4 classes, fresh for each ``r`` (no cache hits)."""
    m = 2 * r + 3  # odd, and 4m is never a square for these r
    forms = [f"\\boxed{{\\sqrt{{{4 * m}}}}}", f"\\boxed{{2\\sqrt{{{m}}}}}", f"\\boxed{{\\frac{{\\pi}}{{{m}}}}}",
             f"The answer is $\\pi/{m}$.", f"\\boxed{{x^2+{m}x}}", f"\\boxed{{x(x+{m})}}", f"\\boxed{{({m},{m + 1}]}}"]
    picks = [0, 1, 0, 2, 3, 2, 4, 5, 4, 6, 0, 1, 2, 4, 6, 3]
    return [f"Step by step... {forms[k]}" for k in picks]


def bench_symbolic(repeats: int) -> dict:
    from llm.answers import extract_answer, extract_answers, index_answers
    from llm.answers.symbolic import ORACLE

    parse, verify = _mv()
    extract_answer(symbolic_group(10_000)[0])  # start the worker (once per process; not an answer's time)
    ours, ours_cpu, raw, raw_cpu, n_classes = [], [], [], [], set()
    for r in range(repeats):
        group = symbolic_group(r)
        c0, w0 = time.process_time() + ORACLE.cpu_seconds(), time.perf_counter()
        (idx,), strings = index_answers([extract_answers(group)])  # as score_groups does
        ours.append(time.perf_counter() - w0)
        ours_cpu.append(time.process_time() + ORACLE.cpu_seconds() - c0)
        n_classes.add(len(strings))
        group = symbolic_group(r + repeats)
        c0, t0 = time.process_time(), time.perf_counter()
        preds = [parse(t, parsing_timeout=None) for t in group]
        reps: list = []
        for p in preds:  # greedy clustering by verify, as the layer does, but on every completion
            if not any(verify(q, p, timeout_seconds=None) for q in reps):
                reps.append(p)
        raw.append(time.perf_counter() - t0)
        raw_cpu.append(time.process_time() - c0)
    return {"group_size": 16, "repeats": repeats, "classes_found": sorted(n_classes),
            "ours_ms_median": 1e3 * statistics.median(ours), "ours_ms_max": 1e3 * max(ours),
            "ours_cpu_ms_median": 1e3 * statistics.median(ours_cpu),
            "math_verify_ms_median": 1e3 * statistics.median(raw),
            "math_verify_cpu_ms_median": 1e3 * statistics.median(raw_cpu),
            "ratio_math_verify_over_ours": statistics.median(raw) / statistics.median(ours)}


def bench_step_share(model_dir: str, steps: int) -> dict:
    import llm.answers as answers_mod  # llm.rewards.score_problem imports index_answers from here at call time
    from llm.answers import MARKER_PARSER
    from llm.trainer import TrainConfig, train

    spent = [0.0]

    def timed_parser(text):
        t0 = time.perf_counter()
        out = MARKER_PARSER(text)
        spent[0] += time.perf_counter() - t0
        return out

    real_index = answers_mod.index_answers

    def timed_index(*args, **kwargs):
        t0 = time.perf_counter()
        out = real_index(*args, **kwargs)
        spent[0] += time.perf_counter() - t0
        return out

    answers_mod.index_answers = timed_index
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(algorithm="coherence-grpo", model=model_dir, out=str(Path(tmp) / "run"), steps=steps + 1,
                              prompts_per_step=8, group_size=8, progress=False)
            hist = train(cfg, answer_parser=timed_parser)["history"]
    finally:
        answers_mod.index_answers = real_index
    step_s = sum(h["step_seconds"] for h in hist)
    n_texts = sum(8 * 8 * 2 for _ in hist)
    return {"steps": len(hist), "step_seconds_mean": step_s / len(hist), "answer_seconds_total": spent[0],
            "answer_share_of_step": spent[0] / step_s, "reward_share_of_step": sum(h["reward_seconds"] for h in hist)
            / step_s, "completions": n_texts}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="base checkpoint for the step share (default: pretrain one)")
    ap.add_argument("--steps", type=int, default=4, help="training steps timed for the step share")
    ap.add_argument("--numeric", type=int, default=30_000, help="numeric completions timed")
    ap.add_argument("--repeats", type=int, default=15, help="symbolic groups timed")
    ap.add_argument("--skip-step", action="store_true", help="skip the training-step share (no torch needed)")
    ap.add_argument("--out", default="", help="also write the result JSON here")
    a = ap.parse_args(argv)
    result = {"claim": bench_claim(), "numeric": bench_numeric(a.numeric), "symbolic": bench_symbolic(a.repeats)}
    if not a.skip_step:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = base_model(a.model, tmp, steps=100)
            result["step_share"] = bench_step_share(model_dir, a.steps)
    c, n, s = result["claim"], result["numeric"], result["symbolic"]
    print(f"claim ({c['n']} realistic completions): old {c['old_correct']}, ours {c['ours_correct']}, "
          f"math-verify {c['math_verify_correct']}")
    print(f"numeric: {n['ours_per_second']:,.0f}/s wall, {n['ours_per_cpu_second']:,.0f}/s CPU (goal >= 100,000; "
          f"old {n['old_per_second']:,.0f}/s, ratio {n['ratio_ours_over_old']:.2f}; sympy requests "
          f"{n['sympy_requests']})")
    print(f"symbolic G=16: {s['ours_ms_median']:.1f} ms median wall, {s['ours_cpu_ms_median']:.1f} ms CPU (both "
          f"processes), {s['ours_ms_max']:.1f} max (goal <= 50); raw math-verify {s['math_verify_ms_median']:.1f} "
          f"ms wall, {s['math_verify_cpu_ms_median']:.1f} ms CPU ({s['ratio_math_verify_over_ours']:.1f}x)")
    if "step_share" in result:
        st = result["step_share"]
        print(f"step share: {100 * st['answer_share_of_step']:.3f} % of a {st['step_seconds_mean']:.2f} s step "
              f"(goal <= 2 %; all of scoring: {100 * st['reward_share_of_step']:.2f} %)")
    emit(result, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
