"""Benchmark: ``trl.GRPOTrainer`` with the answer-level bridge in 1 process vs 2 CPU processes, same global batch.

Runs ``examples/trl_coherence_grpo.py`` (multi-view coherence-grpo, geometric consensus, G = 4) once in one
process with ``per_device_train_batch_size = 2B`` and once under
``accelerate launch --multi_gpu --num_processes 2 ... --cpu`` with ``B`` per process, so both train on the same
generation batch of 2B rows per step. Reports steps/s of each (first step excluded) and their ratio. On a
2-core CPU the two processes share the two cores the single process already uses (torch's intra-op threads),
so a ratio near 1 is expected there; the point of the second process is the layout, not speed.

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


def run_example(launch: list[str], model: str, out: Path, per_device: int, steps: int, max_new: int) -> dict:
    cmd = [
        sys.executable, *launch, str(EXAMPLE), "--model", model, "--out", str(out), "--cpu", "--steps", str(steps),
        "--per-device-batch", str(per_device), "--max-completion-length", str(max_new),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
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
    parser.add_argument("--out", default="", help="write the result JSON here")
    a = parser.parse_args(argv)
    from llm.model import atomic_write_text, runtime_info

    with tempfile.TemporaryDirectory() as tmp:
        model = a.model
        if not model:
            from llm.pretrain import PretrainConfig, pretrain

            model = str(Path(tmp) / "base")
            pretrain(PretrainConfig(out=model, steps=300, progress=False))
        one = run_example([], model, Path(tmp) / "p1", 2 * a.per_device_batch, a.steps, a.max_new_tokens)
        two = run_example(
            [*TWO_CPU, "--main_process_port", str(_port())], model, Path(tmp) / "p2", a.per_device_batch, a.steps,
            a.max_new_tokens,
        )  # fmt: skip
    assert two["num_processes"] == 2 and one["num_processes"] == 1, (one, two)
    result = {
        **runtime_info(),
        "cpu_count": os.cpu_count(),
        "generation_batch_rows": one["generation_batch_size"],
        "steps": a.steps,
        "one_process_steps_per_second": one["steps_per_second"],
        "two_process_steps_per_second": two["steps_per_second"],
        "speed_ratio_two_over_one": two["steps_per_second"] / one["steps_per_second"],
    }
    print(json.dumps(result, indent=2))
    if a.out:
        atomic_write_text(a.out, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
