"""The map in docs/architecture.md, checked against the code: which package may import which, and that no
package reaches into another's repositories (it calls that package's service API)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAY_IMPORT = {
    "kit": set(),
    "commerce": {"kit"},
    "nlu": {"kit"},
    "knowledge_base": {"kit", "nlu"},
    "bot": {"kit", "nlu", "knowledge_base", "commerce"},
    "api": {"kit", "nlu", "knowledge_base", "commerce", "bot"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_packages_import_only_downwards(package: str) -> None:
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in _modules(package) for line, name in _imports(path)
             if (top := name.split(".")[0]) in MAY_IMPORT and top != package and top not in MAY_IMPORT[package]]
    assert wrong == []


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_no_package_goes_through_anothers_repositories(package: str) -> None:
    """Another package's repository is its own business; `<pkg>.<domain>.repository` is imported inside `<pkg>`
    only (a chat turn's cost is counted per service call, and rules live in services)."""
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in _modules(package) for line, name in _imports(path)
             if (parts := name.split("."))[0] in MAY_IMPORT and parts[0] != package and "repository" in parts]
    assert wrong == []


def test_the_test_sees_imports() -> None:
    """The two rules above would pass on an empty list: the walker must find the imports that exist."""
    engine = _imports(ROOT / "bot" / "engine.py")
    assert any(name.startswith("bot.conversations.repository") for _, name in engine)
    assert any(name.startswith("commerce.") for _, name in engine)
