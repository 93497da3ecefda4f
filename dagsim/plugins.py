"""Routes for user-defined objective families (``--objective-module``, issue #17).

The loader (:mod:`dagsim.objectives.user`) registers and validates the family; this module runs it:

* :func:`solve_user` — the (E2) optimum: the family's closed form when it gives one, else cvxpy ground
  truth when it gives ``cvxpy_pieces``, else the exact dual solver when it is a ``SeparableObjective``
  (``coordinate_response``), else the game dynamics (concave regime, T1) or the trace-level L-BFGS
  (P3). When the answer is not already certified by the game, the game's equilibrium is computed too
  and compared (``game_check``): T1 says they coincide for a concave family.
* :func:`equilibrium` — mirror ascent with the Target best-responding (T6c), step halved on divergence.
* :func:`register_group_reward` / :func:`algorithm_with` — the simulator's hooks: the family's per-sample
  group reward (its own ``count_reward_table`` / ``group_reward`` when it gives one, else the plug-in
  ∇Φ(q̂) at the group's self-inclusive frequencies q̂ = C/G) and an algorithm that accepts the family.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from dagsim.errors import DomainError, SolverError
from dagsim.objectives.user import USER_NAMES, UserFamily

#: Mirror-ascent steps tried by :func:`equilibrium`, in units of 1/β (halved on divergence).
EQUILIBRIUM_STEPS = (0.2, 0.05, 0.0125)
#: Iteration cap of one mirror-ascent try.
EQUILIBRIUM_ITERATIONS = 20_000
#: Exploitability (E4) at which the equilibrium counts as reached: E4's float64 floor (dynamics.py) ×10.
EQUILIBRIUM_TOL = 1e-12

#: The plug-in group reward, as reported by ``simulate``.
PLUGIN_DESCRIPTION = ("plug-in: sample i gets ∇Φ(q̂)(z_i) at the group's self-inclusive frequencies q̂ = C/G; "
                      "biased at finite G unless Φ is linear: a count function's mean is a polynomial of "
                      "degree < G (T8) and even q̂ itself has mean 1/G + (G−1)ν/G (T7); the exact effective "
                      "reward ḡ_G and its finite-G stationary point are T10's, and 'dagsim check "
                      "--objective-module' measures the stationary point's distance to ν*")
TABLE_DESCRIPTION = ("the family's own count_reward_table: sample i gets T[z_i, C_i] with C_i the other "
                     "samples' count of z_i; its bias is the table's (T7/T8), measured by "
                     "'dagsim check --objective-module'")
GROUP_DESCRIPTION = ("the family's own group_reward(answers, ctx) on the whole group; its bias is its own, "
                     "measured by 'dagsim check --objective-module'")


# ---------------------------------------------------------------------- solve
def equilibrium(game, *, start=None, iterations: int = EQUILIBRIUM_ITERATIONS, tol: float = EQUILIBRIUM_TOL):
    """The game's equilibrium by mirror ascent (T6c), the smallest step of :data:`EQUILIBRIUM_STEPS` needed.

    Returns the :class:`~dagsim.game.dynamics.GameRun` whose exploitability is ≤ ``tol``; raises
    :class:`SolverError` when no step reaches it (a non-concave family may have none).
    """
    from dagsim.game import dynamics as dyn

    tried = []
    for unit in EQUILIBRIUM_STEPS:
        step = unit / game.beta
        try:
            run = dyn.mirror_ascent(game, iterations, step, start=start, tol=tol)
        except SolverError as exc:  # left the interior: halve the step
            tried.append(f"step {step:.3g}: {exc}")
            continue
        if run.exploitability <= tol:
            return run
        tried.append(f"step {step:.3g}: exploitability {run.exploitability:.3g} after {run.iterations} iterations")
    raise SolverError("the game dynamics did not reach an equilibrium (" + "; ".join(tried) + ")")


def solve_family(obj, family: UserFamily, nu0: np.ndarray, beta: float, constraints=(), method: str = "auto",
                 answers=None, *, game_check: bool = True):
    """Solve (E2) for an instance ``obj`` of a user family; returns ``(AnswerSolution or None, extra)``.

    ``method``: as ``dagsim solve --method`` ("auto" picks the route of the module docstring; "trace"
    is the caller's). ``extra`` holds ``route`` and ``why`` (what ran and why) and, for a solution the
    game did not produce, ``game_check`` (unless ``game_check=False``): the game's equilibrium (T1) and
    its distance to the solution.
    ``None`` for the solution means: no solver applies and (E2) is not concave, use the trace route.
    """
    from dagsim.game.payoff import AnswerGame
    from dagsim.solvers import solve_answer_level
    from dagsim.solvers.result import assemble

    nu0 = np.asarray(nu0, dtype=np.float64)
    answers = tuple(str(z) for z in range(nu0.size)) if answers is None else tuple(answers)
    game = AnswerGame(obj, nu0[None, :], beta, np.ones(1), tuple(constraints))
    closed = None if constraints else (obj.closed_form(nu0, beta) if family.has_closed_form else None)
    if method == "auto":
        if closed is not None:
            method, why = "closed-form", "the family gives a closed form"
        elif family.has_cvxpy:
            method, why = "cvxpy", "the family gives cvxpy_pieces: cvxpy ground truth"
        elif family.separable and obj.dual_is_exact(beta):
            method, why = "dual", "the family is a SeparableObjective: the exact dual solver"
        elif constraints:
            raise DomainError(f"objective {family.name!r} has constraints but neither cvxpy_pieces nor a "
                              "SeparableObjective's coordinate_response: no solver handles them")
        elif obj.is_concave_regime(beta):
            method, why = "game", "no closed form, cvxpy pieces or dual: the game dynamics (concave regime, T1)"
        else:
            return None, {"route": "trace", "why": "no closed form, cvxpy pieces or dual, and (E2) is not "
                                                   "concave: trace-level L-BFGS (a local optimum)"}
    else:
        why = f"--method {method}"
    if method == "game":
        run = equilibrium(game)
        status = "optimal" if obj.is_concave_regime(beta) else "stationary"
        sol = assemble(obj, run.nus[0], nu0, beta, (), None, method="game", solver="mirror-ascent", status=status,
                       note=f"equilibrium of the game (E4 = {run.exploitability:.2e} after {run.iterations} "
                            "iterations)")
        return sol, {"route": "game", "why": why}
    sol = solve_answer_level(obj, nu0, beta, constraints=constraints, method=method)
    extra = {"route": sol.method, "why": why}
    if game_check and not constraints:
        try:
            run = equilibrium(game)
        except SolverError as exc:
            extra["game_check"] = {"error": str(exc)}
        else:
            extra["game_check"] = {"dynamics": "mirror", "iterations": run.iterations,
                                   "exploitability": float(run.exploitability),
                                   "max_abs_diff": float(np.abs(run.nus[0] - sol.nu).max()),
                                   "answer_distribution": {a: float(x) for a, x in zip(answers, run.nus[0])}}
    return sol, extra


def solve_problem(prob):
    """The optimum of an :class:`~dagsim.problem.AnswerProblem`: a user family's route (:func:`solve_family`),
    else :func:`~dagsim.solvers.solve_answer_level` ("auto"). What the simulator measures distances to."""
    from dagsim.objectives.user import family_of
    from dagsim.solvers import solve_answer_level

    family = family_of(prob.objective)
    if family is None:
        return solve_answer_level(prob.objective, prob.nu0, prob.beta, constraints=prob.constraints)
    sol, extra = solve_family(prob.objective, family, prob.nu0, prob.beta, prob.constraints, "auto", prob.answers,
                              game_check=False)
    if sol is None:
        raise DomainError(f"objective {family.name!r}: {extra['why']}; the simulator needs the exact optimum "
                          "(give cvxpy_pieces, a closed form or a SeparableObjective)")
    return sol


def solve_user(prob, family: UserFamily, method: str = "auto"):
    """:func:`solve_family` for an :class:`~dagsim.problem.AnswerProblem` (what ``dagsim solve`` runs)."""
    return solve_family(prob.objective, family, prob.nu0, prob.beta, prob.constraints, method, prob.answers)


# ---------------------------------------------------------------------- simulate
def _plugin_rewards(family: UserFamily):
    def group_reward(answers: np.ndarray, ctx) -> np.ndarray:
        """(B, G) answers -> (B, G) rewards ∇Φ(q̂)(z_i), q̂ = the group's answer counts / G."""
        obj = family.make(ctx.n_answers, reward=ctx.task_reward, tau=ctx.tau, order=ctx.order)
        B, G = answers.shape
        counts = np.zeros((B, ctx.n_answers))
        np.add.at(counts, (np.repeat(np.arange(B), G), answers.ravel()), 1.0)
        freqs = counts / G  # (B, K), every answer present in a group has q̂ ≥ 1/G
        out = np.empty((B, G))
        cache: dict[bytes, np.ndarray] = {}
        for b in range(B):
            key = counts[b].tobytes()
            g = cache.get(key)
            if g is None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    g = np.asarray(obj.reward(freqs[b]), dtype=np.float64)
                cache[key] = g
            out[b] = g[answers[b]]
        if not np.all(np.isfinite(out)):
            raise DomainError(f"objective {family.name!r}: the plug-in reward ∇Φ(q̂) is not finite at a group's "
                              "frequencies")
        return out

    return group_reward


class _Estimates:
    """``estimates`` of a family's ``count_reward_table(ctx, estimates)``: the estimator's (G,) tables of
    p^a and log p, designed for ``ctx.table_size`` samples (T11a) — as the built-in count rewards use."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def log(self) -> np.ndarray:
        from dagsim.grpo.rewards import _log_table

        return _log_table(self.ctx)

    def power(self, exponent: float) -> np.ndarray:
        from dagsim.estimators import power_estimator_table
        from dagsim.grpo.rewards import _power_kind, _sized_table

        kind = _power_kind(self.ctx.estimator)
        return _sized_table(self.ctx, lambda n: power_estimator_table(n, exponent, kind))


def count_estimates(ctx):
    """The ``estimates`` argument of ``count_reward_table`` (``dagsim.grpo.rewards.CountEstimates`` where the
    family refactor provides it)."""
    from dagsim.grpo import rewards as R

    cls = getattr(R, "CountEstimates", None)
    return cls(ctx) if cls is not None else _Estimates(ctx)


def _table_rewards(family: UserFamily):
    def table(ctx) -> np.ndarray:
        t = np.asarray(family.cls.count_reward_table(ctx, count_estimates(ctx)), dtype=np.float64)
        if t.shape != (ctx.n_answers, ctx.group_size) or not np.all(np.isfinite(t)):
            raise DomainError(f"objective {family.name!r}: count_reward_table must give a finite "
                              f"({ctx.n_answers}, {ctx.group_size}) array, got shape {t.shape}")
        return t

    return table


def register_group_reward(family: UserFamily) -> str:
    """Register the family's GRPO group reward under its name (replacing a previous load's).

    Returns its kind: "table" (the family's ``count_reward_table``), "group" (its ``group_reward``) or
    "plugin" (∇Φ(q̂) at the group's frequencies, :data:`PLUGIN_DESCRIPTION`).
    """
    from dagsim.grpo import rewards as R

    R.REWARD_OBJECTIVES.pop(family.name, None)
    USER_NAMES.add(family.name)
    if family.reward_hook == "table":
        R.count_objective(family.name)(_table_rewards(family))
        return "table"
    if family.reward_hook == "group":
        R.group_objective(family.name)(family.cls.group_reward)
        return "group"
    R.group_objective(family.name)(_plugin_rewards(family))
    return "plugin"


#: Algorithms that can train a user family: their group reward is the objective's own (no fixed baseline
#: reward such as ttrl/empo, no multi-view coupling, not the task reward alone).
USER_ALGORITHMS = ("diversity-grpo", "coherence-grpo", "constrained-grpo")


@contextlib.contextmanager
def algorithm_with(algorithm: str, family: UserFamily):
    """Within the block, ``algorithm`` accepts the family as its objective (and defaults to it)."""
    from dagsim.grpo import algorithms as A

    if algorithm not in USER_ALGORITHMS:
        raise DomainError(f"--objective-module trains with --algorithm in {list(USER_ALGORITHMS)} (their group "
                          f"reward is the objective's own), got {algorithm!r}")
    original = A.ALGORITHMS[algorithm]
    A.ALGORITHMS[algorithm] = dataclasses.replace(
        original, default_objective=family.name, allowed_objectives=(*original.allowed_objectives, family.name))
    try:
        yield
    finally:
        A.ALGORITHMS[algorithm] = original
