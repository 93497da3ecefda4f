"""Benchmark: the fast exact answer-level solver against cvxpy on (E2), K = 10 … 10000 answers.

Problems (random ν0 with a floor, task reward r ~ N(0, 1), β = 0.5, τ = 1):
  * entropy                 — fast = the Newton dual engine (closed form bypassed); reference = closed form;
  * gini                    — fast = Newton dual; reference = 40-digit mpmath solution (Lambert W + Newton);
  * entropy + 1 constraint  — P(first half of the answers) ≤ half its unconstrained value (active);
                              reference = 40-digit mpmath solution of the 1-D multiplier equation.
Columns: wall time of each (fast: best of --repeats; cvxpy: one solve including problem construction,
CLARABEL with the option ladder of dagsim.solvers.cvx, SCS if every rung is inaccurate), the speed-up
measured in this run, and the max-abs error of ν against the reference; the last columns time a single
CLARABEL solve at its default tolerance (the cheapest acceptable cvxpy call, ν only to ~1e-7) and the
speed-up against it. cvxpy runs in a child process and is skipped past --cvxpy-timeout s.
Run: OMP_NUM_THREADS=1 python bench/bench_solvers.py [--sizes 10 100 1000 10000 --repeats 5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp_proc
import time

import cvxpy  # noqa: F401  imported before forking, so the child's cvxpy time excludes the ~1 s import
import mpmath
import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.objectives import make_objective
from dagsim.solvers import solve_cvxpy, solve_exact
from dagsim.solvers.exact import separable_dual

#: Digits of the mpmath references (far beyond float64, so their own error is negligible).
REFERENCE_DIGITS = 40
BETA, TAU = 0.5, 1.0


def instance(k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    nu0 = rng.uniform(0.05, 1.0, size=k)
    nu0 /= nu0.sum()
    r = rng.normal(size=k)
    return nu0, r


def unsafe_constraint(nu0: np.ndarray, r: np.ndarray) -> LinearConstraint:
    h = (np.arange(nu0.size) < nu0.size // 2).astype(float)
    free = make_objective("entropy", n_answers=nu0.size, reward=r, tau=TAU).closed_form(nu0, BETA)
    return LinearConstraint(h, "<=", 0.5 * float(h @ free), "unsafe")


def reference_gini(nu0: np.ndarray, r: np.ndarray) -> np.ndarray:
    """β log ν + 2τν = a − μ with a = β log ν0 + r − β: ν = (β/2τ) W((2τ/β) e^{(a−μ)/β}); μ by Newton."""
    mpmath.mp.dps = REFERENCE_DIGITS
    beta, tau = mpmath.mpf(BETA), mpmath.mpf(TAU)
    a = [beta * mpmath.log(mpmath.mpf(p)) + mpmath.mpf(x) - beta for p, x in zip(nu0, r, strict=False)]

    def nus(mu):
        return [beta / (2 * tau) * mpmath.lambertw(2 * tau / beta * mpmath.exp((ai - mu) / beta)).real for ai in a]

    mu = mpmath.mpf(float(BETA * np.log(np.sum(nu0 * np.exp(r / BETA)))) - BETA)
    for _ in range(100):
        v = nus(mu)
        total = mpmath.fsum(v)
        slope = -mpmath.fsum(vi / (beta + 2 * tau * vi) for vi in v)  # dΣν/dμ
        step = (total - 1) / slope
        mu -= step
        if abs(step) < mpmath.mpf(10) ** (-REFERENCE_DIGITS + 5):
            break
    return np.array([float(x) for x in nus(mu)])


def reference_entropy_constrained(nu0: np.ndarray, r: np.ndarray, c: LinearConstraint) -> np.ndarray:
    """ν ∝ exp((β log ν0 + r − λh)/(β+τ)) with λ ≥ 0 solving ⟨h, ν(λ)⟩ = b (active), by Newton in mpmath."""
    mpmath.mp.dps = REFERENCE_DIGITS
    beta, tau = mpmath.mpf(BETA), mpmath.mpf(TAU)
    base = [(beta * mpmath.log(mpmath.mpf(p)) + mpmath.mpf(x)) / (beta + tau) for p, x in zip(nu0, r, strict=False)]
    h = [mpmath.mpf(v) for v in c.coef]
    b = mpmath.mpf(c.bound)

    def nus(lam):
        w = [mpmath.exp(bi - lam * hi / (beta + tau)) for bi, hi in zip(base, h, strict=False)]
        s = mpmath.fsum(w)
        return [wi / s for wi in w]

    lam = mpmath.mpf(0)
    for _ in range(200):
        v = nus(lam)
        mean = mpmath.fsum(vi * hi for vi, hi in zip(v, h, strict=False))
        var = mpmath.fsum(vi * (hi - mean) ** 2 for vi, hi in zip(v, h, strict=False))
        step = (mean - b) / (var / (beta + tau))  # d⟨h,ν⟩/dλ = −Var/(β+τ)
        lam += step
        if abs(step) < mpmath.mpf(10) ** (-REFERENCE_DIGITS + 5):
            break
    return np.array([float(x) for x in nus(lam)])


def best_time(fn, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _cvxpy_child(queue, name, k, constrained, options):
    nu0, r = instance(k)
    obj = make_objective(name, n_answers=k, reward=r, tau=TAU)
    cons = [unsafe_constraint(nu0, r)] if constrained else []
    t0 = time.perf_counter()
    sol = solve_cvxpy(obj, nu0, BETA, cons, **options)
    queue.put((time.perf_counter() - t0, sol.nu, sol.solver))


def run_cvxpy(name: str, k: int, constrained: bool, timeout: float, options: dict | None = None):
    """cvxpy in a child process (so that a slow solve can be stopped); None past the timeout or on error."""
    ctx = mp_proc.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_cvxpy_child, args=(queue, name, k, constrained, options or {}))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None
    return queue.get() if not queue.empty() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cvxpy-timeout", type=float, default=60.0)
    args = ap.parse_args()
    print(f"beta={BETA} tau={TAU}; errors are max |nu - reference|; cvxpy time includes problem construction")
    header = (
        f"{'problem':<22}{'K':>7}{'fast [s]':>12}{'cvxpy [s]':>12}{'speed-up':>10}{'fast err':>11}"
        f"{'cvxpy err':>11}{'CLAR-dflt [s]':>15}{'speed-up':>10}  fast solver"
    )
    print(header)
    print("-" * len(header))
    notes = []
    for name, constrained in [("entropy", False), ("gini", False), ("entropy", True)]:
        label = name + (" + 1 constraint" if constrained else "")
        for k in args.sizes:
            nu0, r = instance(k)
            obj = make_objective(name, n_answers=k, reward=r, tau=TAU)
            if name == "entropy" and not constrained:
                reference = obj.closed_form(nu0, BETA)
                t_fast, res = best_time(lambda o=obj, n=nu0: separable_dual(o, n, BETA), args.repeats)
                nu_fast, how = res.nu, "newton-dual (closed form bypassed)"
            else:
                cons = [unsafe_constraint(nu0, r)] if constrained else []
                t_fast, sol = best_time(lambda o=obj, n=nu0, c=cons: solve_exact(o, n, BETA, c), args.repeats)
                nu_fast, how = sol.nu, sol.solver
                reference = reference_entropy_constrained(nu0, r, cons[0]) if constrained else reference_gini(nu0, r)
            fast_err = float(np.max(np.abs(nu_fast - reference)))
            out = run_cvxpy(name, k, constrained, args.cvxpy_timeout)
            default = run_cvxpy(
                name, k, constrained, args.cvxpy_timeout, {"solvers": ("CLARABEL",), "solver_options": {"CLARABEL": {}}}
            )
            t_def = f"{default[0]:>15.2e}{default[0] / t_fast:>9.0f}x" if default else f"{'skipped':>15}{'':>10}"
            if out is None:
                notes.append(f"{label}, K={k}: cvxpy skipped (no result within {args.cvxpy_timeout:g} s)")
                cv_t = cv_err = speed = "skipped"
                print(
                    f"{label:<22}{k:>7}{t_fast:>12.2e}{cv_t:>12}{speed:>10}{fast_err:>11.1e}{cv_err:>11}{t_def}  {how}"
                )
                continue
            t_cvx, nu_cvx, backend = out
            cv_err = float(np.max(np.abs(nu_cvx - reference)))
            print(
                f"{label:<22}{k:>7}{t_fast:>12.2e}{t_cvx:>12.2e}{t_cvx / t_fast:>9.0f}x{fast_err:>11.1e}"
                f"{cv_err:>11.1e}{t_def}  {how} (cvxpy: {backend})",
                flush=True,
            )
    for line in notes:
        print("note:", line)


if __name__ == "__main__":
    main()
