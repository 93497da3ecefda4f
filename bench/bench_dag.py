"""Benchmark: exact DP on a layered DAG with >= 10^6 edges (foundation issue).

Reports, measured in one run on this machine:
  * answer marginal and logit gradient times (targets: <= 50 ms and <= 150 ms);
  * each as a ratio to one memory pass over the edge arrays (reading src, dst and p once; target <= 10x);
  * the speed-up of the DP over brute-force trace enumeration on a DAG small enough to enumerate.
Run: python bench/bench_dag.py [--width 32 --depth 1000 --answers 8 --repeats 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dagsim.generators import layered_lattice
from dagsim.marginals import answer_marginal, brute_force_marginal, count_traces, logit_gradient


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--answers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    dag = layered_lattice(args.width, args.depth, args.answers, rng=rng)
    build = time.perf_counter() - t0
    n_traces = count_traces(dag)
    theta = rng.normal(size=dag.n_edges)
    g = rng.normal(size=dag.n_answers)
    src, dst, p = dag.edge_src, dag.edge_dst, dag.edge_prob

    def memory_pass():
        return int(src.sum()) + int(dst.sum()) + float(p.sum())

    t_pass = best_time(memory_pass, args.repeats)
    t_marg = best_time(lambda: answer_marginal(dag), args.repeats)
    t_marg_logits = best_time(lambda: answer_marginal(dag, theta), args.repeats)
    t_grad = best_time(lambda: logit_gradient(dag, theta, g), args.repeats)
    print(f"layered DAG {args.width} x {args.depth}: {dag.n_nodes:,} nodes, {dag.n_edges:,} edges, "
          f"{len(str(n_traces))}-digit trace count (built + validated in {build:.2f} s)")
    print(f"{'operation':38s} {'time (ms)':>10s} {'x memory pass':>14s} {'target':>10s}")
    print(f"{'one memory pass over src/dst/p':38s} {1e3 * t_pass:10.2f} {1.0:14.1f} {'':>10s}")
    print(f"{'answer marginal (pi0)':38s} {1e3 * t_marg:10.2f} {t_marg / t_pass:14.1f} {'<= 50 ms':>10s}")
    print(f"{'answer marginal (softmax of logits)':38s} {1e3 * t_marg_logits:10.2f} {t_marg_logits / t_pass:14.1f}")
    print(f"{'logit gradient (T9)':38s} {1e3 * t_grad:10.2f} {t_grad / t_pass:14.1f} {'<= 150 ms':>10s}")

    small = layered_lattice(6, 6, 4, rng=rng)
    small_theta = rng.normal(size=small.n_edges)
    n_small = count_traces(small)
    t_brute = best_time(lambda: brute_force_marginal(small, small_theta, limit=10**6), 1)
    t_dp = best_time(lambda: answer_marginal(small, small_theta), args.repeats)
    err = np.abs(brute_force_marginal(small, small_theta, limit=10**6) - answer_marginal(small, small_theta)).max()
    print(f"\nsmall DAG 6 x 6 ({n_small:,} traces, {small.n_edges} edges): enumeration {1e3 * t_brute:.1f} ms, "
          f"DP {1e3 * t_dp:.3f} ms -> speed-up {t_brute / t_dp:,.0f}x (max |difference| {err:.1e})")


if __name__ == "__main__":
    main()
