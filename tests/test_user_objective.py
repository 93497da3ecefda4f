"""User-defined objective families (``--objective-module``, issue #17) through the real CLI.

The example family (examples/objective_power_mean.py, Φ = ⟨r, ν⟩ + τ‖ν‖_½, not in the package) is
solved, played, simulated and checked by ``dagsim``; the solve is compared with an independent oracle
(scipy SLSQP on the simplex, Φ written here), the simulator's user path with the built-in family it
clones, and the loader's checks have controls that must fail (wrong ∇Φ, wrong class name, ...).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from dagsim import dagio
from dagsim.generators import random_dag
from dagsim.marginals import answer_marginal

try:  # the console script's entry point: the app/ top layer where it exists (issue #17), else dagsim's own
    from app.cli import main

    ENTRY_MODULE = "app"
except ModuleNotFoundError:
    from dagsim.cli import main

    ENTRY_MODULE = "dagsim.cli"

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "objective_power_mean.py"
SPEC = f"{EXAMPLE}:PowerMeanObjective"
#: SLSQP on the simplex (ftol 1e-15) and cvxpy's pnorm program (ν to ~1e-6 measured) agree to this.
TOL_ORACLE = 2e-5
#: Two runs of the same arithmetic in a different order (user plug-in vs built-in table).
TOL_SAME = 1e-12


@pytest.fixture(scope="module", autouse=True)
def _restore_registries():
    """The user families these tests load must not outlive the module (other tests list the registries)."""
    from dagsim.grpo.algorithms import ALGORITHMS
    from dagsim.grpo.rewards import REWARD_OBJECTIVES
    from dagsim.objectives import OBJECTIVES
    from dagsim.objectives import user as U

    saved = [(d, dict(d)) for d in (OBJECTIVES, REWARD_OBJECTIVES, ALGORITHMS, U._LOADED_FILES)]
    names = set(U.USER_NAMES)
    yield
    for d, copy in saved:
        d.clear()
        d.update(copy)
    U.USER_NAMES.clear()
    U.USER_NAMES.update(names)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys, *argv) -> dict:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def dag_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(7)
    dag = random_dag(rng, 7, 4, edge_prob=0.35, concentration=1.0)
    dag = dag.with_reward(np.array([0.3, -0.2, 0.8, 0.0]))
    path = tmp_path_factory.mktemp("user") / "dag.json"
    dagio.save(dag, path)
    return path


def _oracle(nu0: np.ndarray, r: np.ndarray, tau: float, beta: float, p: float = 0.5) -> np.ndarray:
    """argmax ⟨r, ν⟩ + τ(Σ ν^p)^{1/p} − β KL(ν‖ν0) over the simplex by SLSQP (written independently)."""

    def neg(nu):
        nu = np.maximum(nu, 1e-300)
        return -(r @ nu + tau * np.sum(nu ** p) ** (1 / p) - beta * np.sum(nu * np.log(nu / nu0)))

    res = minimize(neg, nu0.copy(), method="SLSQP", bounds=[(1e-12, 1.0)] * nu0.size,
                   constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
                   options={"ftol": 1e-15, "maxiter": 1000})
    assert res.success, res.message
    return res.x / res.x.sum()


def _dist(out: dict) -> np.ndarray:
    return np.array(list(out["answer_distribution"].values()))


def _write(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


# ---------------------------------------------------------------------- the example family itself
def _power_hessian(nu: np.ndarray, p: float) -> np.ndarray:
    """Hessian of ‖ν‖_p (derived here): (1−p) S^{1/p−2}(a aᵀ − S diag ν^{p−2}), a = ν^{p−1}, S = Σν^p."""
    s, a = np.sum(nu ** p), nu ** (p - 1)
    return (1 - p) * s ** (1 / p - 2) * (np.outer(a, a) - s * np.diag(nu ** (p - 2)))


def _curvature_probe(value, hessian, rng, k: int) -> tuple[float, float]:
    """(largest second difference of ``value`` along a random unit tangent direction, largest eigenvalue of
    the Hessian projected on the tangent space {Σ d = 0}) at a random interior point."""
    nu = 0.9 * rng.dirichlet(np.ones(k)) + 0.1 / k
    d = rng.normal(size=k)
    d -= d.mean()
    d /= np.linalg.norm(d)
    h = 1e-4
    second = (value(nu + h * d) - 2 * value(nu) + value(nu - h * d)) / h ** 2
    proj = np.eye(k) - 1.0 / k
    return second, float(np.linalg.eigvalsh(proj @ hessian(nu) @ proj)[-1])


def test_example_family_is_concave_on_the_simplex():
    """Second differences of the family's Φ along random tangent directions are ≤ 0, and so is the projected
    Hessian of τ‖ν‖_p; control: the same probes find the convexity of ‖ν‖_2 (p = 2, outside the family)."""
    from dagsim.objectives.user import load_objective_module

    family = load_objective_module(SPEC)
    rng = np.random.default_rng(0)
    worst_fd, worst_eig = -np.inf, -np.inf
    for _ in range(50):
        k = int(rng.integers(2, 7))
        p = float(rng.uniform(0.1, 0.9))
        obj = family.make(k, reward=rng.normal(size=k), tau=1.0, order=p)
        fd, eig = _curvature_probe(obj.value, lambda nu, p=p: _power_hessian(nu, p), rng, k)
        worst_fd, worst_eig = max(worst_fd, fd), max(worst_eig, eig)
    assert worst_fd < 1e-6 and worst_eig < 1e-9
    fd, eig = _curvature_probe(lambda nu: float(np.sum(nu ** 2) ** 0.5), lambda nu: _power_hessian(nu, 2.0),
                               rng, 3)
    assert fd > 1e-3 and eig > 1e-3


def test_example_is_not_in_the_package():
    from dagsim.objectives import OBJECTIVES

    builtin = [c for c in OBJECTIVES.values() if c.__module__.startswith("dagsim.")]
    assert "power-mean" not in {c.name for c in builtin}
    assert not any("PowerMean" in c.__name__ for c in builtin)


# ---------------------------------------------------------------------- solve / game through the CLI
def test_solve_matches_slsqp_oracle_and_the_game(capsys, dag_file):
    out = _json(capsys, "solve", str(dag_file), "--objective-module", SPEC, "--tau", "0.8", "--beta", "0.6")
    assert out["method"] == "cvxpy" and out["status"] == "optimal"
    assert out["objective_module"]["route"] == "cvxpy" and out["objective_module"]["name"] == "power-mean"
    dag = dagio.load(dag_file)
    nu0 = answer_marginal(dag)
    truth = _oracle(nu0, dag.reward, 0.8, 0.6)
    nu = _dist(out)
    assert np.abs(nu - truth).max() < TOL_ORACLE
    assert abs(out["value"] - (dag.reward @ nu + 0.8 * np.sum(np.sqrt(nu)) ** 2
                               - 0.6 * np.sum(nu * np.log(nu / nu0)))) < 1e-12
    check = out["objective_module"]["game_check"]
    assert check["exploitability"] <= 1e-12 and check["max_abs_diff"] < TOL_ORACLE
    # control: the oracle at another β is far from the CLI's answer (the comparison can fail)
    assert np.abs(nu - _oracle(nu0, dag.reward, 0.8, 1.2)).max() > 100 * TOL_ORACLE

    game = _json(capsys, "game", str(dag_file), "--objective-module", SPEC, "--tau", "0.8", "--beta", "0.6",
                 "--dynamics", "mirror", "--iterations", "2000", "--step", "0.2")
    assert game["stopped"] == "tolerance" and game["exploitability"] <= 1e-13
    assert np.abs(_dist(game) - truth).max() < TOL_ORACLE
    assert game["objective_module"] == {"name": "power-mean", "source": SPEC}


def test_solve_order_parameter_reaches_the_family(capsys, dag_file):
    out = _json(capsys, "solve", str(dag_file), "--objective-module", SPEC, "--tau", "1.5", "--order", "0.3")
    dag = dagio.load(dag_file)
    truth = _oracle(answer_marginal(dag), dag.reward, 1.5, 1.0, p=0.3)
    assert np.abs(_dist(out) - truth).max() < TOL_ORACLE
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", SPEC, "--order", "1.5")
    assert code == 2 and "(0, 1)" in err


def test_game_route_without_cvxpy_pieces(capsys, dag_file, tmp_path):
    """A family with neither cvxpy pieces nor a dual solver is solved by the game dynamics (T1)."""
    path = _write(tmp_path, "nopieces", f"""
        import sys
        sys.path.insert(0, {str(EXAMPLE.parent)!r})
        from dagsim.objectives.base import Objective
        from objective_power_mean import PowerMeanObjective

        class PowerMeanNoCvxpy(PowerMeanObjective):
            name = "power-mean-nocvx"
            cvxpy_pieces = Objective.cvxpy_pieces
        """)
    out = _json(capsys, "solve", str(dag_file), "--objective-module", f"{path}:PowerMeanNoCvxpy", "--tau", "0.8")
    assert out["method"] == "game" and out["objective_module"]["route"] == "game"
    dag = dagio.load(dag_file)
    assert np.abs(_dist(out) - _oracle(answer_marginal(dag), dag.reward, 0.8, 1.0)).max() < TOL_ORACLE
    assert out["kkt_residual"] < 1e-5
    # the simulator measures distances to the same optimum (game route vs cvxpy): step 0 agrees
    sims = [_json(capsys, "simulate", str(dag_file), "--algorithm", "diversity-grpo", "--mode", "expected",
                  "--tau", "0.8", "--steps", "0", "--objective-module", spec)
            for spec in (f"{path}:PowerMeanNoCvxpy", SPEC)]
    assert abs(sims[0]["distance_to_optimum"] - sims[1]["distance_to_optimum"]) < TOL_ORACLE
    assert sims[0]["distance_to_optimum"] > 10 * TOL_ORACLE


GINI_CLONE = """
    import numpy as np
    from scipy.special import wrightomega
    from dagsim.objectives.base import SeparableObjective, register

    @register("{name}")
    class GiniClone(SeparableObjective):
        def __init__(self, n_answers, *, reward=None, tau=1.0):
            super().__init__(n_answers, reward=reward, tau=tau)
        def rho_offset(self):
            return 1.0
        def rho(self, nu):
            return -nu * nu
        def drho(self, nu):
            return -2.0 * nu
        def coordinate_response(self, a, beta):
            u = a / beta - wrightomega(np.log(2.0 * self.tau / beta) + a / beta)
            return u, 1.0 / (beta + 2.0 * self.tau * np.exp(u))
        def is_concave_regime(self, beta):
            return True
    {extra}
    """
UNBIASED_TABLE = """
        @staticmethod
        def count_reward_table(ctx, estimates):
            c = np.arange(ctx.group_size) / (ctx.group_size - 1.0)
            return ctx.task_reward[:, None] - 2.0 * ctx.tau * c[None, :]
    """


def test_dual_route_equals_the_builtin_family(capsys, dag_file, tmp_path):
    path = _write(tmp_path, "giniclone", GINI_CLONE.format(name="gini-clone", extra=""))
    user = _json(capsys, "solve", str(dag_file), "--objective-module", f"{path}:GiniClone", "--tau", "0.7")
    ref = _json(capsys, "solve", str(dag_file), "--objective", "gini", "--tau", "0.7")
    assert user["method"] == "dual" and user["objective_module"]["route"] == "dual"
    assert np.abs(_dist(user) - _dist(ref)).max() < TOL_SAME
    assert user["objective_module"]["game_check"]["max_abs_diff"] < 1e-5


# ---------------------------------------------------------------------- simulate
SIM_COMMON = ("--algorithm", "diversity-grpo", "--beta", "0.5", "--tau", "0.7", "--group-size", "4", "--steps", "15")


def test_simulate_plugin_reward_equals_builtin_plugin_gini(capsys, dag_file, tmp_path):
    """The plug-in ∇Φ(q̂) of a Gini clone is r − 2τ(C+1)/G: the built-in gini with the plug-in estimator and
    G-tables (--no-rloo-aware), exactly, in expected and in sampled mode."""
    path = _write(tmp_path, "giniplug", GINI_CLONE.format(name="gini-plug", extra=""))
    for mode in ("expected", "sampled"):
        user = _json(capsys, "simulate", str(dag_file), *SIM_COMMON, "--mode", mode,
                     "--objective-module", f"{path}:GiniClone")
        ref = _json(capsys, "simulate", str(dag_file), *SIM_COMMON, "--mode", mode, "--objective", "gini",
                    "--estimator", "plugin", "--no-rloo-aware")
        assert user["objective_module"]["group_reward"] == "plugin"
        assert np.abs(_dist(user) - _dist(ref)).max() < TOL_SAME, mode
        assert abs(user["distance_to_optimum"] - ref["distance_to_optimum"]) < TOL_SAME
    # control: against the unbiased estimator the same run differs
    ref = _json(capsys, "simulate", str(dag_file), *SIM_COMMON, "--mode", "expected", "--objective", "gini",
                "--estimator", "unbiased", "--no-rloo-aware")
    user = _json(capsys, "simulate", str(dag_file), *SIM_COMMON, "--mode", "expected",
                 "--objective-module", f"{path}:GiniClone")
    assert np.abs(_dist(user) - _dist(ref)).max() > 1e-6


UNBIASED_GROUP = """
        @staticmethod
        def group_reward(answers, ctx):
            G = answers.shape[-1]
            others = (answers[..., :, None] == answers[..., None, :]).sum(axis=-1) - 1  # (B, G) LOO counts
            return ctx.task_reward[answers] - 2.0 * ctx.tau * others / (G - 1.0)
    """


@pytest.mark.parametrize("hook, extra", [("table", UNBIASED_TABLE), ("group", UNBIASED_GROUP)])
def test_simulate_family_reward_hook_equals_builtin_unbiased_gini(capsys, dag_file, tmp_path, hook, extra):
    """The family's own reward (count_reward_table or group_reward) replaces the plug-in: a clone of the
    unbiased Gini reward C/(G−1) reproduces the built-in gini with --estimator unbiased, G-tables."""
    path = _write(tmp_path, f"gini{hook}", GINI_CLONE.format(name=f"gini-{hook}", extra=extra))
    for mode in ("expected", "sampled"):
        user = _json(capsys, "simulate", str(dag_file), *SIM_COMMON, "--mode", mode,
                     "--objective-module", f"{path}:GiniClone")
        ref = _json(capsys, "simulate", str(dag_file), *SIM_COMMON, "--mode", mode, "--objective", "gini",
                    "--estimator", "unbiased", "--no-rloo-aware")
        assert user["objective_module"]["group_reward"] == hook
        assert np.abs(_dist(user) - _dist(ref)).max() < TOL_SAME, mode


def test_simulate_power_mean_expected_and_sampled(capsys, dag_file):
    runs = {}
    for mode in ("expected", "sampled"):
        out = _json(capsys, "simulate", str(dag_file), "--algorithm", "diversity-grpo", "--mode", mode,
                    "--group-size", "8", "--steps", "40", "--objective-module", SPEC)
        assert out["objective_module"]["name"] == "power-mean"
        assert out["objective_module"]["group_reward"] == "plugin"
        assert "biased" in out["objective_module"]["group_reward_description"]
        runs[mode] = out
    assert runs["expected"]["objective_module"]["effective_reward_bias_at_nu0"] > 1e-3  # the plug-in is biased
    assert runs["expected"]["distance_to_optimum"] < runs["expected"]["final"]["distance_to_optimum"] + 1e-15
    for out in runs.values():
        assert np.isfinite(out["distance_to_optimum"]) and abs(sum(out["answer_distribution"].values()) - 1) < 1e-9
    code, _, err = _run(capsys, "simulate", str(dag_file), "--algorithm", "ttrl", "--mode", "expected",
                        "--objective-module", SPEC)
    assert code == 2 and "diversity-grpo" in err


# ---------------------------------------------------------------------- dagsim check
def test_check_reports_t1_t9_t10_with_failing_controls(capsys):
    code, out, err = _run(capsys, "check", "--objective-module", SPEC, "--quick", "--json")
    assert code == 0, err
    report = json.loads(out)
    rows = {r["id"]: r for r in report["checks"]}
    assert list(rows) == ["T1", "T9", "T10"] and report["objective_module"]["name"] == "power-mean"
    for r in rows.values():
        assert r["passed"] and r["control_failed"] and r["family"] == "power-mean", r["id"]
    assert rows["T1"]["solver_routes"] == ["cvxpy"]
    tv = rows["T10"]["tv_to_optimum"]
    assert set(tv) == {"G=2", "G=4", "G=8"} and all(0 < lo <= hi for lo, hi in tv.values())
    assert tv["G=8"][1] < tv["G=2"][0]  # the plug-in's bias shrinks with G on these instances


def test_check_skips_t1_for_a_convex_family(capsys, tmp_path):
    """T1 is the concave case: for a convex Φ (τ‖ν‖₂, no solver) it is reported as skipped, T9 still runs."""
    path = _write(tmp_path, "l2", """
        import numpy as np
        from dagsim.objectives.base import Objective, check_vector

        class L2Norm(Objective):
            name = "l2-norm"
            curvature = "convex"
            def value(self, nu):
                nu = check_vector(nu, self.n_answers)
                return float(self.task_reward @ nu + self.tau * np.sqrt(nu @ nu))
            def reward(self, q):
                q = check_vector(q, self.n_answers)
                return self.task_reward + self.tau * q / np.sqrt(q @ q)
            def is_concave_regime(self, beta):
                return False
        """)
    code, out, err = _run(capsys, "check", "--objective-module", f"{path}:L2Norm", "--quick", "--json",
                          "--only", "T1", "T9")
    assert code == 0, err
    report = json.loads(out)
    assert [r["id"] for r in report["checks"]] == ["T9"] and report["checks"][0]["passed"]
    assert report["skipped"][0]["id"] == "T1" and "concave" in report["skipped"][0]["why"]
    code, _, err = _run(capsys, "check", "--objective-module", f"{path}:L2Norm", "--quick", "--only", "T1")
    assert code == 2 and "no claim applies" in err


def test_check_fails_a_family_whose_gradient_is_wrong_inside_the_claims(capsys, tmp_path):
    """A ∇Φ wrong only near the faces (ν_z < 0.05, where the loader's interior points never go) passes the
    loader but fails T1/T9: the report can say NO."""
    path = _write(tmp_path, "subtle", f"""
        import sys
        import numpy as np
        sys.path.insert(0, {str(EXAMPLE.parent)!r})
        from objective_power_mean import PowerMeanObjective

        class Subtle(PowerMeanObjective):
            name = "power-mean-subtle"
            def reward(self, q):
                g = super().reward(q)
                return np.where(np.asarray(q) < 0.05, g + 1.0, g)
        """)
    code, out, _ = _run(capsys, "check", "--objective-module", f"{path}:Subtle", "--quick", "--json",
                        "--only", "T9")
    assert code == 1
    assert not json.loads(out)["checks"][0]["passed"]


# ---------------------------------------------------------------------- the loader's controls (exit 2)
BAD_GRADIENT = f"""
    import sys
    import numpy as np
    sys.path.insert(0, {str(EXAMPLE.parent)!r})
    from objective_power_mean import PowerMeanObjective

    class WrongGradient(PowerMeanObjective):
        name = "power-mean-wrong"
        def reward(self, q):
            return self.task_reward + 2.0 * (super().reward(q) - self.task_reward)
    """


@pytest.mark.parametrize("body, cls, needle", [
    (BAD_GRADIENT, "WrongGradient", "field 'reward'"),
    (BAD_GRADIENT, "WrongGradiant", "has no class 'WrongGradiant'"),
    ("class NotAnObjective:\n    pass\n", "NotAnObjective", "not a subclass"),
    ("from dagsim.objectives.base import Objective\nclass Half(Objective):\n"
     "    def value(self, nu):\n        return 0.0\n", "Half", "abstract method"),
    ("from dagsim.objectives.base import register\nfrom dagsim.objectives.entropy import EntropyObjective\n"
     "@register('entropy')\nclass Mine(EntropyObjective):\n    pass\n", "Mine", "name clash"),
    ("from dagsim.objectives.base import register\nfrom dagsim.objectives.entropy import EntropyObjective\n"
     "@register('ttrl')\nclass Mine(EntropyObjective):\n    pass\n", "Mine", "name clash"),
    ("from dagsim.objectives.entropy import EntropyObjective\nclass Entropy(EntropyObjective):\n    pass\n",
     "Entropy", "name clash"),
    ("from dagsim.objectives.gini import GiniObjective\n", "GiniObjective", "built-in family 'gini'"),
    ("from dagsim.objectives.collision import CollisionObjective\nclass Cvx(CollisionObjective):\n"
     "    name = 'convex-says-concave'\n    family_curvature = 'concave'\n", "Cvx", "field 'curvature'"),
    (f"import sys\nsys.path.insert(0, {str(EXAMPLE.parent)!r})\nimport cvxpy as cp\n"
     "from objective_power_mean import PowerMeanObjective\nclass BadPieces(PowerMeanObjective):\n"
     "    name = 'power-mean-badcvx'\n    def cvxpy_pieces(self, x, support, nu0_s, beta):\n"
     "        return [self.task_reward[support] @ x - beta * cp.sum(cp.rel_entr(x, nu0_s))]\n",
     "BadPieces", "field 'cvxpy_pieces'"),
    ("raise RuntimeError('boom')\n", "X", "RuntimeError: boom"),
])
def test_bad_modules_exit_2_naming_the_problem(capsys, dag_file, tmp_path, body, cls, needle):
    path = _write(tmp_path, "bad", body)
    code, out, err = _run(capsys, "solve", str(dag_file), "--objective-module", f"{path}:{cls}")
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert out == ""


def test_the_right_gradient_is_accepted_by_the_same_check(capsys, dag_file, tmp_path):
    """Control of the wrong-∇Φ rejection: the same file with the factor 2 removed loads and solves."""
    path = _write(tmp_path, "good", BAD_GRADIENT.replace("2.0 * (super", "1.0 * (super").replace(
        "power-mean-wrong", "power-mean-right"))
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", f"{path}:WrongGradient", "--json")
    assert code == 0, err


def test_a_rewritten_file_is_reloaded(capsys, dag_file, tmp_path):
    """The same path loaded again after an edit runs the new content (the loader keys on the file's bytes)."""
    path = _write(tmp_path, "edited", BAD_GRADIENT.replace("power-mean-wrong", "power-mean-edited"))
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", f"{path}:WrongGradient")
    assert code == 2 and "field 'reward'" in err
    Path(path).write_text(Path(path).read_text().replace("2.0 * (super", "1.0 * (super"))
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", f"{path}:WrongGradient", "--json")
    assert code == 0, err
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", f"{path}:WrongGradient", "--json")
    assert code == 0, err  # unchanged: the cached module


def test_missing_file_and_bad_spec(capsys, dag_file):
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", "nowhere/none.py:X")
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, "solve", str(dag_file), "--objective-module", str(EXAMPLE))
    assert code == 2 and "ClassName" in err
    with pytest.raises(SystemExit) as exc:  # argparse: the two flags are mutually exclusive
        main(["solve", str(dag_file), "--objective", "gini", "--objective-module", SPEC])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_dotted_module_spec_and_real_process(dag_file):
    """``module.path:Name`` through a real ``dagsim`` process (``python -m``; the example dir on PYTHONPATH)."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE.parent), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", ENTRY_MODULE, "solve", str(dag_file), "--objective-module",
                           "objective_power_mean:PowerMeanObjective", "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    dag = dagio.load(dag_file)
    assert np.abs(_dist(out) - _oracle(answer_marginal(dag), dag.reward, 1.0, 1.0)).max() < TOL_ORACLE
    proc = subprocess.run([sys.executable, "-m", ENTRY_MODULE, "solve", str(dag_file), "--objective-module",
                           "objective_power_mean:PowerMean"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "has no class 'PowerMean'" in proc.stderr and "Traceback" not in proc.stderr
