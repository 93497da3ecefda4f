"""Benchmark: iterations and time for each game dynamics to reach exploitability ≤ 1e-10 (entropy objective,
τ < β), with the empirical linear rate next to the theoretical one (THEORY T6), in one run.

Theory (deviation of log ν from the optimum, per iteration; exploitability decays as its square):
best response τ/β; mirror ascent 1 − η(β+τ); extragradient 1 − η(β+τ) + η²(β+τ)²; no-regret averaging O(1/√T).
Run: python bench/bench_dynamics.py [--answers 50] [--beta 1] [--tau 0.5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dagsim.game import dynamics as dyn
from dagsim.game.payoff import AnswerGame
from dagsim.objectives import make_objective

TARGET = 1e-10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--answers", type=int, default=50)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--eta", type=float, default=0.4)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    nu0 = rng.dirichlet(np.ones(args.answers))
    obj = make_objective("entropy", n_answers=args.answers, reward=rng.normal(size=args.answers), tau=args.tau)
    game = AnswerGame(obj, nu0[None, :], args.beta, np.ones(1))
    b, t, eta = args.beta, args.tau, args.eta
    a = b + t
    rules = [("best-response", lambda: dyn.damped_best_response(game, 10_000, 1.0, tol=TARGET), (t / b) ** 2),
             ("mirror", lambda: dyn.mirror_ascent(game, 10_000, eta, tol=TARGET), (1 - eta * a) ** 2),
             ("extragradient", lambda: dyn.extragradient(game, 10_000, eta, tol=TARGET),
              (1 - eta * a + (eta * a) ** 2) ** 2),
             ("no-regret", lambda: dyn.no_regret(game, 2_000, eta), None)]
    print(f"entropy objective, K = {args.answers}, β = {b}, τ = {t}, η = {eta}; target exploitability {TARGET:g}")
    print(f"{'dynamics':15s} {'iterations':>10s} {'time (ms)':>10s} {'final expl.':>12s} {'rate':>8s} {'theory':>8s}")
    for name, fn, theory in rules:
        t0 = time.perf_counter()
        run = fn()
        dt = time.perf_counter() - t0
        hit = next((h["iteration"] for h in run.history if h["exploitability"] <= TARGET), None)
        rate = run.rate()
        print(f"{name:15s} {str(hit) if hit is not None else '>' + str(run.iterations):>10s} {1e3 * dt:10.1f} "
              f"{run.exploitability:12.2e} {rate if rate is not None else float('nan'):8.4f} "
              f"{theory if theory is not None else float('nan'):8.4f}")
    print("(no-regret reports its average iterate, which converges sublinearly: no linear rate)")


if __name__ == "__main__":
    main()
