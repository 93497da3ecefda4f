"""The quick ``proofs_check`` report as a test: every registered claim passes and every control fails.

``python -m proofs_check`` exits 1 when a claim fails or a control passes; this runs the same registry in
``--quick`` mode inside ``make test``, one parametrized case per claim ID, so that a regression names the
claim (and the sub-claim) that broke. Each case runs its check and its deliberately wrong control once.
"""

from __future__ import annotations

import json

import pytest

from proofs_check.registry import load_all, run_check
from proofs_check.runner import exit_code, main

REGISTRY = load_all()


def _failing_sub_claims(row: dict) -> list[str]:
    subs = row.get("sub_claims", {})
    return [f"{name}: {s['max_error']} > {s['tolerance']}" for name, s in subs.items() if not s["passed"]]


@pytest.mark.parametrize("claim_id", list(REGISTRY))
def test_quick_check_passes_and_its_control_fails(claim_id):
    row = run_check(REGISTRY[claim_id], quick=True)
    assert row["instances"] > 0
    assert row["passed"], f"{claim_id} fails: {_failing_sub_claims(row) or row['max_error']}"
    assert row["control_failed"], (f"{claim_id}'s control ({row['control']}) passes: the check cannot tell "
                                   "right from wrong")
    assert exit_code([row]) == 0
    json.dumps(row, allow_nan=False)  # the report row is valid JSON (no NaN)


def test_registry_covers_the_claims_of_the_spec():
    """P1–P4 and T1–T11 at least (T12 joins with the AQP tables); ids are unique and well formed."""
    expected = {f"P{i}" for i in range(1, 5)} | {f"T{i}" for i in range(1, 12)}
    assert expected <= set(REGISTRY)
    for cid, chk in REGISTRY.items():
        assert cid == chk.id and chk.control_description and chk.statement


def test_out_writes_the_report_and_its_table(tmp_path, capsys):
    assert main(["--only", "P1", "P4", "--quick", "--json", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "proofs_check.json").read_text())
    assert [r["id"] for r in written["checks"]] == ["P1", "P4"] == [r["id"] for r in printed["checks"]]
    table = (tmp_path / "proofs_check.md").read_text().splitlines()
    assert table[0].startswith("| id |") and table[2].startswith("| P1 |") and len(table) == 4


def test_unknown_claim_id_is_a_clear_error(capsys):
    assert main(["--only", "T99", "--quick"]) == 2
    assert "unknown claim id" in capsys.readouterr().err
