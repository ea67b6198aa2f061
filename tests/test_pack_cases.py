"""The built-in pack's own YAML test cases (`rules/rsp-2.1/tests/*.yaml`): every case
passes, every rule of the pack is exercised by some case, and every pattern a case
asserts names a kind and fields the pack declares (so a typo cannot make an `absent:`
pass vacuously)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.assess import evaluator_for
from engine.cases import CaseResult, run_case
from engine.evaluator import Evaluator

EVALUATOR: Evaluator = evaluator_for()
CASES: list[tuple[str, dict[str, Any]]] = [
    (case_file.path, case) for case_file in EVALUATOR.pack.case_files
    for case in case_file.cases]


def _case_id(path: str, case: dict[str, Any]) -> str:
    return f"{Path(path).stem}: {case.get('name', '(unnamed)')}"


_RESULTS: dict[str, CaseResult] = {}


def _result(path: str, case: dict[str, Any]) -> CaseResult:
    """Each case is run once, whichever test asks for it first."""
    key = _case_id(path, case)
    if key not in _RESULTS:
        _RESULTS[key] = run_case(EVALUATOR, case, path)
    return _RESULTS[key]


def test_the_pack_ships_a_case_file_per_rule_file() -> None:
    case_stems = {Path(f.path).stem for f in EVALUATOR.pack.case_files}
    rule_stems = {Path(source).stem for source in EVALUATOR.pack.sources
                  if Path(source).parent.name == "rules"}
    assert rule_stems, "no rule files found"
    assert sorted(rule_stems - case_stems) == []
    ids = [_case_id(path, case) for path, case in CASES]
    assert sorted({i for i in ids if ids.count(i) > 1}) == [], "duplicate case names"


@pytest.mark.parametrize(("path", "case"), CASES,
                         ids=[_case_id(path, case) for path, case in CASES])
def test_case_passes(path: str, case: dict[str, Any]) -> None:
    result = _result(path, case)
    assert result.passed, (f"{_case_id(path, case)} ({path}):\n  "
                           + "\n  ".join(result.failures))


@pytest.mark.parametrize(("path", "case"), CASES,
                         ids=[_case_id(path, case) for path, case in CASES])
def test_case_patterns_name_declared_kinds_and_fields(path: str, case: dict[str, Any]) -> None:
    kinds = EVALUATOR.pack.kinds
    problems = []
    assert case.get("rules"), f"{_case_id(path, case)}: lists no rules"
    for section in ("expect", "absent"):
        for entry in case.get(section) or []:
            for kind, values in entry.items():
                if kind not in kinds:
                    problems.append(f"{section}: unknown kind {kind!r}")
                    continue
                unknown = set(values or {}) - set(kinds[kind].fields)
                if unknown:
                    problems.append(f"{section}: {kind} has no field(s) {sorted(unknown)}")
    known_rules = {rule.id for rule in EVALUATOR.pack.rules}
    problems.extend(f"rules: unknown rule {rule_id!r}" for rule_id in case.get("rules") or []
                    if rule_id not in known_rules)
    assert problems == [], f"{_case_id(path, case)}:\n  " + "\n  ".join(problems)


def test_every_rule_is_named_by_a_case_and_fires_in_one() -> None:
    named: set[str] = set()
    fired: set[str] = set()
    for path, case in CASES:
        named.update(case.get("rules") or [])
        fired.update(_result(path, case).fired)
    rule_ids = [rule.id for rule in EVALUATOR.pack.rules]
    not_named = [r for r in rule_ids if r not in named]
    not_fired = [r for r in rule_ids if r not in fired]
    assert not_named == [] and not_fired == [], (
        f"rules named in no case's `rules:`: {not_named or 'none'}; "
        f"rules that fire in no case: {not_fired or 'none'}")
