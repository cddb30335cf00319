"""The tests' own layout: every test file runs alone as well as in the full run."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports, at any depth (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_test_modules_import_each_other_only_within_their_folder():
    """pytest puts a test file's folder on sys.path when it collects the file, so importing a
    test module of another folder works in the full run (that folder came first) and fails
    when the file runs alone. What tests of several folders share lives in tests/support/."""
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        for name in imported_modules(path):
            if name.startswith("test_") and not (path.parent / f"{name}.py").exists():
                wrong.append(f"{path.relative_to(TESTS)} imports {name}")
    assert not wrong, wrong
