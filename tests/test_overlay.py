"""Overlay packs: an analyst's pack loaded over the built-in one with `--pack`.

The worked overlay `examples/packs/acme-lab` adds a rule, an element of an existing
standard and a replacement; the other overlays here are written per test into a
temporary directory whose name differs from the pack's declared name, so every test
also checks that provenance uses the declared name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import REPO

from cli.main import main
from engine.assess import assess_document, evaluator_for, vocabulary
from engine.cases import run_cases
from engine.errors import PackError
from engine.evidence import parse_document
from engine.loader import builtin_pack_dir, load_overlaid, load_pack, pack_stack
from knowledge_graph.explain import render_text, why_tree
from knowledge_graph.provenance import find_conclusion
from knowledge_graph.report import provenance

ACME = REPO / "examples" / "packs" / "acme-lab"
ACME_MODEL = ACME / "example-model.yaml"
CYBER_RULE = "acme.cyber.requires-asl3-security"
ROTATION = "asl3-security.internal-red-team-rotation"

# A rule any overlay can add: ASL-3 Security as soon as Cyber operations is not ruled out.
CYBER = {
    "id": "lab.cyber", "title": "Cyber of concern requires ASL-3 Security", "cite": "RSP v2.1 §2",
    "because": "Cyber operations is {s.value}",
    "when": [{"match": "status", "as": "s", "where": {
        "capability": "Cyber operations", "value": ["crossed", "cannot_rule_out"]}}],
    "then": {"requirement": {"standard": "security", "level": "ASL-3", "rank": 3}},
}
MONTHS = {  # the built-in six-month trigger, at four months
    "title": "Four months of gains", "cite": "RSP v2.1 §3.1", "because": "{r.months_since} months",
    "when": [{"match": "reference", "as": "r", "where": {"months_since": {"gte": 4}}}],
    "then": {"assessment_trigger": {"reason": "elapsed_months"}},
}


def write_pack(root: Path, name: str, rules: list[dict[str, Any]] | None = None,
               directory: str | None = None, **declarations: Any) -> Path:
    """An overlay pack `name` under `root` (in directory `directory`, default `dir-NAME`)."""
    path = root / (directory or f"dir-{name}")
    (path / "rules").mkdir(parents=True)
    (path / "pack.yaml").write_text(yaml.safe_dump({"name": name, **declarations},
                                                   sort_keys=False, allow_unicode=True))
    if rules is not None:
        (path / "rules" / "10-rules.yaml").write_text(
            yaml.safe_dump(rules, sort_keys=False, allow_unicode=True))
    return path


def codes(*overlays: Path) -> list[str]:
    """The problem codes loading these overlays over the built-in pack reports."""
    with pytest.raises(PackError) as caught:
        load_overlaid(overlays)
    return [p.code for p in caught.value.problems]


def assess(overlays: list[Path], data: dict[str, Any]) -> dict[str, Any]:
    """The contract output for one model document, with these overlays loaded."""
    evaluator = evaluator_for(overlays)
    doc, errors = parse_document(data, "doc.yaml", "", vocabulary(evaluator.pack))
    assert doc is not None, errors
    return assess_document(evaluator, doc).output


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def model(months: float = 2, **extra: Any) -> dict[str, Any]:
    """A small model: 1.1x compute, `months` since an ASL-2 assessment, ASL-2 in place."""
    return {"model": {"id": "m", "effective_compute_flop": 1.1e26,
                      "last_comprehensive_assessment": {
                          "model": "base", "effective_compute_flop": 1.0e26,
                          "months_since": months, "determination": "ASL-2"}},
            "safeguards": [{"id": "asl2-deployment", "status": "implemented"},
                           {"id": "asl2-security", "status": "implemented"}], **extra}


CYBER_MARGIN = {"evaluations": [{"id": "cy", "threshold": "Cyber operations", "score": 0.5,
                                 "threshold_score": 0.6, "warning_score": 0.45}]}


# --- the worked overlay ----------------------------------------------------------------


def test_acme_overlay_adds_a_rule_and_an_element_and_changes_the_outcome() -> None:
    data = yaml.safe_load(ACME_MODEL.read_text())
    built_in = assess([], data)
    acme = assess([ACME], data)
    assert {k: built_in[k] for k in ("asl", "decision", "comprehensive_assessment_required",
                                     "missing_safeguards", "actions")} == {
        "asl": "ASL-2", "decision": "proceed", "comprehensive_assessment_required": False,
        "missing_safeguards": [], "actions": ["cyber_expert_review"]}
    assert {k: acme[k] for k in ("asl", "required", "decision",
                                 "comprehensive_assessment_required", "missing_safeguards")} == {
        "asl": "ASL-3", "required": {"deployment": "ASL-2", "security": "ASL-3"},
        "decision": "pause", "comprehensive_assessment_required": True,
        "missing_safeguards": [ROTATION]}
    assert {"capability_report", "interim_measures", "safeguards_report"} <= set(acme["actions"])
    assert acme["ongoing_assessment"] == built_in["ongoing_assessment"] == {
        "Cyber operations": "cannot_rule_out"}


def test_acme_overlay_extends_the_vocabulary_and_the_standard() -> None:
    pack = evaluator_for([ACME]).pack
    assert ROTATION in vocabulary(pack).safeguards
    assert ROTATION not in vocabulary(evaluator_for().pack).safeguards
    (standard,) = [s for s in pack.standards if s.id == "asl3-security"]
    assert standard.elements[-1] == ROTATION and len(standard.elements) == 9
    assert standard.pack == "rsp-2.1" and standard.element_packs[ROTATION] == "acme-lab"


def test_acme_overlay_cases_pass_and_cover_its_rules() -> None:
    evaluator = evaluator_for([ACME])
    results = run_cases(evaluator, {"acme-lab"})
    assert len(results) >= 5
    assert all(Path(r.file).resolve().is_relative_to(ACME) for r in results)
    assert [(r.name, r.failures) for r in results if not r.passed] == []
    fired = set().union(*(r.fired for r in results))
    assert {r.id for r in evaluator.pack.rules if r.pack == "acme-lab"} <= fired


def test_cli_assess_with_acme_pack_prints_the_overlaid_contract() -> None:
    result = run("assess", "--pack", str(ACME), str(ACME_MODEL), "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["pack"]["name"] == "rsp-2.1+acme-lab"
    assert document["asl"] == "ASL-3" and document["decision"] == "pause"
    assert document["missing_safeguards"] == [ROTATION]
    by_rule = {c["rule"]: c for c in document["conclusions"]}
    assert by_rule[CYBER_RULE]["pack"] == "acme-lab"
    assert by_rule["requirements.highest"]["pack"] == "rsp-2.1"
    plain = json.loads(run("assess", str(ACME_MODEL), "--format", "json").stdout)
    assert plain["asl"] == "ASL-2" and plain["pack"]["name"] == "rsp-2.1"


# --- provenance ----------------------------------------------------------------------


def test_why_names_the_overlay_pack_of_each_rule_and_default() -> None:
    result = run("why", "--pack", str(ACME), str(ACME_MODEL), "--conclusion", "decision")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert f"<- rule {CYBER_RULE}: " in text
    assert "[RSP v2.1 §2; pack acme-lab]" in text
    assert f"pack default safeguard: element={ROTATION}" in text
    assert "(not listed: counts as not implemented) [pack acme-lab]" in text
    assert "pack rsp-2.1" not in text  # the built-in's rules are shown as they always were
    tree = json.loads(run("why", "--pack", str(ACME), str(ACME_MODEL), "--conclusion",
                          "required.security", "--format", "json").stdout)["explanation"]
    firing = tree["derived_by"][0]["matched"][0]["derived_by"][0]
    assert (firing["rule"], firing["pack"]) == (CYBER_RULE, "acme-lab")


def test_why_shows_a_replacement_and_its_rationale() -> None:
    result = run("why", "--pack", str(ACME), str(ACME_MODEL), "--conclusion", "comprehensive")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    (index,) = [i for i, line in enumerate(lines) if "<- rule assessment.trigger.months:" in line]
    assert lines[index].endswith("[RSP v2.1 §3.1; pack acme-lab]")
    assert "at Acme, 4 or more" in lines[index + 1]
    assert lines[index + 2].strip().startswith(
        "replaces assessment.trigger.months: Acme's board reassesses after four months")
    tree = json.loads(run("why", "--pack", str(ACME), str(ACME_MODEL), "--conclusion",
                          "comprehensive", "--format", "json").stdout)
    assert '"replaces": "assessment.trigger.months"' in json.dumps(tree)


def test_rule_pack_is_the_declared_name_not_the_directory(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab-x", [CYBER], directory="some-folder")
    pack = load_overlaid([path])
    assert pack.rule("lab.cyber").pack == "lab-x"
    assert pack.rule("requirements.highest").pack == "rsp-2.1"
    evaluator = evaluator_for([path])
    doc, _ = parse_document(model(**CYBER_MARGIN), "m.yaml", "", vocabulary(evaluator.pack))
    assert doc is not None
    graph = provenance(assess_document(evaluator, doc))
    text = render_text(why_tree(graph, find_conclusion(graph, "required.security")))
    assert "<- rule lab.cyber: Cyber of concern requires ASL-3 Security [RSP v2.1 §2; pack lab-x]" \
        in text


# --- pack name and version -------------------------------------------------------------


def test_pack_name_joins_every_loaded_pack_and_version_covers_them(tmp_path: Path) -> None:
    builtin = load_pack()
    acme = load_overlaid([ACME])
    assert acme.name == "rsp-2.1+acme-lab" and acme.layers == ("rsp-2.1", "acme-lab")
    assert builtin.name == "rsp-2.1" and builtin.layers == ("rsp-2.1",)
    assert acme.version.startswith("sha256:") and acme.version != builtin.version
    assert load_overlaid([ACME]).version == acme.version  # content, not load order in time
    # an element alone, a rationale alone: each changes the version
    copy = tmp_path / "acme-copy"
    shutil.copytree(ACME, copy)
    pack_yaml = copy / "pack.yaml"
    pack_yaml.write_text(pack_yaml.read_text().replace(
        "[internal-red-team-rotation]", "[internal-red-team-rotation, key-ceremony]"))
    assert load_overlaid([copy]).version != acme.version
    shutil.copy(ACME / "pack.yaml", pack_yaml)
    rules = copy / "rules" / "10-acme.yaml"
    assert load_overlaid([copy]).version == acme.version
    rules.write_text(rules.read_text().replace("not six.", "not six (board minute 14)."))
    assert load_overlaid([copy]).version != acme.version


def test_overlays_stack_in_the_order_given(tmp_path: Path) -> None:
    """Each `--pack` goes over the packs before it: a later overlay may replace an
    earlier overlay's rule, and not the other way round."""
    first = write_pack(tmp_path, "first", [CYBER])
    second = write_pack(tmp_path, "second", [{**CYBER, "id": "second.cyber",
                                              "replaces": "lab.cyber",
                                              "rationale": "crossed only",
                                              "when": [{"match": "status", "as": "s", "where": {
                                                  "capability": "Cyber operations",
                                                  "value": "crossed"}}]}])
    assert pack_stack([first, second]) == [builtin_pack_dir(), first, second]
    pack = load_overlaid([first, second])
    assert pack.name == "rsp-2.1+first+second"
    assert "lab.cyber" not in {r.id for r in pack.rules}
    assert assess([first], model(**CYBER_MARGIN))["asl"] == "ASL-3"
    assert assess([first, second], model(**CYBER_MARGIN))["asl"] == "ASL-2"
    assert codes(second, first) == ["replaces-unknown"]
    data = tmp_path / "m.yaml"
    data.write_text(yaml.safe_dump(model(**CYBER_MARGIN)))
    result = run("assess", "--pack", str(first), "--pack", str(second), str(data),
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["pack"]["name"] == "rsp-2.1+first+second"


def test_a_broken_overlay_is_reported_by_file_and_line_and_exits_1(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", [{**MONTHS, "id": "lab.months",
                                         "replaces": "assessment.trigger.months"}])
    result = run("assess", "--pack", str(path), str(ACME_MODEL))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path / 'rules' / '10-rules.yaml'}:1: missing-rationale: ")
    assert result.stderr.endswith("asl: the rule pack has errors; nothing was assessed\n")


def test_a_standalone_pack_is_loaded_without_the_builtin(tmp_path: Path) -> None:
    copy = tmp_path / "own"
    shutil.copytree(builtin_pack_dir(), copy)
    text = (copy / "pack.yaml").read_text().replace("name: rsp-2.1", "name: own\nstandalone: true")
    (copy / "pack.yaml").write_text(text)
    assert pack_stack([copy]) == [copy]
    pack = load_overlaid([copy])
    assert pack.name == "own" and {r.pack for r in pack.rules} == {"own"}
    assert "standalone" in codes(ACME, copy)  # a standalone pack must come first


def test_duplicate_pack_names_are_refused(tmp_path: Path) -> None:
    assert "pack-name" in codes(write_pack(tmp_path, "rsp-2.1"))
    assert "pack-name" in codes(write_pack(tmp_path, "Bad Name"))


# --- replacements ----------------------------------------------------------------------


def test_replacement_keeping_the_id_takes_the_builtins_place(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", [{**MONTHS, "id": "assessment.trigger.months",
                                         "replaces": "assessment.trigger.months",
                                         "rationale": "the board reassesses after four months"}])
    pack = load_overlaid([path])
    rule = pack.rule("assessment.trigger.months")
    assert (rule.pack, rule.replaces, rule.rationale) == (
        "lab", "assessment.trigger.months", "the board reassesses after four months")
    assert [r.id for r in pack.rules].count("assessment.trigger.months") == 1
    assert assess([path], model(months=5))["comprehensive_assessment_required"] is True
    assert assess([], model(months=5))["comprehensive_assessment_required"] is False


def test_replacement_with_a_new_id_removes_the_replaced_rule(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", [{**MONTHS, "id": "lab.months",
                                         "replaces": "assessment.trigger.months",
                                         "rationale": "four months"}])
    pack = load_overlaid([path])
    assert "assessment.trigger.months" not in {r.id for r in pack.rules}
    assert pack.rule("lab.months").replaces == "assessment.trigger.months"
    assert assess([path], model(months=5))["comprehensive_assessment_required"] is True


@pytest.mark.parametrize("rationale", [None, "", "   "])
def test_replacement_without_a_rationale_is_refused(tmp_path: Path, rationale: str | None
                                                    ) -> None:
    rule = {**MONTHS, "id": "lab.months", "replaces": "assessment.trigger.months"}
    if rationale is not None:
        rule["rationale"] = rationale
    assert codes(write_pack(tmp_path, "lab", [rule])) == ["missing-rationale"]


def test_replacing_an_unknown_rule_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", [{**MONTHS, "id": "lab.months",
                                         "replaces": "assessment.trigger.month",
                                         "rationale": "four months"}])
    with pytest.raises(PackError) as caught:
        load_overlaid([path])
    (problem,) = caught.value.problems
    assert problem.code == "replaces-unknown"
    assert "did you mean 'assessment.trigger.months'?" in problem.message


def test_replacing_a_rule_of_the_same_pack_is_refused(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", [CYBER, {**CYBER, "id": "lab.cyber2",
                                                "replaces": "lab.cyber", "rationale": "again"}])
    assert codes(path) == ["replaces-unknown"]


def test_replacing_a_rule_twice_is_refused(tmp_path: Path) -> None:
    replacement = {**MONTHS, "replaces": "assessment.trigger.months", "rationale": "four"}
    one_pack = write_pack(tmp_path, "one", [{**replacement, "id": "one.a"},
                                            {**replacement, "id": "one.b"}])
    assert codes(one_pack) == ["replaced-twice"]
    first = write_pack(tmp_path, "first", [{**replacement, "id": "assessment.trigger.months"}])
    second = write_pack(tmp_path, "second", [{**replacement, "id": "second.months"}])
    with pytest.raises(PackError) as caught:
        load_overlaid([first, second])
    (problem,) = caught.value.problems
    assert problem.code == "replaced-twice" and "dir-first" in problem.message


def test_reusing_a_builtin_id_without_replaces_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", [{**MONTHS, "id": "assessment.trigger.months"}])
    with pytest.raises(PackError) as caught:
        load_overlaid([path])
    (problem,) = caught.value.problems
    assert problem.code == "duplicate-id"
    assert "add `replaces: assessment.trigger.months` and a `rationale`" in problem.message


# --- what else an overlay may add, and may not change -----------------------------------


def test_new_capability_kind_and_standard_appear_in_the_output(tmp_path: Path) -> None:
    capability = {"name": "Persuasion", "category": "ongoing", "family": "Persuasion",
                  "misalignment_case": False}
    rule = {"id": "lab.persuasion", "title": "Persuasion of concern needs review",
            "cite": "RSP v2.1 §2", "because": "Persuasion is {s.value}",
            "when": [{"match": "status", "as": "s",
                      "where": {"capability": "Persuasion", "value": "crossed"}}],
            "then": {"review": {"capability": {"ref": "s.capability"}}}}
    note = {**rule, "id": "lab.persuasion.action", "because": "{r.capability} needs review",
            "when": [{"match": "review", "as": "r"}],
            "then": {"action": {"name": "persuasion_review"}}}
    path = write_pack(
        tmp_path, "lab", [rule, note],
        kinds={"review": {"fields": {"capability": "str"}}},
        catalogue={"capabilities": [capability],
                   "standards": [{"name": "lab-security", "standard": "security",
                                  "level": "ASL-2", "rank": 2, "elements": ["badge-audits"]}]})
    pack = load_overlaid([path])
    assert {"Persuasion"} <= vocabulary(pack).capabilities
    assert {"lab-security", "lab-security.badge-audits"} <= vocabulary(pack).safeguards
    finding = {"findings": [{"id": "f", "threshold": "Persuasion", "verdict": "crossed"}]}
    output = assess([path], model(**finding))
    assert output["ongoing_assessment"] == {"Cyber operations": "not_assessed",
                                            "Persuasion": "crossed"}
    assert "persuasion_review" in output["actions"]
    assert output["missing_safeguards"] == ["lab-security.badge-audits"]
    assert assess([path], model())["ongoing_assessment"]["Persuasion"] == "not_assessed"


def test_new_capabilities_go_into_the_output_group_of_their_category(tmp_path: Path) -> None:
    capabilities = [{"name": f"Lab {category}", "category": category, "family": "Lab",
                     "misalignment_case": False}
                    for category in ("threshold", "checkpoint", "ongoing")]
    path = write_pack(tmp_path, "lab", catalogue={"capabilities": capabilities})
    findings = {"findings": [{"id": f"f{i}", "threshold": c["name"], "verdict": "ruled_out"}
                             for i, c in enumerate(capabilities)]}
    output = assess([path], model(**findings))
    assert output["thresholds"]["Lab threshold"] == "ruled_out"
    assert output["checkpoints"] == {"Autonomy checkpoint": "not_assessed",
                                     "Lab checkpoint": "ruled_out"}
    assert output["ongoing_assessment"]["Lab ongoing"] == "ruled_out"
    assert len(output["thresholds"]) == 5


@pytest.mark.parametrize(("declarations", "code"), [
    ({"catalogue": {"capabilities": [{"name": "CBRN-3", "category": "threshold"}]}},
     "duplicate-capability"),
    ({"catalogue": {"capabilities": [{"name": "X", "category": "tripwire"}]}}, "catalogue"),
    ({"catalogue": {"standards": [{"name": "asl3-security", "level": "ASL-4"}]}},
     "standard-extension"),
    ({"catalogue": {"standards": [{"name": "asl3-security", "elements": ["audits"]}]}},
     "duplicate-element"),
    ({"kinds": {"signal": {"fields": {"capability": "str"}}}}, "kind-redeclared"),
    ({"kinds": {"badge": {"origin": "evidence", "fields": {"id_no": "str"}}}}, "kind-origin"),
    ({"facts": [{"kind": "baseline", "standard": "security", "level": "ASL-2", "rank": 2}]},
     "duplicate-fact"),
    ({"cite_pattern": "^Acme [("}, "cite-pattern"),
    ({"standalone": "yes"}, "standalone"),
])
def test_an_overlay_may_add_but_not_change(tmp_path: Path, declarations: dict[str, Any],
                                          code: str) -> None:
    assert codes(write_pack(tmp_path, "lab", **declarations)) == [code]


def test_an_undefined_standard_given_elements_becomes_defined(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "lab", catalogue={"standards": [
        {"name": "asl4-security", "elements": ["air-gapped-weights"]}]})
    (standard,) = [s for s in load_overlaid([path]).standards if s.id == "asl4-security"]
    assert standard.attributes["defined"] is True
    assert standard.elements == ("asl4-security.air-gapped-weights",)


def test_an_overlay_cite_pattern_applies_to_its_own_rules_only(tmp_path: Path) -> None:
    own = {**CYBER, "cite": "Acme FSP §4"}
    path = write_pack(tmp_path, "lab", [own], cite_pattern=r"^Acme FSP §\d+")
    assert load_overlaid([path]).rule("lab.cyber").cite == "Acme FSP §4"
    assert codes(write_pack(tmp_path, "lab2", [own])) == ["citation"]
