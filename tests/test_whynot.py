"""`asl why-not`: targets, what stands in the way, failed conditions, and the property
that `engine.diagnose` agrees with durable-rules about every rule of every assessment."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import DATA, EXAMPLES, assess_paths, expected_outcomes

from cli.main import main
from cli.whynot import render_text
from conftest import PackWriter
from engine.assess import Assessment, assess_document, evaluator_for, vocabulary
from engine.diagnose import (
    BLOCKED,
    FAILED_TEST,
    ConditionFailure,
    Want,
    check_derivation,
    check_rule,
)
from engine.diagnose_want import all_failures, diagnose
from engine.evaluator import Evaluator, Fact
from engine.evidence import parse_document
from engine.loader import load_pack
from engine.model import ORIGIN_EVIDENCE, Operand
from engine.model import Test as PackTest
from knowledge_graph.report import provenance
from knowledge_graph.whynot import TargetError, parse_target, why_not

CASES = sorted(expected_outcomes())


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def case_models() -> list[tuple[str, str, dict[str, Any]]]:
    """(file, model id, expected contract keys) for every model of every case of
    tests/data."""
    out = []
    for name, expected in sorted(expected_outcomes().items()):
        for outcome in expected if isinstance(expected, list) else [expected]:
            out.append((str(DATA / f"{name}.yaml"), outcome["model"], outcome))
    return out


def report_for(path: Path | str, target: str, model: str | None = None) -> dict[str, Any]:
    """The JSON report `asl why-not` prints (exit status 0 checked)."""
    args = ["why-not", str(path), target, "--format", "json"]
    result = run(*args, *(["--model", model] if model else []))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def failures(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for p in rule["partial_matches"] for f in p["failures"]]


def walk_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule diagnosis of a report's `rules` tree, depth first."""
    out = []
    for rule in rules:
        out.append(rule)
        for below in rule["below"]:
            out += walk_rules(below["rules"])
    return out


# --- every case of tests/data, through the command line -----------------------------

@pytest.mark.parametrize("target,field,value", [("asl=ASL-2", "asl", "ASL-2"),
                                                ("decision=proceed", "decision", "proceed")])
def test_every_case_model_says_whether_the_target_holds(target: str, field: str,
                                                        value: str) -> None:
    """For each model of tests/data (the portfolio's with --model) the report agrees with
    expected.json on whether the target holds, and otherwise names what stands in the
    way, consistently with the engine; text and JSON carry the same facts."""
    for path, model, expected in case_models():
        report = report_for(path, target, model)
        assert report["model"] == model and report["inconsistencies"] == []
        assert report["holds"] is (expected[field] == value)
        text = run("why-not", path, target, "--model", model).stdout
        if report["holds"]:
            assert report["standing"] == [] and "It holds" in text
            continue
        instead = [s for s in report["standing"] if s["role"] == "instead"]
        assert [s["values"][{"asl": "level", "decision": "value"}[field]]
                for s in instead] == [expected[field]]
        assert report["rules"], "a rule that could conclude the target is diagnosed"
        for entry in report["standing"]:
            assert entry["id"] in text and entry["evidence"] and entry["why"]["derived_by"]


def test_ai_rnd_security_gap_asl2_names_ai_rnd4_and_the_failed_margin_test() -> None:
    report = report_for(DATA / "rnd-agent-security-gap.yaml", "asl=ASL-2")
    standing = {s["id"]: s for s in report["standing"]}
    assert standing["asl(level=ASL-3,rank=3)"]["role"] == "instead"
    blocker = standing["required(level=ASL-3,rank=3,standard=security)"]
    assert blocker["blocks"] == ["requirements.asl"]
    assert any("AI R&D-4 is cannot_rule_out" in step["because"] for step in blocker["chain"])
    evidence = {e["label"]: e for e in blocker["evidence"]}
    assert list(evidence) == ["ha2-replication"]
    suite = evidence["ha2-replication"]
    assert [r["rule"] for r in suite["read_by"]] == ["signals.eval.rule-out-reached"]
    below = {a["rule"]: failures(a) for a in suite["alternatives"]}
    (failure,) = below["signals.eval.below-margin"]
    assert (failure["test"], failure["actual"], failure["required"], failure["gap"]) == (
        "score < warning_score", 0.71, 0.55, 0.16)
    assert [f["text"] for f in below["signals.eval.rule-in-reached"]] == [
        "purpose is rule_out, needs rule_in"]
    (rule,) = report["rules"]
    assert rule["rule"] == "requirements.asl"
    (partial,) = rule["partial_matches"]
    assert partial["binding"][0]["fact"] == "required(level=ASL-2,rank=2,standard=deployment)"
    assert partial["condition_text"] == "none: required where rank > r.rank (2)"
    assert [(f["reason"], f["fact"]) for f in partial["failures"]] == [
        (BLOCKED, "required(level=ASL-3,rank=3,standard=security)")]

    text = run("why-not", str(DATA / "rnd-agent-security-gap.yaml"), "asl=ASL-2").stdout
    assert "AI R&D-4 is cannot_rule_out, which requires ASL-3 Security" in text
    assert "rests on evaluation ha2-replication [evaluations[1]]" in text
    assert "ha2-replication: score is 0.71, needs < warning_score 0.55 (0.16 too high)" in text
    assert "required(level=ASL-3,rank=3,standard=security) exists" in text


def test_precautionary_asl3_proceed_names_the_partial_rapid_remediation() -> None:
    path = DATA / "cbrn3-margin-remediation-gap.yaml"
    report = report_for(path, "decision=proceed")
    standing = {s["id"]: s for s in report["standing"]}
    assert standing["decision(value=restrict_deployment)"]["role"] == "instead"
    blocker = standing["decision_candidate(rank=3,value=restrict_deployment)"]
    assert blocker["blocks"] == ["decision.proceed"]
    safeguard = next(e for e in blocker["evidence"]
                     if e["label"] == "asl3-deployment.rapid-remediation")
    (reader,) = safeguard["read_by"]
    assert reader["rule"] == "safeguards.element-missing"
    status = next(h for h in reader["held"] if h["field"] == "status")
    assert (status["op"], status["actual"], status["required"]) == ("ne", "partial",
                                                                    "implemented")
    assert [r["rule"] for r in report["rules"]] == ["decision.proceed"]
    assert [(r["rule"], r["reason"]) for r in report["never"]] == [
        ("decision.most-severe", "no decision_candidate.value passes value == proceed")]
    text = run("why-not", str(path), "decision=proceed").stdout
    assert "required deployment element asl3-deployment.rapid-remediation is missing" in text
    assert "asl3-deployment.rapid-remediation is required by asl3-deployment and its " \
           "status is partial" in text
    assert "status is partial (!= implemented); it would need == implemented" in text
    assert "decision.most-severe [RSP v2.1 §6] never concludes it" in text


def test_a_status_target_goes_down_to_the_evidence_rule_in_bounded_depth() -> None:
    """threshold:AI R&D-4=ruled_out: the status rule needs an own_status, which needs a
    signal, which signals.eval.below-margin would give but for ha2-replication's score."""
    report = report_for(DATA / "rnd-agent-security-gap.yaml",
                        "threshold:AI R&D-4=ruled_out")
    from_own = next(r for r in report["rules"] if r["rule"] == "status.from-own-evidence")
    own = from_own["below"][0]
    assert own["kind"] == "own_status" and own["depth"] == 2
    signal = own["rules"][0]["below"][0]
    assert signal["kind"] == "signal" and signal["depth"] == 3
    margin = next(r for r in signal["rules"] if r["rule"] == "signals.eval.below-margin")
    assert [(f["label"], f["field"], f["gap"]) for f in failures(margin)] == [
        ("ha2-replication", "score", 0.16)]
    assert all(r["below"] == [] for r in signal["rules"])  # depth 3 is the last level
    implied = next(r for r in report["rules"] if r["rule"] == "status.implied")
    no_signal = next(r for w in implied["below"] for r in w["rules"]
                     if r["rule"] == "status.own.no-signal")
    assert failures(no_signal)[0]["fact"] == "signal(capability=AI R&D-4,severity=2," \
                                             "value=cannot_rule_out)"


def test_portfolio_model_and_absent_targets() -> None:
    path = EXAMPLES / "portfolio" / "lineage.yaml"
    report = report_for(path, "action:safeguards_report=absent", "corvid-atlas-5-chat")
    (entry,) = report["standing"]
    assert entry["id"] == "action(name=safeguards_report)" and entry["role"] == "concluded"
    assert entry["chain"][0]["rule"] == "actions.safeguards-report"
    assert report["rules"] == []
    held = report_for(path, "action:define_asl4_standard=absent", "corvid-atlas-5-chat")
    assert held["holds"] is True
    result = run("why-not", str(path), "asl=ASL-2")
    assert result.exit_code == 2 and "choose one with --model" in result.output


def test_a_target_that_holds_says_so_and_exits_0() -> None:
    path = str(DATA / "rnd-agent-security-gap.yaml")
    for target in ("asl=ASL-3", "decision=pause", "missing:asl3-security.audits=present",
                   "required:security=ASL-3", "checkpoint:Autonomy checkpoint=cannot_rule_out"):
        result = run("why-not", path, target)
        assert result.exit_code == 0, (target, result.output)
        assert "It holds" in result.stdout


@pytest.mark.parametrize("target,message", [
    ("foo=bar", "unknown subject 'foo'"),
    ("asl", "expected SUBJECT=VALUE"),
    ("asl=ASL-9", "'ASL-9' is not a value of asl.level"),
    ("decision=procede", "did you mean 'proceed'?"),
    ("threshold:CBRN-9=ruled_out", "did you mean 'CBRN-3'?"),
    ("checkpoint:CBRN-3=ruled_out", "knows no checkpoint 'CBRN-3'"),
    ("required=ASL-2", "expected required:STANDARD=VALUE"),
    ("comprehensive=maybe", "valid: false, true"),
    ("action:safeguards_report=yes", "takes present or absent"),
])
def test_a_bad_target_is_a_clear_error(target: str, message: str) -> None:
    result = run("why-not", str(DATA / "asl2-minor-update.yaml"), target)
    assert result.exit_code == 2
    assert result.stdout == "" and message in result.stderr
    if "SUBJECT" in message or "unknown subject" in message:
        assert "threshold:CAPABILITY=STATUS" in result.stderr  # the valid forms are listed


def test_target_grammar() -> None:
    pack = evaluator_for().pack
    dotted, colon = parse_target("required.security=ASL-2", pack), parse_target(
        "required:security=ASL-2", pack)
    assert dotted.want == colon.want and dotted.want.key == {"standard"}
    assert parse_target("comprehensive=false", pack).want.tests[0].operand.constant is False
    checkpoint = parse_target("checkpoint:Autonomy checkpoint=ruled_out", pack)
    assert checkpoint.want.text() == "status with capability == Autonomy checkpoint, " \
                                     "value == ruled_out"
    assert parse_target("missing:asl4-security=absent", pack).absent
    with pytest.raises(TargetError):
        parse_target("threshold:Autonomy checkpoint=ruled_out", pack)


# --- the diagnosis agrees with durable-rules ----------------------------------------

def all_assessments() -> list[Assessment]:
    paths = [DATA / f"{name}.yaml" for name in CASES]
    paths += [*sorted(EXAMPLES.glob("*.yaml")), EXAMPLES / "portfolio" / "lineage.yaml"]
    return [a for path in paths for a in assess_paths(path)]


def test_full_match_in_diagnose_iff_the_rule_fired() -> None:
    """For every rule in every case of tests/data (and every bundled one): the bindings
    that match all its conditions here are exactly those durable-rules fired it with."""
    assessments = all_assessments()
    for assessment in assessments:
        assert check_derivation(assessment.pack, assessment.derivation) == []
    assert len(assessments) == 20


def test_a_missing_firing_is_reported_as_an_engine_inconsistency() -> None:
    (assessment,) = assess_paths(DATA / "rnd-agent-security-gap.yaml")
    derivation = assessment.derivation
    kept = {k: f for k, f in derivation.firings.items() if f.rule.id != "requirements.asl"}
    tampered = dataclasses.replace(assessment, derivation=dataclasses.replace(
        derivation, firings=kept))
    problems = check_rule(assessment.pack.rule("requirements.asl"), tampered.derivation,
                          assessment.pack.kinds)
    assert [(p.rule, p.message) for p in problems] == [
        ("requirements.asl", "matches every condition but did not fire")]
    report = why_not(tampered, parse_target("asl=ASL-2", assessment.pack),
                     provenance(assessment))
    assert report["inconsistencies"][0]["rule"] == "requirements.asl"
    assert "ENGINE INCONSISTENCY: requirements.asl" in render_text(report)


def test_condition_failures_are_plain_records() -> None:
    """The failure records are what a trace listener could reuse: rule, condition
    index, the binding so far, the test, the actual and required values and the gap."""
    (assessment,) = assess_paths(DATA / "rnd-agent-security-gap.yaml")
    want = Want("signal", (PackTest("capability", "eq", Operand(constant="AI R&D-4")),
                           PackTest("value", "eq", Operand(constant="ruled_out"))),
                frozenset({"capability"}))
    tree = diagnose(assessment.pack, assessment.derivation, want)
    found = [f for f in all_failures(tree) if f.rule == "signals.eval.below-margin"]
    assert found == [ConditionFailure(
        "signals.eval.below-margin", 0, (), FAILED_TEST, "evidence:ha2-replication",
        assessment.pack.rule("signals.eval.below-margin").conditions[0].tests[2],
        0.71, 0.55, 0.16)]


SEMANTICS_RULES = "".join(
    f"- id: {rid}\n  title: {rid}\n  cite: RSP v2.1 §2\n  because: \"x\"\n"
    f"  when: {when}\n  then: {then}\n" for rid, when, then in [
        ("t.ne-unset", "[{match: x, where: {score: {ne: 1}}}]", "{a: {name: {ref: x.name}}}"),
        ("t.field-unset", "[{match: x, where: {score: {lt: {field: limit}}}}]",
         "{b: {name: {ref: x.name}}}"),
        ("t.same-twice", "[{match: y, as: p}, {match: y, as: q}]",
         "{concern: {name: {ref: p.name}}}"),
        ("t.self-negation", "[{match: y, as: p}, {none: y, where: {name: {ref: p.name}}}]",
         "{cleared: {name: {ref: p.name}}}"),
        ("t.unset-exists", "[{match: x, where: {limit: {exists: false}}}]",
         "{a: {name: {ref: x.name}}}"),
    ])


def test_diagnose_follows_durable_on_unset_fields_and_reused_facts(make_pack: PackWriter
                                                                   ) -> None:
    """durable-rules never uses one fact twice in a match (not even to block the
    match's own negation) and a test on an unset field fails; diagnose agrees."""
    pack = load_pack([make_pack(SEMANTICS_RULES)])
    facts = [Fact("x1", "x", {"name": "n1"}, ORIGIN_EVIDENCE),
             Fact("x2", "x", {"name": "n2", "score": 2, "limit": 3}, ORIGIN_EVIDENCE),
             Fact("x3", "x", {"name": "n3", "score": 1}, ORIGIN_EVIDENCE),
             Fact("y1", "y", {"name": "n1"}, ORIGIN_EVIDENCE)]
    derivation = Evaluator(pack).evaluate(facts)
    fired = {(f.rule.id, f.matched) for f in derivation.firings.values()}
    assert fired == {("t.ne-unset", (("x", "x2"),)), ("t.field-unset", (("x", "x2"),)),
                     ("t.self-negation", (("p", "y1"),)), ("t.unset-exists", (("x", "x1"),)),
                     ("t.unset-exists", (("x", "x3"),))}
    assert check_derivation(pack, derivation) == []


@pytest.mark.parametrize("packs", [(), (str(EXAMPLES / "packs" / "acme-lab"),)])
def test_diagnose_agrees_with_durable_on_every_pack_case(packs: tuple[str, ...]) -> None:
    """The same property over every YAML case of the built-in pack (and of the overlay
    example on top of it): 104 and more small models, each rule checked on each."""
    evaluator = evaluator_for(packs)
    checked = 0
    for case_file in evaluator.pack.case_files:
        for case in case_file.cases:
            doc, _ = parse_document(case.get("model"), case_file.path, "case",
                                    vocabulary(evaluator.pack))
            if doc is None:
                continue
            derivation = assess_document(evaluator, doc).derivation
            assert check_derivation(evaluator.pack, derivation) == [], case.get("name")
            checked += 1
    assert checked >= 100
