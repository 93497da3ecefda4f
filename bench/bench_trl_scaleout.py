"""Benchmark: ``trl.GRPOTrainer`` with the answer-level bridge in 1 process vs 2 CPU processes, same global batch.

Runs ``examples/trl_coherence_grpo.py`` (multi-view coherence-grpo, geometric consensus, G = 4) in one process
with ``per_device_train_batch_size = 2B`` and under ``accelerate launch --multi_gpu --num_processes 2 ... --cpu``
with ``B`` per process, so every run trains on the same generation batch of 2B rows per step. ``accelerate
launch`` sets ``OMP_NUM_THREADS=1`` per process while one process uses every core by default, so the single
process runs both with its default torch threads (``1x_default``) and with one thread (``1x1``, as each process
of ``2x1``). Reports steps/s (first step excluded; ``--repeats`` alternating runs), the ratios of the medians,
the threads per process and the mean completion length (steps sampling longer completions are slower). On a
2-core CPU the two processes share the cores the single process uses.

    python bench/bench_trl_scaleout.py [--model DIR] [--steps 6] [--per-device-batch 8] [--out FILE]

Without ``--model`` a small base model is pretrained first (300 SFT steps, not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import base_model, emit  # bench/ is on sys.path when a benchmark runs as a script

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "trl_coherence_grpo.py"
TWO_CPU = [
    "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no",
]  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_example(
    launch: list[str], model: str, out: Path, per_device: int, steps: int, max_new: int, threads: int | None = None
) -> dict:
    cmd = [
        sys.executable, *launch, str(EXAMPLE), "--model", model, "--out", str(out), "--cpu", "--steps", str(steps),
        "--per-device-batch", str(per_device), "--max-completion-length", str(max_new),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads((out / "summary.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="base checkpoint (default: pretrain a small one)")
    parser.add_argument("--steps", type=int, default=6, help="steps per run (the first is warm-up)")
    parser.add_argument("--per-device-batch", type=int, default=8, help="B: rows per process of the 2-process run")
    parser.add_argument("--max-new-tokens", type=int, default=40, help="completion length limit")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each (medians)")
    parser.add_argument("--out", default="", help="write the result JSON here")
    a = parser.parse_args(argv)
    from llm.model import runtime_info

    with tempfile.TemporaryDirectory() as tmp:
        model = base_model(a.model, tmp, steps=300)
        runs: dict[str, list[dict]] = {"1x_default": [], "1x1": [], "2x1": []}  # processes x torch threads
        for r in range(a.repeats):  # alternate, so slow phases of a shared machine hit every configuration
            for name, threads in (("1x_default", None), ("1x1", 1)):
                runs[name].append(
                    run_example(
                        [], model, Path(tmp) / f"{name}_{r}", 2 * a.per_device_batch, a.steps, a.max_new_tokens,
                        threads,
                    )  # fmt: skip
                )
            runs["2x1"].append(
                run_example(
                    [*TWO_CPU, "--main_process_port", str(_port())], model, Path(tmp) / f"2x1_{r}",
                    a.per_device_batch, a.steps, a.max_new_tokens,
                )  # fmt: skip
            )
    assert all(s["num_processes"] == int(n[0]) for n in runs for s in runs[n]), runs

    def median(n: str, key: str) -> float:
        return float(np.median([s[key] for s in runs[n]]))

    result = {
        **runtime_info(),
        "cpu_count": os.cpu_count(),
        "generation_batch_rows": runs["1x1"][0]["generation_batch_size"],
        "steps": a.steps,
        "repeats": a.repeats,
        "steps_per_second": {n: [s["steps_per_second"] for s in runs[n]] for n in runs},
        "torch_threads_per_process": {n: runs[n][0]["torch_threads_per_process"] for n in runs},
        "mean_completion_length": {n: median(n, "mean_completion_length") for n in runs},
        "speed_ratio_2x1_over_1x1": median("2x1", "steps_per_second") / median("1x1", "steps_per_second"),
        "speed_ratio_2x1_over_1x_default": median("2x1", "steps_per_second")
        / median("1x_default", "steps_per_second"),
    }
    emit(result, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
