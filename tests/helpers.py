"""Shared paths and loaders for the test suite (no fixtures with hidden state)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.assess import Assessment, assess_portfolio, evaluator_for, vocabulary
from engine.evidence import load_evidence

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data"  # the suite's own cases (data/README.md)
GOLDEN = Path(__file__).resolve().parent / "golden"


def expected_outcomes() -> dict[str, Any]:
    """The contract keys each case of tests/data must reach, by file stem."""
    return json.loads((DATA / "expected.json").read_text())


def assess_paths(*paths: str | Path) -> list[Assessment]:
    """Assess evidence files with the built-in pack; fail the test on any rejection."""
    evaluator = evaluator_for()
    loaded = load_evidence([str(p) for p in paths], vocabulary(evaluator.pack))
    assert loaded.errors == []
    assessments, errors = assess_portfolio(evaluator, loaded.documents)
    assert errors == []
    return assessments
