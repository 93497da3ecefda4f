"""An independent, high-precision oracle for T8: the best uniform approximation of p·log p by span{p, …, p^G}.

T8's minimax count table f (``f(C)`` estimates log p from ``C ~ Bin(G−1, p)``) minimizes
``B(f) = sup_{p∈[0,1]} |p·E_p f(C) − p log p|``. Since ``p·E_p f(C) = Σ_{k=1}^{G} a_k p^k`` ranges over the
Haar space span{p, …, p^G} on (0, 1], the optimum is unique and characterized by equioscillation at G+1
points (Chebyshev's alternation theorem). This module computes it by the classical Remez exchange in mpmath
(``mp.dps`` well above the ~0.3·G decimal digits of cancellation in the monomial coefficients), with no code
shared with ``dagsim.estimators`` (an LP in a Chebyshev basis): the two methods agree only if both are right.

Each Remez round solves the (G+1)×(G+1) linear system ``e(x_i) = (−1)^i E`` on the reference set, brackets the
G roots of e between consecutive reference points (bisection), and moves each reference point to the extremum
of ±e in its bracket (golden section, then Newton on e'). It stops when the G+1 values |e(x_i)| agree to
``REMEZ_LEVEL_RTOL`` relative. This module registers no check.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import mpmath as mp

#: Convergence: the reference set's |e(x_i)| agree to this relative spread (Remez converges quadratically;
#: measured 1e-31..1e-40 after 6 rounds at G = 4..64).
REMEZ_LEVEL_RTOL = mp.mpf(10) ** -24
REMEZ_MAX_ROUNDS = 40
#: The roots of e only bracket the extrema (which Newton then resolves to full precision): bisect them to this
#: relative width.
ROOT_RTOL = mp.mpf(10) ** -15
#: Golden-section steps per bracket before Newton polishes the extremum (0.618^40 ~ 4e-9 of the bracket).
GOLDEN_STEPS = 40
NEWTON_STEPS = 20


def working_digits(G: int) -> int:
    """Decimal digits for group size G: the monomial coefficients a_k reach ~10^{0.3 G} and cancel to O(1)."""
    return max(40, int(0.6 * G) + 40)


@dataclass(frozen=True)
class BestApproximation:
    """The minimax solution at group size G, in mpmath numbers (``mp.dps`` = ``digits`` when computed)."""

    G: int
    digits: int
    monomial: tuple  # a_1..a_G: p·E f(C) = Σ a_k p^k
    level: object  # E*_G = B(f*) (mpf, > 0)
    reference: tuple  # the G+1 alternation points in (0, 1], increasing
    reference_errors: tuple  # e(x_i), alternating in sign, |e(x_i)| = E*_G
    rounds: int

    def table(self) -> list:
        """The count table f*(c), c = 0..G−1: the Bernstein coefficients of Σ a_k p^{k−1} (degree G−1),
        ``f_c = Σ_{j≤c} C(c, j)/C(G−1, j)·a_{j+1}`` (exact in the working precision)."""
        n = self.G - 1
        with mp.workdps(self.digits):
            return [mp.fsum(mp.binomial(c, j) / mp.binomial(n, j) * self.monomial[j] for j in range(c + 1))
                    for c in range(n + 1)]

    def error(self, p) -> object:
        """e(p) = Σ a_k p^k − p log p at one point (mpf)."""
        with mp.workdps(self.digits):
            return _error(self.monomial, mp.mpf(p))


def _error(a, p):
    return mp.polyval(list(a[::-1]) + [0], p) - (p * mp.log(p) if p > 0 else mp.mpf(0))


def _error_d1(a, p):
    return mp.polyval([k * a[k - 1] for k in range(len(a), 0, -1)], p) - mp.log(p) - 1


def _error_d2(a, p):
    return mp.polyval([k * (k - 1) * a[k - 1] for k in range(len(a), 1, -1)], p) - 1 / p


@functools.cache  # a pure function of G (a check and its control both ask for it)
def remez_log(G: int) -> BestApproximation:
    """Best uniform approximation of p log p on [0, 1] by span{p, …, p^G} (T8's E*_G and its table)."""
    if int(G) != G or G < 2:
        raise ValueError(f"group size G must be an integer >= 2, got {G!r}")
    G = int(G)
    digits = working_digits(G)
    with mp.workdps(digits):
        x = [mp.sin(mp.pi * (i + 1) / (2 * (G + 1))) ** 2 for i in range(G + 1)]  # start: sin² nodes, x_G = 1
        tiny = mp.mpf(10) ** (-digits + 8)
        rounds = 0
        while rounds < REMEZ_MAX_ROUNDS:
            rounds += 1
            A = mp.matrix(G + 1, G + 1)
            b = mp.matrix(G + 1, 1)
            for i, xi in enumerate(x):
                for k in range(1, G + 1):
                    A[i, k - 1] = xi ** k
                A[i, G] = (-1) ** i
                b[i] = xi * mp.log(xi)
            sol = mp.lu_solve(A, b)
            a = tuple(sol[k] for k in range(G))
            roots = []
            for i in range(G):  # e alternates on the reference set: one root per gap
                lo, hi = x[i], x[i + 1]
                f_lo = _error(a, lo)
                while hi - lo > ROOT_RTOL * hi:
                    mid = (lo + hi) / 2
                    f_mid = _error(a, mid)
                    if mp.sign(f_mid) == mp.sign(f_lo):
                        lo, f_lo = mid, f_mid
                    else:
                        hi = mid
                roots.append((lo + hi) / 2)
            bounds = [x[0] / 8, *roots, mp.mpf(1)]
            new = [_extremum(a, bounds[i], bounds[i + 1], mp.sign(_error(a, x[i])), last=i == G, tiny=tiny)
                   for i in range(G + 1)]
            errors = [_error(a, p) for p in new]
            levels = [abs(e) for e in errors]
            x = new
            if (max(levels) - min(levels)) <= REMEZ_LEVEL_RTOL * max(levels):
                break
        return BestApproximation(G, digits, a, max(levels), tuple(x), tuple(errors), rounds)


def _extremum(a, lo, hi, sign, *, last: bool, tiny):
    """argmax of sign·e on [lo, hi] (golden section, then Newton on e' kept inside the bracket); the last
    bracket ends at p = 1, where the extremum may sit at the endpoint."""
    golden = (mp.sqrt(5) - 1) / 2
    a0, b0 = lo, hi
    c, d = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fc, fd = sign * _error(a, c), sign * _error(a, d)
    for _ in range(GOLDEN_STEPS):
        if fc > fd:
            hi, d, fd = d, c, fc
            c = hi - golden * (hi - lo)
            fc = sign * _error(a, c)
        else:
            lo, c, fc = c, d, fd
            d = lo + golden * (hi - lo)
            fd = sign * _error(a, d)
    p = (lo + hi) / 2
    if last and sign * _error(a, mp.mpf(1)) >= sign * _error(a, p):
        return mp.mpf(1)
    for _ in range(NEWTON_STEPS):
        step = _error_d1(a, p) / _error_d2(a, p)
        if not a0 < p - step <= b0:
            break
        p -= step
        if abs(step) <= tiny * p:
            break
    return p
