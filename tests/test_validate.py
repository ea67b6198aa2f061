"""`asl rules validate`: each check on a small overlay (or standalone) pack written into
tmp_path, run through the CLI the way policy staff run it, and the built-in pack clean.

Every problem is one line `file:line: code: message`; the exit status is 0 when there
are none and 1 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import REPO

from cli.main import main
from engine.constraints import satisfiable
from engine.model import Operand
from engine.model import Test as WhereTest

ACME = REPO / "examples" / "packs" / "acme-lab"

# A case that fires nothing of interest: used to list rules as tested where a test is
# about another check.
CASE = """\
cases:
  - name: lists the lab's rules
    rules: [{rules}]
    model:
      model: {{id: case-lab}}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["rules", *args], catch_exceptions=False)


def overlay(tmp_path: Path, rules: str, cases: str | None = None,
            pack: str = "name: lab\n") -> Path:
    """An overlay pack `lab` in tmp_path with `rules` as rules/10-lab.yaml."""
    root = tmp_path / "lab"
    (root / "rules").mkdir(parents=True)
    (root / "pack.yaml").write_text(pack, encoding="utf-8")
    (root / "rules" / "10-lab.yaml").write_text(rules, encoding="utf-8")
    if cases is not None:
        (root / "tests").mkdir()
        (root / "tests" / "10-lab.yaml").write_text(cases, encoding="utf-8")
    return root


def problems(result: Result, code: str | None = None) -> list[str]:
    """The problem lines printed, optionally only those with one code."""
    lines = result.stdout.splitlines()
    return [line for line in lines if code is None or f": {code}: " in line]


def rule(rule_id: str, when: str, then: str = "", cite: str = "RSP v2.1 §2") -> str:
    """A rule with a `when` block (indented as in a rule file) concluding an action."""
    return (f"- id: {rule_id}\n  title: A lab rule\n  cite: {cite}\n  because: \"lab\"\n"
            f"  when:\n{when}  then:\n    {then or f'action: {{name: {rule_id[4:]}}}'}\n")


def test_the_builtin_pack_validates_clean() -> None:
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "57 rules" in result.stderr and "no problems" in result.stderr


def test_the_worked_overlay_validates_clean() -> None:
    result = run("validate", str(ACME))
    assert result.exit_code == 0, result.output
    assert "rsp-2.1+acme-lab: no problems" in result.stderr


def test_contradictory_tests_on_one_field(tmp_path: Path) -> None:
    rules = rule("lab.range", "    - match: evaluation\n      where:\n"
                 "        score: {gt: 5, lt: 3}\n")
    rules += rule("lab.eqs", "    - match: finding\n"
                  "      where: {verdict: {eq: crossed, in: [ruled_out]}}\n")
    rules += rule("lab.gone", "    - match: evaluation\n"
                  "      where: {warning_score: {exists: false, gte: 1}}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(
        rules="lab.range, lab.eqs, lab.gone"))))
    assert result.exit_code == 1
    found = problems(result, "contradiction")
    assert len(found) == 3
    assert found[0].endswith("10-lab.yaml:8: contradiction: rule 'lab.range': "
                             "evaluation.score: `score > 5 and score < 3` can never all hold")
    assert "verdict == 'crossed' and verdict in ['ruled_out']" in found[1]
    assert "warning_score exists False and warning_score >= 1" in found[2]


def test_a_capability_no_pack_fact_has_suggests_the_closest(tmp_path: Path) -> None:
    rules = rule("lab.cbrn9", "    - match: capability\n      where: {name: CBRN-9}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(rules="lab.cbrn9"))))
    assert result.exit_code == 1
    assert problems(result) == [
        f"{tmp_path}/lab/rules/10-lab.yaml:7: impossible-value: rule 'lab.cbrn9': "
        "capability.name is never 'CBRN-9'; did you mean 'CBRN-3'?"]


@pytest.mark.parametrize(("where", "message"), [
    ("{kind: finding, field: verdict, value: crosed}",
     "finding.verdict is never 'crosed'; did you mean 'crossed'?"),
    ("{kind: safeguard, field: element, value: asl3-security.audit}",
     "safeguard.element is never 'asl3-security.audit'; did you mean "
     "'asl3-security.audits'?"),
    ("{kind: status, field: capability, value: AI R&D-6}",
     "status.capability is never 'AI R&D-6'; did you mean 'AI R&D-4'?"),
    ("{kind: channel, field: name, value: open_weight}",
     "channel.name is never 'open_weight'; did you mean 'open_weights'?"),
])
def test_misspelt_values_of_evidence_and_derived_kinds(tmp_path: Path, where: str,
                                                       message: str) -> None:
    spec = dict(part.split(": ") for part in where.strip("{}").split(", "))
    rules = rule("lab.typo", f"    - match: {spec['kind']}\n"
                 f"      where: {{{spec['field']}: {spec['value']}}}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(rules="lab.typo"))))
    assert result.exit_code == 1
    (line,) = problems(result)
    assert line.endswith(f"impossible-value: rule 'lab.typo': {message}")


def test_a_misspelt_value_in_a_list_or_ne_is_reported_but_not_fatal(tmp_path: Path) -> None:
    rules = rule("lab.list", "    - match: channel\n"
                 "      where: {name: [api, cloud_platfrom]}\n")
    rules += rule("lab.ne", "    - match: safeguard\n      where: {status: {ne: implmented}}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(
        rules="lab.list, lab.ne"))))
    found = problems(result)
    assert [line.split(": ")[1] for line in found] == ["unknown-value", "unknown-value"]
    assert "channel.name is never 'cloud_platfrom'" in found[0]
    assert "did you mean 'cloud_platform'?" in found[0]
    assert "did you mean 'implemented'?" in found[1]
    assert not problems(result, "never-fires")


def test_a_range_no_value_of_the_field_reaches(tmp_path: Path) -> None:
    rules = rule("lab.asl5", "    - match: required\n      where: {rank: {gte: 5}}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(rules="lab.asl5"))))
    (line,) = problems(result)
    assert line.endswith("impossible-value: rule 'lab.asl5': required.rank: no value it "
                         "takes (2, 3, 4) passes `rank >= 5`")


def test_a_combination_no_pack_fact_has(tmp_path: Path) -> None:
    rules = rule("lab.combo", "    - match: capability\n"
                 "      where: {name: CBRN-3, tier: upper}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(rules="lab.combo"))))
    (line,) = problems(result)
    assert line.endswith("impossible-value: rule 'lab.combo': no capability fact of the "
                         "pack has name == 'CBRN-3', tier == 'upper'")


def test_a_value_of_the_wrong_type_fails_loading(tmp_path: Path) -> None:
    rules = rule("lab.type", "    - match: evaluation\n      where: {score: high}\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(rules="lab.type"))))
    assert result.exit_code == 1
    (line,) = problems(result)
    assert line.endswith("10-lab.yaml:7: constant-type: rule 'lab.type': evaluation.score "
                         "is a number, not 'high'")


def test_a_kind_nothing_provides_and_rules_that_therefore_never_fire(tmp_path: Path) -> None:
    pack = "name: lab\nkinds:\n  flag: {fields: {name: str}}\n  mark: {fields: {name: str}}\n"
    rules = rule("lab.needs-flag", "    - match: flag\n")
    rules += rule("lab.no-flag", "    - match: finding\n    - none: flag\n")
    rules += rule("lab.dead", "    - match: finding\n      where: {verdict: crosed}\n",
                  then="mark: {name: x}")
    rules += rule("lab.after-dead", "    - match: mark\n")
    rules += rule("lab.dead-value", "    - match: action\n      where: {name: dead}\n")
    rules += rule("lab.makes-dead", "    - match: mark\n", then="action: {name: dead}")
    cases = CASE.format(rules="lab.needs-flag, lab.no-flag, lab.dead, lab.after-dead, "
                        "lab.dead-value, lab.makes-dead")
    result = run("validate", str(overlay(tmp_path, rules, cases, pack)))
    assert result.exit_code == 1
    unproduced = problems(result, "unproduced-kind")
    assert len(unproduced) == 2
    assert "rule 'lab.needs-flag': no rule concludes 'flag'" in unproduced[0]
    assert "so the rule can never fire" in unproduced[0]
    assert "so this `none` always holds" in unproduced[1]
    never = problems(result, "never-fires")
    assert any("rule 'lab.after-dead' can never fire: it matches 'mark', which only rules "
               "that can never fire conclude (lab.dead)" in line for line in never)
    assert any("rule 'lab.dead-value': action.name is 'dead' only in conclusions of rules "
               "that can never fire" in line for line in never)


def test_an_evidence_kind_model_documents_never_provide(tmp_path: Path) -> None:
    builtin = REPO / "rules" / "rsp-2.1"
    root = tmp_path / "solo"
    (root / "rules").mkdir(parents=True)
    declarations = (builtin / "pack.yaml").read_text(encoding="utf-8")
    declarations = declarations.replace("name: rsp-2.1", "name: solo\nstandalone: true")
    declarations = declarations.replace(
        "kinds:\n", "kinds:\n  memo: {origin: evidence, fields: {name: str}}\n", 1)
    (root / "pack.yaml").write_text(declarations, encoding="utf-8")
    for source in (builtin / "rules").glob("*.yaml"):
        (root / "rules" / source.name).write_text(source.read_text(encoding="utf-8"))
    (root / "rules" / "90-memo.yaml").write_text(rule("lab.memo", "    - match: memo\n"))
    result = run("validate", str(root))
    assert result.exit_code == 1
    assert any("unproduced-kind: rule 'lab.memo': no rule concludes 'memo', no pack fact "
               "states it and no model document provides it" in line
               for line in problems(result))


def test_conflicting_single_valued_conclusions(tmp_path: Path) -> None:
    rules = rule("lab.open", "    - match: channel\n      where: {name: api}\n",
                 then="comprehensive: {required: false}")
    rules += rule("lab.closed", "    - match: channel\n      where: {name: internal}\n",
                  then="comprehensive: {required: true}")
    rules += rule("lab.proceed", "    - match: channel\n      where: {name: open_weights}\n",
                  then="decision: {value: proceed}")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(
        rules="lab.open, lab.closed, lab.proceed"))))
    found = problems(result, "conflict")
    # lab.open and lab.closed test channel.name with different values: exclusive. But
    # lab.open concludes false where assessment.required concludes true from a trigger,
    # and lab.proceed can hold with decision.most-severe's candidates.
    assert any("'assessment.required'" in f and "'lab.open'" in f
               and "comprehensive.required True and False" in f for f in found)
    assert not any("'lab.open'" in f and "'lab.closed'" in f for f in found)
    assert any("'decision.most-severe'" in f and "'lab.proceed'" in f and "one of (" in f
               for f in found)
    assert not any("'decision.proceed'" in f and "'lab.proceed'" in f for f in found)


def test_precedence_by_negation_is_not_a_conflict(tmp_path: Path) -> None:
    pack = "name: lab\nkinds:\n  waiver: {fields: {name: str}}\n"
    rules = rule("lab.waive", "    - match: finding\n      where: {verdict: ruled_out}\n",
                 then="waiver: {name: w}")
    rules += rule("lab.strict", "    - match: finding\n    - none: waiver\n",
                  then="decision: {value: pause}")
    rules += rule("lab.lenient", "    - match: waiver\n", then="decision: {value: proceed}")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(
        rules="lab.waive, lab.strict, lab.lenient"), pack)))
    found = problems(result, "conflict")
    assert found  # each still conflicts with the built-in decision rules
    assert not any("'lab.strict'" in f and "'lab.lenient'" in f for f in found)


def test_rules_without_a_case(tmp_path: Path) -> None:
    rules = rule("lab.one", "    - match: finding\n") + rule("lab.two", "    - match: finding\n")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(rules="lab.one"))))
    assert result.exit_code == 1
    assert problems(result) == [
        f"{tmp_path}/lab/rules/10-lab.yaml:9: untested: rule 'lab.two' has no test case: "
        "list it under `rules:` of a case in the pack's tests/ (`asl rules new` scaffolds "
        "one)"]


def test_a_citation_that_runs_on(tmp_path: Path) -> None:
    rules = rule("lab.glued", "    - match: finding\n", cite="RSP v2.1 §3.3x")
    rules += rule("lab.fine", "    - match: finding\n", cite="RSP v2.1 §3.3; §5 (follow-up)")
    result = run("validate", str(overlay(tmp_path, rules, CASE.format(
        rules="lab.glued, lab.fine"))))
    (line,) = problems(result)
    assert ":1: citation: rule 'lab.glued': citation 'RSP v2.1 §3.3x' runs on after " \
           "'RSP v2.1 §3.3'" in line


def test_missing_and_malformed_citations_fail_loading(tmp_path: Path) -> None:
    malformed = run("validate", str(overlay(tmp_path / "a", rule(
        "lab.cite", "    - match: finding\n", cite="'section 3'"))))
    assert malformed.exit_code == 1
    assert problems(malformed, "citation")[0].endswith(
        "rule 'lab.cite': citation 'section 3' does not match "
        "'^RSP v2\\\\.1 (§\\\\d+(\\\\.\\\\d+)*|Appendix [A-Z])'")
    missing = run("validate", str(overlay(tmp_path / "b", rule(
        "lab.cite", "    - match: finding\n").replace("  cite: RSP v2.1 §2\n", ""))))
    assert missing.exit_code == 1
    assert problems(missing, "missing-cite")[0].endswith(
        "missing-cite: rule 'lab.cite' needs a non-empty cite")


def test_misspelt_kinds_and_fields_fail_loading_with_a_suggestion(tmp_path: Path) -> None:
    rules = rule("lab.kind", "    - match: findng\n")
    rules += rule("lab.field", "    - match: finding\n      where: {verdct: crossed}\n")
    result = run("validate", str(overlay(tmp_path, rules)))
    assert result.exit_code == 1
    lines = problems(result)
    assert [line.split(": ")[1] for line in lines] == ["unknown-kind", "unknown-field"]
    assert lines[0].endswith("unknown kind 'findng'; did you mean 'finding'?")
    assert lines[1].endswith("has no field 'verdct'; did you mean 'verdict'?")
    assert "Traceback" not in result.output


CASES_WITH_MISTAKES = """\
cases:
  - name: mistakes
    rules: [lab.one, lab.onne]
    modle: {}
    model:
      model: {id: case-lab}
      findings:
        - {id: f1, threshold: CBRN-9, verdict: crossed}
    expect:
      - statuss: {capability: CBRN-3}
      - status: {capabilty: CBRN-3}
      - status: {capability: CBRN-3, value: crosed}
    output: {asll: ASL-3}
"""


def test_case_files_naming_what_cannot_occur(tmp_path: Path) -> None:
    rules = rule("lab.one", "    - match: finding\n")
    result = run("validate", str(overlay(tmp_path, rules, CASES_WITH_MISTAKES)))
    assert result.exit_code == 1
    found = {line.split(": ")[1]: line for line in problems(result)}
    assert set(found) == {"case-key", "case-rule", "case-model", "case-kind", "case-field",
                          "case-value", "case-output"}
    assert found["case-key"].endswith("unknown key 'modle'; did you mean 'model'?")
    assert found["case-rule"].endswith("lists rule 'lab.onne', which is not in force; "
                                       "did you mean 'lab.one'?")
    assert "unknown threshold 'CBRN-9'" in found["case-model"]
    assert found["case-kind"].endswith("unknown kind 'statuss'; did you mean 'status'?")
    assert found["case-field"].endswith("has no field 'capabilty'; did you mean "
                                        "'capability'?")
    assert found["case-value"].endswith("status.value 'crosed', a value it never takes; "
                                        "did you mean 'crossed'?")
    assert found["case-output"].endswith("the output has no key 'asll'; did you mean 'asl'?")
    assert found["case-key"].startswith(f"{tmp_path}/lab/tests/10-lab.yaml:4: ")


def test_json_format_and_a_path_that_is_not_a_directory(tmp_path: Path) -> None:
    rules = rule("lab.one", "    - match: finding\n")
    result = run("validate", str(overlay(tmp_path, rules)), "--format", "json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)
    assert problem == {"file": f"{tmp_path}/lab/rules/10-lab.yaml", "line": 1,
                       "code": "untested", "message": problem["message"]}
    missing = run("validate", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2


@pytest.mark.parametrize(("tests", "possible"), [
    ([("gt", 5), ("lt", 3)], False),
    ([("gte", 3), ("lte", 3)], True),
    ([("gt", 3), ("lte", 3)], False),
    ([("eq", "a"), ("eq", "b")], False),
    ([("eq", "a"), ("ne", "a")], False),
    ([("in", ["a", "b"]), ("in", ["b", "c"])], True),
    ([("in", ["a"]), ("in", ["c"])], False),
    ([("exists", False), ("eq", 1)], False),
    ([("exists", False), ("ne", 1)], False),  # `ne` needs a value, as durable-rules does
    ([("exists", True), ("exists", False)], False),
    ([("eq", True), ("eq", 1)], False),
    ([("gt", "a"), ("lt", 3)], False),  # only numbers are ordered (engine.operators)
])
def test_satisfiable(tests: list[tuple[str, object]], possible: bool) -> None:
    made = [WhereTest("f", op, Operand(constant=value)) for op, value in tests]
    assert satisfiable(made) is possible
