"""The generated rule reference in docs/ matches the built-in pack."""

from __future__ import annotations

from helpers import REPO

from engine.assess import evaluator_for
from engine.reference import reference_markdown


def test_rule_reference_is_not_stale() -> None:
    """Regenerate with `asl rules reference > docs/rule-reference.md` after a rule change."""
    pack = evaluator_for().pack
    assert (REPO / "docs" / "rule-reference.md").read_text() == reference_markdown(pack)


def test_rule_reference_lists_every_rule_with_its_citation() -> None:
    text = (REPO / "docs" / "rule-reference.md").read_text()
    for rule in evaluator_for().pack.rules:
        assert f"| `{rule.id}` | " in text
        assert rule.cite in text
