"""docs/theory.md is the spec users can read: it must define every ID the code cites and match the registry.

* every claim registered in ``proofs_check`` has a row in the doc's claims table, naming the module that
  registers it;
* every row marked ``check:`` is registered (a row marked ``check (…):`` documents a check that arrives
  with another part of the code; once registered, its module must match too);
* every equation or claim ID cited in the code, the figures, the benchmarks and the README (``E2``, ``T6c``,
  ``T11a``, …) is defined in the doc (as ``(E2)`` or ``**T6c**``; a lettered sub-claim may be defined by its
  claim's paragraph).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from proofs_check.registry import load_all

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"
#: Where IDs are cited (tests are excluded: they quote IDs of the doc, and E0/E402-like tokens).
CITING = ("app", "dagsim", "llm", "proofs_check", "figures", "bench")
CITED_ID = re.compile(r"\b(E[1-9]|P[1-9]|T[1-9][0-9]?[a-e]?)\b")
ROW = re.compile(r"^\|\s*(?P<id>[PT][0-9]+)\s*\|(?P<what>[^|]*(?:\\\|[^|]*)*)\|\s*(?P<marker>check[^:`]*):\s*"
                 r"`(?P<path>[^`]+)`\s*\|")


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def claims_table(text: str) -> dict[str, tuple[str, str]]:
    """{claim id: (marker, module path)} from the rows of the '## Claims and their checks' table."""
    section = text.split("## Claims and their checks", 1)[1]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            assert m["id"] not in rows, f"claim {m['id']} has two rows in docs/theory.md"
            rows[m["id"]] = (m["marker"].strip(), m["path"])
    return rows


def _module_path(chk) -> str:
    return Path(inspect.getsourcefile(chk.run)).resolve().relative_to(ROOT).as_posix()


def test_every_registered_check_is_documented_with_its_module():
    rows = claims_table(_doc())
    registry = load_all()
    missing = sorted(set(registry) - set(rows))
    assert not missing, f"registered checks missing from docs/theory.md's claims table: {missing}"
    for cid, chk in registry.items():
        where = _module_path(chk)
        assert rows[cid][1] == where, f"{cid}: the doc names {rows[cid][1]}, the registry {where}"


def test_every_checked_row_is_registered():
    rows = claims_table(_doc())
    registry = load_all()
    assert len(rows) >= 15
    for cid, (marker, path) in rows.items():
        if marker == "check":
            assert cid in registry, f"docs/theory.md marks {cid} as checked but no check is registered"
            assert (ROOT / path).is_file(), f"{cid}: {path} does not exist"
        else:
            assert re.fullmatch(r"check \([^)]+\)", marker), f"{cid}: unknown marker {marker!r}"


def _cited_ids() -> dict[str, str]:
    cited = {}
    files = [p for d in CITING for p in (ROOT / d).rglob("*.py")] + [ROOT / "README.md"]
    for path in files:
        for m in CITED_ID.finditer(path.read_text(encoding="utf-8")):
            cited.setdefault(m[1], path.relative_to(ROOT).as_posix())
    return cited


def _defined(text: str, cid: str) -> bool:
    """Equations are defined by their tag ``(E2)``, claims by a bold ``**T6c**`` opening their paragraph."""
    return f"({cid})" in text if cid.startswith("E") else f"**{cid}**" in text


def test_every_cited_id_is_defined_in_the_doc():
    text = _doc()
    cited = _cited_ids()
    assert {"E2", "P3", "T8", "T11"} <= set(cited)  # the scan finds the IDs the code is known to cite
    undefined = {cid: where for cid, where in cited.items()
                 if not (_defined(text, cid) or (cid[-1].isalpha() and _defined(text, cid[:-1])))}
    assert not undefined, f"IDs cited but not defined in docs/theory.md (first citing file): {undefined}"


@pytest.mark.parametrize("cid", ["E1", "E2", "E3", "E4", "E5", "P1", "P4", "T6a", "T6c", "T11a", "T11e", "T12"])
def test_the_spec_defines_its_core_ids(cid):
    assert _defined(_doc(), cid)


def test_the_definition_check_is_not_vacuous(tmp_path):
    """The row parser and the definition test reject a doc that lost a row or a definition."""
    text = _doc()
    broken = text.replace("| T8 |", "| T99 |", 1).replace("**T6c**", "T6c", 1)
    assert "T8" not in claims_table(broken) and "T8" in claims_table(text)
    assert not _defined(broken, "T6c") and _defined(text, "T6c")
