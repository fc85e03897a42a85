"""Test modules share helpers through tests/helpers/ (and tests/apptools.py, tests/media.py, …), never
by importing another test module: each test file can then be read, run and changed on its own."""

from __future__ import annotations

import ast

from tests.apptools import REPO

IMPORTERS = ("tests", "benchmarks", "scripts")


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an import statement in `tree` names, `from a import b` counted as `a` and `a.b`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_a_test_module():
    test_modules = {f"tests.{path.stem}" for path in (REPO / "tests").glob("test_*.py")}
    offenders = []
    for folder in IMPORTERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            imported = imported_modules(ast.parse(path.read_text(), str(path)))
            bare = {name for name in imported if f"tests.{name}" in test_modules}  # `from test_x import …`
            for name in sorted((imported & test_modules) | bare):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "move what they share into tests/helpers/:\n" + "\n".join(offenders)
