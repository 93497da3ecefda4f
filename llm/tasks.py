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
accuracy without labels and single-view self-consistency cannot.

The ground-truth answer is used only for evaluation, the supervised pretraining and the ``gt-grpo``
baseline. :func:`load_jsonl` reads user data in the GSM8K ``{"question", "answer"}`` form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Problem:
    """One problem: its views (prompt texts) and, when known, the canonical ground-truth answer."""

    problem_id: str
    views: tuple[str, ...]
    answer: str | None
    kind: str = "external"
    operands: tuple[int, ...] = field(default=())

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
    return problems


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

    View v misreads only problems of kind ``KINDS[v]``; the misread formula is a plausible reading error
    of that view's template ("gives away c" added, "gets b more" counted once, "b eaten" counted once).
    """
    if problem.kind not in KINDS or view >= len(KINDS) or KINDS[view] != problem.kind:
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


def load_jsonl(path: str | Path, *, answer_parser=None) -> list[Problem]:
    """Problems from a GSM8K-style JSONL file: one ``{"question": str, "answer": str}`` per line.

    The ground truth is the key (:mod:`llm.answers`) of ``answer``'s final answer (``#### 1/2``, ``\\boxed{}``,
    "the answer is", or a bare answer such as ``"-5"``), read by ``answer_parser`` when given. A line without
    one keeps ``answer=None`` (usable for label-free training, not for accuracy).
    """
    from llm.answers import parse_ground_truth  # local import: answers depends on this module's marker only

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"data file not found: {path}")
    problems = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("question"), str):
                raise ValidationError(f"{path}:{lineno}: expected an object with a string 'question' field")
            answer = parse_ground_truth(str(row.get("answer", "")), answer_parser)
            question = re.sub(r"\s+", " ", row["question"]).strip()
            problems.append(Problem(f"{path.stem}-{lineno}", (format_prompt(question),), answer))
    if not problems:
        raise ValidationError(f"{path}: no problems found")
    return problems
