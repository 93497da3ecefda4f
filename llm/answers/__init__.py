"""One answer layer: where a completion's final answer is, its canonical **key**, and answer equivalence.

Every part of ``llm`` (trainer scoring, evaluation, certified marginals, theory-vs-training, ground truths in
:mod:`llm.tasks`, the TRL bridge) reads answers through this package.

**Keys.** :func:`extract_answer` returns a string key: equivalent final answers give equal keys, different
answers different keys, and no final answer gives ``None``. Numbers take the fast path of
:mod:`llm.answers.numeric` (pure Python, exact, via :class:`fractions.Fraction`): integers ``"42"``,
terminating decimals ``"0.5"`` (so ``0.5``, ``1/2``, ``\\frac{1}{2}``, ``\\dfrac12`` share it), other rationals
``"p/q"``; an interval with numeric end points ``"(1,2]"`` (end points keyed so); thousands separators
(``1,000``, ``1{,}000``, thin spaces), Unicode minus, ``$``/units/percent around a number and trailing
punctuation are read through. A non-numeric answer (``\\sqrt{2}``, ``\\frac{\\pi}{2}``, ``x^2+1``) is keyed by
its normalized LaTeX (:func:`llm.answers.symbolic.normalize_latex`); one that math-verify evaluates to a
rational number (``\\sqrt{4}``, ``2^{10}``, ``x = -3``) gets that number's key. Equal-but-differently-written
symbolic keys (``\\sqrt{18}`` vs ``3\\sqrt{2}``) are merged per problem by :func:`index_answers`, which
clusters a group's *distinct* non-numeric keys by math-verify's ``verify`` (numeric keys go by hashing, O(G)).

**Where** (:mod:`llm.answers.locate`): run-on text is cut at stop strings and at a new ``Q:``/``Question:``;
after ``</think>`` first; then the last ``\\boxed{}``, else the last ``#### ...``, else the last "the answer is
..." / "Final answer:" / "**Answer:**".

**Per task** (:func:`resolve_answer_parser`): the embedded arithmetic task reads only ``#### N`` numbers
(:data:`MARKER_PARSER`, as its traces are written); user data gets the full locator (:data:`FULL_PARSER`,
also the default of :func:`extract_answer`); ``--answer-parser module:function`` or ``path/file.py:function``
(or any Python callable ``str -> str | None``) replaces either.

**No-answer bucket.** ``None`` is its own answer index (:data:`NO_ANSWER`) in :func:`index_answers`, counted in
metrics as ``n_unextracted``; answers whose math-verify work ran out of time (:data:`symbolic.TIMEOUT_SECONDS`
per answer, enforced in a worker process, safe off the main thread) land there too and are counted by
:func:`answer_timeouts` (``n_answer_timeouts`` in metrics).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm.answers.locate import LOCATORS, cut_run_on, final_answer_span
from llm.answers.numeric import canonicalize_number, interval_key, is_exact_key, number_key, span_number_key
from llm.answers.symbolic import ORACLE, WORD_KEY, normalize_latex

NO_ANSWER = "<no answer>"


def _prekey(span: str, symbolic: bool, allow_prose: bool) -> tuple[str | None, str | None]:
    """``(key, None)`` when no oracle is needed, else ``(None, latex)`` for math-verify to decide."""
    key = span_number_key(span)
    if key is not None or not symbolic:
        return key, None
    latex = normalize_latex(span, allow_prose=allow_prose)
    if latex is None:
        return None, None
    key = span_number_key(latex) or interval_key(latex)  # "x = -3"; "(1, 2]" after normalization
    if key is not None:
        return key, None
    if WORD_KEY.fullmatch(latex):  # "yes", "B": a word is its own key
        return latex, None
    return None, latex


def _oracle_key(result: tuple[str, str | None]) -> str | None:
    kind, value = result
    return value if kind in ("rational", "expr") else None


def parse_span(span: str, *, symbolic: bool = True, allow_prose: bool = False) -> str | None:
    """Key of one located answer span: the numeric fast path, else (``symbolic``) math-verify; else None."""
    key, latex = _prekey(span, symbolic, allow_prose)
    return key if latex is None else _oracle_key(ORACLE.parse(latex))


@dataclass(frozen=True)
class AnswerParser:
    """A built-in answer parser: ``parser(text) -> key | None`` (see the package docstring)."""

    name: str = "full"
    locators: tuple[str, ...] = LOCATORS
    """Final-answer locators in priority order (:mod:`llm.answers.locate`)."""
    symbolic: bool = True
    """Non-numeric spans go to math-verify (False: only numbers are answers)."""
    stop_strings: tuple[str, ...] = ()
    """Extra strings that end a completion before its answer is located."""

    def __call__(self, text: str) -> str | None:
        key, latex = self.prekey(text)
        return key if latex is None else _oracle_key(ORACLE.parse(latex))

    def prekey(self, text: str) -> tuple[str | None, str | None]:
        """``(key, None)`` decided without math-verify, or ``(None, latex)`` still to be parsed by it."""
        found = final_answer_span(text, self.locators, self.stop_strings)
        if found is None:
            return None, None
        locator, span = found
        return _prekey(span, self.symbolic, locator == "boxed")

    @property
    def clusters(self) -> bool:
        """Whether its keys may need equivalence clustering (symbolic keys)."""
        return self.symbolic


FULL_PARSER = AnswerParser()
MARKER_PARSER = AnswerParser(name="marker", locators=("marker",), symbolic=False)
BUILTIN_PARSERS = {"full": FULL_PARSER, "marker": MARKER_PARSER}


def extract_answer(
    completion: str, *, parser: Callable[[str], str | None] | None = None, stop_strings: Sequence[str] = ()
) -> str | None:
    """Canonical answer key of ``completion`` (``None``: the no-answer bucket); full locator by default.

    ``stop_strings`` (built-in parsers only) end the completion before its answer is located."""
    parser = parser or FULL_PARSER
    if stop_strings and isinstance(parser, AnswerParser):
        parser = with_stop_strings(parser, stop_strings)
    return parser(completion)


def extract_answers(
    completions: Sequence[str], *, parser: Callable[[str], str | None] | None = None
) -> list[str | None]:
    """``[extract_answer(c, parser=parser) for c in completions]``, with one math-verify request for all the
    distinct symbolic answers of a built-in parser (what the trainer and evaluation call per batch)."""
    parser = parser or FULL_PARSER
    if not isinstance(parser, AnswerParser):
        return [parser(c) for c in completions]
    pre = [parser.prekey(c) for c in completions]
    pending = [latex for _, latex in pre if latex is not None]  # repeats kept: timeouts count per completion
    if not pending:
        return [key for key, _ in pre]
    resolved = iter(ORACLE.parse_many(pending))
    return [key if latex is None else _oracle_key(next(resolved)) for key, latex in pre]


def with_stop_strings(parser: AnswerParser, stop_strings: Sequence[str]) -> AnswerParser:
    """``parser`` that also cuts completions at ``stop_strings`` (e.g. the sampler's ``--stop-string``)."""
    import dataclasses

    return dataclasses.replace(parser, stop_strings=(*parser.stop_strings, *stop_strings))


#: Ground-truth fields that say "no answer" in words (compared case-insensitively, trailing dots removed).
NOT_AN_ANSWER = frozenset({"n/a", "na", "none", "null", "nan", "unknown", "?", "-", "tbd", "no answer"})


def parse_ground_truth(text: str, parser: Callable[[str], str | None] | None = None) -> str | None:
    """Key of a ground-truth field: a solution with a final answer (``... #### 1/2``, ``\\boxed{..}``) or a bare
    answer (``"-5"``, ``"\\frac{1}{2}"``); prose without one gives None. A custom ``parser`` is used as is."""
    if parser is not None and not isinstance(parser, AnswerParser):
        return parser(text)
    if text.strip().strip(".").lower() in NOT_AN_ANSWER:
        return None  # "n/a" would otherwise parse as the expression n / a
    p = parser or FULL_PARSER
    key = p(text)
    if key is None and text.strip():
        key = parse_span(cut_run_on(text.strip(), p.stop_strings), symbolic=p.symbolic, allow_prose=False)
    return key


def answer_timeouts() -> int:
    """Answers sent to the no-answer bucket because math-verify ran out of time, since the process started."""
    return ORACLE.timeouts


def _symbolic(key: str) -> bool:
    return key != NO_ANSWER and not is_exact_key(key) and WORD_KEY.fullmatch(key) is None


def index_answers(
    answers_per_view: Sequence[Sequence[str | None]], *, cluster: bool = True
) -> tuple[list[np.ndarray], list[str]]:
    """Map the answers of one problem's views to indices 0..n-1 in **one shared answer space**.

    ``answers_per_view[j][i]`` is the key of sample i of view j (``None`` = no answer). Returns
    ``(indices_per_view, answer_strings)``: ``indices_per_view[j]`` has shape ``(G_j,)`` and
    ``answer_strings[k]`` is the answer of index k (the no-answer bucket is :data:`NO_ANSWER`). Indices are
    assigned in order of first appearance, so the mapping is deterministic. With ``cluster``, the distinct
    symbolic keys are merged into math-verify equivalence classes (labelled by their first key); a key whose
    comparisons time out joins the no-answer bucket.
    """
    table: dict[str, int] = {}
    out = []
    for answers in answers_per_view:
        idx = np.empty(len(answers), dtype=np.int64)  # (G_j,)
        for i, ans in enumerate(answers):
            idx[i] = table.setdefault(NO_ANSWER if ans is None else ans, len(table))
        out.append(idx)
    strings = list(table)
    symbolic = [k for k in strings if _symbolic(k)] if cluster else []
    if len(symbolic) < 2:
        return out, strings
    classes = ORACLE.cluster(symbolic)
    label = {k: k for k in strings}
    first: dict[int, str] = {}
    for key, c in zip(symbolic, classes, strict=True):
        label[key] = NO_ANSWER if c < 0 else first.setdefault(c, key)
    merged: dict[str, int] = {}
    remap = np.array([merged.setdefault(label[k], len(merged)) for k in strings], dtype=np.int64)  # (n_old,)
    return [remap[i] for i in out], list(merged)


def task_reward_vector(
    answer_strings: Sequence[str], ground_truth: str | None, *, cluster: bool = True
) -> np.ndarray:
    """``r(z)`` over a problem's answer space: 1 for the ground truth's class, else 0. Shape (n_answers,).

    A numeric ground truth matches its key; a symbolic one also matches a math-verify-equivalent label."""
    r = np.array([1.0 if (ground_truth is not None and a == ground_truth) else 0.0 for a in answer_strings])
    if ground_truth is None or r.any() or not cluster or not _symbolic(ground_truth):
        return r
    candidates = [k for k in answer_strings if _symbolic(k)]
    if candidates:
        classes = ORACLE.cluster([ground_truth, *candidates])
        hit = {k for k, c in zip(candidates, classes[1:], strict=True) if c >= 0 and c == classes[0]}
        r = np.array([1.0 if a in hit else 0.0 for a in answer_strings])
    return r


def canonical_group(
    answers: Sequence[str | None], truth: str | None = None, *, cluster: bool = True
) -> list[str | None]:
    """``answers`` with each key replaced by its class label (the ground truth's key for its class), so that
    ``==`` on the result is answer equivalence (evaluation's accuracy, plurality and entropy use it)."""
    (idx,), strings = index_answers([answers], cluster=cluster)
    hit = task_reward_vector(strings, truth, cluster=cluster) if truth is not None else np.zeros(len(strings))
    labels = [truth if h else (None if s == NO_ANSWER else s) for s, h in zip(strings, hit, strict=True)]
    return [labels[i] for i in idx]


def merge_equivalent(masses: dict[str, float]) -> dict[str, float]:
    """Sum the masses of equivalent answer labels (one problem's symbolic classes, :func:`index_answers`); each
    class keeps its first label. Used by certified marginals, whose answers are enumerated leaf by leaf."""
    import math

    (idx,), strings = index_answers([list(masses)])
    parts: dict[str, list[float]] = {}
    for key, i in zip(masses, idx, strict=True):
        parts.setdefault(strings[i], []).append(masses[key])
    return {label: math.fsum(v) for label, v in parts.items()}


# ------------------------------------------------------------------------------------- user parsers


class _UserParser:
    """A user's ``str -> str | None`` callable, checked on every call (a wrong return type is an error)."""

    clusters = False

    def __init__(self, fn: Callable[[str], str | None], name: str, flag: str):
        self.fn, self.name, self.flag = fn, name, flag

    def __call__(self, text: str) -> str | None:
        from dagsim.errors import ValidationError

        key = self.fn(text)
        if key is not None and not isinstance(key, str):
            raise ValidationError(f"{self.flag} {self.name}: returned {type(key).__name__}, expected str or None")
        return key

    def __repr__(self) -> str:
        return f"AnswerParser({self.name!r})"


def resolve_answer_parser(
    spec: str | Callable[[str], str | None] = "", *, embedded_task: bool = False, flag: str = "--answer-parser"
) -> Callable[[str], str | None]:
    """The answer parser named by ``spec``.

    ``""``: the task's default (:data:`MARKER_PARSER` for the embedded task, :data:`FULL_PARSER` for user
    data); ``"full"`` / ``"marker"``; ``"module:function"`` or ``"path/to/file.py:function"``; or a callable.
    Errors (missing module, file or function, not callable) are :class:`~dagsim.errors.ValidationError`\\ s
    naming ``flag``.
    """
    from dagsim.errors import ValidationError

    if callable(spec):
        return spec if isinstance(spec, AnswerParser | _UserParser) else _UserParser(spec, repr(spec), flag)
    if not isinstance(spec, str):
        raise ValidationError(f"{flag}: expected a string or a callable, got {type(spec).__name__}")
    if not spec:
        return MARKER_PARSER if embedded_task else FULL_PARSER
    if spec in BUILTIN_PARSERS:
        return BUILTIN_PARSERS[spec]
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValidationError(
            f"{flag} {spec!r}: expected 'full', 'marker', 'module:function' or 'path/to/file.py:function'"
        )
    try:
        if target.endswith(".py") or "/" in target or "\\" in target:
            path = Path(target)
            if not path.is_file():
                raise ValidationError(f"{flag} {spec!r}: file not found: {path}")
            mod_spec = importlib.util.spec_from_file_location(f"_answer_parser_{path.stem}", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: say so, no traceback
        raise ValidationError(f"{flag} {spec!r}: cannot import {target!r} ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise ValidationError(f"{flag} {spec!r}: {target!r} has no attribute {attr!r}")
    if not callable(fn):
        raise ValidationError(f"{flag} {spec!r}: {attr!r} is not callable")
    return _UserParser(fn, spec, flag)


def parser_clusters(parser: Callable[[str], str | None]) -> bool:
    """Whether ``parser``'s keys go through equivalence clustering (built-in symbolic parsers only)."""
    return bool(getattr(parser, "clusters", False))


__all__ = [
    "NO_ANSWER",
    "AnswerParser",
    "FULL_PARSER",
    "MARKER_PARSER",
    "extract_answer",
    "extract_answers",
    "parse_ground_truth",
    "parse_span",
    "canonicalize_number",
    "number_key",
    "index_answers",
    "task_reward_vector",
    "canonical_group",
    "merge_equivalent",
    "with_stop_strings",
    "answer_timeouts",
    "resolve_answer_parser",
    "parser_clusters",
]
