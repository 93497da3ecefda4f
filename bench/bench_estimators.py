"""Benchmark of the finite-group estimators and GRPO reward machinery (THEORY §6, T8, T10, T11b,
T12).

Prints: the minimax LP time per G with the resulting worst-case p-weighted bias (plug-in for
comparison) and the table's size/noise; the AQP SOCP time vs the shipped-table lookup with every table's
bias and ∫p²Var; the doubly-LOO count path vs the generic O(G²) path; group_rewards throughput on a
32 x 16 batch; the exact effective reward at G = 16, K = 8 by the binomial path and by multinomial enumeration
(same run).

Run: ``OMP_NUM_THREADS=1 python bench/bench_estimators.py``
"""

from __future__ import annotations

import time

import numpy as np

from dagsim import estimators
from dagsim.errors import DomainError
from dagsim.grpo import effective_reward, group_rewards
from dagsim.grpo.effective import n_compositions

LP_GROUP_SIZES = (4, 8, 16, 32, 64)
BATCH_SHAPE = (32, 16)  # (n_groups, G) per simulator step
N_ANSWERS = 8
THROUGHPUT_REPEATS = 300
EFFECTIVE_G, EFFECTIVE_K = 16, 8
BINOMIAL_REPEATS = 200
P_GRID = np.linspace(0.0, 1.0, 4001)  # (n_p,) for the estimator's max standard deviation


def _clear_minimax_caches() -> None:
    # The LP results are lru_cached; clear them so every G is timed from scratch.
    estimators._minimax_solution.cache_clear()
    estimators._minimax_table.cache_clear()


def bench_minimax_lp() -> None:
    print("== minimax log table (T8): LP + exchange, timed from a cold cache ==")
    print(
        f"{'G':>4} {'LP s':>7} {'table s':>8} {'minimax bias':>13} {'plugin bias':>12} "
        f"{'max|f|':>10} {'max std':>10}"
    )
    _clear_minimax_caches()
    for G in LP_GROUP_SIZES:
        t0 = time.perf_counter()
        bias = estimators.minimax_log_bias(G)
        t_lp = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            table = estimators.log_estimator_table(G, "minimax")
            _, var = estimators.exact_bias_variance(table, G, P_GRID)
            size, noise = f"{np.abs(table).max():10.3g}", f"{np.sqrt(var.max()):10.3g}"
        except DomainError:
            size, noise = f"{'refused':>10}", f"{'-':>10}"
        t_table = time.perf_counter() - t0
        plug = estimators.worst_case_bias("plugin", G)
        print(f"{G:>4} {t_lp:7.3f} {t_table:8.3f} {bias:13.4e} {plug:12.4e} {size} {noise}")


AQP_GROUP_SIZES = (8, 16, 32, 64)
DOUBLY_LOO_BATCH = (256, 16)
DOUBLY_LOO_REPEATS = 200


def bench_aqp() -> None:
    """T12: the SOCP solve (cold) vs the shipped-table lookup (what training pays), and each table's bias and
    integrated variance next to the plug-in, minimax and monotone minimax tables."""
    print("\n== AQP tables (T12, κ = 2): SOCP solve vs shipped lookup; B and ∫p²Var ==")
    print(f"{'G':>4} {'solve s':>8} {'lookup us':>10} {'ratio':>9} {'B aqp':>10} {'B mono':>10} {'B plug':>10} "
          f"{'V aqp':>9} {'V mono':>9} {'V plug':>9} {'V minimax':>10}")
    for G in AQP_GROUP_SIZES:
        estimators._aqp_solved.cache_clear()
        t0 = time.perf_counter()
        solved = estimators.aqp_solution(G, use_shipped=False)
        t_solve = time.perf_counter() - t0
        estimators._shipped_aqp()  # parse the JSON once (import-time cost, not per lookup)
        t0 = time.perf_counter()
        for _ in range(100):
            estimators.aqp_solution(G)
        t_look = (time.perf_counter() - t0) / 100
        try:
            v_mm = f"{estimators.integrated_variance('minimax', G):10.3g}"
        except DomainError:
            v_mm = f"{'refused':>10}"
        print(f"{G:>4} {t_solve:8.2f} {t_look * 1e6:10.1f} {t_solve / t_look:9.0f} {solved['worst_case_bias']:10.3e} "
              f"{estimators.worst_case_bias('minimax_monotone', G):10.3e} "
              f"{estimators.worst_case_bias('plugin', G):10.3e} "
              f"{solved['integrated_variance']:9.3g} {estimators.integrated_variance('minimax_monotone', G):9.3g} "
              f"{estimators.integrated_variance('plugin', G):9.3g} {v_mm}")


def bench_doubly_loo(rng: np.random.Generator) -> None:
    """T11b: the O(G) count-table doubly-LOO path vs the generic O(G²) recomputation (same groups)."""
    from dagsim.grpo.advantages import advantages, doubly_loo_advantages, doubly_loo_rule

    B, G = DOUBLY_LOO_BATCH
    print(f"\n== doubly-LOO advantages (T11b), entropy/aqp, batch ({B}, {G}), K = {N_ANSWERS} ==")
    answers = rng.integers(0, N_ANSWERS, size=(B, G))
    kw = dict(tau=1.0, estimator="aqp")
    tables = doubly_loo_rule("entropy", n_answers=N_ANSWERS, group_size=G, **kw)

    def fn(a):
        return group_rewards("entropy", a, n_answers=N_ANSWERS, **kw)

    timings = {}
    for name, rule in (("count tables O(G)", tables), ("generic O(G^2)", fn)):
        doubly_loo_advantages(answers, rule)
        t0 = time.perf_counter()
        for _ in range(DOUBLY_LOO_REPEATS):
            out = doubly_loo_advantages(answers, rule)[0]
        timings[name] = ((time.perf_counter() - t0) / DOUBLY_LOO_REPEATS, out)
    advantages(fn(answers), baseline="rloo")
    t0 = time.perf_counter()
    for _ in range(DOUBLY_LOO_REPEATS):
        advantages(fn(answers), baseline="rloo")
    t_rloo = (time.perf_counter() - t0) / DOUBLY_LOO_REPEATS
    (t_fast, a_fast), (t_gen, a_gen) = timings.values()
    print(f"count path {t_fast * 1e3:8.3f} ms   generic {t_gen * 1e3:8.2f} ms   ratio {t_gen / t_fast:6.1f}x   "
          f"RLOO (rewards + advantages) {t_rloo * 1e3:8.3f} ms   max |difference| {np.abs(a_fast - a_gen).max():.1e}")


def bench_group_rewards(rng: np.random.Generator) -> None:
    print(f"\n== group_rewards throughput, batch {BATCH_SHAPE} (n_groups, G), K = {N_ANSWERS} ==")
    answers = rng.integers(0, N_ANSWERS, size=BATCH_SHAPE)  # (n_groups, G)
    for objective, kw in (
        ("entropy", dict(estimator="minimax")),
        ("gini", dict(estimator="unbiased")),
        ("tsallis", dict(order=2.5, estimator="plugin")),
        ("majority", {}),
        ("ttrl", {}),
    ):
        group_rewards(objective, answers, n_answers=N_ANSWERS, tau=1.0, **kw)  # warm caches
        t0 = time.perf_counter()
        for _ in range(THROUGHPUT_REPEATS):
            group_rewards(objective, answers, n_answers=N_ANSWERS, tau=1.0, **kw)
        dt = (time.perf_counter() - t0) / THROUGHPUT_REPEATS
        print(f"{objective:>9}: {dt * 1e6:8.1f} us/batch  {BATCH_SHAPE[0] / dt:12.0f} groups/s")


def bench_effective(rng: np.random.Generator) -> None:
    G, K = EFFECTIVE_G, EFFECTIVE_K
    print(
        f"\n== effective_reward (T10), entropy/minimax/RLOO, G = {G}, K = {K} "
        f"({n_compositions(G - 1, K)} compositions) =="
    )
    nu = rng.dirichlet(np.ones(K))
    kw = dict(tau=1.0, estimator="minimax")
    effective_reward("entropy", nu, G, **kw)  # warm the LP cache
    t0 = time.perf_counter()
    for _ in range(BINOMIAL_REPEATS):
        fast = effective_reward("entropy", nu, G, method="binomial", **kw)
    t_bin = (time.perf_counter() - t0) / BINOMIAL_REPEATS
    t0 = time.perf_counter()
    slow = effective_reward("entropy", nu, G, method="enumerate", **kw)
    t_enum = time.perf_counter() - t0
    print(f"binomial   : {t_bin * 1e3:9.3f} ms/call")
    print(f"enumeration: {t_enum * 1e3:9.1f} ms/call")
    print(f"ratio      : {t_enum / t_bin:9.0f}x   max |difference| = {np.abs(fast - slow).max():.2e}")


def main() -> None:
    rng = np.random.default_rng(0)
    bench_minimax_lp()
    bench_aqp()
    bench_group_rewards(rng)
    bench_doubly_loo(rng)
    bench_effective(rng)


if __name__ == "__main__":
    main()
