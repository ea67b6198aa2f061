"""The public cases of the product contract, reproduced exactly on their expected keys."""

from __future__ import annotations

import pytest
from helpers import assess_paths, expected_outcomes, spec_examples


@pytest.mark.parametrize("name", ["ai-rnd-security-gap", "asl2-small-update",
                                  "lineage-portfolio", "precautionary-asl3"])
def test_public_case_matches_expected(name: str) -> None:
    """Each public case's contract keys equal expected.json exactly."""
    expected = expected_outcomes()[name]
    results = [a.output for a in assess_paths(spec_examples() / f"{name}.yaml")]
    wanted = expected if isinstance(expected, list) else [expected]
    assert [{k: r[k] for k in w} for r, w in zip(results, wanted, strict=True)] == wanted


def test_every_public_case_is_covered() -> None:
    """A new public case added to shared/ is not silently left out of the test above."""
    names = {p.stem for p in spec_examples().glob("*.yaml")}
    assert names == set(expected_outcomes())
