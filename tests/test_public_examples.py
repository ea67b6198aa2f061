"""The product contract's public cases, reproduced exactly on their expected keys, when a
checkout has them beside it (`../shared/spec/examples`).

They are optional: the project's own cases in tests/data cover the same situations
(test_cases.py), and nothing else in the suite reads outside the repository
(test_standalone.py). A clone with nothing beside it skips this module at collection,
saying where it looked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import assess_paths

PUBLIC = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "examples"
EXPECTED = PUBLIC / "expected.json"
NAMES = ["ai-rnd-security-gap", "asl2-small-update", "lineage-portfolio", "precautionary-asl3"]

pytestmark = pytest.mark.skipif(
    not EXPECTED.is_file(),
    reason=f"optional public cases not found at {PUBLIC} (they sit beside a checkout of the "
    "whole project; tests/data holds the project's own cases)")


def _expected() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXPECTED.read_text())
    return loaded


@pytest.mark.parametrize("name", NAMES)
def test_public_case_matches_expected(name: str) -> None:
    """Each public case's contract keys equal expected.json exactly."""
    expected = _expected()[name]
    results = [a.output for a in assess_paths(PUBLIC / f"{name}.yaml")]
    wanted = expected if isinstance(expected, list) else [expected]
    assert [{k: r[k] for k in w} for r, w in zip(results, wanted, strict=True)] == wanted


def test_every_public_case_is_covered() -> None:
    """A new public case added beside us is not silently left out of the test above."""
    names = {p.stem for p in PUBLIC.glob("*.yaml")}
    assert names == set(_expected()) == set(NAMES)


def test_the_openai_pf2_public_cases_match_expected() -> None:
    """The second framework's public cases (`openai-pf-2/`), assessed with `--framework
    openai-pf-2`, equal their expected.json exactly; tests/data/openai-pf-2 holds copies."""
    from engine.api import assess
    from engine.packstack import pack_stack

    cases = PUBLIC / "openai-pf-2"
    expected = json.loads((cases / "expected.json").read_text())
    run = assess(sorted(str(p) for p in cases.glob("*.yaml")), pack_stack((), "openai-pf-2"))
    assert run.rejected == []
    found = {a.model: {k: a.output[k] for k in expected.get(a.model, {})}
             for a in run.assessments}
    assert found == expected
