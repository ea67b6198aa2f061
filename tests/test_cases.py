"""The suite's own cases (tests/data): each reaches the outcome worked out by hand in
tests/data/README.md, through the engine and through the independent plain-Python
reading of the semantics, and every case file has an expected outcome."""

from __future__ import annotations

import json
from typing import Any

import plain_eval
import pytest
from helpers import DATA, assess_paths, expected_outcomes

from engine.evidence_reading import EvidenceLoader

CASES = sorted(expected_outcomes())


def _wanted(name: str) -> list[dict[str, Any]]:
    expected = expected_outcomes()[name]
    return expected if isinstance(expected, list) else [expected]


@pytest.mark.parametrize("name", CASES)
def test_case_reaches_its_expected_outcome(name: str) -> None:
    """The engine's contract keys equal expected.json exactly, model by model."""
    results = [a.output for a in assess_paths(DATA / f"{name}.yaml")]
    wanted = _wanted(name)
    assert [{k: r[k] for k in w} for r, w in zip(results, wanted, strict=True)] == wanted


@pytest.mark.parametrize("name", CASES)
def test_plain_reading_of_the_semantics_agrees(name: str) -> None:
    """benchmarks/plain_eval.py, which shares no code with the engine, reaches the same
    keys: the expected outcomes are not just what the engine happened to say."""
    data = EvidenceLoader((DATA / f"{name}.yaml").read_text()).get_single_data()
    plain = json.loads(json.dumps(data, default=str))  # dates as text, aliases copied
    got = (plain_eval.evaluate_portfolio(plain["models"]) if "models" in plain
           else [plain_eval.evaluate(plain)])
    assert got == _wanted(name)


def test_every_case_file_has_an_expected_outcome() -> None:
    assert sorted(p.stem for p in DATA.glob("*.yaml")) == CASES
    assert sorted(p.name for p in DATA.iterdir()) == sorted(
        [*(f"{name}.yaml" for name in CASES), "expected.json", "README.md",
         "openai-pf-2"])  # the second framework's cases: test_openai_pf2.py
