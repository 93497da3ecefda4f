"""JSON formats ``dagsim/v1`` (one reasoning DAG) and ``dagsim-task/v1`` (a multi-view task).

``dagsim/v1``::

    {"format": "dagsim/v1", "root": "s",
     "edges": [{"from": "s", "to": "a", "p": 0.5}, ...],
     "answers": {"leaf_id": "12", ...},
     "reward": {"12": 1.0},                                     # optional, r(z)
     "constraints": [{"answers": ["7"], "op": "<=", "bound": 0.05},
                     {"coef": {"7": 1.0, "8": -1.0}, "op": "==", "bound": 0.0}],   # optional
     "name": "..."}                                             # optional

``dagsim-task/v1``::

    {"format": "dagsim-task/v1", "views": [<dagsim/v1 object>, ...], "weights": [0.5, 0.5],
     "reward": {...}, "constraints": [...], "name": "..."}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagsim.dag import ReasoningDAG, Task
from dagsim.errors import ValidationError
from dagsim.io import atomic_write_json

DAG_FORMAT = "dagsim/v1"
TASK_FORMAT = "dagsim-task/v1"
_DAG_KEYS = {"format", "root", "edges", "answers", "reward", "constraints", "name", "metadata"}
_TASK_KEYS = {"format", "views", "weights", "reward", "constraints", "name", "metadata"}


def load(path: str | os.PathLike) -> ReasoningDAG | Task:
    """Read a ``dagsim/v1`` or ``dagsim-task/v1`` file; every problem raises :class:`ValidationError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file") from None
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not UTF-8 text") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        return from_json(obj)
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None


def from_json(obj: Any) -> ReasoningDAG | Task:
    """Build a DAG or a task from a parsed JSON object (dispatch on ``format``)."""
    if not isinstance(obj, Mapping):
        raise ValidationError("top level must be a JSON object")
    fmt = obj.get("format")
    if fmt == DAG_FORMAT:
        return dag_from_json(obj)
    if fmt == TASK_FORMAT:
        return task_from_json(obj)
    if fmt is None:
        raise ValidationError(f"missing field 'format' (expected {DAG_FORMAT!r} or {TASK_FORMAT!r})")
    raise ValidationError(f"unknown format version {fmt!r} (this version reads {DAG_FORMAT!r} and {TASK_FORMAT!r})")


def dag_from_json(obj: Mapping, *, where: str = "", answer_space=None) -> ReasoningDAG:
    prefix = f"{where}: " if where else ""
    try:
        unknown = set(obj) - _DAG_KEYS
        if unknown:
            raise ValidationError(f"unknown field(s) {sorted(unknown)}")
        if obj.get("format", DAG_FORMAT) != DAG_FORMAT:
            raise ValidationError(f"unknown format version {obj.get('format')!r} (expected {DAG_FORMAT!r})")
        root = obj.get("root")
        if not isinstance(root, str) or not root:
            raise ValidationError("field 'root' must be a non-empty string naming the root node")
        edges_obj = obj.get("edges")
        if not isinstance(edges_obj, list):
            raise ValidationError("field 'edges' must be a list of {\"from\", \"to\", \"p\"} objects")
        if not edges_obj:
            raise ValidationError("empty graph: 'edges' is empty")
        edges = []
        for i, e in enumerate(edges_obj):
            if not isinstance(e, Mapping) or not {"from", "to", "p"} <= set(e):
                raise ValidationError(f"edges[{i}]: expected an object with 'from', 'to' and 'p', got {e!r}")
            edges.append((e["from"], e["to"], e["p"]))
        answers = obj.get("answers")
        if not isinstance(answers, Mapping) or not answers:
            raise ValidationError("field 'answers' must be a non-empty object mapping leaf ids to answer labels")
        reward = obj.get("reward")
        if reward is not None and not isinstance(reward, Mapping):
            raise ValidationError("field 'reward' must be an object mapping answer labels to numbers")
        constraints = obj.get("constraints")
        if constraints is not None and not isinstance(constraints, list):
            raise ValidationError("field 'constraints' must be a list")
        name = obj.get("name", "")
        return ReasoningDAG.from_edges(root, edges, answers, reward=reward, constraints=constraints,
                                       answer_space=answer_space, name=str(name))
    except ValidationError as exc:
        raise ValidationError(f"{prefix}{exc}") from None


def task_from_json(obj: Mapping) -> Task:
    unknown = set(obj) - _TASK_KEYS
    if unknown:
        raise ValidationError(f"unknown field(s) {sorted(unknown)} in a {TASK_FORMAT} file")
    views_obj = obj.get("views")
    if not isinstance(views_obj, list) or not views_obj:
        raise ValidationError("field 'views' must be a non-empty list of dagsim/v1 objects")
    views = []
    for j, v in enumerate(views_obj):
        if not isinstance(v, Mapping):
            raise ValidationError(f"views[{j}]: expected a dagsim/v1 object")
        views.append(dag_from_json(v, where=f"views[{j}]"))
    weights = obj.get("weights")
    if weights is not None and (not isinstance(weights, list)
                                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)):
        raise ValidationError("field 'weights' must be a list of numbers")
    return Task.from_views(views, weights=weights, reward=obj.get("reward"), constraints=obj.get("constraints"),
                           name=str(obj.get("name", "")))


def dag_to_json(dag: ReasoningDAG, *, include_format: bool = True) -> dict:
    """The ``dagsim/v1`` object of ``dag`` (inverse of :func:`dag_from_json`, up to node order)."""
    out: dict[str, Any] = {}
    if include_format:
        out["format"] = DAG_FORMAT
    if dag.name:
        out["name"] = dag.name
    out["root"] = dag.root
    out["edges"] = [{"from": u, "to": v, "p": p} for u, v, p in dag.edges_named()]
    out["answers"] = {dag.nodes[i]: dag.answers[dag.leaf_answer[i]] for i in dag.leaves.tolist()}
    if dag.has_reward:
        out["reward"] = {a: float(r) for a, r in zip(dag.answers, dag.reward.tolist())}
    if dag.constraints:
        out["constraints"] = [_constraint_to_json(c, dag.answers) for c in dag.constraints]
    return out


def task_to_json(task: Task) -> dict:
    out: dict[str, Any] = {"format": TASK_FORMAT}
    if task.name:
        out["name"] = task.name
    views = []
    for v in task.views:
        obj = dag_to_json(v.with_reward(None), include_format=True)
        views.append(obj)
    out["views"] = views
    out["weights"] = task.weights.tolist()
    if task.has_reward:
        out["reward"] = {a: float(r) for a, r in zip(task.answers, task.reward.tolist())}
    if task.constraints:
        out["constraints"] = [_constraint_to_json(c, task.answers) for c in task.constraints]
    return out


def _constraint_to_json(c, answers) -> dict:
    coef = {a: float(w) for a, w in zip(answers, c.coef.tolist()) if w != 0.0}
    return {"coef": coef, "op": c.op, "bound": c.bound, "name": c.name}


def save(obj: ReasoningDAG | Task, path: str | os.PathLike) -> Path:
    """Write a DAG or task as JSON, atomically."""
    data = task_to_json(obj) if isinstance(obj, Task) else dag_to_json(obj)
    return atomic_write_json(path, data, indent=None if _is_large(obj) else 1)


def _is_large(obj) -> bool:
    n_edges = sum(v.n_edges for v in obj.views) if isinstance(obj, Task) else obj.n_edges
    return n_edges > 10_000
