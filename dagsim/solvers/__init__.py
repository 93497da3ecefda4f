"""Solvers of the answer-level programs (E2)/(E5): closed forms, a fast exact dual solver, cvxpy ground truth.

from dagsim.solvers import solve_answer_level
sol = solve_answer_level(problem, method="auto")                          # problem: dagsim.problem.AnswerProblem
sol = solve_answer_level(obj, nu0, beta, constraints=(), method="auto")   # AnswerSolution

Layout: ``answer_level`` (the entry point, ``--method``), ``exact`` (the family's closed form or exact
solver), ``dual`` (the shared separable dual-Newton solver), ``collision`` / ``sharpen`` / ``majority`` /
``consensus`` / ``pairwise`` (the special solvers), ``cvx`` (ground truth), ``trace`` (edge logits, P3),
``result`` (the checked solution, KKT certificate), ``common`` (tolerances, problem plumbing).
"""

from dagsim.solvers.answer_level import METHODS, solve_answer_level
from dagsim.solvers.cvx import solve_cvxpy
from dagsim.solvers.exact import solve_dual, solve_exact
from dagsim.solvers.result import AnswerSolution, kkt_residual

__all__ = [
    "METHODS",
    "AnswerSolution",
    "kkt_residual",
    "solve_answer_level",
    "solve_cvxpy",
    "solve_dual",
    "solve_exact",
]
