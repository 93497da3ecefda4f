"""Embedded multi-step arithmetic word problems with trace styles, task-preserving views and noisy traces.

A problem is one of three kinds over small operands (a, b, c):

    add_sub : a + b - c          (answer >= 0)
    mul_add : (a + b) * c
    sub_mul : (a - b) * c        (a > b)

Each problem has several **views** (paraphrase templates, some with a different operand order) whose
answers live in one shared answer space (the integer answer), and several **trace styles** (step orders
that reach the same answer, e.g. ``(a+b)*c`` versus ``a*c + b*c``). A completion reads

    " 3+5=8. 8*4=32. #### 32"

For supervised pretraining, :func:`sample_trace` injects *controlled noise*: each step's result is wrong
with probability ``step_noise``, by an offset whose pattern depends on the view (view 0 overshoots,
view 1 undershoots, view 2 slips by ten), and later steps compute correctly from the wrong value. On top
of that, each view carries one systematic **misconception**: view ``v`` misreads problems of kind
``KINDS[v]`` with probability ``misconception_rate`` (view 0 adds the removed items, ``a + b + c``; view 1
adds the extra items once, ``a*c + b``; view 2 subtracts the eaten items once, ``a*c - b``). Above
rate 0.5 the misread answer is the *mode* of that view, so single-view self-consistency (majority vote,
sharpening) locks onto it, while the other views of the same problem do not share the error. The base
model therefore learns an imperfect, diverse answer distribution whose *errors differ between views*
while the correct answer is shared -- the setting where multi-view consensus (THEORY.md §4, E5) improves
accuracy without labels and single-view self-consistency cannot. ``misconception_overlap`` moves the task
towards the opposite case: a fraction f of the ``KINDS[0]`` problems is misread by every view in the same way
(and each other view keeps its own misreading on only 1 - f of its kind), up to identical misreadings at
f = 1, where the views' consensus has nothing left to correct (issue 15 §2).

The ground-truth answer is used only for evaluation, the supervised pretraining and the ``gt-grpo``
baseline. :func:`load_data` reads user data: JSONL (``{"question", "answer"}`` GSM8K-style,
``{"prompt", "completion"}`` or ``{"messages"}``) or a reasoning-gym dataset; :func:`split_data` splits off a
seeded held-out part; :func:`apply_prompt_format` renders prompts through a chat template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dagsim.errors import ValidationError

ANSWER_MARKER = "####"
KINDS = ("add_sub", "mul_add", "sub_mul")

# Paraphrase templates per kind. A view is (template, operand order); all views of a problem share the
# answer. Templates use the operand names a, b, c; the ones listed later present the operands in another
# order (an "operand order" view), which is task preserving.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "add_sub": (
        "Ann has {a} pens . She buys {b} more and gives away {c} . How many pens does she have ?",
        "A box holds {a} eggs . Then {b} eggs are added and {c} are taken out ."
        " How many eggs are in the box ?",
        "Of {a} cups , {c} break . Then {b} new cups arrive . How many cups are there ?",
    ),
    "mul_add": (
        "There are {c} bags . Each bag has {a} red and {b} blue balls . How many balls are there ?",
        "Each of {c} kids has {a} cards and gets {b} more . How many cards do the kids have ?",
        "A shelf has {c} rows . Each row has {b} green and {a} gray books . How many books are there ?",
    ),
    "sub_mul": (
        "There are {c} boxes . Each box has {a} apples and {b} are eaten from each ."
        " How many apples are left ?",
        "Each of {c} teams has {a} balls and loses {b} . How many balls do the teams have now ?",
        "Each of {c} shops sells {b} of its {a} hats . How many hats are left in the shops ?",
    ),
}
MAX_VIEWS = 3
# View-specific error offsets for a wrong step (the noise *pattern* differs between views).
_VIEW_ERROR_OFFSETS: tuple[tuple[int, ...], ...] = ((1, 2), (-1, -2), (10, -10))


@dataclass(frozen=True)
class ArithmeticTaskConfig:
    """The embedded task. All fields are validated by :meth:`validate`."""

    seed: int = 0
    """Seed of the train/held-out split (a permutation of all valid problems)."""
    n_views: int = 2
    """Views per problem (1..3): paraphrase templates / operand orders sharing one answer space."""
    max_operand: int = 9
    """Operands a, b are drawn from 1..max_operand."""
    max_factor: int = 4
    """The factor c is drawn from 2..max_factor."""
    held_out_fraction: float = 0.2
    """Fraction of all valid problems kept out of training, for evaluation."""
    step_noise: float = 0.1
    """Probability that one step of a supervised trace has a wrong result (pretraining noise; 0.2 with the
    misconceptions puts the base model's mean sampled accuracy at 0.36, below the 40-70 % target)."""
    misconception_rate: float = 0.6
    """Probability that view v's supervised trace misreads a problem of kind ``KINDS[v]`` (a systematic,
    view-specific wrong formula; 0 disables it)."""
    # --- issue 15 §2: how much the views' misreadings overlap
    misconception_overlap: float = 0.0
    """Fraction f in [0, 1] of shared misreadings: every view v >= 1 also misreads a seeded fraction f of
    the ``KINDS[0]`` problems exactly as view 0 does (same wrong answer) and keeps its own misreading on
    only a fraction 1 - f of the ``KINDS[v]`` problems. 0 = disjoint (each view misreads its own kind),
    1 = identical (all views misread the same problems the same way); see :func:`misreading_views`."""

    def validate(self) -> None:
        if not 1 <= self.n_views <= MAX_VIEWS:
            raise ValidationError(f"task.n_views must be in 1..{MAX_VIEWS}, got {self.n_views}")
        if not 2 <= self.max_operand <= 20:
            raise ValidationError(f"task.max_operand must be in 2..20, got {self.max_operand}")
        if not 2 <= self.max_factor <= 9:
            raise ValidationError(f"task.max_factor must be in 2..9, got {self.max_factor}")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValidationError(f"task.held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        if not 0.0 <= self.step_noise < 1.0:
            raise ValidationError(f"task.step_noise must be in [0, 1), got {self.step_noise}")
        if not 0.0 <= self.misconception_rate <= 1.0:
            raise ValidationError(f"task.misconception_rate must be in [0, 1], got {self.misconception_rate}")
        if not 0.0 <= self.misconception_overlap <= 1.0:
            raise ValidationError(
                f"task.misconception_overlap must be in [0, 1], got {self.misconception_overlap}"
            )


@dataclass(frozen=True)
class Problem:
    """One problem: its views (prompt texts) and, when known, the canonical ground-truth answer."""

    problem_id: str
    views: tuple[str, ...]
    answer: str | None
    kind: str = "external"
    operands: tuple[int, ...] = field(default=())
    messages: tuple[tuple[str, str], ...] = ()
    """User data: the prompt as chat messages ``((role, content), ...)`` (rendered by a chat template)."""
    target: str | None = None
    """User data: the reference completion (worked solution ending in its final answer), for SFT."""
    scorer: Callable[[str | None], float] | None = field(default=None, compare=False, repr=False)
    """Task reward of an answer key when the data brings its own (reasoning-gym's ``score_answer``)."""
    misread_views: tuple[int, ...] | None = None
    """Embedded task: the views that misread this problem (:func:`misconception`); None = the default
    rule, view v misreads the problems of kind ``KINDS[v]`` (set by a ``misconception_overlap`` > 0)."""

    @property
    def n_views(self) -> int:
        return len(self.views)


def format_prompt(question: str) -> str:
    """The prompt a model sees for one question (the completion starts after ``A:``)."""
    return f"Q: {question}\nA:"


def _answer_of(kind: str, a: int, b: int, c: int) -> int:
    if kind == "add_sub":
        return a + b - c
    if kind == "mul_add":
        return (a + b) * c
    return (a - b) * c


def _valid(kind: str, a: int, b: int, c: int) -> bool:
    if kind == "add_sub":
        return a + b - c >= 0 and a >= c  # a >= c keeps every trace style's intermediate non-negative
    if kind == "sub_mul":
        return a > b
    return True


def all_problems(config: ArithmeticTaskConfig) -> list[Problem]:
    """Every valid problem of the task, in a fixed canonical order."""
    config.validate()
    problems = []
    for kind in KINDS:
        for a in range(1, config.max_operand + 1):
            for b in range(1, config.max_operand + 1):
                for c in range(2, config.max_factor + 1):
                    if not _valid(kind, a, b, c):
                        continue
                    views = tuple(
                        format_prompt(t.format(a=a, b=b, c=c)) for t in _TEMPLATES[kind][: config.n_views]
                    )
                    problems.append(
                        Problem(f"{kind}-{a}-{b}-{c}", views, str(_answer_of(kind, a, b, c)), kind, (a, b, c))
                    )
    if config.misconception_overlap > 0.0:
        problems = [replace(p, misread_views=v) for p, v in zip(problems, misreading_views(problems, config))]
    return problems


def misreading_views(problems: list[Problem], config: ArithmeticTaskConfig) -> list[tuple[int, ...]]:
    """Which views misread each problem of :func:`all_problems` (canonical order) at overlap f.

    View 0 misreads every ``KINDS[0]`` problem. A seeded choice (``default_rng((seed, 15))``: one permutation
    of the ``KINDS[0]`` problems, then one per kind ``KINDS[v]``) picks ``round(f * n)`` of the ``KINDS[0]``
    problems, misread by every view (the *shared* ones), and ``round(f * n_v)`` of the ``KINDS[v]`` problems
    on which view v drops its own misreading. The choices are nested in f (a prefix of one permutation).
    """
    f = config.misconception_overlap
    rng = np.random.default_rng((config.seed, 15))
    by_kind = {k: [i for i, p in enumerate(problems) if p.kind == k] for k in KINDS}
    shared = set(_first_fraction(by_kind[KINDS[0]], f, rng))
    dropped = {k: set(_first_fraction(by_kind[k], f, rng)) for k in KINDS[1:]}
    out = []
    for i, p in enumerate(problems):
        views = []
        for v in range(p.n_views):
            if v == 0:
                misreads = p.kind == KINDS[0]
            elif p.kind == KINDS[0]:
                misreads = i in shared
            else:
                misreads = v < len(KINDS) and p.kind == KINDS[v] and i not in dropped[p.kind]
            if misreads:
                views.append(v)
        out.append(tuple(views))
    return out


def _first_fraction(indices: list[int], fraction: float, rng: np.random.Generator) -> list[int]:
    order = rng.permutation(len(indices))
    return [indices[j] for j in order[: int(round(fraction * len(indices)))]]


def task_config_of(model_dir: str | Path) -> ArithmeticTaskConfig:
    """The task a checkpoint was pretrained on (``MODEL_DIR/task.json``), or the default when it has none."""
    path = Path(model_dir) / "task.json"
    if not path.is_file():
        return ArithmeticTaskConfig()
    try:
        config = ArithmeticTaskConfig(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValidationError(f"{path}: not a task config ({exc})") from None
    config.validate()
    return config


def split_problems(config: ArithmeticTaskConfig) -> tuple[list[Problem], list[Problem]]:
    """(train, held_out): a seeded, disjoint split of :func:`all_problems`."""
    problems = all_problems(config)
    order = np.random.default_rng(config.seed).permutation(len(problems))
    n_held = max(1, int(round(config.held_out_fraction * len(problems))))
    held = [problems[i] for i in order[:n_held]]
    train = [problems[i] for i in order[n_held:]]
    return train, held


def trace_styles(problem: Problem) -> list[list[tuple[int, str, int]]]:
    """The valid step orders of an arithmetic problem: lists of steps ``(x, op, y)`` on *symbolic* inputs.

    A step's operand is an int literal (>= 0) or ``-k-1`` meaning "the result of step k".
    """
    a, b, c = problem.operands
    if problem.kind == "add_sub":
        styles = [[(a, "+", b), (-1, "-", c)], [(a, "-", c), (-1, "+", b)]]
    elif problem.kind == "mul_add":
        styles = [[(a, "+", b), (-1, "*", c)], [(a, "*", c), (b, "*", c), (-1, "+", -2)]]
    else:
        styles = [[(a, "-", b), (-1, "*", c)], [(a, "*", c), (b, "*", c), (-1, "-", -2)]]
    return styles


def misconception(problem: Problem, view: int) -> list[tuple[int, str, int]] | None:
    """View ``view``'s systematic misreading of ``problem`` (steps as in :func:`trace_styles`), or None.

    View v misreads only problems of kind ``KINDS[v]`` (with a ``misconception_overlap``: the views in
    ``problem.misread_views``); the misread formula depends on the problem's kind only, a plausible reading
    error ("gives away c" added, "gets b more" counted once, "b eaten" counted once), so views that misread
    the same problem give the same wrong answer.
    """
    if problem.kind not in KINDS or view >= len(KINDS):
        return None
    if problem.misread_views is not None:
        if view not in problem.misread_views:
            return None
    elif KINDS[view] != problem.kind:
        return None
    a, b, c = problem.operands
    if problem.kind == "add_sub":
        return [(a, "+", b), (-1, "+", c)]
    if problem.kind == "mul_add":
        return [(a, "*", c), (-1, "+", b)]
    return [(a, "*", c), (-1, "-", b)]


def misconception_answer(problem: Problem, view: int) -> str | None:
    """The final answer of view ``view``'s misreading of ``problem`` (None when the view has none)."""
    steps = misconception(problem, view)
    return None if steps is None else str(_run_steps(steps)[-1][3])


def _run_steps(steps, slip=None) -> list[tuple[int, str, int, int]]:
    """Execute symbolic steps: ``(x, op, y, value)`` per step; ``slip(value) -> value`` may corrupt a result
    (later steps then use the corrupted value)."""
    done: list[tuple[int, str, int, int]] = []
    for x_sym, op, y_sym in steps:
        x = done[-x_sym - 1][3] if x_sym < 0 else x_sym
        y = done[-y_sym - 1][3] if y_sym < 0 else y_sym
        value = _apply(x, op, y)
        done.append((x, op, y, value if slip is None else slip(value)))
    return done


def _apply(x: int, op: str, y: int) -> int:
    return x + y if op == "+" else x - y if op == "-" else x * y


def sample_trace(
    problem: Problem, view: int, rng: np.random.Generator, step_noise: float, misconception_rate: float = 0.0
) -> tuple[str, str]:
    """One supervised completion for ``problem`` seen through ``view``: ``(completion, final_answer)``.

    With probability ``misconception_rate`` the view's misreading (:func:`misconception`, when it has one
    for this problem) replaces the trace; otherwise the trace style is uniform. Each step is then wrong
    with probability ``step_noise`` by a view-specific offset (never making a value negative); later steps
    use the (possibly wrong) earlier results.
    """
    if problem.kind not in KINDS:
        raise ValidationError(f"problem {problem.problem_id} has no synthetic traces (kind {problem.kind})")
    misread = misconception(problem, view)
    if misread is not None and misconception_rate > 0.0 and rng.random() < misconception_rate:
        steps = misread
    else:
        styles = trace_styles(problem)
        steps = styles[int(rng.integers(len(styles)))]
    offsets = _VIEW_ERROR_OFFSETS[view % len(_VIEW_ERROR_OFFSETS)]

    def slip(value: int) -> int:
        if rng.random() >= step_noise:
            return value
        off = int(offsets[int(rng.integers(len(offsets)))])
        return value + off if value + off >= 0 else value + abs(off)

    done = _run_steps(steps, slip)
    final = str(done[-1][3])
    return " " + " ".join(f"{x}{op}{y}={v}." for x, op, y, v in done) + f" {ANSWER_MARKER} {final}", final


# ------------------------------------------------------------------------------------------ user data
DATA_FORMATS = "question+answer | prompt+completion | messages"


def _final_answer(text: str, parser=None) -> tuple[str | None, str]:
    """``(key, target)`` of a data answer: its key by :func:`llm.answers.extract_answer` (the parser of
    completions, or ``parser``), else, for a plain final answer (``"-5"``, ``"\\frac{1}{2}"``), its key by
    :func:`llm.answers.parse_ground_truth`. ``target`` is the text a model should learn to write: the answer
    itself, or ``#### <answer>`` for a plain one (so the model's own completions end in a marker the parser
    reads)."""
    from llm.answers import extract_answer, parse_ground_truth  # local import: answers needs only the marker

    key = extract_answer(text, parser=parser)
    if key is not None:
        return key, text
    plain = text.strip()
    if plain and "\\n" not in plain and "\n" not in plain:
        key = parse_ground_truth(plain, parser)
        if key is not None:
            return key, f"{ANSWER_MARKER} {plain}"
    return None, text


def _messages_of(row, where: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """``(prompt messages, assistant target)`` of a ``messages`` row (its last message is the assistant's)."""
    msgs = row["messages"]
    if not isinstance(msgs, list) or not msgs:
        raise ValidationError(f"{where}: 'messages' must be a non-empty list of {{'role', 'content'}} objects")
    pairs = []
    for m in msgs:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValidationError(f"{where}: every message needs string 'role' and 'content' fields")
        pairs.append((m["role"], m["content"]))
    if pairs[-1][0] != "assistant" or len(pairs) < 2:
        raise ValidationError(f"{where}: 'messages' must end with the assistant's answer after >= 1 prompt message")
    return tuple(pairs[:-1]), pairs[-1][1]


def problem_from_row(row, pid: str, where: str, parser=None) -> Problem:
    """One :class:`Problem` from a JSON object in one of :data:`DATA_FORMATS`; ``answer=None`` when its final
    answer cannot be parsed (the caller decides: error or skip)."""
    if not isinstance(row, dict):
        raise ValidationError(f"{where}: expected a JSON object ({DATA_FORMATS})")
    explicit = row.get("answer")
    if explicit is not None and not isinstance(explicit, (str, int, float)):
        raise ValidationError(f"{where}: 'answer' must be a string or a number")
    messages: tuple[tuple[str, str], ...] = ()
    if "messages" in row:
        messages, target = _messages_of(row, where)
        users = [c for r, c in messages if r == "user"]
        question = users[-1] if users else messages[-1][1]
        view = format_prompt(re.sub(r"\s+", " ", question).strip())
    elif "prompt" in row or "completion" in row:
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
            raise ValidationError(f"{where}: 'prompt' and 'completion' must both be strings")
        view, target = row["prompt"], row["completion"]
    elif isinstance(row.get("question"), str):
        view = format_prompt(re.sub(r"\s+", " ", row["question"]).strip())
        if explicit is None:  # no answer field at all: an explicitly unlabelled problem (label-free training)
            return Problem(pid, (view,), None)
        target = str(explicit)
    else:
        raise ValidationError(f"{where}: expected an object with a string 'question' field ({DATA_FORMATS})")
    if explicit is not None and "question" not in row:
        key, _ = _final_answer(str(explicit), parser)  # an explicit answer field names the ground truth
        _, target_fixed = _final_answer(target, parser)
    else:
        key, target_fixed = _final_answer(target, parser)
    if not target_fixed.startswith((" ", "\n")) and view.endswith(":"):
        target_fixed = " " + target_fixed  # " 3+5=8. #### 8" after "A:", as the embedded task writes it
    return Problem(pid, (view,), key, messages=messages, target=target_fixed)


def read_jsonl(
    path: str | Path, *, skip_bad_lines: bool = False, answer_parser=None
) -> tuple[list[Problem], list[int]]:
    """``(problems, skipped line numbers)`` of a JSONL file in one of :data:`DATA_FORMATS`.

    Every answer must hold a parseable final answer (``#### N``, ``\\boxed{..}``, "the answer is ..." or a plain
    ``"-5"``; parsed by :func:`llm.answers.extract_answer`): one without is an error naming its line number,
    or, with ``skip_bad_lines``, skipped and listed. A ``question`` line with no ``answer`` field at all is an
    unlabelled problem (``answer=None``: label-free training only; counted on stderr by :func:`load_jsonl`).
    Malformed JSON is always an error.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"data file not found: {path}")
    problems, skipped = [], []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{where}: not valid JSON ({exc.msg})") from None
            problem = problem_from_row(row, f"{path.stem}-{lineno}", where, answer_parser)
            if problem.answer is None and problem.target is not None:
                if not skip_bad_lines:
                    raise ValidationError(
                        f"{where}: no parseable final answer (expected '#### N', '\\boxed{{N}}' or a plain number;"
                        " --skip-bad-lines skips such lines)"
                    )
                skipped.append(lineno)
                continue
            problems.append(problem)
    if not problems:
        raise ValidationError(f"{path}: no problems found" + (f" ({len(skipped)} lines skipped)" if skipped else ""))
    return problems, skipped


def load_jsonl(path: str | Path, *, skip_bad_lines: bool = False, answer_parser=None) -> list[Problem]:
    """Problems of a JSONL file (:func:`read_jsonl`); skipped lines are counted on stderr."""
    import sys

    problems, skipped = read_jsonl(path, skip_bad_lines=skip_bad_lines, answer_parser=answer_parser)
    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
        print(f"{path}: skipped {len(skipped)} line(s) without a parseable answer (lines {shown})", file=sys.stderr)
    unlabelled = sum(p.answer is None for p in problems)
    if unlabelled:
        print(f"{path}: {unlabelled} problem(s) have no 'answer' field (label-free use only)", file=sys.stderr)
    return problems


REASONING_GYM_PREFIX = "reasoning-gym:"


def parse_reasoning_gym_spec(spec: str) -> tuple[str, dict]:
    """``"reasoning-gym:chain_sum?size=200&seed=1"`` -> ``("chain_sum", {"size": 200, "seed": 1})``.

    Values are parsed as JSON where they are JSON (numbers, true/false), else kept as strings.
    """
    from urllib.parse import parse_qsl

    body = spec[len(REASONING_GYM_PREFIX) :]
    name, _, query = body.partition("?")
    if not name:
        raise ValidationError(f"--data {spec}: expected reasoning-gym:NAME?size=N&seed=S")
    kwargs = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return name, kwargs


def load_reasoning_gym(spec: str) -> list[Problem]:
    """Problems of a reasoning-gym procedural dataset (optional extra ``reasoning``).

    Each problem's ``scorer`` is the dataset's own ``score_answer(answer, entry)``, so a task reward can be
    graded the way reasoning-gym grades it; its ``answer`` is the key of the entry's answer (for accuracy)
    and its ``target`` is ``#### <answer>`` (SFT: reasoning-gym has no worked solutions).
    """
    import functools

    try:
        import reasoning_gym
    except ImportError:
        raise ValidationError(
            f"--data {spec}: reasoning-gym is not installed (pip install 'alft-games[reasoning]')"
        ) from None
    name, kwargs = parse_reasoning_gym_spec(spec)
    try:
        dataset = reasoning_gym.create_dataset(name, **kwargs)
    except Exception as exc:  # unknown task name or bad parameters: reasoning-gym raises various types
        reason = f"{type(exc).__name__}: {exc}"
        raise ValidationError(f"--data {spec}: reasoning-gym could not build it ({reason})") from None
    problems = []
    for i, entry in enumerate(dataset):
        row = {"question": entry["question"], "answer": str(entry["answer"])}
        problem = problem_from_row(row, f"{name}-{i}", f"{spec} entry {i}")
        if problem.answer is None:
            raise ValidationError(f"{spec} entry {i}: answer {entry['answer']!r} is not one the answer parser reads")
        problems.append(replace(problem, scorer=functools.partial(_score_entry, dataset, entry)))
    if not problems:
        raise ValidationError(f"{spec}: no problems")
    return problems


def _score_entry(dataset, entry, answer: str | None) -> float:
    return float(dataset.score_answer(answer, entry))


def load_data(spec: str, *, skip_bad_lines: bool = False, answer_parser=None) -> list[Problem]:
    """``--data``: a JSONL file (:func:`load_jsonl`) or ``reasoning-gym:NAME?key=value&...``."""
    if spec.startswith(REASONING_GYM_PREFIX):
        return load_reasoning_gym(spec)
    return load_jsonl(spec, skip_bad_lines=skip_bad_lines, answer_parser=answer_parser)


def split_data(problems: list[Problem], eval_fraction: float, seed: int) -> tuple[list[Problem], list[Problem]]:
    """``(train, held_out)``: a seeded split of user data (the same one for ``sft``, ``train`` and ``evaluate``
    given the same fraction and seed). ``eval_fraction = 0`` keeps everything for training.

    Problems with the same prompt (procedural generators repeat questions) always fall on the same side, so
    the held-out part holds only questions never trained on: distinct prompts are shuffled with ``seed`` and
    held out until ``round(eval_fraction * len(problems))`` problems (at least 1) are. Order is kept.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValidationError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if eval_fraction == 0.0:
        return list(problems), []
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault((p.views, p.messages), []).append(i)
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    n_held = max(1, int(round(eval_fraction * len(problems))))
    held_idx: set[int] = set()
    for k in order:
        if len(held_idx) >= n_held:
            break
        held_idx.update(groups[keys[int(k)]])
    if len(held_idx) >= len(problems):
        raise ValidationError(
            f"eval_fraction={eval_fraction} leaves no training problem out of {len(problems)}"
        )
    train = [p for i, p in enumerate(problems) if i not in held_idx]
    held = [p for i, p in enumerate(problems) if i in held_idx]
    return train, held


def _plain_question(view: str) -> str:
    """The question inside a ``Q: ...\\nA:`` prompt (the view itself when it is not in that form)."""
    if view.startswith("Q: ") and view.endswith("\nA:"):
        return view[3:-3]
    return view


def chat_messages(problem: Problem, view: int = 0) -> list[dict]:
    """The chat messages of one view: the data's own ``messages``, else one user turn holding the question."""
    if problem.messages:
        return [{"role": r, "content": c} for r, c in problem.messages]
    return [{"role": "user", "content": _plain_question(problem.views[view])}]


def apply_prompt_format(problems: list[Problem], tokenizer, chat_template: bool = False) -> list[Problem]:
    """Prompts through the tokenizer's chat template (``apply_chat_template(..., add_generation_prompt=True)``)
    when ``chat_template`` is set, or when the data is conversational (has ``messages``) and the tokenizer
    has a template; otherwise the plain ``Q: ... A:`` form (base models) is kept."""
    from llm.tokenizer import has_chat_template, render_chat

    if chat_template and not has_chat_template(tokenizer):
        raise ValidationError("--chat-template: the model's tokenizer has no chat template")
    out = []
    for p in problems:
        if chat_template or (p.messages and has_chat_template(tokenizer)):
            views = tuple(render_chat(tokenizer, chat_messages(p, v)) for v in range(len(p.views)))
            target = p.target
            if target is not None and p.views[0].endswith(":"):
                target = target.lstrip(" ")  # the leading space belongs to the plain "A:" form
            p = replace(p, views=views, target=target)
        out.append(p)
    return out


def task_rewards(problem: Problem, answer_strings, no_answer: str, *, cluster: bool = True) -> np.ndarray:
    """``r(z)`` over a problem's answer space: the data's own scorer where it has one (0 for the no-answer
    bucket), else 1 for the ground-truth key. Shape (n_answers,)."""
    if problem.scorer is None:
        from llm.answers import task_reward_vector

        return task_reward_vector(answer_strings, problem.answer, cluster=cluster)
    return np.array([0.0 if a == no_answer else float(problem.scorer(a)) for a in answer_strings])


def export_jsonl(config: ArithmeticTaskConfig, path: str | Path, *, n: int = 0, seed: int = 0) -> int:
    """Write the embedded task as GSM8K-style JSONL: one line per problem (view 0), its answer a correct
    worked solution (a noise-free :func:`sample_trace`, random trace style) ending in ``#### N``.
    ``n = 0``: every problem; else ``n`` of them, seeded. Returns the number of lines written (atomically)."""
    from llm.model import atomic_write_text

    rng = np.random.default_rng(seed)
    problems = all_problems(config)
    if n < 0 or n > len(problems):
        raise ValidationError(f"n must be in 0..{len(problems)}, got {n}")
    chosen = [problems[int(i)] for i in rng.permutation(len(problems))[: n or len(problems)]]
    lines = []
    for p in chosen:
        completion, _ = sample_trace(p, 0, rng, step_noise=0.0)
        lines.append(json.dumps({"question": _plain_question(p.views[0]), "answer": completion.strip()}))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
