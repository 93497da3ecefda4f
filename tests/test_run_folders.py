"""LLM run folders are units (issue 18): a manifest, no data loss or mixing, verified checkpoints, signals.

Every case was first reproduced on the code before the fix: ``--tau nan`` on a finished run emptied its
``metrics.jsonl``; a fresh run into a used ``--out`` kept the old checkpoints (metrics became steps
[1, 2, 13, 14] after a resume); ``--resume DIR`` needed every flag again; a damaged newest checkpoint gave a
traceback; SIGTERM saved nothing; outputs were 0600.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from dagsim.errors import ValidationError  # noqa: E402
from llm.cli import main  # noqa: E402
from llm.model import ModelConfig  # noqa: E402
from llm.pretrain import PretrainConfig, pretrain  # noqa: E402
from llm.tasks import ArithmeticTaskConfig  # noqa: E402
from llm.trainer import (  # noqa: E402
    TrainConfig,
    find_checkpoint,
    model_hash,
    read_manifest,
    train,
    verify_checkpoint,
)

pytestmark = pytest.mark.llm

TINY = ModelConfig(hidden_size=32, n_layers=2, n_heads=2, intermediate_size=64, max_positions=96)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "base"
    pretrain(
        PretrainConfig(
            out=str(out), model=TINY, steps=15, batch_size=16, lr=1e-2, warmup=2, vocab_size=160,
            progress=False, task=ArithmeticTaskConfig(n_views=2),
        )
    )
    return out


def _flags(base_model, out, steps, *extra):
    return [
        "train", "--model", str(base_model), "--out", str(out), "--steps", str(steps),
        "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "8", "--seed", "3",
        "--no-progress", "--no-eval", *extra,
    ]


def _config(base_model, out, steps, **kw):
    return TrainConfig(model=str(base_model), out=str(out), steps=steps, prompts_per_step=2, group_size=2,
                       max_new_tokens=8, seed=3, progress=False, **kw)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def _strip(rows):
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows]


@pytest.fixture(scope="module")
def finished_run(base_model, tmp_path_factory):
    """A finished 4-step run with checkpoints at 2 and 4 (read-only for the tests that use it)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(_flags(base_model, out, 4, "--checkpoint-every", "2")) == 0
    return out


def test_manifest_holds_config_code_version_base_hash_and_status(finished_run, base_model):
    manifest = read_manifest(finished_run)
    assert manifest["status"] == "finished" and manifest["step"] == 4
    assert manifest["config"]["group_size"] == 2 and manifest["config"]["steps"] == 4
    assert manifest["base_model_sha256"] == model_hash(base_model)
    assert "git" in manifest["code_version"] or "source_sha256" in manifest["code_version"]
    for name in ("checkpoint-2", "checkpoint-4", "final"):
        assert verify_checkpoint(finished_run / name) is None
        assert (finished_run / name / "checksums.json").is_file()
    assert [r["step"] for r in _rows(finished_run)] == [1, 2, 3, 4]


@pytest.mark.parametrize("bad", [
    ["--tau", "nan"],  # emptied metrics.jsonl before the fix
    ["--lr", "inf"],
    ["--steps", "0"],
    ["--algorithm", "nope"],
    [],  # a fresh run into a used --out: refused
])
def test_a_bad_flag_on_a_finished_run_leaves_every_file_byte_identical(finished_run, base_model, bad, capsys):
    before = _tree_hashes(finished_run)
    assert main(_flags(base_model, finished_run, 4, *bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert _tree_hashes(finished_run) == before


def test_reuse_is_refused_and_overwrite_moves_the_old_run_aside(base_model, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_flags(base_model, out, 4, "--checkpoint-every", "2")) == 0
    old = _tree_hashes(out)
    assert main(_flags(base_model, out, 2)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(_flags(base_model, out, 2, "--overwrite")) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and _tree_hashes(aside[0]) == old  # the old run, intact
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint")) == ["checkpoint-2"]
    assert main(["train", "--resume", str(out), "--steps", "3", "--no-eval"]) == 0
    assert [r["step"] for r in _rows(out)] == [1, 2, 3]  # was [1, 2, 13, 14] before the fix


def test_resume_dir_alone_takes_everything_from_the_manifest(base_model, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(_flags(base_model, full, 4)) == 0
    assert main(_flags(base_model, part, 2)) == 0
    assert main(["train", "--resume", str(part), "--steps", "4", "--no-eval"]) == 0
    assert _strip(_rows(part)) == _strip(_rows(full))
    # a flag given with --resume must agree; the error names the field and both values
    assert main(["train", "--resume", str(part), "--steps", "6", "--group-size", "3", "--no-eval"]) == 2
    assert "group_size (run: 2, given: 3)" in capsys.readouterr().err
    # --model (agreeing) but no --out: continues into the resumed folder, not the default runs/llm/train
    assert main(["train", "--resume", str(part / "checkpoint-4"), "--model", str(base_model), "--steps", "5",
                 "--no-eval"]) == 0
    assert [r["step"] for r in _rows(part)] == [1, 2, 3, 4, 5]
    assert read_manifest(part)["status"] == "finished" and len(read_manifest(part)["sessions"]) == 3


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture(scope="module")
def uninterrupted(base_model, tmp_path_factory):
    """The 4-step run the damaged-checkpoint resumptions must reproduce: (metric rows, final weights)."""
    out = tmp_path_factory.mktemp("full") / "full"
    result = train(_config(base_model, out, 4))
    return _rows(out), {k: v.detach().clone() for k, v in result["model"].state_dict().items()}


@pytest.mark.parametrize("damage", [
    lambda c: _truncate(c / "model.safetensors"),
    lambda c: _truncate(c / "trainer_state.pt"),
    lambda c: (c / "config.json").write_text("{ not json"),
], ids=["truncated-weights", "truncated-state", "garbage-config"])
def test_resume_from_a_damaged_newest_checkpoint_falls_back_and_reproduces(base_model, uninterrupted, tmp_path,
                                                                          damage, capsys):
    rows_full, weights_full = uninterrupted
    part = tmp_path / "part"
    train(_config(base_model, part, 3, checkpoint_every=2))  # checkpoints 2 and 3
    damage(part / "checkpoint-3")
    assert verify_checkpoint(part / "checkpoint-3") is not None
    assert find_checkpoint(part) == part / "checkpoint-2"
    (part / ".checkpoint-4.tmp.abc123").mkdir()  # left by a killed write
    capsys.readouterr()
    resumed = train(_config(base_model, part, 4, checkpoint_every=2, resume=str(part)))
    err = capsys.readouterr().err
    assert "resuming from" in err and "checkpoint-2" in err and "checkpoint-3 skipped" in err
    assert resumed["resumed_from"].endswith("checkpoint-2")
    assert not (part / ".checkpoint-4.tmp.abc123").exists()
    assert _strip(_rows(part)) == _strip(rows_full)
    for k, v in weights_full.items():
        torch.testing.assert_close(resumed["model"].state_dict()[k], v, rtol=0, atol=0)


def test_no_intact_checkpoint_is_one_message_not_a_traceback(base_model, tmp_path, capsys):
    run = tmp_path / "run"
    train(_config(base_model, run, 1))
    _truncate(run / "checkpoint-1" / "model.safetensors")
    before = _tree_hashes(run)
    assert main(["train", "--resume", str(run), "--steps", "2", "--no-eval"]) == 2
    err = capsys.readouterr().err
    assert "no intact checkpoint" in err and "checkpoint-1" in err and "Traceback" not in err
    assert _tree_hashes(run) == before
    with pytest.raises(ValidationError, match="no checkpoint found"):
        train(_config(base_model, tmp_path / "other", 2, resume=str(tmp_path / "missing-run")))


def test_outputs_follow_the_umask(base_model, tmp_path):
    old = os.umask(0o027)
    try:
        train(_config(base_model, tmp_path / "run", 1))
    finally:
        os.umask(old)
    for p in [tmp_path / "run", *(tmp_path / "run").rglob("*")]:
        mode = p.stat().st_mode & 0o777
        assert mode == (0o750 if p.is_dir() else 0o640), (p, oct(mode))


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_real_signal_saves_a_checkpoint_and_exits_cleanly(base_model, tmp_path, signum, code):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "llm.cli", *_flags(base_model, out, 100_000)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text().count("\n") >= 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    manifest = read_manifest(out)
    assert manifest["status"] == "interrupted" and manifest["sessions"][-1]["signal"] == signal.Signals(signum).name
    step = manifest["step"]
    assert step >= 2 and verify_checkpoint(out / f"checkpoint-{step}") is None
    assert [r["step"] for r in _rows(out)] == list(range(1, step + 1))
