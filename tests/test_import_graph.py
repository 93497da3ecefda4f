"""The layers import only downwards (issue #17): dagsim < llm, proofs_check < figures < app.

Every module's imports are read statically with ``ast`` — module-level and function-local ``import`` /
``from ... import`` statements and ``importlib.import_module("literal")`` calls — so an import that only
runs inside a function (the old ``dagsim.cli`` → ``llm.cli``) is caught too. The controls plant an upward
import in a copy of the real tree and check that the same scan reports it.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package -> the packages its modules may import (itself included).
ALLOWED = {
    "dagsim": {"dagsim"},
    "llm": {"dagsim", "llm"},
    "proofs_check": {"dagsim", "proofs_check"},
    "figures": {"dagsim", "llm", "proofs_check", "figures"},
    "app": {"dagsim", "llm", "proofs_check", "figures", "app"},
}
PACKAGES = set(ALLOWED)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def upward_imports(root: Path) -> list[str]:
    """``path:line: package imports module`` for every import that leaves its package's allowed set."""
    bad = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, module in imported_modules(tree):
                top = module.split(".")[0]
                if top in PACKAGES and top not in allowed:
                    bad.append(f"{path.relative_to(root)}:{line}: {package} imports {module}")
    return bad


def test_no_package_imports_a_layer_above_it():
    assert upward_imports(ROOT) == []


def test_the_scan_reads_the_real_tree():
    """Not vacuous: the scan sees the known downward edges, function-local ones included."""
    edges = set()
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            for _, module in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
                edges.add((package, module.split(".")[0]))
    assert {("llm", "dagsim"), ("proofs_check", "dagsim"), ("figures", "llm"), ("app", "llm"),
            ("app", "proofs_check"), ("app", "figures")} <= edges
    local = imported_modules(ast.parse((ROOT / "app" / "cli.py").read_text(encoding="utf-8")))
    assert any(m == "llm.cli" for _, m in local)  # imported inside _run_llm only


@pytest.mark.parametrize("package, planted", [
    ("dagsim", "def f():\n    from llm.cli import main\n    return main\n"),   # the old dagsim.cli -> llm.cli
    ("dagsim", "import proofs_check.runner\n"),
    ("dagsim", "import importlib\nm = importlib.import_module('figures.cli')\n"),
    ("llm", "from figures.fig08_llm_training import make\n"),                 # the old llm.demo -> figures
    ("proofs_check", "def g():\n    import app.cli\n"),
    ("figures", "from app.demo import demo_steps\n"),
])
def test_control_a_planted_upward_import_is_caught(tmp_path, package, planted):
    for p in ALLOWED:
        shutil.copytree(ROOT / p, tmp_path / p, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.png"))
    assert upward_imports(tmp_path) == []
    (tmp_path / package / "planted_upward.py").write_text(planted, encoding="utf-8")
    bad = upward_imports(tmp_path)
    assert len(bad) == 1 and bad[0].startswith(f"{package}/planted_upward.py:"), bad
