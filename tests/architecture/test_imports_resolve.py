"""Every import of our own packages resolves, in the code mypy and import-linter do not read.

mypy and import-linter check the packages; tests, benchmarks, experiments' helpers and the
conftest are outside them, so a module moved by a refactor (``resilience.stack`` became ``stack``)
left a test module that failed only when pytest collected it, on CI. This reads those files' import
statements (no import is executed) and looks each of our modules up.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"])
OUTSIDE = sorted(p for top in ("tests", "benchmarks", "experiments", "loadtests", "services") if (REPO / top).is_dir()
                 for p in (REPO / top).rglob("*.py") if ".venv" not in p.parts and "target" not in p.parts)
OUTSIDE.append(REPO / "conftest.py")


def _our_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) for each import of one of our packages; name is set for ``from m import name``."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] in OURS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in OURS:
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return found


def _resolves(module: str, name: str | None) -> bool:
    try:
        if importlib.util.find_spec(module) is None:
            return False
    except ModuleNotFoundError:
        return False
    if name is None or name == "*":
        return True
    # ``from package import submodule`` or ``from module import attribute``: a submodule, or a name
    # the module's source defines (read, not executed).
    if importlib.util.find_spec(f"{module}.{name}") is not None if _is_package(module) else False:
        return True
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    return name in _defined_names(tree)


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_our_imports_resolve(path: Path) -> None:
    broken = [f"{path.relative_to(REPO)}:{line}: {module}{'.' + name if name else ''}"
              for line, module, name in _our_imports(path) if not _resolves(module, name)]
    assert not broken, "imports of modules or names that do not exist:\n" + "\n".join(broken)


def test_the_guard_sees_a_moved_module(tmp_path: Path) -> None:
    """The failure that reached CI: the old path of a moved module is reported."""
    stale = tmp_path / "test_stale.py"
    stale.write_text("from resilience.stack.endpoints import CONSUMER_GROUP\nfrom stack.endpoints import NOPE\n")
    assert [(m, n) for _, m, n in _our_imports(stale) if not _resolves(m, n)] == [
        ("resilience.stack.endpoints", "CONSUMER_GROUP"), ("stack.endpoints", "NOPE")]


@pytest.mark.parametrize("path", [p for p in OUTSIDE if p.name != "conftest.py" or p.parent != REPO],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_a_conftest_by_name(path: Path) -> None:
    """``from conftest import ...`` finds whichever conftest pytest loaded first under that name (tests/service
    has one too): collection then fails or passes by order. Shared helpers are fixtures of the root conftest."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        assert "conftest" not in names, f"{path.relative_to(REPO)}:{node.lineno}"
