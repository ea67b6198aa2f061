"""The examples in the docstrings of engine/ and knowledge_graph/ are part of the suite
(issue 10, item 13): the README's plain `pytest` collects them, and so runs them."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from helpers import REPO

DOCTESTED = ("engine", "knowledge_graph")


def test_plain_pytest_collects_the_packages_doctests() -> None:
    """`testpaths` names both packages, and collecting them yields their doctests (a
    module of each with examples: the one selector parser and the error path helper)."""
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    assert set(DOCTESTED) <= set(options["ini_options"]["testpaths"])
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *DOCTESTED],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    doctests = [line for line in listed if "::" in line]
    assert "engine/errors.py::engine.errors.within" in doctests
    assert any(line.startswith("knowledge_graph/provenance.py::") for line in doctests)
    assert all(line.split("::")[0].split("/")[0] in DOCTESTED for line in doctests)
