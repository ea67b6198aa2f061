"""The loader on hostile input: whatever a pack directory holds, `load_pack` returns a
checked `Pack` or raises `PackError` whose every problem names a file and a code; it
never fails with any other exception, and never runs code named in a YAML tag."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import PackError, PackProblem
from engine.loader import builtin_pack_dir, load_pack
from engine.model import OPERATORS, Pack
from engine.validate import validate_pack

BUILTIN_RULES = [p.read_text(encoding="utf-8")
                 for p in sorted((builtin_pack_dir() / "rules").glob("*.yaml"))]
BUILTIN_RULE_DICTS = [rule for text in BUILTIN_RULES for rule in yaml.safe_load(text)]
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
NAMES = st.sampled_from(["e", "s", "x", "status", "signal", "finding", "capability", "name",
                         "value", "score", "kind", "id", "ref", "field", "e.score", ""])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    TEXT, NAMES)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(TEXT, NAMES), inner, max_size=4)), max_leaves=12)




def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any] = VALUES,
           one_in: int = 20) -> st.SearchStrategy[Any]:
    """`usual`, but `other` one time in `one_in`: input well-formed enough to get past
    the first stages. (The rare choice is the last, not the first, of the sampled
    numbers: hypothesis favours the first.)"""
    return st.sampled_from(range(one_in)).flatmap(
        lambda n: other if n == one_in - 1 else usual)


KINDS = st.sampled_from(["evaluation", "finding", "status", "signal", "capability",
                         "action", "decision", "nokind"])
BINDINGS = st.sampled_from(["e", "s", "f", "status", "finding"])
FIELDS = st.sampled_from(["capability", "value", "score", "name", "verdict", "severity",
                          "threshold_score", "nofield", "id"])
REFS = st.builds(lambda b, f: {"ref": f"{b}.{f}"}, BINDINGS, FIELDS)
GOOD_OPERANDS = st.one_of(
    st.sampled_from(["crossed", "CBRN-3", "ruled_out", 3, 0.5, True]), REFS,
    st.builds(lambda f: {"field": f}, FIELDS),
    st.lists(st.sampled_from(["crossed", "cannot_rule_out", 1]), min_size=1, max_size=3))
GOOD_CONCLUDED = st.one_of(st.sampled_from(["crossed", "CBRN-3", 3, True]), REFS)
OPERANDS = mostly(GOOD_OPERANDS, st.one_of(SCALARS, VALUES), one_in=10)
OPERATOR_NAMES = mostly(st.sampled_from(sorted(OPERATORS)),
                        st.sampled_from(["ref", "field", "bogus"]), one_in=10)
TESTS = st.one_of(OPERANDS, st.dictionaries(OPERATOR_NAMES, OPERANDS, min_size=1,
                                            max_size=2))


@st.composite
def condition(draw: st.DrawFn) -> Any:
    """A `when` entry: usually `match`/`none` of a kind with `as` and `where`."""
    entry: dict[str, Any] = {draw(st.sampled_from(["match", "match", "none"])): draw(KINDS)}
    if draw(st.booleans()):
        entry["as"] = draw(BINDINGS)
    if draw(st.booleans()):
        entry["where"] = draw(st.dictionaries(FIELDS, TESTS, max_size=3))
    return draw(mostly(st.just(entry)))


@st.composite
def rule_like(draw: st.DrawFn) -> Any:
    """A mapping shaped like a rule, mostly well-formed, so that fuzzing reaches every
    stage (kinds and fields, conclusions, citations, duplicate ids, strata)."""
    rule: dict[str, Any] = {
        "id": draw(mostly(st.sampled_from(["a", "b", "rule.x", "signals.finding.crossed"]))),
        "title": draw(mostly(st.just("a title"))),
        "cite": draw(mostly(st.sampled_from(["RSP v2.1 §1", "RSP v2.1 §3.3x", "nope"]))),
        "because": draw(mostly(st.sampled_from(["b", "{e.score}", "{s.value}", "{x.y}", "{"]))),
        "when": draw(mostly(st.lists(condition(), min_size=1, max_size=3))),
        "then": draw(mostly(st.dictionaries(KINDS, st.dictionaries(
            FIELDS, GOOD_CONCLUDED, max_size=3), min_size=1, max_size=2))),
    }
    extra = draw(mostly(st.none(), st.sampled_from(["replaces", "rationale", "extra"]), 5))
    if extra is not None:
        rule[extra] = draw(mostly(st.sampled_from(["signals.finding.crossed", "a", "why"])))
    return draw(mostly(st.just(rule)))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a nested value, as a path of keys and indexes."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else [])
    return [prefix] + [p for key, sub in items for p in _paths(sub, (*prefix, key))]


@st.composite
def mutated_builtin_rule(draw: st.DrawFn) -> Any:
    """A built-in rule with a new id (or its own) and up to three parts replaced."""
    rule = copy.deepcopy(draw(st.sampled_from(BUILTIN_RULE_DICTS)))
    rule["id"] = draw(st.sampled_from(["fuzz.a", "fuzz.b", rule["id"]]))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(rule)[1:]))
        parent = rule
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = draw(st.one_of(KINDS, FIELDS, GOOD_OPERANDS, SCALARS, VALUES))
    return rule


def document(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


FILES = st.one_of(VALUES.map(document), TEXT,
                  st.lists(rule_like(), max_size=3).map(document))
PACK_YAMLS = st.one_of(VALUES.map(document), TEXT, st.just(
    (builtin_pack_dir() / "pack.yaml").read_text(encoding="utf-8")),
    st.dictionaries(st.sampled_from(["name", "title", "kinds", "catalogue", "facts",
                                     "standalone", "cite_pattern"]), VALUES).map(document))




def _load(pack_yaml: str, rule_files: list[str], case_files: list[str]) -> Pack | PackError:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fuzz"
        for folder, texts in (("rules", rule_files), ("tests", case_files)):
            (root / folder).mkdir(parents=True)
            for index, text in enumerate(texts):
                (root / folder / f"{index:02d}.yaml").write_text(text, encoding="utf-8")
        (root / "pack.yaml").write_text(pack_yaml, encoding="utf-8")
        try:
            return load_pack([root])
        except PackError as exc:
            return exc


def _check(outcome: Pack | PackError) -> None:
    if isinstance(outcome, PackError):
        assert outcome.problems
        for problem in outcome.problems:
            assert problem.file and isinstance(problem.file, str)
            assert problem.code and isinstance(problem.code, str)
            assert isinstance(problem.line, int) and isinstance(problem.message, str)
    else:
        assert isinstance(outcome, Pack)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack_yaml=PACK_YAMLS, rule_files=st.lists(FILES, max_size=3),
       case_files=st.lists(FILES, max_size=2))
def test_any_pack_directory_loads_or_reports_located_problems(
        pack_yaml: str, rule_files: list[str], case_files: list[str]) -> None:
    _check(_load(pack_yaml, rule_files, case_files))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(st.one_of(rule_like(), mutated_builtin_rule()), min_size=1, max_size=3))
def test_rule_shaped_input_beside_the_builtin_rules(rules: list[Any]) -> None:
    """With the built-in pack.yaml and rules, rule-shaped data reaches every stage: kinds
    and fields, conclusions, citations, duplicate ids and negation cycles; and a pack
    that loads goes through the further checks of `engine.validate` without error."""
    builtin = builtin_pack_dir()
    outcome = _load((builtin / "pack.yaml").read_text(encoding="utf-8"),
                    [*BUILTIN_RULES, document(rules)], [])
    _check(outcome)
    if isinstance(outcome, Pack):  # what loads, `asl rules validate` checks further
        _check(PackError(validate_pack(outcome) or [PackProblem("-", 0, "clean", "")]))


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system [\"touch {marker}\"]",
    "!!python/object/apply:subprocess.call [[touch, \"{marker}\"]]",
    "!!python/object/new:os.system [\"touch {marker}\"]",
    "!!python/name:os.system",
])
@pytest.mark.parametrize("where", ["rules/10-evil.yaml", "pack.yaml", "tests/10-evil.yaml"])
def test_python_tags_are_refused_without_running_anything(tmp_path: Path, tag: str,
                                                          where: str) -> None:
    marker = tmp_path / "ran"
    root = tmp_path / "evil"
    (root / "rules").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pack.yaml").write_text((builtin_pack_dir() / "pack.yaml").read_text())
    evil = f"- id: evil\n  title: {tag.format(marker=marker)}\n"
    if where == "pack.yaml":
        evil = f"name: {tag.format(marker=marker)}\n"
    (root / where).write_text(evil)
    with pytest.raises(PackError) as caught:
        load_pack([root])
    assert not marker.exists()
    assert [p.code for p in caught.value.problems] == ["yaml"]
    assert caught.value.problems[0].file.endswith(where)
