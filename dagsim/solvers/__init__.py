"""Solvers of the answer-level programs (E2)/(E5): closed forms, a fast exact dual solver, cvxpy ground truth.

from dagsim.solvers import solve_answer_level
sol = solve_answer_level(obj, nu0, beta, constraints=(), method="auto")  # AnswerSolution
"""

from dagsim.solvers.answer_level import METHODS, solve_answer_level
from dagsim.solvers.cvx import solve_cvxpy
from dagsim.solvers.exact import solve_exact
from dagsim.solvers.result import AnswerSolution, kkt_residual

__all__ = ["METHODS", "AnswerSolution", "kkt_residual", "solve_answer_level", "solve_cvxpy", "solve_exact"]
