"""`dagsim solve`, `dagsim game` and `dagsim simulate` from the command line, on generated files: JSON
contracts, independent closed forms (≤ 1e-7), multipliers in file order, and clear errors."""

import json

import numpy as np
import pytest

from dagsim import dagio
from dagsim.cli import main
from dagsim.constraints import LinearConstraint
from dagsim.generators import ArithmeticProblem, arithmetic_task, random_dag
from dagsim.grpo.algorithms import ALGORITHMS
from dagsim.marginals import answer_marginal

#: The CLI must reproduce independent closed forms to this accuracy (issue contract).
ATOL_CLOSED_FORM = 1e-7


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dag_file(tmp_path):
    dag = random_dag(np.random.default_rng(11), 9, 4).with_reward(np.array([1.0, 0.0, 0.5, 0.0]))
    path = tmp_path / "dag.json"
    dagio.save(dag, path)
    return path, dag


def _entropy_closed_form(nu0, r, beta, tau):
    logits = beta / (beta + tau) * np.log(nu0) + r / (beta + tau)
    w = np.exp(logits - logits.max())
    return w / w.sum()


@pytest.mark.parametrize("method", ["auto", "closed-form", "dual", "cvxpy", "trace"])
def test_solve_reproduces_entropy_closed_form(dag_file, capsys, method):
    path, dag = dag_file
    code, out, _ = run(capsys, "solve", path, "--objective", "entropy", "--beta", 0.7, "--tau", 0.4,
                       "--method", method, "--json")
    assert code == 0
    report = json.loads(out)
    assert {"answer_distribution", "value", "method", "kkt_residual", "multipliers"} <= set(report)
    nu = np.array([report["answer_distribution"][a] for a in dag.answers])
    star = _entropy_closed_form(answer_marginal(dag), dag.reward, 0.7, 0.4)
    tol = 1e-5 if method == "cvxpy" else ATOL_CLOSED_FORM  # cvxpy's interior point stops at ~1e-6
    assert np.abs(nu - star).max() <= tol


def test_solve_multipliers_in_file_order_and_nonnegative(tmp_path, capsys):
    dag = random_dag(np.random.default_rng(12), 9, 4).with_reward(np.array([1.0, 0.0, 0.0, 0.0]))
    nu0 = answer_marginal(dag)
    free = nu0 * np.exp(dag.reward / 0.5)
    cap = 0.5 * free[0] / free.sum()  # half the unconstrained optimum's mass: the cap binds
    cons = [LinearConstraint(np.array([1.0, 0, 0, 0]), "<=", cap, "cap0"),
            LinearConstraint(np.array([0, 1.0, 0, 0]), ">=", 0.01, "floor1")]
    path = tmp_path / "c.json"
    dagio.save(dag.with_constraints(cons), path)
    code, out, _ = run(capsys, "solve", path, "--objective", "reward", "--beta", 0.5, "--json")
    report = json.loads(out)
    assert code == 0 and len(report["multipliers"]) == 2
    assert report["multipliers"][0] > 0 and report["multipliers"][1] >= 0
    assert report["answer_distribution"][dag.answers[0]] == pytest.approx(cap, abs=1e-9)
    code, out_cvx, _ = run(capsys, "solve", path, "--objective", "reward", "--beta", 0.5, "--method", "cvxpy",
                           "--json")
    assert np.allclose(json.loads(out_cvx)["multipliers"], report["multipliers"], atol=1e-4)


def test_solve_multiview_and_hard_coherence(tmp_path, capsys):
    task = arithmetic_task(ArithmeticProblem((4, 6), (7, 8)), [[0.3, 0.1], [0.1, 0.3]])
    path = tmp_path / "t.json"
    dagio.save(task, path)
    code, out, _ = run(capsys, "solve", path, "--objective", "consensus", "--consensus", "geometric", "--tau", "inf",
                       "--beta", 1.0, "--json")
    report = json.loads(out)
    assert code == 0 and len(report["views"]) == 2 and "consensus" in report
    nu0 = np.stack([answer_marginal(v) for v in task.views])
    with np.errstate(divide="ignore"):
        log_q = 0.5 * np.log(nu0).sum(axis=0) + task.reward
    q = np.exp(log_q - log_q.max())
    q /= q.sum()
    got = np.array([report["consensus"][a] for a in task.answers])
    assert np.abs(got - q).max() <= ATOL_CLOSED_FORM


def test_game_reaches_closed_form_and_history(dag_file, capsys):
    path, dag = dag_file
    for dynamics in ("mirror", "extragradient", "best-response"):
        code, out, _ = run(capsys, "game", path, "--objective", "entropy", "--beta", 1.0, "--tau", 0.5, "--dynamics",
                           dynamics, "--iterations", 300, "--json")
        report = json.loads(out)
        assert code == 0 and report["exploitability"] <= 1e-10
        nu = np.array([report["answer_distribution"][a] for a in dag.answers])
        assert np.abs(nu - _entropy_closed_form(answer_marginal(dag), dag.reward, 1.0, 0.5)).max() <= ATOL_CLOSED_FORM
        assert {"iteration", "exploitability", "objective"} <= set(report["history"][0])


def test_errors_are_clear(dag_file, tmp_path, capsys):
    path, _ = dag_file
    task = arithmetic_task(ArithmeticProblem((4, 6), (7, 8)), [[0.3, 0.1], [0.1, 0.3]])
    tpath = tmp_path / "t.json"
    dagio.save(task, tpath)
    code, _, err = run(capsys, "solve", tpath, "--objective", "entropy")
    assert code == 2 and "takes a single DAG" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:  # argparse rejects it before anything runs
        run(capsys, "solve", path, "--objective", "sharpen", "--tau", "-1")
    assert exc.value.code == 2 and "--tau must be >= 0" in capsys.readouterr().err
    code, _, err = run(capsys, "solve", path, "--objective", "nonsense")
    assert code == 2 and "unknown objective" in err
    dag = random_dag(np.random.default_rng(1), 5, 3)
    bad = dag.with_constraints([LinearConstraint(np.ones(3), ">=", 2.0, "impossible")])
    bpath = tmp_path / "bad.json"
    dagio.save(bad, bpath)
    code, _, err = run(capsys, "solve", bpath, "--objective", "entropy", "--tau", 0.5)
    assert code == 2 and "infeasible" in err.lower()


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_runs_from_the_cli(algorithm, tmp_path, capsys):
    prob = ArithmeticProblem((4, 6), (7, 8))
    if algorithm == "pairwise-coherence-grpo":
        model = arithmetic_task(prob, [[0.3, 0.1], [0.1, 0.3]])
    else:
        from dagsim.generators import arithmetic_dag

        model = arithmetic_dag(prob, 0.2)
        if algorithm == "constrained-grpo":
            coef = np.zeros(model.n_answers)
            coef[0] = 1.0
            model = model.with_constraints([LinearConstraint(coef, "<=", 0.01, "cap")])
    path = tmp_path / "m.json"
    dagio.save(model, path)
    for mode in ("exact", "sampled"):
        code, out, err = run(capsys, "simulate", path, "--algorithm", algorithm, "--mode", mode, "--steps", 5,
                             "--group-size", 4, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert np.isfinite(report["distance_to_optimum"])
