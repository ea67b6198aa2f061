"""Shared paths and loaders for the test suite (no fixtures with hidden state)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.api import assess
from engine.assess import Assessment

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SPEC_EXAMPLES = REPO.parent / "shared" / "spec" / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"


def spec_examples() -> Path:
    """The public cases of the product contract, or skip when shared/ is not beside us."""
    if not (SPEC_EXAMPLES / "expected.json").is_file():
        pytest.skip(f"public cases not found at {SPEC_EXAMPLES}")
    return SPEC_EXAMPLES


def expected_outcomes() -> dict[str, Any]:
    return json.loads((spec_examples() / "expected.json").read_text())


def assess_paths(*paths: str | Path) -> list[Assessment]:
    """Assess evidence files with the built-in pack through the engine's front door; fail
    the test on any rejection."""
    run = assess([str(p) for p in paths])
    assert run.rejected == []
    return run.assessments
