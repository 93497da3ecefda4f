"""Named tolerances shared by the claim checks (:mod:`proofs_check`) and the test suite (STYLE: named
tolerances), each with the reason for its value. A tolerance used by one module only stays in that module.
"""

#: ν from cvxpy vs the exact solvers: cvxpy's ν is as accurate as ~sqrt(gap/β), and CLARABEL's option
#: ladder (solvers/cvx.py) may end on its default gap 1e-8, i.e. ν to ~1e-5 (measured max 1.4e-6 over 125
#: random T1 instances); the fast solvers are certified to KKT 1e-10.
CVXPY_NU = 1e-5
#: cvxpy's (CLARABEL's) duals of the exponential-cone program vs exact multipliers (dual Newton at KKT 1e-10,
#: converged dual ascent): measured up to ~2e-5 apart.
CVXPY_DUAL = 1e-4
#: scipy L-BFGS on softmax logits stops at a gradient ~1e-10–1e-13; the maximizer then agrees to ~1e-8 (P3).
LBFGS = 1e-6
#: E4 at the optimum: a difference of O(1) float64 terms (round-off ~1e-15·K·|J|) plus β·O(KKT²) of the fast
#: solver (≤ 1e-20).
EXPLOITABILITY = 1e-10
#: Inequalities that hold exactly between O(1) float64 quantities: round-off slack only.
ROUND = 1e-11
#: The same float64 sums in different orders (DP vs enumeration of traces; sums of ≤ G·K terms of size
#: O(1)): rounding only.
FLOAT64_SUMS = 1e-12
#: THEORY T12's values are quoted to 3–5 digits: 1 % relative.
T12_QUOTED = 1e-2
#: Damped best response mixes in ν-space (nonlinear): its rate measured from a small deviation (≤ 1e-4) is
#: the linearization's up to O(deviation) corrections.
DAMPED_RATE = 1e-3
