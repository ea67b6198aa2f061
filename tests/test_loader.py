"""The pack loader, stage by stage: every problem is one exact `file:line: code: message`
line, every problem of the failing stage is reported, loading stops at that stage, YAML
never runs code, the built-in pack is stratified soundly and its version is a content hash.

Packs are written per test under tmp_path by the `make_pack` fixture (tests/conftest.py):
a minimal standalone pack whose `rules/50-test.yaml` is the text each test gives, so the
line numbers asserted here are the lines of that text.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import PackWriter
from engine.errors import PackError
from engine.evaluator import Evaluator, Fact
from engine.loader import STAGES, Draft, builtin_pack_dir, load_pack
from engine.model import ORIGIN_EVIDENCE, Pack
from engine.strata import dependency_graph

TEST_FILE = "50-test.yaml"

# A valid rule; `rule_text` drops or replaces its sections. Its lines, numbered:
#  1 - id: t.a            5 when:                  9 then:
#  2   title: ...         6   - match: x          10   concern: {name: {ref: x.name}}
#  3   cite: ...          7     where:
#  4   because: ...       8       score: {gte: 1}
SECTIONS: dict[str, list[str]] = {
    "id": ["id: t.a"],
    "title": ["title: A test rule"],
    "cite": ["cite: RSP v2.1 §2"],
    "because": ['because: "x {x.name}"'],
    "when": ["when:", "  - match: x", "    where:", "      score: {gte: 1}"],
    "then": ["then:", "  concern: {name: {ref: x.name}}"],
}


def rule_text(drop: tuple[str, ...] = (), extra: tuple[str, ...] = (),
              **replace: list[str]) -> str:
    """The valid rule above as YAML, without the sections in `drop`, with sections
    replaced by keyword, and with `extra` lines appended to the rule mapping."""
    lines: list[str] = []
    for key, section in SECTIONS.items():
        if key not in drop:
            lines.extend(replace.get(key, section))
    lines.extend(extra)
    return "".join(("- " if i == 0 else "  ") + line + "\n" for i, line in enumerate(lines))


def stage_failure(*dirs: Path) -> tuple[str, list[str]]:
    """Run the load stages as `load_pack` does; return the first stage that found
    problems (or "") and its problems as text, sorted as PackError sorts them."""
    draft = Draft(dirs=list(dirs))
    for name, stage in STAGES:
        problems = stage(draft)
        if problems:
            return name, [str(p) for p in sorted(problems)]
    return "", []


def refused(stage: str, *dirs: Path) -> list[str]:
    """Assert that loading `dirs` fails in `stage`, that `load_pack` raises PackError with
    exactly that stage's problems, and return them as `file:line: code: message` lines."""
    failed, lines = stage_failure(*dirs)
    assert failed == stage, lines
    with pytest.raises(PackError) as caught:
        load_pack(list(dirs))
    assert str(caught.value).splitlines() == lines
    assert [str(p) for p in caught.value.problems] == lines
    return lines


def text_line(path: Path, needle: str) -> int:
    """The 1-based number of the only line of `path` containing `needle`."""
    found = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


# --- a valid pack ---------------------------------------------------------------------


def test_the_minimal_pack_loads(make_pack: PackWriter) -> None:
    """Guards the fixture itself: without a valid baseline every refusal below could come
    from the wrong stage."""
    root = make_pack(rule_text())
    assert stage_failure(root) == ("", [])
    pack = load_pack([root])
    assert pack.name == "mini"
    assert {r.id for r in pack.rules} == {"contract.all", "t.a"}
    assert [s[0] for s in STAGES] == ["read", "declarations", "structure", "duplicate-ids",
                                      "kinds-and-fields", "conclusions", "citations",
                                      "strata"]


# --- stage: read ------------------------------------------------------------------------


def test_invalid_yaml_is_located(make_pack: PackWriter) -> None:
    """A syntax error names the file and the line the parser stopped at."""
    root = make_pack("- id: t.a\n  title: A test: rule\n")
    assert refused("read", root) == [
        f"{root}/rules/{TEST_FILE}:2: yaml: invalid YAML: mapping values are not allowed here"]


def test_a_directory_without_pack_yaml_is_refused(tmp_path: Path) -> None:
    """A mistyped pack path is reported, not silently loaded as an empty pack."""
    (tmp_path / "empty").mkdir()
    assert refused("read", tmp_path / "empty") == [
        f"{tmp_path}/empty/pack.yaml:0: pack-missing: no pack.yaml here"]


@pytest.mark.parametrize("target", ["rule", "pack"])
@pytest.mark.parametrize("tag", ["python/object/apply:os.system", "python/object/apply:os.popen"])
def test_loading_never_executes_code(make_pack: PackWriter, tmp_path: Path, tag: str,
                                     target: str) -> None:
    """A Python-object tag in a rule file or pack.yaml is refused with a located error and
    never constructed: the command it carries does not run."""
    marker = tmp_path / "pwned"
    payload = f'- !!{tag} ["touch {marker}"]\n'
    if target == "rule":
        root = make_pack(payload)
        file = root / "rules" / TEST_FILE
    else:
        root = make_pack(rule_text(), pack_yaml=f"name: mini\nextra:\n  {payload}")
        file = root / "pack.yaml"
    line = text_line(file, "!!python")
    assert refused("read", root) == [
        f"{file}:{line}: yaml: invalid YAML: could not determine a constructor for the tag "
        f"'tag:yaml.org,2002:{tag}'"]
    assert not marker.exists()


# --- stage: declarations ----------------------------------------------------------------


@pytest.mark.parametrize("reserved", ["id", "kind", "sid"])
def test_reserved_field_names_are_refused(make_pack: PackWriter, reserved: str) -> None:
    """`id`, `kind` and `sid` are the engine's own keys on every fact: a kind that
    declared one would have its value overwritten on the wire."""
    root = make_pack(rule_text(), extra_kinds=f"  bad: {{fields: {{{reserved}: str}}}}\n")
    line = text_line(root / "pack.yaml", "bad:")
    assert refused("declarations", root) == [
        f"{root}/pack.yaml:{line}: reserved-field: kind 'bad': field name {reserved!r} "
        "is reserved"]


def test_a_field_named_like_the_anchor_is_refused_or_works(make_pack: PackWriter) -> None:
    """`__n` is put on every fact by the engine itself: a kind declaring it must be
    refused like `id`/`kind`/`sid`, or else work; silently losing the conclusion is the
    one outcome that is not allowed."""
    root = make_pack(rule_text(because=['because: "odd"'],
                               when=["when:", "  - match: odd", "    where:", "      __n: 1"],
                               then=["then:", "  concern: {name: odd}"]),
                     extra_kinds="  odd: {origin: evidence, fields: {__n: number}}\n")
    try:
        pack = load_pack([root])
    except PackError as exc:
        assert [p.code for p in exc.problems] == ["field-name"]
        return
    derivation = Evaluator(pack).evaluate([Fact("o1", "odd", {"__n": 1}, ORIGIN_EVIDENCE)])
    assert [f.id for f in derivation.of_kind("concern")] == ["concern(name=odd)"]


def test_a_field_name_durable_reads_as_an_operator_is_refused_at_load(
        make_pack: PackWriter) -> None:
    """Field names end up as keys of durable's JSON conditions, where `$...` means an
    operator: the loader must refuse such a name at the line of its kind."""
    root = make_pack(rule_text(), extra_kinds="  odd: {origin: evidence, fields: {$gte: number}}\n")
    line = text_line(root / "pack.yaml", "odd:")
    with pytest.raises(PackError) as caught:
        load_pack([root])
    assert [(p.file, p.line) for p in caught.value.problems] == [(f"{root}/pack.yaml", line)]


@pytest.mark.parametrize("spec", ["{eq: [p, q]}", "{ne: [p]}", "{gt: [1, 2]}"])
def test_a_list_for_a_scalar_operator_is_refused_at_load(make_pack: PackWriter,
                                                         spec: str) -> None:
    """Only `in` takes a list; a list under a comparison operator is refused at the
    test's line in the structure stage."""
    root = make_pack(rule_text(when=["when:", "  - match: x", "    where:",
                                     f"      name: {spec}"]))
    failed, lines = stage_failure(root)
    assert failed == "structure"
    assert [line.split(": ")[0] for line in lines] == [f"{root}/rules/{TEST_FILE}:8"]


def test_a_rule_file_must_be_a_list(make_pack: PackWriter) -> None:
    """A rule file holding one mapping instead of a list of rules is refused."""
    root = make_pack("id: t.a\ntitle: not a list\n")
    assert refused("declarations", root) == [
        f"{root}/rules/{TEST_FILE}:1: structure: expected a list of rules"]


# --- stage: structure -------------------------------------------------------------------


@pytest.mark.parametrize(("missing", "message"), [
    ("id", "missing-id: rule '?' needs a non-empty id"),
    ("title", "missing-title: rule 't.a' needs a non-empty title"),
    ("cite", "missing-cite: rule 't.a' needs a non-empty cite"),
    ("because", "missing-because: rule 't.a' needs a non-empty because"),
    ("when", "missing-when: rule 't.a' needs a non-empty list `when`"),
    ("then", "missing-then: rule 't.a' needs `then: {KIND: {FIELD: VALUE}}`"),
])
def test_each_required_rule_key_is_checked(make_pack: PackWriter, missing: str,
                                           message: str) -> None:
    """A rule lacking any of its six required keys is refused at the rule's line, naming
    the key, and nothing else is reported about it."""
    root = make_pack(rule_text(drop=(missing,)))
    assert refused("structure", root) == [f"{root}/rules/{TEST_FILE}:1: {message}"]


def test_empty_required_text_counts_as_missing(make_pack: PackWriter) -> None:
    """A blank title is no title: explanations would show nothing."""
    root = make_pack(rule_text(title=['title: "  "']))
    assert refused("structure", root) == [
        f"{root}/rules/{TEST_FILE}:1: missing-title: rule 't.a' needs a non-empty title"]


def test_unknown_rule_key(make_pack: PackWriter) -> None:
    """A misspelt or invented key (`priority`) is refused at its own line, listing the
    keys the format allows, instead of being silently ignored."""
    root = make_pack(rule_text(extra=("priority: 3",)))
    assert refused("structure", root) == [
        f"{root}/rules/{TEST_FILE}:11: unknown-key: unknown rule key 'priority'; expected one "
        "of because, cite, id, rationale, replaces, then, title, when"]


def test_bad_operator(make_pack: PackWriter) -> None:
    """An operator the format does not know is refused at the test's line."""
    root = make_pack(rule_text(when=["when:", "  - match: x", "    where:",
                                     "      score: {greater: 1}"]))
    assert refused("structure", root) == [
        f"{root}/rules/{TEST_FILE}:8: operator: unknown operator 'greater' on field 'score'; "
        "expected one of eq, ne, gt, gte, lt, lte, in, exists"]


@pytest.mark.parametrize("spec", ["{in: 1}", "{in: []}", "[]", "{in: [{a: 1}]}"])
def test_in_needs_a_non_empty_list_of_constants(make_pack: PackWriter, spec: str) -> None:
    """`in` with a scalar, an empty list or non-constant members is refused: durable's
    `$or` of nothing, or of mappings, would not mean what the author wrote."""
    root = make_pack(rule_text(when=["when:", "  - match: x", "    where:",
                                     f"      name: {spec}"]))
    assert refused("structure", root) == [
        f"{root}/rules/{TEST_FILE}:8: operator: `in` on 'name' needs a non-empty list of "
        "constants"]


# --- stage: duplicate ids ---------------------------------------------------------------


def test_duplicate_rule_ids_name_both_places(make_pack: PackWriter) -> None:
    """Two rules with one id (in two files) are refused at the second, naming the first's
    file and line, so the author can see both."""
    root = make_pack({TEST_FILE: rule_text(), "60-more.yaml": "# another file\n" + rule_text()})
    assert refused("duplicate-ids", root) == [
        f"{root}/rules/60-more.yaml:2: duplicate-id: rule id 't.a' is already used at "
        f"{root}/rules/{TEST_FILE}:1"]


# --- stage: kinds and fields ------------------------------------------------------------


def test_unknown_kind_suggests_the_closest(make_pack: PackWriter) -> None:
    """A misspelt kind in `match` is refused at the condition's line with a suggestion."""
    root = make_pack(rule_text(when=["when:", "  - match: x", "  - match: concen"],
                               then=["then:", "  cleared: {name: {ref: x.name}}"]))
    assert refused("kinds-and-fields", root) == [
        f"{root}/rules/{TEST_FILE}:7: unknown-kind: rule 't.a': unknown kind 'concen'; "
        "did you mean 'concern'?"]


def test_unknown_field_suggests_the_closest(make_pack: PackWriter) -> None:
    """A misspelt field in `where` is refused at the test's line with a suggestion: a
    test on an absent field would simply never match."""
    root = make_pack(rule_text(when=["when:", "  - match: x", "    where:", "      scor: 1"]))
    assert refused("kinds-and-fields", root) == [
        f"{root}/rules/{TEST_FILE}:8: unknown-field: rule 't.a': kind 'x' has no field "
        "'scor'; did you mean 'score'?"]


def test_ref_to_a_name_bound_only_later(make_pack: PackWriter) -> None:
    """A `ref` may only name a fact matched before it: durable-rules can only join on an
    earlier pattern."""
    root = make_pack(rule_text(when=["when:", "  - match: y", "    where:",
                                     "      name: {ref: e.name}", "  - match: x", "    as: e"],
                               because=['because: "y {y.name}"'],
                               then=["then:", "  concern: {name: {ref: y.name}}"]))
    assert refused("kinds-and-fields", root) == [
        f"{root}/rules/{TEST_FILE}:8: unbound-ref: rule 't.a': ref e.name names no fact "
        "matched before it"]


def test_ref_in_a_conclusion_to_an_unbound_name_suggests(make_pack: PackWriter) -> None:
    """A typo in a conclusion's `ref` is caught at load time (with a suggestion), not as a
    failed firing in the middle of an assessment."""
    root = make_pack(rule_text(then=["then:", "  concern: {name: {ref: xx.name}}"]))
    assert refused("kinds-and-fields", root) == [
        f"{root}/rules/{TEST_FILE}:10: unbound-ref: rule 't.a': ref xx.name names no fact "
        "matched before it; did you mean 'x'?"]


@pytest.mark.parametrize("placeholder", ["z.name", "x.nope", "x", "concern.name"])
def test_because_placeholder_naming_nothing(make_pack: PackWriter, placeholder: str) -> None:
    """Every `{name.field}` in `because` must name a field of a fact the rule matched
    (not an unknown name, an unknown field, a bare name, or a `none` condition), or the
    explanation could not be filled in."""
    root = make_pack(rule_text(
        because=[f'because: "x {{{placeholder}}}"'],
        when=["when:", "  - match: x", "  - none: concern", "    where:",
              "      name: {ref: x.name}"],
        then=["then:", "  cleared: {name: {ref: x.name}}"]))
    assert refused("kinds-and-fields", root) == [
        f"{root}/rules/{TEST_FILE}:1: because-placeholder: rule 't.a': `because` placeholder "
        f"{{{placeholder}}} names no bound fact field"]


# --- stage: conclusions -----------------------------------------------------------------


def test_conclusion_of_an_undeclared_kind(make_pack: PackWriter) -> None:
    """Concluding a kind the pack never declared is refused at the conclusion's line."""
    root = make_pack(rule_text(then=["then:", "  concen: {name: {ref: x.name}}"]))
    assert refused("conclusions", root) == [
        f"{root}/rules/{TEST_FILE}:10: undeclared-conclusion: rule 't.a' concludes undeclared "
        "kind 'concen'; did you mean 'concern'?"]


@pytest.mark.parametrize(("kind", "origin"), [("y", "evidence"), ("item", "pack")])
def test_conclusion_of_an_evidence_or_pack_kind(make_pack: PackWriter, kind: str,
                                                origin: str) -> None:
    """Rules may only derive `derived` kinds: a rule minting evidence (or a pack fact)
    would make an assessment claim what the analyst never stated."""
    root = make_pack(rule_text(then=["then:", f"  {kind}: {{name: {{ref: x.name}}}}"]))
    assert refused("conclusions", root) == [
        f"{root}/rules/{TEST_FILE}:10: conclusion-origin: rule 't.a' concludes {kind!r}, a "
        f"kind of origin {origin}; rules may only derive kinds"]


def test_conclusion_missing_a_declared_field(make_pack: PackWriter) -> None:
    """A conclusion must give every field its kind declares."""
    root = make_pack(rule_text(then=["then:", "  status: {capability: {ref: x.name}}"]))
    assert refused("conclusions", root) == [
        f"{root}/rules/{TEST_FILE}:10: conclusion-fields: rule 't.a': conclusion 'status' "
        "lacks field(s) value"]


def test_conclusion_with_an_undeclared_field(make_pack: PackWriter) -> None:
    """A conclusion may not invent fields its kind does not declare."""
    root = make_pack(rule_text(then=["then:", "  concern: {name: {ref: x.name}, nmae: a}"]))
    assert refused("conclusions", root) == [
        f"{root}/rules/{TEST_FILE}:10: unknown-field: rule 't.a': kind 'concern' has no "
        "field 'nmae'; did you mean 'name'?"]


def test_a_contract_kind_no_rule_concludes(make_pack: PackWriter) -> None:
    """The assessment output is read from the contract kinds; a pack that never concludes
    one (here `action`) is refused at load, not at the first assessment."""
    contract = rule_text(drop=("when", "then"), id=["id: contract.all"],
                         because=['because: "seed"'],
                         extra=("when:", "  - match: seed", "then:",
                                "  asl: {level: ASL-2}",
                                "  required: {standard: deployment, level: ASL-2}",
                                "  comprehensive: {required: false}",
                                "  status: {capability: {ref: seed.name}, value: ruled_out}",
                                "  missing_safeguard: {safeguard: none}",
                                "  decision: {value: proceed}"))
    root = make_pack({"00-contract.yaml": contract, TEST_FILE: rule_text()})
    assert refused("conclusions", root) == [
        f"{root}/pack.yaml:1: contract-kind: the pack must declare and conclude kind 'action' "
        "with fields name"]


# --- stage: citations -------------------------------------------------------------------


@pytest.mark.parametrize("cite", ["Section 2", "RSP v2.0 §2", "§2"])
def test_citation_must_match_the_pattern(make_pack: PackWriter, cite: str) -> None:
    """Every rule cites the policy in the pack's citation form (the default pattern here,
    the pack declaring none)."""
    root = make_pack(rule_text(cite=[f"cite: {cite}"]))
    assert refused("citations", root) == [
        f"{root}/rules/{TEST_FILE}:1: citation: rule 't.a': citation {cite!r} does not match "
        r"'^RSP v2\\.1 §\\d+(\\.\\d+)*'"]


# --- stage: strata ----------------------------------------------------------------------


def test_negation_cycle_prints_its_path(make_pack: PackWriter) -> None:
    """`b` is concluded from the absence of `a`, and `a` from `b`: no order of
    evaluation is sound, so the pack is refused naming the cycle `a -> b -> a` and the
    rule whose negation closes it."""
    makes_b = rule_text(id=["id: t.makes-b"], because=['because: "no a for {x.name}"'],
                        when=["when:", "  - match: x", "  - none: a"],
                        then=["then:", "  b: {name: {ref: x.name}}"])
    makes_a = rule_text(id=["id: t.makes-a"], because=['because: "b {b.name}"'],
                        when=["when:", "  - match: b"],
                        then=["then:", "  a: {name: {ref: b.name}}"])
    root = make_pack(makes_b + makes_a)
    assert refused("strata", root) == [
        f"{root}/rules/{TEST_FILE}:1: negation-cycle: negation cycle: a -> b -> a (rule "
        "'t.makes-b' negates a kind that depends on its own conclusion)"]


def test_acyclic_negation_is_stratified(make_pack: PackWriter) -> None:
    """The same two rules without the cycle load, the negating rule strictly above the
    producer of the kind it negates."""
    makes_a = rule_text(id=["id: t.makes-a"], when=["when:", "  - match: x"],
                        then=["then:", "  a: {name: {ref: x.name}}"])
    makes_b = rule_text(id=["id: t.makes-b"], when=["when:", "  - match: x", "  - none: a"],
                        then=["then:", "  b: {name: {ref: x.name}}"])
    pack = load_pack([make_pack(makes_a + makes_b)])
    assert pack.stratum_of("t.makes-b") > pack.stratum_of("t.makes-a")


# --- every problem of a stage, and only the first failing stage -------------------------


def test_every_problem_of_the_stage_is_reported(make_pack: PackWriter) -> None:
    """Two bad rules in one file give two lines: the author fixes everything in one go."""
    first = rule_text(when=["when:", "  - match: x", "    where:", "      scor: 1"])
    second = rule_text(id=["id: t.b"], when=["when:", "  - match: x", "  - match: concen"],
                       then=["then:", "  cleared: {name: {ref: x.name}}"])
    root = make_pack(first + second)
    file = f"{root}/rules/{TEST_FILE}"
    assert refused("kinds-and-fields", root) == [
        f"{file}:8: unknown-field: rule 't.a': kind 'x' has no field 'scor'; did you mean "
        "'score'?",
        f"{file}:17: unknown-kind: rule 't.b': unknown kind 'concen'; did you mean 'concern'?",
    ]


def test_every_problem_of_one_rule_is_reported(make_pack: PackWriter) -> None:
    """One rule with several structural problems reports each, at its own line."""
    root = make_pack(rule_text(drop=("cite",), extra=("priority: 3",),
                               when=["when:", "  - match: x", "    where:",
                                     "      score: {greater: 1}"]))
    file = f"{root}/rules/{TEST_FILE}"
    assert refused("structure", root) == [
        f"{file}:1: missing-cite: rule 't.a' needs a non-empty cite",
        f"{file}:7: operator: unknown operator 'greater' on field 'score'; expected one of "
        "eq, ne, gt, gte, lt, lte, in, exists",
        f"{file}:10: unknown-key: unknown rule key 'priority'; expected one of because, cite, "
        "id, rationale, replaces, then, title, when",
    ]


def test_loading_stops_at_the_first_failing_stage(make_pack: PackWriter) -> None:
    """A structural problem in one rule and a bad citation in another: only the earlier
    stage's problem is reported (the later check would run on a partial pack)."""
    root = make_pack(rule_text(drop=("because",)) + rule_text(id=["id: t.b"],
                                                              cite=["cite: Section 2"]))
    assert refused("structure", root) == [
        f"{root}/rules/{TEST_FILE}:1: missing-because: rule 't.a' needs a non-empty because"]


# --- the built-in pack ------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin() -> Pack:
    """The built-in pack, loaded once for this module."""
    return load_pack()


def test_builtin_pack_loads(builtin: Pack) -> None:
    """The shipped pack passes every stage and has the shape the rest of the engine
    assumes: rules, strata covering each rule exactly once, a base layer named rsp-2.1."""
    assert builtin.name == "rsp-2.1" and builtin.layers == ("rsp-2.1",)
    assert len(builtin.rules) > 40
    assert sorted(r for level in builtin.strata for r in level) == sorted(
        r.id for r in builtin.rules)


def test_builtin_negating_rules_sit_above_every_producer(builtin: Pack) -> None:
    """Trap 3 of the notes, checked on the shipped pack: a rule that negates a kind runs
    in a stratum strictly above every rule producing that kind (so it never sees the kind
    half-derived), and a rule reading a kind positively is never below its producers."""
    producers: dict[str, list[str]] = {}
    for rule in builtin.rules:
        for kind in rule.produces:
            producers.setdefault(kind, []).append(rule.id)
    negating = [r for r in builtin.rules if r.negates]
    assert negating, "the built-in pack has no negation: this test would prove nothing"
    for rule in negating:
        for kind in rule.negates:
            for producer in producers.get(kind, []):
                assert builtin.stratum_of(rule.id) > builtin.stratum_of(producer), (
                    rule.id, kind, producer)
    for rule in builtin.rules:
        for kind in rule.consumes:
            for producer in producers.get(kind, []):
                assert builtin.stratum_of(rule.id) >= builtin.stratum_of(producer)
    # The same from the dependency graph the loader stratifies with.
    graph = dependency_graph(builtin.rules)
    for negated, _produced, data in graph.edges(data=True):
        if data["negated"]:
            for producer in producers.get(negated, []):
                assert builtin.stratum_of(data["rule"]) > builtin.stratum_of(producer)


def test_pack_version_is_a_stable_content_hash(builtin: Pack, tmp_path: Path) -> None:
    """The version recorded with every result is `sha256:` + 64 hex digits of what the
    pack says: the same when loaded again or from another directory, unchanged by a
    comment, and different as soon as a rule's title changes."""
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", builtin.version)
    assert load_pack().version == builtin.version
    copy = tmp_path / "copy"
    shutil.copytree(builtin_pack_dir(), copy)
    assert load_pack([copy]).version == builtin.version

    rule_file = copy / "rules" / "10-signals.yaml"
    original = rule_file.read_text(encoding="utf-8")
    rule_file.write_text("# a comment changes nothing\n" + original, encoding="utf-8")
    assert load_pack([copy]).version == builtin.version

    title = re.search(r"^  title: .*$", original, flags=re.M)
    assert title is not None
    edited = original.replace(title.group(0), title.group(0) + " (edited)", 1)
    rule_file.write_text(edited, encoding="utf-8")
    changed = load_pack([copy]).version
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", changed)
    assert changed != builtin.version
    assert load_pack([copy]).version == changed
