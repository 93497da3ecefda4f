"""From a DAG/task and an objective name to the answer-level problem: ν0, objective, constraints, game.

The single place where the CLI, the simulator and the figure scripts turn user choices
(``--objective``, ``--tau``, ``--order``, ``--consensus``) into objects, so they agree on defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG, Task
from dagsim.errors import DomainError
from dagsim.marginals import answer_marginal


def multiview_objectives() -> tuple[str, ...]:
    """The registered families that take several views (a task file), read from their ``multiview`` flag."""
    from dagsim.objectives import families_where

    return families_where("multiview")


#: The built-in multi-view families at import time (kept for callers; :func:`multiview_objectives` also sees
#: families registered later).
MULTIVIEW_OBJECTIVES = multiview_objectives()


@dataclass(frozen=True)
class AnswerProblem:
    """Everything the answer-level solvers and the game need for one prompt: Φ, ν0, β, the constraints.

    The solvers (``dagsim.solvers``) take one of these; :meth:`of` builds one from arrays alone (no DAG:
    ``answers`` and ``views`` are then empty).
    """

    objective: object
    nu0: np.ndarray  # (K,) single view or (m, K) multi-view
    beta: float
    weights: np.ndarray  # (m,)
    constraints: tuple = ()
    answers: tuple[str, ...] = ()
    reward: np.ndarray | None = None  # (K,)
    views: tuple[ReasoningDAG, ...] = ()

    @classmethod
    def of(cls, objective, nu0, beta, constraints=()) -> AnswerProblem:
        """The answer-level instance (objective, ν0, β, constraints) without a DAG; nothing validated here
        (the solvers validate once, see ``dagsim.solvers.common.checked``)."""
        weights = getattr(objective, "weights", None)
        return cls(objective, nu0, beta, np.ones(1) if weights is None else weights, tuple(constraints),
                   reward=getattr(objective, "task_reward", None))

    @property
    def multiview(self) -> bool:
        return np.ndim(self.nu0) == 2

    def game(self):
        from dagsim.game.payoff import AnswerGame

        return AnswerGame(self.objective, np.atleast_2d(self.nu0), self.beta, self.weights, self.constraints)


def build_problem(model: ReasoningDAG | Task, objective: str, *, beta: float, tau: float | None = None,
                  order: float | None = None, consensus: str | None = None) -> AnswerProblem:
    """Build the objective named ``objective`` for a DAG (single view) or task (multi-view).

    A task given to a single-view objective is an error (say which objectives take tasks); a single
    DAG given to a multi-view objective is treated as a one-view task.
    """
    from dagsim.objectives import family, family_parameters, make_objective

    if not (np.isfinite(beta) and beta > 0):
        raise DomainError(f"--beta must be a finite number > 0, got {beta!r}")
    try:
        multiview = family(objective).multiview
    except DomainError:
        multiview = False  # unknown name: make_objective below says which families exist
    if isinstance(model, Task):
        if not multiview:
            if model.n_views == 1:
                model = model.views[0].with_constraints(model.constraints)
            else:
                raise DomainError(f"objective {objective!r} takes a single DAG, but the file is a task with "
                                  f"{model.n_views} views; use one of {list(multiview_objectives())} or pass one view")
    if multiview:
        task = model if isinstance(model, Task) else Task.from_views([model.with_reward(None)],
                                                                      reward=model.reward if model.has_reward else None)
        nu0 = np.stack([answer_marginal(v) for v in task.views])  # (m, K)
        kwargs = {"n_answers": task.n_answers, "reward": task.reward, "tau": tau, "weights": task.weights}
        if "consensus" in family_parameters(objective):
            kwargs["consensus"] = consensus  # None: the family's default
        obj = make_objective(objective, **kwargs)
        return AnswerProblem(obj, nu0, beta, task.weights, tuple(task.constraints), task.answers, task.reward,
                             task.views)
    dag = model
    if consensus is not None:
        raise DomainError(f"--consensus applies to the consensus objective, not {objective!r}")
    obj = make_objective(objective, n_answers=dag.n_answers, reward=dag.reward, tau=tau, order=order)
    return AnswerProblem(obj, answer_marginal(dag), beta, np.ones(1), tuple(dag.constraints), dag.answers,
                         dag.reward, (dag,))
