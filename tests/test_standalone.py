"""The project stands alone: no test module (nor a benchmark module the tests import)
reaches a path outside the repository, so a clone with nothing beside it runs the whole
suite. The one exception is test_public_examples.py, which checks the product contract's
public cases when they sit beside the clone and is skipped, saying why, when not.

The check reads the modules' syntax, not their text: a path built from `__file__` (or
from a module-level name bound to one, such as helpers.REPO) that climbs above the
repository root, and a string naming a `..` or `shared` path segment where a path is
built or opened (`/`, `Path(...)`, `open(...)`, `.joinpath`, `os.path.join`, `.glob`, a
module-level constant), are reported with file and line. The same strings passed to
`asl` as hostile input (a token named `../x`) are data, not paths the tests read.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
from helpers import REPO

OPTIONAL = {"tests/test_public_examples.py"}  # reads ../shared when present, else skipped
SELF = "tests/test_standalone.py"  # holds sample ways out, as strings, to test the check
SCANNED = ("tests", "benchmarks")
TOP = 2  # levels from a module file in tests/ or benchmarks/ up to the repository root
PATH_CALLS = {"Path", "PurePath", "PosixPath", "open"}  # called by name
PATH_METHODS = {"joinpath", "join", "glob", "rglob", "open"}  # called as a method


def _heights(tree: ast.Module, imported: dict[str, int]) -> dict[str, int]:
    """Module-level names bound to a path built from `__file__`, with how many levels
    above the module file each points (0 the file, 1 its folder, 2 the repository)."""
    names = dict(imported)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            height = _height(node.value, names)
            if height is not None:
                names[node.targets[0].id] = height
    return names


def _height(node: ast.AST, names: dict[str, int]) -> int | None:
    """How many levels above the module file the path `node` builds points, or None when
    it is not built from `__file__`. `/ "a/b"` goes down one level per segment."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "Path" and len(node.args) == 1 and \
                isinstance(node.args[0], ast.Name) and node.args[0].id == "__file__":
            return 0
        if isinstance(func, ast.Attribute) and func.attr in ("resolve", "absolute"):
            return _height(func.value, names)
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        below = _height(node.value, names)
        return None if below is None else below + 1
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and \
            node.value.attr == "parents" and isinstance(node.slice, ast.Constant) and \
            isinstance(node.slice.value, int):
        below = _height(node.value.value, names)
        return None if below is None else below + node.slice.value + 1
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        base = _height(node.left, names)
        if base is None:
            return None
        right = node.right
        segments = right.value.split("/") if isinstance(right, ast.Constant) and \
            isinstance(right.value, str) else ["?"]
        return base - len(segments) + 2 * segments.count("..")
    return None


def _path_parts(tree: ast.Module) -> list[ast.expr]:
    """The expressions used as (parts of) paths: operands of `/`, arguments of path
    calls, and the values of module-level constants."""
    parts: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts += [node.left, node.right]
        elif isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id in PATH_CALLS) or (
                    isinstance(func, ast.Attribute) and func.attr in PATH_METHODS):
                parts += [*node.args, *(k.value for k in node.keywords)]
    parts += [node.value for node in tree.body if isinstance(node, ast.Assign)]
    return parts


def _outside_segment(text: str) -> bool:
    segments = text.replace("\\", "/").split("/")
    return ".." in segments or "shared" in segments


def outside_paths(source: str, imported: dict[str, int] | None = None) -> list[str]:
    """`line N: what` for each way `source` reaches outside the repository."""
    tree = ast.parse(source)
    names = _heights(tree, imported or {})
    problems = []
    for part in _path_parts(tree):
        for node in ast.walk(part):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    _outside_segment(node.value):
                problems.append(f"line {node.lineno}: path {node.value!r}")
    for node in ast.walk(tree):
        if isinstance(node, ast.expr) and not isinstance(node, ast.Name):
            height = _height(node, names)
            if height is not None and height > TOP:
                problems.append(f"line {node.lineno}: {ast.unparse(node)} climbs above the "
                                "repository")
    return sorted(set(problems))


def _modules() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (REPO / folder).rglob("*.py")
                  if p.relative_to(REPO).as_posix() not in {*OPTIONAL, SELF})


@functools.cache
def _imported_heights() -> dict[str, int]:
    """Path names the scanned modules export to each other (helpers.REPO, ...)."""
    names: dict[str, int] = {}
    for path in _modules():
        names.update(_heights(ast.parse(path.read_text()), {}))
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_module_reads_nothing_outside_the_repository(path: Path) -> None:
    assert outside_paths(path.read_text(), _imported_heights()) == []


def test_the_optional_public_cases_module_is_the_only_exception() -> None:
    """The exception is real (it does look beside the clone) and is skipped cleanly at
    collection when the cases are absent, never by a skip at import time."""
    path = REPO / "tests" / "test_public_examples.py"
    source = path.read_text()
    assert outside_paths(source) != []
    assert "pytestmark = pytest.mark.skipif(" in source
    assert "pytest.skip(" not in source


@pytest.mark.parametrize("source", [
    'X = Path(__file__).resolve().parents[1].parent / "shared" / "spec"\n',
    'X = Path(__file__).resolve().parents[2] / "cases"\n',
    'X = Path(__file__).parent.parent.parent\n',
    'def f():\n    return REPO.parent / "other"\n',
    'DATA = REPO / "tests"\nY = DATA / "../../x"\n',
    'open("../shared/spec/examples/expected.json")\n',
    'EXAMPLES = "../shared/spec/examples"\n',
    'def f():\n    return os.path.join(REPO, "..", "shared")\n',
    'def f(tmp_path):\n    return Path(f"{tmp_path}/../shared/x")\n',
])
def test_the_check_catches_each_way_out(source: str) -> None:
    assert outside_paths(source, {"REPO": TOP}) != []


@pytest.mark.parametrize("source", [
    'X = Path(__file__).resolve().parents[1] / "examples"\n',
    'X = Path(__file__).parent / "data" / "expected.json"\n',
    'def f(tmp_path):\n    return tmp_path.parent / "shared.db"\n',
    '"""Docstrings may name ../shared/spec, the contract this follows."""\n',
    'def f(run):\n    return run("tokens", "create", "--name", "../x")\n',
    'def f():\n    for names in (["../pack.yaml"], ["/etc/passwd"]):\n        check(names)\n',
])
def test_the_check_allows_paths_inside(source: str) -> None:
    assert outside_paths(source, {"REPO": TOP}) == []
