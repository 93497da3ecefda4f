"""The TRL bridge in two real processes: ``accelerate launch --multi_gpu --num_processes 2`` on CPU (gloo).

One launch runs every scenario in the same two processes (``python tests/test_llm_trl_multiprocess.py --base
DIR --out DIR`` is the worker); each rank records, through a wrapper around the reward function, the rows
TRL handed it and the rewards it returned, and writes ``rank{r}.json``. The tests then recompute every
generation batch in this (single) process, on the rows of both ranks concatenated in rank order, and
require the same rewards and the same logged metrics. Layouts:

- ``split``: per_device_train_batch_size = 6, G = 4, so TRL splits one group across the two processes;
  RLOO transform with ``scale_rewards="none"`` (TRL's advantages must equal dagsim's RLOO advantages).
- ``views``: 2-view problems, one group per process, so a problem's two views are on different processes.
- ``eval_split``: evaluation with per_device_eval_batch_size = 3, num_generations_eval = 2 (a split group).
- ``doubly_loo``: the split layout with ``baseline="doubly-loo"`` through ``ALFTGRPOTrainer``: each rank
  trains on its own rows of the whole batch's T11b advantages.
- ``mismatch`` (bound G 4, num_generations 8), ``eval_mismatch`` (bound 4, num_generations_eval 2) and
  ``strict`` (the split layout under ``strict=True``): each must fail with its error on both ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.llm, pytest.mark.multiprocess]

REPO = Path(__file__).resolve().parents[1]
N_PROC = 2
LAUNCH = [
    "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(N_PROC), "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no",
]  # fmt: skip
METRIC_RTOL = 1e-6  # TRL carries log_metric values through a float32 all-reduce


# ----------------------------------------------------------------------------------------------- worker side
def _config(out: str, **overrides):
    from trl import GRPOConfig

    kw = dict(
        output_dir=out, max_completion_length=16, max_steps=2, learning_rate=1e-3, logging_steps=1,
        report_to="none", save_strategy="no", beta=0.0, use_cpu=True, bf16=False, seed=0, disable_tqdm=True,
        temperature=1.0, top_k=0,
    )  # fmt: skip
    kw.update(overrides)
    return GRPOConfig(**kw)


def _recorded(func, calls: list):
    from llm.trl_rewards import completion_text

    def wrapped(prompts, completions, **kwargs):
        out = func(prompts=prompts, completions=completions, **kwargs)
        calls.append(
            {
                "prompts": list(prompts),
                "completions": [completion_text(c) for c in completions],
                "columns": {k: list(kwargs[k]) for k in ("answer", "problem_id", "n_views") if k in kwargs},
                "rewards": [float(r) for r in out],
            }
        )
        return out

    wrapped.__name__ = func.__name__
    return wrapped


def _run(name: str, base: str, out: str, *, args, funcs, train=None, evaluate=None, doubly_loo=False) -> dict:
    from trl import GRPOTrainer

    from llm.model import load_model

    model, tok = load_model(base)
    calls: list = []
    local_advantages: list = []
    trainer_cls = GRPOTrainer
    if doubly_loo:
        from llm.trl_rewards import ALFTGRPOTrainer

        class Recording(ALFTGRPOTrainer):  # the rows this rank trains on, before TRL's shuffle
            def _generate_and_score_completions(self, inputs):
                output = super()._generate_and_score_completions(inputs)
                local_advantages.append(output["advantages"].tolist())
                return output

        trainer_cls = Recording
    trainer = trainer_cls(
        model=model,
        reward_funcs=[_recorded(f, calls) for f in funcs],
        args=args,
        train_dataset=train if train is not None else evaluate,  # TRL requires one
        eval_dataset=evaluate,
        processing_class=tok,
    )
    record = {"calls": calls, "local_advantages": local_advantages}
    try:
        if evaluate is not None:
            trainer.evaluate()
        else:
            trainer.train()
            record["global_step"] = trainer.state.global_step
            record["log_history"] = trainer.state.log_history
            record["advantages"] = list(trainer._logs["advantages"])  # the last generation batch, all processes
    except Exception as exc:  # recorded for the test, which requires the right error on every rank
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record


def worker(base: str, out: str) -> None:
    from datasets import Dataset

    from llm.model import atomic_write_text
    from llm.tasks import ArithmeticTaskConfig, split_problems
    from llm.trl_rewards import make_reward_func, make_reward_funcs

    rank = int(os.environ["RANK"])
    problems, _ = split_problems(ArithmeticTaskConfig(n_views=2))
    single = Dataset.from_list([{"prompt": p.views[0], "answer": p.answer} for p in problems[:24]])
    views = Dataset.from_list(
        [{"prompt": v, "problem_id": p.problem_id} for p in problems[:8] for v in p.views]
    )  # ordered by problem, its 2 views consecutive
    tmp = str(Path(out) / f"trl{rank}")
    results = {}

    args = _config(tmp, per_device_train_batch_size=6, num_generations=4, scale_rewards="none")
    long = _config(tmp, per_device_train_batch_size=6, num_generations=4, max_completion_length=24,
                   scale_rewards="none")  # fmt: skip
    results["doubly_loo"] = _run(
        "doubly_loo", base, out, args=long, train=single, doubly_loo=True,
        funcs=make_reward_funcs(long, "ttrl", baseline="doubly-loo"),
    )  # fmt: skip
    results["split"] = _run(
        "split", base, out, args=args, train=single,
        funcs=make_reward_funcs(args, "coherence-grpo", consensus="none", baseline="rloo"),
    )  # fmt: skip
    args = _config(tmp, per_device_train_batch_size=4, num_generations=4, shuffle_dataset=False)
    results["views"] = _run(
        "views", base, out, args=args, train=views,
        funcs=make_reward_funcs(args, "coherence-grpo", consensus="geometric", dataset=views),
    )  # fmt: skip
    args = _config(tmp, per_device_train_batch_size=4, num_generations=4, per_device_eval_batch_size=3,
                   num_generations_eval=2)  # fmt: skip
    results["eval_split"] = _run(
        "eval_split", base, out, args=args, evaluate=single.select(range(3)),
        funcs=make_reward_funcs(args, "ttrl"),
    )  # fmt: skip
    args = _config(tmp, per_device_train_batch_size=4, num_generations=8)
    results["mismatch"] = _run(
        "mismatch", base, out, args=args, train=single, funcs=[make_reward_func("ttrl", group_size=4)]
    )
    args = _config(tmp, per_device_train_batch_size=4, num_generations=4, per_device_eval_batch_size=2,
                   num_generations_eval=2)  # fmt: skip
    results["eval_mismatch"] = _run(
        "eval_mismatch", base, out, args=args, evaluate=single.select(range(2)),
        funcs=[make_reward_func("ttrl", group_size=4)],
    )  # fmt: skip
    args = _config(tmp, per_device_train_batch_size=6, num_generations=4)
    results["strict"] = _run(
        "strict", base, out, args=args, train=single, funcs=make_reward_funcs(args, "ttrl", strict=True)
    )
    atomic_write_text(Path(out) / f"rank{rank}.json", json.dumps(results))
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------- test side
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Launch the two-process worker once; its per-rank records."""
    pytest.importorskip("trl")
    pytest.importorskip("accelerate")
    from tests.test_llm_trl import build_tiny_base

    base = build_tiny_base(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("trl_mp")
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }  # fmt: skip
    cmd = [sys.executable, *LAUNCH, "--main_process_port", str(_free_port()), __file__]
    proc = subprocess.run(
        [*cmd, "--base", str(base), "--out", str(out)], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"two-process worker failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(N_PROC)]


def _whole_batch(ranks, scenario: str, k: int) -> dict:
    """Generation batch k of a scenario: both ranks' rows concatenated in rank order."""
    parts = [r[scenario]["calls"][k] for r in ranks]
    columns = {c: [x for p in parts for x in p["columns"][c]] for c in parts[0]["columns"]}
    return {
        "prompts": [x for p in parts for x in p["prompts"]],
        "completions": [x for p in parts for x in p["completions"]],
        "columns": columns,
        "rewards": [x for p in parts for x in p["rewards"]],
        "sizes": [len(p["prompts"]) for p in parts],
    }


def _single_process(func, batch: dict) -> tuple[list[float], dict]:
    logged: dict = {}
    got = func(
        prompts=batch["prompts"],
        completions=batch["completions"],
        log_metric=lambda k, v: logged.__setitem__(k, v),
        **batch["columns"],
    )
    return got, logged


def _assert_metrics_logged(history: list, k: int, expected: dict) -> None:
    entry = [h for h in history if h.get("step") == k + 1 and "alft/n_unextracted" in h]
    assert len(entry) == 1, history
    for name, value in expected.items():
        assert entry[0][name] == pytest.approx(value, rel=METRIC_RTOL, abs=1e-12), name


def test_a_group_split_across_processes_gets_the_single_process_rewards(ranks):
    from dagsim.grpo.advantages import advantages
    from llm.trl_rewards import make_reward_func

    G = 4
    assert all(r["split"].get("global_step") == 2 for r in ranks), [r["split"].get("error") for r in ranks]
    single = make_reward_func("coherence-grpo", group_size=G, consensus="none", baseline="rloo")
    for k in range(2):
        batch = _whole_batch(ranks, "split", k)
        assert batch["sizes"] == [6, 6]
        assert batch["prompts"][4:8] == [batch["prompts"][4]] * G  # group 1: 2 rows on rank 0, 2 on rank 1
        got, logged = _single_process(single, batch)
        assert batch["rewards"] == got  # exactly: each rank's rows are the whole batch's rewards
        _assert_metrics_logged(ranks[0]["split"]["log_history"], k, logged)
        _assert_metrics_logged(ranks[1]["split"]["log_history"], k, logged)
        with pytest.raises(Exception, match="not a whole number of groups"):  # control: rank 0 alone
            single(prompts=batch["prompts"][:6], completions=batch["completions"][:6])
    plain = make_reward_func("coherence-grpo", group_size=G, consensus="none")
    rewards = np.array(_single_process(plain, batch)[0]).reshape(-1, G)
    rloo, _ = advantages(rewards, baseline="rloo", scale="none")
    np.testing.assert_allclose(ranks[0]["split"]["advantages"], rloo.ravel(), rtol=0, atol=1e-5)


def test_doubly_loo_split_across_processes_trains_each_rank_on_its_rows_of_the_recount(ranks):
    from llm.answers import extract_answers
    from llm.trl_rewards import make_reward_func
    from tests.test_llm_trl import _ttrl_doubly_loo_oracle

    G = 4
    assert all(r["doubly_loo"].get("global_step") == 2 for r in ranks), [r["doubly_loo"].get("error") for r in ranks]
    single = make_reward_func("ttrl", group_size=G, baseline="doubly-loo")
    differ = []
    for k in range(2):
        batch = _whole_batch(ranks, "doubly_loo", k)
        assert batch["sizes"] == [6, 6] and batch["prompts"][4:8] == [batch["prompts"][4]] * G  # a split group
        answers = extract_answers(batch["completions"])
        oracle = np.concatenate([_ttrl_doubly_loo_oracle(answers[g : g + G]) for g in range(0, 12, G)])
        trained = [x for r in ranks for x in r["doubly_loo"]["local_advantages"][k]]  # rank order
        np.testing.assert_allclose(trained, oracle, rtol=0, atol=1e-6)
        got, _ = _single_process(single, batch)
        assert batch["rewards"] == got
        np.testing.assert_allclose(single.last_advantages, oracle, rtol=0, atol=1e-12)
        rewards = np.array(got).reshape(-1, G)  # control: TRL's mean-centred advantages of the same rewards
        differ.append(not np.allclose((rewards - rewards.mean(axis=1, keepdims=True)).ravel(), oracle, atol=1e-3))
    assert any(differ), "no batch had an answer: the test cannot tell doubly-LOO from TRL's advantages"
    np.testing.assert_allclose(ranks[0]["doubly_loo"]["advantages"], oracle, rtol=0, atol=1e-6)  # the log


def test_a_problems_views_on_two_processes_get_the_consensus_of_all_views(ranks):
    from llm.trl_rewards import make_reward_func

    assert all(r["views"].get("global_step") == 2 for r in ranks), [r["views"].get("error") for r in ranks]
    single = make_reward_func("coherence-grpo", group_size=4, consensus="geometric", n_views=2)
    for k in range(2):
        batch = _whole_batch(ranks, "views", k)
        r0, r1 = (r["views"]["calls"][k] for r in ranks)
        assert r0["columns"]["problem_id"] == r1["columns"]["problem_id"]  # one problem ...
        assert r0["prompts"][0] != r1["prompts"][0]  # ... whose two views are on different processes
        got, logged = _single_process(single, batch)
        assert batch["rewards"] == got
        _assert_metrics_logged(ranks[0]["views"]["log_history"], k, logged)
        with pytest.raises(Exception, match="1 of its 2 views"):  # control: rank 0's view alone
            single(prompts=r0["prompts"], completions=r0["completions"], **r0["columns"])


def test_evaluation_with_a_split_group_gets_the_single_process_rewards(ranks):
    from llm.trl_rewards import make_reward_func

    assert all("error" not in r["eval_split"] for r in ranks), [r["eval_split"].get("error") for r in ranks]
    batch = _whole_batch(ranks, "eval_split", 0)
    assert batch["sizes"] == [3, 3]
    got, _ = _single_process(make_reward_func("ttrl", group_size=2), batch)
    assert batch["rewards"] == got


def test_mismatched_g_eval_g_and_strict_mode_each_give_their_error_on_every_process(ranks):
    for r in ranks:
        assert "bound to G = 4 but the trainer's num_generations = 8" in r["mismatch"]["error"]
        error = r["eval_mismatch"]["error"]
        assert "in evaluation" in error and "num_generations_eval = 2" in error
        assert "per_device_eval_batch_size" in error and "G = 4" in error
        error = r["strict"]["error"]
        assert "strict=True" in error and "per_device_train_batch_size x steps_per_generation = 6 x 1" in error
        assert not r["mismatch"]["calls"] and not r["strict"]["calls"]  # no rewards were returned


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="two-process TRL bridge worker (launched by the tests)")
    parser.add_argument("--base", required=True)
    parser.add_argument("--out", required=True)
    a = parser.parse_args()
    worker(a.base, a.out)
