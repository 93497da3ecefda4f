"""Reasoning DAGs: traces are root-to-leaf paths, answers are leaf labels (THEORY §1).

A :class:`ReasoningDAG` is immutable. Its nodes are stored in a topological order that groups them by
*level* (longest distance from the root) and, inside a level, internal nodes before leaves. Edges are
stored CSR-style, sorted by source node, so that every per-node operation (softmax over a node's
outgoing edges, the backward value recursion) is a segment reduction over contiguous slices, and a
second, destination-sorted permutation makes the forward recursion a segment reduction too. All the
dynamic programming in :mod:`dagsim.marginals` is vectorized over these arrays, one level at a time.

Build one with :meth:`ReasoningDAG.from_edges` (names, validated), :meth:`ReasoningDAG.from_index_arrays`
(integer arrays, validated, fast for generators) or :func:`dagsim.dagio.load`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.errors import ValidationError

#: Outgoing probabilities of a node must sum to 1 within this absolute tolerance (issue contract).
PROB_SUM_ATOL = 1e-9


def natural_key(label: str) -> tuple:
    """Sort key that orders numeric answer labels numerically and puts other labels after them."""
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", label):
        return (0, float(label), label)
    return (1, 0.0, label)


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class LevelPlan:
    """Precomputed slices for level-by-level dynamic programming (see module docstring).

    ``node_levels[l] = (lo, mid, hi)``: nodes ``lo:hi`` are level ``l``, ``lo:mid`` of them internal.
    Forward recursion for level ``l >= 1`` reads incoming edges ``in_ptr[lo]:in_ptr[hi]`` (in the
    destination-sorted order) and reduces them at the offsets ``fwd_starts[l]``; the backward recursion
    reads outgoing edges ``node_ptr[lo]:node_ptr[mid]`` and reduces them at ``bwd_starts[l]``.
    """

    node_levels: tuple[tuple[int, int, int], ...]
    fwd_starts: tuple[np.ndarray, ...]
    bwd_starts: tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class ReasoningDAG:
    """An immutable reasoning model: a DAG with reference policy π0 on its edges and answer-labelled leaves.

    Arrays (all read-only):
      * ``edge_src``, ``edge_dst`` — ``(n_edges,)`` node indices, sorted by ``edge_src`` (then ``edge_dst``);
      * ``edge_prob`` — ``(n_edges,)`` reference policy π0(dst | src);
      * ``node_ptr`` — ``(n_nodes + 1,)`` CSR offsets: node ``u``'s edges are ``node_ptr[u]:node_ptr[u+1]``;
      * ``in_perm`` / ``in_ptr`` — the edges sorted by destination, and CSR offsets into that order;
      * ``leaf_answer`` — ``(n_nodes,)`` answer index of each leaf, ``-1`` for internal nodes;
      * ``reward`` — ``(n_answers,)`` task reward r(z) (zeros when the file gives none).

    Node 0 is the root. ``answers`` lists the answer labels; answer index ``k`` means ``answers[k]``.
    """

    nodes: tuple[str, ...]
    answers: tuple[str, ...]
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_prob: np.ndarray
    node_ptr: np.ndarray
    in_perm: np.ndarray
    in_ptr: np.ndarray
    leaf_answer: np.ndarray
    reward: np.ndarray
    has_reward: bool
    constraints: tuple[LinearConstraint, ...]
    levels: LevelPlan = field(repr=False)
    name: str = ""

    # ------------------------------------------------------------------ sizes
    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def n_answers(self) -> int:
        return len(self.answers)

    @property
    def root(self) -> str:
        return self.nodes[0]

    @property
    def leaves(self) -> np.ndarray:
        """Indices of the leaf nodes, ``(n_leaves,)``."""
        return np.flatnonzero(self.leaf_answer >= 0)

    @property
    def out_degree(self) -> np.ndarray:
        return np.diff(self.node_ptr)

    @property
    def internal_nodes(self) -> np.ndarray:
        return np.flatnonzero(self.out_degree > 0)

    @property
    def reference_logits(self) -> np.ndarray:
        """Edge logits of π0 (``log p``; ``-inf`` on zero-probability edges), ``(n_edges,)``."""
        with np.errstate(divide="ignore"):
            return np.log(self.edge_prob)

    def answer_index(self, label: str) -> int:
        try:
            return self.answers.index(str(label))
        except ValueError:
            raise ValidationError(
                f"unknown answer label {label!r}; the DAG's answers are {list(self.answers)}") from None

    def with_answer_space(self, answers: Sequence[str]) -> ReasoningDAG:
        """The same DAG re-indexed on a larger shared answer space (labels absent here get ν0 = 0)."""
        answers = tuple(str(a) for a in answers)
        missing = set(self.answers) - set(answers)
        if missing:
            raise ValidationError(f"answer space lacks labels {sorted(missing)} used by DAG {self.name!r}")
        position = {a: i for i, a in enumerate(answers)}
        remap = np.array([position[a] for a in self.answers], dtype=np.int64)
        leaf_answer = np.where(self.leaf_answer >= 0, remap[np.maximum(self.leaf_answer, 0)], -1)
        reward = np.zeros(len(answers))
        reward[remap] = self.reward
        constraints = tuple(
            LinearConstraint(coef=_scatter(c.coef, remap, len(answers)), op=c.op, bound=c.bound, name=c.name)
            for c in self.constraints
        )
        return _replace(self, answers=answers, leaf_answer=_readonly(leaf_answer), reward=_readonly(reward),
                        constraints=constraints)

    def with_reward(self, reward: Mapping[str, float] | np.ndarray | None) -> ReasoningDAG:
        """A copy with a different task reward r(z) (a label->value map or a ``(n_answers,)`` vector)."""
        vec, has = _reward_vector(reward, self.answers, field_name="reward")
        return _replace(self, reward=_readonly(vec), has_reward=has)

    def with_constraints(self, constraints: Sequence[LinearConstraint]) -> ReasoningDAG:
        for c in constraints:
            if c.coef.shape != (self.n_answers,):
                raise ValidationError(
                    f"constraint {c.name!r}: coef has shape {c.coef.shape}, expected ({self.n_answers},)")
        return _replace(self, constraints=tuple(constraints))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edges(
        cls,
        root: str,
        edges: Iterable[tuple[str, str, float]],
        answers: Mapping[str, str],
        *,
        reward: Mapping[str, float] | None = None,
        constraints: Sequence[Mapping] | None = None,
        answer_space: Sequence[str] | None = None,
        name: str = "",
    ) -> ReasoningDAG:
        """Validate and build a DAG from named edges ``(src, dst, p)`` and a leaf -> answer-label map."""
        edges = list(edges)
        if not edges:
            raise ValidationError("empty graph: the DAG has no edges (a reasoning model needs at least one trace)")
        names: dict[str, int] = {}

        def intern(node: object, where: str) -> int:
            if not isinstance(node, str) or not node:
                raise ValidationError(f"{where}: node ids must be non-empty strings, got {node!r}")
            if node not in names:
                names[node] = len(names)
            return names[node]

        if root is None:
            raise ValidationError("missing field 'root'")
        intern(root, "root")
        src = np.empty(len(edges), dtype=np.int64)
        dst = np.empty(len(edges), dtype=np.int64)
        prob = np.empty(len(edges), dtype=np.float64)
        for i, (u, v, p) in enumerate(edges):
            src[i] = intern(u, f"edges[{i}].from")
            dst[i] = intern(v, f"edges[{i}].to")
            prob[i] = _as_probability(p, f"edges[{i}] ({u} -> {v})")
        for leaf in answers:
            if leaf not in names:
                raise ValidationError(f"answers: node {leaf!r} does not appear in any edge")
        node_names = list(names)
        labels = {names[leaf]: _as_label(label, f"answers[{leaf!r}]") for leaf, label in answers.items()}
        return cls.from_index_arrays(
            node_names, src, dst, prob, labels, reward=reward, constraints=constraints,
            answer_space=answer_space, name=name,
        )

    @classmethod
    def from_index_arrays(
        cls,
        node_names: Sequence[str],
        src: np.ndarray,
        dst: np.ndarray,
        prob: np.ndarray,
        leaf_labels: Mapping[int, str],
        *,
        reward: Mapping[str, float] | np.ndarray | None = None,
        constraints: Sequence[Mapping | LinearConstraint] | None = None,
        answer_space: Sequence[str] | None = None,
        name: str = "",
    ) -> ReasoningDAG:
        """Validate and build from integer arrays; node 0 is the root. Vectorized (fast for 10^6 edges)."""
        node_names = tuple(node_names)
        n = len(node_names)
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        prob = np.asarray(prob, dtype=np.float64)
        if src.size == 0:
            raise ValidationError("empty graph: the DAG has no edges (a reasoning model needs at least one trace)")
        if not (src.shape == dst.shape == prob.shape):
            raise ValidationError("edge arrays src, dst, prob must have the same length")
        if src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= n:
            raise ValidationError("edge endpoint index out of range of the node list")
        bad = np.flatnonzero(~np.isfinite(prob) | (prob < 0))
        if bad.size:
            i = int(bad[0])
            raise ValidationError(
                f"edge {node_names[src[i]]} -> {node_names[dst[i]]}: probability must be a finite number >= 0, "
                f"got {float(prob[i])!r}")
        # Duplicate edges: sort by (src, dst) and compare neighbours.
        order = np.lexsort((dst, src))
        s_sorted, d_sorted = src[order], dst[order]
        dup = np.flatnonzero((s_sorted[1:] == s_sorted[:-1]) & (d_sorted[1:] == d_sorted[:-1]))
        if dup.size:
            i = int(dup[0])
            raise ValidationError(f"duplicate edge {node_names[s_sorted[i]]} -> {node_names[d_sorted[i]]}")
        self_loop = np.flatnonzero(src == dst)
        if self_loop.size:
            raise ValidationError(f"cycle through node {node_names[src[self_loop[0]]]!r} (an edge to itself)")

        level = _levels_or_cycle(n, src, dst, node_names)
        _check_reachable(n, src, dst, node_names)
        if level[0] != 0:
            raise ValidationError(f"node {node_names[0]!r} is the root but has an incoming edge")

        out_deg = np.bincount(src, minlength=n)
        for idx, label in leaf_labels.items():
            if out_deg[idx] > 0:
                raise ValidationError(f"node {node_names[idx]!r} has an answer ({label!r}) but is not a leaf "
                                      f"(it has {out_deg[idx]} outgoing edges)")
        leaf_idx = np.flatnonzero(out_deg == 0)
        unlabeled = [int(i) for i in leaf_idx if int(i) not in leaf_labels]
        if unlabeled:
            raise ValidationError(f"leaf {node_names[unlabeled[0]]!r} has no answer (add it to 'answers')")

        # Outgoing probabilities sum to one.
        sums = np.bincount(src, weights=prob, minlength=n)
        bad_sum = np.flatnonzero((out_deg > 0) & (np.abs(sums - 1.0) > PROB_SUM_ATOL))
        if bad_sum.size:
            u = int(bad_sum[0])
            raise ValidationError(f"outgoing probabilities of node {node_names[u]!r} sum to {float(sums[u])!r}, not 1 "
                                  f"(tolerance {PROB_SUM_ATOL})")

        labels_used = sorted({str(lbl) for lbl in leaf_labels.values()}, key=natural_key)
        if answer_space is None:
            answers = tuple(labels_used)
        else:
            answers = tuple(str(a) for a in answer_space)
            unknown = set(labels_used) - set(answers)
            if unknown:
                raise ValidationError(f"answer labels {sorted(unknown)} are not in the given answer space")
        position = {a: k for k, a in enumerate(answers)}

        # Topological order: by (level, leaf-ness, original index).
        is_leaf = (out_deg == 0).astype(np.int64)
        topo = np.lexsort((np.arange(n), is_leaf, level))
        new_index = np.empty(n, dtype=np.int64)
        new_index[topo] = np.arange(n)
        src_t, dst_t = new_index[src], new_index[dst]
        e_order = np.lexsort((dst_t, src_t))
        src_t, dst_t, prob_t = src_t[e_order], dst_t[e_order], prob[e_order]
        node_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src_t, minlength=n), out=node_ptr[1:])
        in_perm = np.lexsort((src_t, dst_t))
        in_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(dst_t, minlength=n), out=in_ptr[1:])

        leaf_answer = np.full(n, -1, dtype=np.int64)
        for idx, label in leaf_labels.items():
            leaf_answer[new_index[idx]] = position[str(label)]
        names_t = tuple(node_names[i] for i in topo)
        plan = _level_plan(level[topo], is_leaf[topo], node_ptr, in_ptr)

        reward_vec, has_reward = _reward_vector(reward, answers, field_name="reward")
        cons = tuple(_as_constraint(c, answers, i) for i, c in enumerate(constraints or ()))
        return cls(
            nodes=names_t, answers=answers,
            edge_src=_readonly(src_t), edge_dst=_readonly(dst_t), edge_prob=_readonly(prob_t),
            node_ptr=_readonly(node_ptr), in_perm=_readonly(in_perm), in_ptr=_readonly(in_ptr),
            leaf_answer=_readonly(leaf_answer), reward=_readonly(reward_vec), has_reward=has_reward,
            constraints=cons, levels=plan, name=name,
        )

    def edges_named(self) -> list[tuple[str, str, float]]:
        """Edges as ``(src_name, dst_name, p)`` in storage order."""
        return [(self.nodes[u], self.nodes[v], float(p)) for u, v, p in
                zip(self.edge_src.tolist(), self.edge_dst.tolist(), self.edge_prob.tolist())]


# ---------------------------------------------------------------------- multi-view tasks
@dataclass(frozen=True, eq=False)
class Task:
    """A multi-view task (THEORY §1, E5): views over one shared answer space, weights ``w`` summing to 1.

    Every view DAG is re-indexed on the shared ``answers`` so that all marginals are ``(n_answers,)``.
    """

    views: tuple[ReasoningDAG, ...]
    weights: np.ndarray  # (n_views,)
    answers: tuple[str, ...]
    reward: np.ndarray  # (n_answers,)
    has_reward: bool
    constraints: tuple[LinearConstraint, ...]
    name: str = ""

    @property
    def n_views(self) -> int:
        return len(self.views)

    @property
    def n_answers(self) -> int:
        return len(self.answers)

    @classmethod
    def from_views(
        cls,
        views: Sequence[ReasoningDAG],
        weights: Sequence[float] | None = None,
        reward: Mapping[str, float] | np.ndarray | None = None,
        constraints: Sequence[Mapping | LinearConstraint] | None = None,
        name: str = "",
    ) -> Task:
        if not views:
            raise ValidationError("task: 'views' is empty (a task needs at least one view)")
        labels = sorted({a for v in views for a in v.answers}, key=natural_key)
        answers = tuple(labels)
        if weights is None:
            w = np.full(len(views), 1.0 / len(views))
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(views),):
                raise ValidationError(f"task: 'weights' has {w.size} entries for {len(views)} views")
            if not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise ValidationError(f"task: 'weights' must be finite and > 0, got {w.tolist()}")
            if abs(w.sum() - 1.0) > PROB_SUM_ATOL:
                raise ValidationError(f"task: 'weights' sum to {float(w.sum())!r}, not 1")
        if reward is None and any(v.has_reward for v in views):
            raise ValidationError("task: put 'reward' at the task level, not inside a view")
        reward_vec, has_reward = _reward_vector(reward, answers, field_name="reward")
        shared = tuple(v.with_answer_space(answers).with_reward(reward_vec) for v in views)
        cons = tuple(_as_constraint(c, answers, i) for i, c in enumerate(constraints or ()))
        return cls(views=shared, weights=_readonly(w), answers=answers, reward=_readonly(reward_vec),
                   has_reward=has_reward, constraints=cons, name=name)


# ---------------------------------------------------------------------- helpers
def _replace(dag: ReasoningDAG, **changes) -> ReasoningDAG:
    from dataclasses import replace

    return replace(dag, **changes)


def _scatter(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size)
    out[index] = values
    return out


def _as_probability(p: object, where: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ValidationError(f"{where}: probability 'p' must be a number, got {p!r}")
    p = float(p)
    if not np.isfinite(p) or p < 0:
        raise ValidationError(f"{where}: probability must be a finite number >= 0, got {p!r}")
    return p


def _as_label(label: object, where: str) -> str:
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise ValidationError(f"{where}: an answer label must be a string (or an integer), got {label!r}")
    label = str(label)
    if not label:
        raise ValidationError(f"{where}: an answer label must be non-empty")
    return label


def _reward_vector(reward, answers: Sequence[str], *, field_name: str) -> tuple[np.ndarray, bool]:
    k = len(answers)
    if reward is None:
        return np.zeros(k), False
    if isinstance(reward, np.ndarray):
        vec = np.asarray(reward, dtype=np.float64)
        if vec.shape != (k,):
            raise ValidationError(f"{field_name}: expected a vector of {k} answers, got shape {vec.shape}")
        if not np.all(np.isfinite(vec)):
            raise ValidationError(f"{field_name}: contains NaN or infinite values")
        return vec.copy(), True
    if not isinstance(reward, Mapping):
        raise ValidationError(f"{field_name}: expected an object mapping answer labels to numbers")
    vec = np.zeros(k)
    position = {a: i for i, a in enumerate(answers)}
    for label, value in reward.items():
        if str(label) not in position:
            raise ValidationError(f"{field_name}: unknown answer label {label!r} (answers are {list(answers)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValidationError(f"{field_name}[{label!r}]: must be a finite number, got {value!r}")
        vec[position[str(label)]] = float(value)
    return vec, True


def _as_constraint(spec, answers: Sequence[str], i: int) -> LinearConstraint:
    if isinstance(spec, LinearConstraint):
        if spec.coef.shape != (len(answers),):
            raise ValidationError(f"constraints[{i}]: coef has shape {spec.coef.shape}, expected ({len(answers)},)")
        return spec
    where = f"constraints[{i}]"
    if not isinstance(spec, Mapping):
        raise ValidationError(f"{where}: expected an object with 'answers' or 'coef', 'op' and 'bound'")
    position = {a: k for k, a in enumerate(answers)}
    coef = np.zeros(len(answers))
    if ("answers" in spec) == ("coef" in spec):
        raise ValidationError(f"{where}: give exactly one of 'answers' (a list of labels) or 'coef' (label -> weight)")
    if "answers" in spec:
        labels = spec["answers"]
        if not isinstance(labels, list) or not labels:
            raise ValidationError(f"{where}.answers: expected a non-empty list of answer labels")
        for label in labels:
            if str(label) not in position:
                raise ValidationError(f"{where}.answers: unknown answer label {label!r} (answers are {list(answers)})")
            coef[position[str(label)]] = 1.0
    else:
        weights = spec["coef"]
        if not isinstance(weights, Mapping) or not weights:
            raise ValidationError(f"{where}.coef: expected a non-empty object mapping answer labels to weights")
        for label, value in weights.items():
            if str(label) not in position:
                raise ValidationError(f"{where}.coef: unknown answer label {label!r} (answers are {list(answers)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValidationError(f"{where}.coef[{label!r}]: must be a finite number, got {value!r}")
            coef[position[str(label)]] = float(value)
    op = spec.get("op")
    if op not in ("<=", ">=", "==", "="):
        raise ValidationError(f"{where}.op: must be '<=', '>=' or '==', got {op!r}")
    bound = spec.get("bound")
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not np.isfinite(bound):
        raise ValidationError(f"{where}.bound: must be a finite number, got {bound!r}")
    return LinearConstraint(coef=coef, op="==" if op == "=" else op, bound=float(bound),
                            name=str(spec.get("name", f"c{i}")))


def _csr(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(src, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=ptr[1:])
    return ptr, dst[order]


def _gather_out(ptr: np.ndarray, targets: np.ndarray, frontier: np.ndarray) -> np.ndarray:
    """Concatenate the CSR rows ``targets[ptr[u]:ptr[u+1]]`` for every ``u`` in ``frontier`` (vectorized)."""
    starts = ptr[frontier]
    counts = ptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return targets[offsets + np.arange(total)]


def _levels_or_cycle(n: int, src: np.ndarray, dst: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Longest-path level of every node by Kahn's algorithm, one frontier at a time; names a node on a cycle."""
    ptr, targets = _csr(n, src, dst)
    indeg = np.bincount(dst, minlength=n)
    level = np.full(n, -1, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    depth = 0
    while frontier.size:
        level[frontier] = depth
        nxt = _gather_out(ptr, targets, frontier)
        if nxt.size == 0:
            break
        dec = np.bincount(nxt, minlength=n)
        touched = np.flatnonzero(dec)
        indeg[touched] -= dec[touched]
        frontier = touched[indeg[touched] == 0]
        depth += 1
    remaining = np.flatnonzero(level < 0)
    if remaining.size:
        raise ValidationError(f"cycle: node {names[_node_on_cycle(remaining, src, dst)]!r} lies on a directed cycle")
    return level


def _node_on_cycle(remaining: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """Walk backwards among nodes Kahn could not order; the first repeated node lies on a cycle."""
    rem = set(remaining.tolist())
    pred: dict[int, int] = {}
    for u, v in zip(src.tolist(), dst.tolist()):
        if u in rem and v in rem:
            pred.setdefault(v, u)
    node = int(remaining[0])
    seen = set()
    while node not in seen:
        seen.add(node)
        node = pred[node]
    return node


def _check_reachable(n: int, src: np.ndarray, dst: np.ndarray, names: Sequence[str]) -> None:
    ptr, targets = _csr(n, src, dst)
    seen = np.zeros(n, dtype=bool)
    seen[0] = True
    frontier = np.array([0], dtype=np.int64)
    while frontier.size:
        nxt = np.unique(_gather_out(ptr, targets, frontier))
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        frontier = nxt
    unreachable = np.flatnonzero(~seen)
    if unreachable.size:
        raise ValidationError(f"node {names[unreachable[0]]!r} is unreachable from the root {names[0]!r}")


def _level_plan(level: np.ndarray, is_leaf: np.ndarray, node_ptr: np.ndarray, in_ptr: np.ndarray) -> LevelPlan:
    n_levels = int(level.max()) + 1
    bounds = np.searchsorted(level, np.arange(n_levels + 1))
    node_levels, fwd, bwd = [], [], []
    for lvl in range(n_levels):
        lo, hi = int(bounds[lvl]), int(bounds[lvl + 1])
        mid = lo + int(np.count_nonzero(is_leaf[lo:hi] == 0))
        node_levels.append((lo, mid, hi))
        fwd.append(_readonly(in_ptr[lo:hi] - in_ptr[lo]) if lvl > 0 else _readonly(np.empty(0, np.int64)))
        bwd.append(_readonly(node_ptr[lo:mid] - node_ptr[lo]))
    return LevelPlan(tuple(node_levels), tuple(fwd), tuple(bwd))
