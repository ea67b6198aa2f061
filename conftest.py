"""Pytest set-up for the whole checkout: the examples in the docstrings of `engine/` and
`knowledge_graph/` are collected and run as tests, so a plain `pytest` checks them.

Only those two packages: `--doctest-modules` would also import every helper module under
`tests/` (some need optional packages) just to look for examples they do not have.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule

DOCTESTED = ("engine", "knowledge_graph")
ROOT = Path(__file__).resolve().parent


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A doctest module for each Python file directly inside a DOCTESTED package."""
    if file_path.suffix == ".py" and file_path.resolve().parent in {ROOT / p for p in DOCTESTED}:
        return DoctestModule.from_parent(parent, path=file_path)
    return None
