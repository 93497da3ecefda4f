"""Every figure: ``make(out, quick=True)`` writes PNG + PDF + JSON, the JSON holds the plotted numbers
(finite), and the data has the mathematical property the figure claims (pinned below per figure).

Each figure is made once per session (module fixture) and shared by its tests; the whole file takes
~50 s on 2 cores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from figures.registry import FIGURES

#: PNGs must stay small enough to browse and commit (the brief's budget).
PNG_MAX_BYTES = 300_000


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Lazily make each figure once: number → (paths, data)."""
    out = tmp_path_factory.mktemp("figures")
    cache: dict[int, tuple[dict, dict]] = {}

    def get(n: int) -> tuple[dict, dict]:
        if n not in cache:
            paths = FIGURES[n].make(out, quick=True)
            cache[n] = (paths, json.loads(Path(paths["json"]).read_text()))
        return cache[n]

    return get


def _numbers(obj) -> list:
    """All numeric leaves of a JSON value (non-finite floats are written as strings "nan"/"inf")."""
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [obj]
    if isinstance(obj, str) and obj in ("nan", "inf", "-inf"):
        return [float(obj)]
    return []


def _finite_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    assert arr.size > 0, f"{name} is empty"
    assert np.all(np.isfinite(arr)), f"{name} has non-finite entries"
    return arr


def _check_files(paths: dict) -> None:
    for ext in ("png", "pdf", "json"):
        p = Path(paths[ext])
        assert p.exists() and p.stat().st_size > 0, p
    assert Path(paths["png"]).stat().st_size <= PNG_MAX_BYTES
    assert Path(paths["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(paths["pdf"]).read_bytes()[:5] == b"%PDF-"


def test_registry_has_every_figure():
    assert {1, 2, 3, 4, 5, 6, 7, 9} <= set(FIGURES)
    for n, module in FIGURES.items():
        assert module.NAME.startswith(f"fig{n:02d}_")
        assert callable(module.compute) and callable(module.plot) and callable(module.make)


# ---------------------------------------------------------------------- figure 1
def test_fig01_equilibrium_equals_cvxpy_optimum(made):
    paths, d = made(1)
    _check_files(paths)
    tol = d["agreement_tol"]
    assert set(d["cases"]) >= {"reward", "entropy", "gini", "tsallis", "sharpen (β>τ)", "consensus arith.",
                               "consensus geom.", "pairwise", "entropy + constraint"}
    for label, case in d["cases"].items():
        err = _finite_array(case["exact_error"], f"{label} exact_error")
        assert err.max() <= tol, label
        # T1/T5: the exact solution is the fixed point ν = Gibbs(ν0, ∇Φ(ν) − Σλh) to rounding
        assert _finite_array(case["fixed_point_residual"], label).max() <= 1e-10, label
        # the certified optimum is never beaten by cvxpy beyond rounding
        vd = _finite_array(case["value_difference"], label)
        assert vd.min() >= -d["value_rtol"], label
        if case["dynamics_error"]:
            assert _finite_array(case["dynamics_error"], label).max() <= tol, label
    for fam, t in d["trace"].items():
        # P3: (E2) bounds (E1) from above — L-BFGS can stop short, never exceed it
        assert _finite_array(t["value_gap"], fam).min() >= -1e-9, fam
        # P3's policy π* is a stationary point of the trace-level objective
        assert _finite_array(t["grad_norm_at_pi_star"], fam).max() <= 1e-9, fam


# ---------------------------------------------------------------------- figures 2 and 3
def test_fig02_rates_match_theory(made):
    paths, d = made(2)
    _check_files(paths)
    for name, s in d["series"].items():
        _finite_array(s["exploitability"], name)
        if s["theoretical_rate"] is not None:
            assert s["empirical_rate"] == pytest.approx(s["theoretical_rate"], rel=0.1), name


def test_fig03_tau_sweep_spreads_and_sharpens(made):
    paths, d = made(3)
    _check_files(paths)
    tau = _finite_array(d["tau"], "tau")
    for name, o in d["objectives"].items():
        dist = _finite_array(o["distribution"], name)
        assert np.allclose(dist.sum(axis=1), 1.0, atol=1e-9)
    h_ent = _finite_array(d["objectives"]["entropy"]["entropy"], "H")
    assert np.all(np.diff(h_ent) >= -1e-9)  # diversity: entropy of the optimum grows with τ
    h_sharp = _finite_array(d["objectives"]["sharpen"]["entropy"], "H")
    assert np.all(h_sharp[tau > d["beta"]] <= 1e-12)  # T2: a vertex once τ > β


# ---------------------------------------------------------------------- figure 4
def test_fig04_pythagorean_identity_and_consensus(made):
    paths, d = made(4)
    _check_files(paths)
    v = d["random_views"]
    views_loss = _finite_array(v["views_log_loss"], "views_log_loss")
    geo_loss = _finite_array(v["geometric_log_loss"], "geometric_log_loss")
    disc = _finite_array(v["discrepancy"], "discrepancy")
    assert disc.min() >= -1e-15  # a weighted sum of KLs
    # T4: Σ w KL(u‖ν_j) − KL(u‖q) = Σ w KL(q‖ν_j) = −log Σ Π ν_j^{w_j}
    np.testing.assert_allclose(views_loss - geo_loss, disc, atol=1e-10)
    np.testing.assert_allclose(_finite_array(v["closed_form_gap"], "closed_form_gap"), disc, atol=1e-10)
    assert _finite_array(v["arithmetic_gain"], "arithmetic_gain").min() >= -1e-12  # Jensen
    for t in d["tasks"]:
        views = np.asarray(t["views_correct"])
        assert t["arithmetic"] == pytest.approx(t["views_mean"], abs=1e-12)  # q̄ = mean of views
        assert t["majority"] in (0.0, 1.0)
        # T4 at the truth: −log q(c) ≤ Σ w_j(−log ν_j(c)), i.e. q(c) ≥ the views' geometric mean (w uniform)
        assert t["geometric"] >= math.exp(np.mean(np.log(views))) - 1e-12
        if t["pattern"].startswith("identical"):
            assert t["geometric"] == pytest.approx(t["views_mean"], abs=1e-12)


# ---------------------------------------------------------------------- figure 5
def test_fig05_bias_rates(made):
    paths, d = made(5)
    _check_files(paths)
    s = d["slopes"]
    assert s["plugin"] == pytest.approx(-1.0, abs=0.2)
    assert s["minimax"] == pytest.approx(-2.0, abs=0.2)
    wc = {k: dict(zip(v["G"], _finite_array(v["worst_case"], k))) for k, v in d["worst_case"].items()}
    # THEORY T8's measured values (plug-in at G = 4..32, minimax at G = 4..16)
    for G, ref in zip((4, 8, 16, 32), (0.122, 0.066, 0.034, 0.018)):
        assert wc["plugin"][G] == pytest.approx(ref, rel=0.03)
    for G, ref in zip((4, 8, 16), (0.0200, 0.0051, 0.00127)):
        assert wc["minimax"][G] == pytest.approx(ref, rel=0.02)
    for G in wc["minimax"]:
        assert wc["minimax"][G] < wc["minimax_monotone"].get(G, np.inf)  # the unconstrained LP is the best table
        assert wc["minimax"][G] < wc["plugin"][G]
    p = _finite_array(d["p"], "p")
    for kind, b in d["curves"].items():
        b = _finite_array(b, kind)
        assert b[p == 0.0] == pytest.approx(0.0, abs=1e-15)
        assert np.abs(b).max() <= wc[kind][d["curve_G"]] * (1 + 1e-6)  # grid max ≤ the certified sup


# ---------------------------------------------------------------------- figure 6
def test_fig06_finite_group_bias(made):
    paths, d = made(6)
    _check_files(paths)
    st = d["stationary"]
    for est, s in st.items():
        _finite_array(s["distances"], est)
    plug = dict(zip(st["plugin"]["G"], st["plugin"]["median"]))
    mm = dict(zip(st["minimax"]["G"], st["minimax"]["median"]))
    assert list(plug) == [4, 8, 16, 32] and list(mm) == [4, 8, 16, 32]
    assert np.all(np.diff(list(plug.values())) < 0)  # the plug-in bias shrinks with G
    assert np.all(np.diff(list(mm.values())) < 0)
    for G in plug:
        assert mm[G] < plug[G]  # T10/T8: the minimax table is less biased at every G
    aqp = dict(zip(st["aqp"]["G"], st["aqp"]["median"]))
    for G in (8, 16, 32):
        assert aqp[G] < plug[G]  # T12: AQP's bias is well below the plug-in's (and above the minimax's)
    runs = d["sampled"]["runs"]
    for name, run in runs.items():
        dist = _finite_array(run["distance"], name)
        if run["estimator"] == "minimax":
            # its variance keeps it far above its tiny bias (G = 16; seeded run, measured ratio ≈ 600)
            assert run["tail_mean_distance"] >= 10 * run["expected_stationary_distance"]
            continue
        assert run["tail_mean_distance"] < dist[0]  # training moves toward the equilibrium
        if run["estimator"] == "plugin":
            # sampling noise does not remove the plug-in's finite-G bias (seeded run; measured ratio ≈ 1.0–2.1)
            assert run["tail_mean_distance"] >= 0.7 * run["expected_stationary_distance"]
    assert runs["aqp, G=16"]["tail_mean_distance"] < runs["plugin, G=16"]["tail_mean_distance"]


# ---------------------------------------------------------------------- figure 7
def test_fig07_complexity(made):
    paths, d = made(7)
    _check_files(paths)
    rows = d["cost"]["rows"]
    for r in rows:
        assert math.isfinite(r["seconds"]) and r["seconds"] >= 0 and math.isfinite(r["rms_error"])
        G, n = r["G"], d["cost"]["n_extra"]
        expected_work = {"answer-level (game)": G, "Monte Carlo marginal": G * n, "trace-level pairwise": G * (G - 1)}
        assert r["work"] == expected_work[r["method"]]
    # pairwise counting of equivalent traces reproduces the answer-level count exactly: same estimate
    for depth in d["cost"]["depths"]:
        for G in d["cost"]["groups"]:
            err = {r["method"]: r["rms_error"] for r in rows if r["depth"] == depth and r["G"] == G}
            assert err["trace-level pairwise"] == pytest.approx(err["answer-level (game)"], abs=1e-12)
    m = d["marginal"]
    _finite_array(m["dp_seconds"], "dp_seconds")
    _finite_array(m["enum_seconds"], "enum_seconds")
    assert max(m["dp_vs_enum_max_diff"]) <= 1e-12  # P1: DP = brute force
    w, k = m["width"], m["n_answers"]
    assert m["n_traces"] == [float(w**depth * k) for depth in m["depth"]]


# ---------------------------------------------------------------------- figure 9
def test_fig09_multiplier_is_the_slope_of_the_frontier(made):
    paths, d = made(9)
    _check_files(paths)
    b = _finite_array(d["b"], "b")
    value = _finite_array(d["value"], "value")
    lam = _finite_array(d["multiplier"], "multiplier")
    fd = _finite_array(d["finite_difference_slope"], "finite_difference_slope")
    mass = _finite_array(d["constrained_mass"], "constrained_mass")
    assert lam.min() >= 0.0
    assert np.all(np.diff(lam) <= 1e-9)  # V is concave in b
    assert np.all(np.diff(value) >= -1e-12)  # a looser cap never hurts
    assert np.all(mass <= b + 1e-9)
    assert np.all(lam[b > d["free_mass"] + 1e-9] <= 1e-9)  # inactive constraint
    inner = (b > b[1]) & (b < 0.95 * d["free_mass"])
    np.testing.assert_allclose(fd[inner], lam[inner], rtol=0.05)  # T5: λ = dV/db
    for c in d["cvxpy_checks"]:
        assert c["value_exact"] == pytest.approx(c["value_cvxpy"], abs=1e-8)
        assert c["lambda_exact"] == pytest.approx(c["lambda_cvxpy"], abs=1e-4, rel=1e-4)


# ---------------------------------------------------------------------- all JSONs finite, CLI
def test_every_json_number_is_finite(made):
    for n in (1, 4, 5, 6, 7, 9):
        _, d = made(n)
        nums = _numbers(d)
        assert nums and all(math.isfinite(x) for x in nums), n


def test_cli_figures_quick_only(tmp_path, capsys):
    code = main(["figures", "--only", "9", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "[1/1] figure 9" in out
    for ext in ("png", "pdf", "json"):
        path = tmp_path / f"fig09_constraints_frontier.{ext}"
        assert path.exists() and str(path) in out


def test_cli_figures_unknown_number(tmp_path, capsys):
    code = main(["figures", "--only", "42", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no figure [42]" in err and "Traceback" not in err
