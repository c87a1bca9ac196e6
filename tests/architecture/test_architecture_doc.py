"""docs/architecture.md cannot drift: its layer table is the import contract, and every path it names exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "architecture.md").read_text()


def _contract_layers() -> list[set[str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [{p.strip() for p in layer.split("|")} for layer in contract["layers"]]


def _doc_layers() -> list[set[str]]:
    table = DOC.split("<!-- layers")[1].split("<!-- /layers -->")[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    return [set(re.findall(r"`([a-z_]+)`", row.split("|")[2])) for row in rows]


def test_the_layer_table_is_the_import_contract() -> None:
    assert _doc_layers() == _contract_layers()


def test_every_python_package_of_the_tree_is_in_a_layer() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py") if p.parent.name != "tests"}
    assert packages == set().union(*_contract_layers()), "a top-level package is missing from the layers"


def test_every_path_the_doc_names_exists() -> None:
    paths = set(re.findall(r"`([a-z_/]+(?:\.py|/))`", DOC))
    assert paths, "the doc names no paths"
    for path in sorted(paths):
        candidates = [REPO / path] + [REPO / top / path for top in ("resilience", "probes", "faults", "loadtests",
                                                                    "target", "stack", "clients", "sqlaudit")]
        assert any(c.exists() for c in candidates), f"docs/architecture.md names {path}, which does not exist"
