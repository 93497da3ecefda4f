"""No traceback at the CLI's edges (issue 18): output-path errors, strict JSON, choice flags, τ = 0, early
stops, ignored constraints, the user's umask, and figures 8/10 from the committed results/.

Each case was reproduced before the fix: ``generate -o DIR`` / ``simulate --out DIR`` were tracebacks
(exit 1) and simulate left ``DIR.partial``; ``demo --skip llms`` ran the LLM stage; ``solve --objective
reward --tau 0`` was an error; ``game --iterations 50`` said 10 iterations with no reason;
``figures --quick`` exited 2 without ``runs/llm/base``.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from dagsim import dagio
from dagsim.constraints import LinearConstraint
from dagsim.generators import random_dag
from dagsim.grpo.simulator import SimulationConfig, simulate


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_message(err: str) -> None:
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("dagsim: error: "), err


@pytest.fixture
def dag_file(tmp_path):
    dag = random_dag(np.random.default_rng(11), 9, 4).with_reward(np.array([1.0, 0.0, 0.5, 0.0]))
    path = tmp_path / "dag.json"
    dagio.save(dag, path)
    return path, dag


# ---------------------------------------------------------------------- output paths
def test_generate_into_a_folder_or_under_a_file_is_one_message(tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    code, _, err = run(capsys, "generate", "lattice", "-o", folder)
    assert code == 2 and "is a folder" in err
    _one_message(err)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["adir"]
    (tmp_path / "f.json").write_text("{}")
    code, _, err = run(capsys, "generate", "lattice", "-o", tmp_path / "f.json" / "x.json")
    assert code == 2 and "is a file" in err
    _one_message(err)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_generate_into_a_read_only_folder_is_one_message(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run(capsys, "generate", "lattice", "-o", ro / "x.json")
    finally:
        ro.chmod(0o755)
    assert code == 2 and "not writable" in err
    _one_message(err)


def test_an_unwritable_folder_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import dagsim.io

    monkeypatch.setattr(dagsim.io.os, "access", lambda path, mode: False)  # as root, chmod cannot show it
    code, _, err = run(capsys, "generate", "lattice", "-o", tmp_path / "x.json")
    assert code == 2 and "not writable" in err
    _one_message(err)
    assert not (tmp_path / "x.json").exists()


def test_simulate_out_folder_is_one_message_and_leaves_no_partial(dag_file, tmp_path, capsys):
    path, _ = dag_file
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = run(capsys, "simulate", path, "--algorithm", "gt-grpo", "--mode", "exact", "--steps", 2,
                       "--out", folder, "--json")
    assert code == 2 and "is a folder" in err
    _one_message(err)
    assert not Path(str(folder) + ".partial").exists()
    # the library itself removes its partial trajectory when the final rename fails
    cfg = SimulationConfig(algorithm="gt-grpo", mode="exact", steps=2)
    with pytest.raises(OSError):
        simulate([dagio.load(path)], cfg, out=folder)
    assert not Path(str(folder) + ".partial").exists()


def test_outputs_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        code, _, _ = run(capsys, "generate", "lattice", "-o", tmp_path / "sub" / "l.json")
    finally:
        os.umask(old)
    assert code == 0
    assert (tmp_path / "sub" / "l.json").stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------- choices, τ = 0, early stop, constraints
def test_demo_skip_typo_is_an_error_listing_the_stages(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--skip", "llms", "--out", tmp_path / "demo")
    assert code == 2 and "llms" in err and "proofs_check, figures, llm" in err
    _one_message(err)
    assert not (tmp_path / "demo").exists()  # validated before anything ran


def test_solve_reward_accepts_tau_zero_as_no_objective_term(dag_file, capsys):
    path, _ = dag_file
    code0, out0, err0 = run(capsys, "solve", path, "--objective", "reward", "--tau", 0, "--json")
    code, out, _ = run(capsys, "solve", path, "--objective", "reward", "--json")
    assert code0 == 0 and code == 0, err0
    assert json.loads(out0)["answer_distribution"] == json.loads(out)["answer_distribution"]
    code, _, err = run(capsys, "solve", path, "--objective", "reward", "--tau", 0.5, "--json")
    assert code == 2 and "tau" in err  # a nonzero τ for a family without a τ term is still refused


def test_game_reports_an_early_stop_at_the_tolerance(dag_file, capsys):
    path, _ = dag_file
    code, out, _ = run(capsys, "game", path, "--objective", "entropy", "--dynamics", "mirror",
                       "--iterations", 500, "--json")
    report = json.loads(out)
    assert code == 0 and report["stopped"] == "tolerance" and report["iterations"] < 500
    assert report["requested_iterations"] == 500 and report["exploitability"] <= 1e-13
    code, out, _ = run(capsys, "game", path, "--objective", "gini", "--dynamics", "mirror", "--iterations", 2,
                       "--json")
    assert json.loads(out)["stopped"] == "iterations" and json.loads(out)["iterations"] == 2
    with pytest.raises(SystemExit):
        main(["game", "--help"])
    assert "tolerance" in capsys.readouterr().out


def test_simulate_warns_when_the_algorithm_ignores_the_files_constraints(tmp_path, capsys):
    dag = random_dag(np.random.default_rng(12), 9, 4).with_reward(np.array([1.0, 0.0, 0.0, 0.0]))
    path = tmp_path / "c.json"
    dagio.save(dag.with_constraints([LinearConstraint(np.array([1.0, 0, 0, 0]), "<=", 0.3, "cap0")]), path)
    code, out, err = run(capsys, "simulate", path, "--algorithm", "gt-grpo", "--mode", "exact", "--steps", 2,
                         "--json")
    assert code == 0 and "warning" in err and "1 constraint" in err and "gt-grpo ignores" in err
    json.loads(out)
    code, _, err = run(capsys, "simulate", path, "--algorithm", "constrained-grpo", "--mode", "exact",
                       "--steps", 2, "--scale", "none", "--json")
    assert code == 0 and "warning" not in err


# ---------------------------------------------------------------------- figures 8 and 10 on a fresh clone
def test_figures_default_to_all_ten_and_draw_8_and_10_from_results_without_runs(tmp_path, monkeypatch, capsys):
    from figures.registry import FIGURES

    assert sorted(FIGURES) == list(range(1, 13))  # 11: predicted vs measured, 12: overlap sweep (issue 15)
    monkeypatch.chdir(tmp_path)  # no runs/ here, as on a fresh clone
    monkeypatch.delenv("ALFT_LLM_EXPERIMENT", raising=False)
    code, out, err = run(capsys, "figures", "--only", 8, 10, "--quick", "--out", tmp_path / "figs")
    assert code == 0, err
    assert "2 figure(s) written" in out and not (tmp_path / "runs").exists()
    fig8 = json.loads((tmp_path / "figs" / "fig08_llm_training.json").read_text())
    fig10 = json.loads((tmp_path / "figs" / "fig10_theory_vs_training.json").read_text())
    # the multi-seed main rows (issue 15): base + 7 algorithms, means over 3 seeds with error bars
    assert fig8["experiment"] == "results/llm_experiment_seeds.json" and len(fig8["rows"]) == 8
    assert all(r["n_seeds"] == (1 if r["algorithm"] == "base" else 3) for r in fig8["rows"])
    assert fig8["curves_source"] == "results/llm_training_curves_seeds.json"
    assert set(fig8["curves"]) == {r["algorithm"] for r in fig8["rows"]} - {"base"}
    assert fig10["source"] == "results/theory_vs_training.json"
    for name in ("fig08_llm_training", "fig10_theory_vs_training"):
        assert (tmp_path / "figs" / f"{name}.png").stat().st_size > 1000


def test_figures_rerun_llm_flag_is_documented(capsys):
    with pytest.raises(SystemExit):
        main(["figures", "--help"])
    assert "--rerun-llm" in capsys.readouterr().out


# ---------------------------------------------------------------------- strict JSON (dagsim llm evaluate)
def _strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_missing_values_as_null(capsys):
    from dagsim.cli import _print_json

    _print_json({"a": float("nan"), "b": [1.0, float("inf")], "c": 2})
    assert _strict_loads(capsys.readouterr().out) == {"a": None, "b": [1.0, None], "c": 2}
    pytest.importorskip("torch")
    from llm.cli import strict_json

    assert _strict_loads(strict_json({"a": float("nan"), "b": (1.0, float("-inf"))})) == {"a": None, "b": [1.0, None]}


@pytest.mark.llm
def test_llm_evaluate_json_on_single_view_data_is_strict(tmp_path, capsys):
    pytest.importorskip("torch")
    from llm.cli import main as llm_main
    from llm.model import ModelConfig
    from llm.pretrain import PretrainConfig, pretrain

    base = tmp_path / "base"
    pretrain(PretrainConfig(out=str(base), model=ModelConfig(hidden_size=32, n_layers=1, n_heads=2,
                                                             intermediate_size=64, max_positions=96),
                            steps=2, batch_size=8, vocab_size=160, progress=False))
    data = tmp_path / "single.jsonl"
    data.write_text('{"question": "3+4?", "answer": "#### 7"}\n{"question": "2+2?", "answer": "#### 4"}\n')
    out = tmp_path / "m.json"
    assert llm_main(["evaluate", "--model", str(base), "--data", str(data), "--json", str(out),
                     "--eval-k", "2"]) == 0
    metrics = _strict_loads(out.read_text())
    assert "cross_view_agreement" in metrics and metrics["cross_view_agreement"] is None
    folder = tmp_path / "adir"
    folder.mkdir()
    assert llm_main(["evaluate", "--model", str(base), "--data", str(data), "--json", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------- benchmarks stop instead of measuring else
@pytest.mark.llm
def test_bench_llm_certified_without_a_model_stops_with_a_message(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("torch")
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(repo / "bench" / "bench_llm_certified.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.returncode == 2, proc.stderr
    assert "no model to measure" in proc.stderr and "--random-model" in proc.stderr
    assert "Traceback" not in proc.stderr and "RANDOMLY INITIALIZED" not in proc.stdout
