"""Generators of reasoning DAGs: layered lattices, random DAGs, and arithmetic-reasoning DAGs.

Every generator takes an explicit ``numpy.random.Generator`` where it draws anything (STYLE §2) and
returns a validated :class:`~dagsim.dag.ReasoningDAG` (or a multi-view :class:`~dagsim.dag.Task`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG, Task
from dagsim.errors import DomainError


def _edge_probs(rng: np.random.Generator | None, counts: np.ndarray, concentration: float) -> np.ndarray:
    """Per-node probability vectors for nodes with ``counts`` outgoing edges: uniform, or Dirichlet(α)."""
    total = int(counts.sum())
    if rng is None:
        return np.repeat(1.0 / counts, counts)
    raw = rng.gamma(concentration, size=total)
    raw = np.maximum(raw, np.finfo(float).tiny)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sums = np.add.reduceat(raw, starts)
    return raw / np.repeat(sums, counts)


def layered_lattice(width: int, depth: int, n_answers: int, *, rng: np.random.Generator | None = None,
                    concentration: float = 1.0, reward_correct: int | None = 0, name: str = "") -> ReasoningDAG:
    """Root → ``depth`` layers of ``width`` nodes, consecutive layers fully connected → ``n_answers`` leaves.

    Every node of the last layer links to every answer leaf, so the DAG has ``width + (depth−1)·width²
    + width·n_answers`` edges and ``width^depth · n_answers`` traces. π0 is uniform when ``rng`` is
    None, else each node's outgoing probabilities are Dirichlet(``concentration``). When
    ``reward_correct`` is not None, answer ``str(reward_correct)`` gets reward 1 (the others 0).
    """
    if width < 1 or depth < 1 or n_answers < 1:
        raise DomainError(f"layered_lattice needs width, depth, n_answers >= 1 (got {width}, {depth}, {n_answers})")
    names = ["s"] + [f"L{d}_{i}" for d in range(depth) for i in range(width)] + [f"ans{k}" for k in range(n_answers)]
    layer = lambda d: 1 + d * width + np.arange(width)  # noqa: E731 - tiny index helper
    src = [np.zeros(width, dtype=np.int64)]
    dst = [layer(0)]
    for d in range(depth - 1):
        src.append(np.repeat(layer(d), width))
        dst.append(np.tile(layer(d + 1), width))
    leaf_ids = 1 + depth * width + np.arange(n_answers)
    src.append(np.repeat(layer(depth - 1), n_answers))
    dst.append(np.tile(leaf_ids, width))
    src_a, dst_a = np.concatenate(src), np.concatenate(dst)
    order = np.argsort(src_a, kind="stable")
    src_a, dst_a = src_a[order], dst_a[order]
    counts = np.bincount(src_a)[np.unique(src_a)]
    prob = _edge_probs(rng, counts, concentration)
    labels = {int(leaf_ids[k]): str(k) for k in range(n_answers)}
    reward = None
    if reward_correct is not None and 0 <= reward_correct < n_answers:
        reward = {str(reward_correct): 1.0}
    return ReasoningDAG.from_index_arrays(names, src_a, dst_a, prob, labels, reward=reward,
                                          name=name or f"lattice-{width}x{depth}-{n_answers}")


def random_dag(rng: np.random.Generator, n_nodes: int, n_answers: int, *, edge_prob: float = 0.3,
               concentration: float = 1.0, max_out_degree: int | None = None, name: str = "") -> ReasoningDAG:
    """A random DAG valid by construction: every node reachable, every leaf labelled, every answer used.

    Nodes ``0..n_nodes−1`` in topological order, then ``n_answers`` answer leaves. Each internal node
    ``i ≥ 1`` gets one parent uniformly among earlier nodes (reachability), extra forward edges appear
    with probability ``edge_prob``; nodes left without children link to a random answer leaf, and each
    answer leaf gets at least one parent. π0 rows are Dirichlet(``concentration``).
    """
    if n_nodes < 1 or n_answers < 1:
        raise DomainError(f"random_dag needs n_nodes >= 1 and n_answers >= 1 (got {n_nodes}, {n_answers})")
    edges: set[tuple[int, int]] = set()
    for i in range(1, n_nodes):
        edges.add((int(rng.integers(0, i)), i))
    for i in range(n_nodes):
        for j in range(i + 1, n_nodes):
            if rng.random() < edge_prob:
                edges.add((i, j))
    leaf0 = n_nodes
    for k in range(n_answers):
        edges.add((int(rng.integers(0, n_nodes)), leaf0 + k))
    has_child = {u for u, _ in edges}
    for i in range(n_nodes):
        if i not in has_child:
            edges.add((i, leaf0 + int(rng.integers(0, n_answers))))
        elif rng.random() < edge_prob:
            edges.add((i, leaf0 + int(rng.integers(0, n_answers))))
    if max_out_degree is not None:
        edges = _cap_out_degree(edges, max_out_degree, rng, n_nodes, leaf0)
    arr = np.array(sorted(edges), dtype=np.int64)
    src_a, dst_a = arr[:, 0], arr[:, 1]
    counts = np.bincount(src_a)[np.unique(src_a)]
    prob = _edge_probs(rng, counts, concentration)
    names = [f"n{i}" for i in range(n_nodes)] + [f"z{k}" for k in range(n_answers)]
    labels = {leaf0 + k: str(k) for k in range(n_answers)}
    return ReasoningDAG.from_index_arrays(names, src_a, dst_a, prob, labels, name=name or "random")


def _cap_out_degree(edges, cap, rng, n_nodes, leaf0):
    """Drop extra edges (never the spanning-parent or the sole edge into an answer) to respect ``cap``."""
    by_src: dict[int, list[int]] = {}
    for u, v in sorted(edges):
        by_src.setdefault(u, []).append(v)
    indeg: dict[int, int] = {}
    for _, v in edges:
        indeg[v] = indeg.get(v, 0) + 1
    kept = set()
    for u, vs in by_src.items():
        order = list(rng.permutation(len(vs)))
        chosen = []
        for idx in order:
            v = vs[idx]
            if len(chosen) < cap or indeg[v] == 1:
                chosen.append(v)
            else:
                indeg[v] -= 1
        kept.update((u, v) for v in chosen)
    return kept


# ---------------------------------------------------------------------- arithmetic reasoning
@dataclass(frozen=True)
class ArithmeticProblem:
    """Σ_i a_i·b_i computed one product-and-add step at a time, in any order.

    A step that errs (probability ``eps[i]`` for step i) adds the product off by ± its slip size
    (±1 by default: a carrying slip; ±a_i when the solver multiplies by the neighbouring digit b_i ± 1),
    with equal probability, so wrong answers are near misses of the correct one.
    """

    a: tuple[int, ...]
    b: tuple[int, ...]

    @property
    def n_steps(self) -> int:
        return len(self.a)

    @property
    def correct(self) -> int:
        return sum(x * y for x, y in zip(self.a, self.b))

    def text(self) -> str:
        return " + ".join(f"{x}*{y}" for x, y in zip(self.a, self.b))


def arithmetic_problem(rng: np.random.Generator, n_steps: int = 3, max_operand: int = 9) -> ArithmeticProblem:
    if n_steps < 1:
        raise DomainError(f"n_steps must be >= 1, got {n_steps}")
    a = tuple(int(x) for x in rng.integers(1, max_operand + 1, size=n_steps))
    b = tuple(int(x) for x in rng.integers(1, max_operand + 1, size=n_steps))
    return ArithmeticProblem(a, b)


def arithmetic_dag(problem: ArithmeticProblem, eps: float | Sequence[float] = 0.1, *,
                   slip: int | Sequence[int] = 1, order_weights: Sequence[float] | None = None,
                   name: str = "") -> ReasoningDAG:
    """The reasoning DAG of an :class:`ArithmeticProblem`.

    A node is (set of steps done, running total). From a node, the next step i is chosen with
    probability ∝ ``order_weights[i]`` among the remaining steps (uniform by default); the step then
    adds a_i·b_i exactly (probability 1 − eps_i) or off by −slip_i / +slip_i (eps_i/2 each). Nodes with the
    same state merge, so traces (step orders × slips) share sub-paths. A leaf is (all steps done, total)
    and its answer is the total; the correct answer gets reward 1.
    """
    n = problem.n_steps
    eps_arr = np.broadcast_to(np.asarray(eps, dtype=np.float64), (n,))
    if np.any(eps_arr < 0) or np.any(eps_arr > 1):
        raise DomainError(f"step error probabilities must lie in [0, 1], got {eps_arr.tolist()}")
    ow = np.ones(n) if order_weights is None else np.asarray(order_weights, dtype=np.float64)
    if ow.shape != (n,) or np.any(ow <= 0):
        raise DomainError("order_weights must be n_steps positive numbers")
    slips = np.broadcast_to(np.asarray(slip, dtype=np.int64), (n,))
    if np.any(slips <= 0):
        raise DomainError(f"slip sizes must be positive integers, got {slips.tolist()}")
    products = [x * y for x, y in zip(problem.a, problem.b)]
    full = (1 << n) - 1

    def node_name(mask: int, total: int) -> str:
        if mask == 0:
            return "start"
        if mask == full:
            return f"answer={total}"
        done = ",".join(str(i) for i in range(n) if mask >> i & 1)
        return f"done[{done}]total={total}"

    states = {(0, 0)}
    edges: dict[tuple[str, str], float] = {}
    labels: dict[str, str] = {}
    for _ in range(n):
        nxt = set()
        for mask, total in sorted(states):
            remaining = [i for i in range(n) if not mask >> i & 1]
            weights = ow[remaining] / ow[remaining].sum()
            for i, w_i in zip(remaining, weights):
                d = int(slips[i])
                outcomes = [(products[i], 1.0 - eps_arr[i]), (products[i] - d, eps_arr[i] / 2),
                            (products[i] + d, eps_arr[i] / 2)]
                for delta, p in outcomes:
                    if p <= 0:
                        continue
                    child = (mask | 1 << i, total + delta)
                    key = (node_name(mask, total), node_name(*child))
                    edges[key] = edges.get(key, 0.0) + float(w_i * p)
                    nxt.add(child)
        states = nxt
    for mask, total in states:
        labels[node_name(mask, total)] = str(total)
    edge_list = [(u, v, p) for (u, v), p in edges.items()]
    reward = {str(problem.correct): 1.0} if str(problem.correct) in labels.values() else None
    return ReasoningDAG.from_edges("start", edge_list, labels, reward=reward,
                                   name=name or f"arithmetic: {problem.text()}")


def arithmetic_task(problem: ArithmeticProblem, view_eps: Sequence[Sequence[float]],
                    *, weights: Sequence[float] | None = None, name: str = "") -> Task:
    """Several views of one problem, each with its own error pattern.

    Views differ as task-preserving rewrites do: view j writes product i as a_i·b_i when i + j is even
    and as b_i·a_i otherwise, and a slip multiplies by the neighbouring second factor, so the wrong
    answers are off by ±(first factor) — different near misses in different views — while the correct
    answer is shared. ``view_eps[j]`` gives view j's per-step slip probabilities (e.g. one weak step).
    The answer space is shared and the correct answer is rewarded at the task level.
    """
    views = []
    for j, eps in enumerate(view_eps):
        slips = [problem.a[i] if (i + j) % 2 == 0 else problem.b[i] for i in range(problem.n_steps)]
        views.append(arithmetic_dag(problem, eps, slip=slips, name=f"view{j}"))
    views = [v.with_reward(None) for v in views]
    labels = set(itertools.chain.from_iterable(v.answers for v in views))
    reward = {str(problem.correct): 1.0} if str(problem.correct) in labels else None
    return Task.from_views(views, weights=weights, reward=reward, name=name or f"arithmetic task: {problem.text()}")


def default_arithmetic_dag() -> ReasoningDAG:
    """The embedded default of the main job: 4·7 + 6·8 + 9·3 + 5·6 with 12 % slips per step."""
    return arithmetic_dag(ArithmeticProblem(a=(4, 6, 9, 5), b=(7, 8, 3, 6)), eps=0.12, name="default arithmetic")
