"""The CLI contract: subcommands, JSON keys, exit codes and one-paragraph errors without traceback."""

import json

from app.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_validate_marginals_json(tmp_path, capsys):
    path = tmp_path / "arith.json"
    code, out, _ = run(capsys, "generate", "arithmetic", "--terms", "4*7+6*8", "--eps", "0.2", "-o", str(path))
    assert code == 0 and path.exists()
    code, out, _ = run(capsys, "validate", str(path), "--json")
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, _ = run(capsys, "marginals", str(path), "--json")
    report = json.loads(out)
    assert code == 0
    assert set(report) >= {"answer_distribution", "n_traces", "n_nodes", "n_edges"}
    dist = report["answer_distribution"]
    assert abs(sum(dist.values()) - 1.0) < 1e-12
    assert max(dist, key=dist.get) == "76"
    assert report["n_traces"] == 2 * 3 * 3


def test_task_marginals_and_lattice(tmp_path, capsys):
    path = tmp_path / "task.json"
    assert run(capsys, "generate", "arithmetic-task", "--terms", "4*7+6*8", "--views", "2", "-o", str(path))[0] == 0
    code, out, _ = run(capsys, "marginals", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and len(report["views"]) == 2
    lattice = tmp_path / "lat.json"
    args = ("generate", "lattice", "--width", "3", "--depth", "4", "--answers", "5", "-o", str(lattice))
    assert run(capsys, *args)[0] == 0
    code, out, _ = run(capsys, "marginals", str(lattice), "--json")
    assert json.loads(out)["n_traces"] == 3 ** 4 * 5


def test_bad_input_exits_nonzero_with_message(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "dagsim/v1", "root": "s", "edges": [{"from": "s", "to": "a", "p": 0.4}], '
                   '"answers": {"a": "1"}}')
    code, out, err = run(capsys, "marginals", str(bad))
    assert code == 2
    assert "outgoing probabilities of node 's' sum to 0.4" in err
    assert "Traceback" not in err and out == ""
    code, _, err = run(capsys, "validate", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err


def test_human_output_and_demo(tmp_path, capsys):
    # The heavy stages (proofs_check report, figures, LLM run) have their own tests; here the wiring.
    import re

    from dagsim import dagio
    from dagsim.marginals import enumerate_traces

    code, out, _ = run(capsys, "demo", "--out", str(tmp_path), "--skip", "proofs_check", "figures", "llm")
    assert code == 0
    path = tmp_path / "default_arithmetic.json"
    dag = dagio.load(path)
    # Independent oracle: brute-force enumeration of every trace of the saved DAG (not the forward DP).
    traces = list(enumerate_traces(dag))
    oracle = dict.fromkeys(dag.answers, 0.0)
    for t in traces:
        oracle[dag.answers[t.answer]] += t.probability
    assert max(oracle, key=oracle.get) == "133"  # the embedded default problem's correct answer
    lines = out.splitlines()
    cells = [re.findall(r"[^\s│┃]+", ln) for ln in lines]
    for answer, prob in oracle.items():
        rows = [c for c in cells if c[:2] == [answer, f"{prob:.6f}"]]
        assert len(rows) == 1, (answer, prob, out)
        bar = "".join(x for x in rows[0][2:] if set(x) == {"█"})
        assert len(bar) == round(40 * prob)
        assert rows[0][-1] == str(float(dag.reward[dag.answers.index(answer)]))
    n = f"{len(traces):,}"
    assert f"{n} traces, {dag.n_nodes} nodes, {dag.n_edges} edges" in lines
    start = [i for i, ln in enumerate(lines) if ln.startswith("== summary (")]
    assert len(start) == 1
    # The skipped stages add no summary line; the one line names the trace count and the saved file.
    assert lines[start[0] + 1:] == [f" * arithmetic DAG: exact marginal of {n} traces -> {path}"]


def test_demo_composes_every_stage():
    from app.demo import DEMO_STAGE_NAMES, demo_steps

    assert [name for name, _ in demo_steps()] == ["proofs_check", "figures", "llm"] == list(DEMO_STAGE_NAMES)


def test_demo_llm_stage_runs_the_experiment_then_draws_figure_8_from_it(monkeypatch, tmp_path):
    """The wiring of app.demo's LLM stage (the experiment itself runs in `make demo`): llm.demo's run, then
    figure 8 from that run's folder, then llm.demo's summary line of that run's rows."""
    import figures.fig08_llm_training as fig08
    import llm.demo
    from app.demo import _llm_stage

    calls = []
    rows = [{"algorithm": "base", "mean_accuracy": 0.25, "steps": 0},
            {"algorithm": llm.demo.DEMO_ALGORITHM, "mean_accuracy": 0.5, "steps": 12}]
    monkeypatch.setattr(llm.demo, "run_demo", lambda out: (calls.append(("run", out)) or ({"rows": rows}, out / "llm")))
    monkeypatch.setattr(fig08, "make", lambda folder, experiment: calls.append(("figure 8", folder, experiment)))
    line = _llm_stage(tmp_path)
    assert calls == [("run", tmp_path), ("figure 8", tmp_path / "figures", tmp_path / "llm")]
    assert line == (f"llm: held-out mean sampled accuracy 0.250 (base) -> 0.500 ({llm.demo.DEMO_ALGORITHM}, "
                    f"no labels, 12 steps) -> {tmp_path / 'llm'}")
