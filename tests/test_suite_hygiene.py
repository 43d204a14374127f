"""The test suite runs as one session: no test imports a ``conftest`` by name, and module basenames are unique.

``from conftest import X`` imports whichever ``conftest`` pytest put first on ``sys.path`` (the root
one, or another folder's), so it works alone and breaks beside other folders; share values through
fixtures instead.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def _imports_conftest(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "conftest" and not node.level:
            return True
        if isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names):
            return True
    return False


def test_no_test_imports_conftest_by_name():
    offenders = {p.relative_to(TESTS).as_posix() for p in TESTS.rglob("*.py") if _imports_conftest(p)}
    assert not offenders, f"use a fixture instead of importing conftest in {sorted(offenders)}"


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1]
