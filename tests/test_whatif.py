"""`asl what-if`: edits to one model's evidence, re-validated and re-assessed with its
portfolio; the changes follow rsp-2.1-semantics.md, and bad edits are located errors."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import DATA, EXAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.whatif
from cli.main import main
from engine.api import assess
from engine.contract import contract_changes
from engine.evidence_reading import EvidenceLoader
from engine.whatif import SET, parse_edit, what_if
from knowledge_graph.impact import changed_conclusions
from knowledge_graph.report import provenance


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["what-if", *args], input=stdin, catch_exceptions=False)


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def changed(report: dict[str, Any], model: str) -> dict[str, tuple[Any, Any]]:
    return {c["key"]: (c["before"], c["after"]) for c in report["changes"]
            if c["model"] == model}


def test_doctests_run() -> None:
    assert doctest.testmod(engine.whatif).failed == 0


def test_ai_rnd_rule_outs_lower_the_asl_and_lift_the_pause() -> None:
    path = str(DATA / "rnd-agent-security-gap.yaml")
    report = run_json(path, "--set", "evaluations[ha2-replication].score=0.3",
                      "--set", "evaluations[ha2-long-horizon].score=0.1")
    change = changed(report, "heliotrope-agent-2")
    assert change["asl"] == ("ASL-3", "ASL-2")
    assert change["required.security"] == ("ASL-3", "ASL-2")
    assert "required.deployment" not in change  # it was ASL-2 already
    assert change["thresholds.AI R&D-4"] == ("cannot_rule_out", "ruled_out")
    assert change["thresholds.AI R&D-5"] == ("not_assessed", "ruled_out")  # implied
    assert change["checkpoints.Autonomy checkpoint"] == ("cannot_rule_out", "ruled_out")
    assert change["decision"] == ("pause", "proceed")
    assert report["before"]["asl"] == "ASL-3"
    assert report["after"]["asl"] == "ASL-2" and report["after"]["decision"] == "proceed"
    assert any(c["kind"] == "asl" for c in report["after"]["conclusions"])
    removed = {c["id"]: c["rule"] for c in report["conclusion_changes"]
               if c["change"] == "removed"}
    assert removed["decision(value=pause)"] == "decision.most-severe"


def test_implementing_the_audits_lifts_the_pause() -> None:
    # The pause was only for the missing audits. What is left is AI R&D-5 not assessed
    # while AI R&D-4 cannot be ruled out: a follow-up assessment (semantics §5, item 3).
    path = str(DATA / "rnd-agent-security-gap.yaml")
    report = run_json(path, "--set", "safeguards[asl3-security.audits].status=implemented")
    change = changed(report, "heliotrope-agent-2")
    assert change["decision"] == ("pause", "assessment_required")
    assert change["missing_safeguards"] == (["asl3-security.audits"], [])
    assert "asl" not in change
    assert report["after"]["missing_safeguards"] == []


def test_a_safeguard_not_listed_is_added() -> None:
    path = str(DATA / "cbrn3-margin-remediation-gap.yaml")
    report = run_json(path, "--set", "safeguards[asl3-deployment.red-teaming].status=absent")
    assert "asl3-deployment.red-teaming" in report["after"]["missing_safeguards"]
    report = run_json(path, "--set",
                      "safeguards[asl3-deployment.rapid-remediation].status=implemented")
    assert changed(report, "corbel-frontier-5")["decision"] == ("restrict_deployment",
                                                                "proceed")


def test_small_update_crossing_the_margin_needs_asl3() -> None:
    path = str(DATA / "asl2-minor-update.yaml")
    change = changed(run_json(path, "--set", "evaluations[bl4-bio-screen].score=0.6"),
                     "bramble-lite-4")
    assert change["asl"] == ("ASL-2", "ASL-3")
    assert change["thresholds.CBRN-3"] == ("ruled_out", "cannot_rule_out")
    assert change["decision"] == ("proceed", "pause")  # no ASL-3 safeguards listed
    change = changed(run_json(path, "--set", "model.last_comprehensive_assessment."
                              "months_since=6"), "bramble-lite-4")
    assert change["comprehensive_assessment_required"] == (False, True)
    assert change["required.security"] == ("ASL-2", "ASL-3")  # precaution for AI R&D-4


def test_precautionary_example_rule_out_and_channels() -> None:
    path = str(DATA / "cbrn3-margin-remediation-gap.yaml")
    change = changed(run_json(path, "--set", "evaluations[cf5-bio-workflow].score=0.3"),
                     "corbel-frontier-5")
    assert change["asl"] == ("ASL-3", "ASL-2")
    assert change["decision"] == ("restrict_deployment", "proceed")
    report = run_json(path, "--set", "deployment.channels=[api, open_weights]")
    assert "block_open_weights_release" in report["after"]["actions"]


def test_portfolio_change_reaches_the_model_that_carries_it_over() -> None:
    path = str(DATA / "lineage-base-and-tune.yaml")
    report = run_json(path, "--model", "marlin-base",
                      "--set", "evaluations[mb-bio-workflow].score=0.3")
    assert changed(report, "marlin-base")["asl"] == ("ASL-3", "ASL-2")
    assert changed(report, "marlin-base-instruct")["asl"] == ("ASL-3", "ASL-2")
    assert report["affected"] == ["marlin-base", "marlin-base-instruct"]
    tuned = {c["id"]: c["rule"] for c in report["conclusion_changes"]
             if c["model"] == "marlin-base-instruct" and c["change"] == "removed"}
    assert tuned["requirement(level=ASL-3,rank=3,standard=security)"] == \
        "requirements.carry-over.security"
    text = run(path, "--model", "marlin-base", "--set", "evaluations[mb-bio-workflow].score=0.3")
    assert "\nmarlin-base-instruct\n  asl " in text.stdout


def test_unset_removes_a_whole_entry_and_a_mapping_adds_one() -> None:
    path = str(DATA / "rnd-agent-security-gap.yaml")
    change = changed(run_json(path, "--unset", "evaluations[ha2-long-horizon]"),
                     "heliotrope-agent-2")
    assert change["checkpoints.Autonomy checkpoint"] == ("cannot_rule_out", "not_assessed")
    change = changed(run_json(path, "--set",
                              "findings[rt-1]={threshold: CBRN-3, verdict: crossed}"),
                     "heliotrope-agent-2")
    assert change["thresholds.CBRN-3"] == ("ruled_out", "crossed")
    assert change["required.deployment"] == ("ASL-2", "ASL-3")


def test_standard_input_and_no_change() -> None:
    text = (DATA / "asl2-minor-update.yaml").read_text()
    result = run("-", "--set", "evaluations[bl4-bio-screen].score=0.2", stdin=text)
    assert result.exit_code == 0, result.output
    assert "no contract key or conclusion changed" in result.stdout


@pytest.mark.parametrize(("edits", "message"), [
    (["--set", "evaluations[nope].score=0.3"],
     "--set evaluations[nope].score: no evaluation with id 'nope'; ids: ha2-long-horizon, "
     "ha2-replication, ha2-bio-screen"),
    (["--set", "evaluations[ha2-bio-screen].scor=1"],
     "--set evaluations[ha2-bio-screen].scor: unknown field 'scor' of evaluations[ha2-bio-screen] "
     "(did you mean 'score'?)"),
    (["--set", "findings[ha2-bio-screen].verdict=crossed"],
     "--set findings[ha2-bio-screen].verdict: no finding with id 'ha2-bio-screen'; it is an "
     "evaluation: evaluations[ha2-bio-screen]"),
    (["--set", "deployment.channels[api]=true"],
     "--set deployment.channels[api]: deployment.channels has no entries with ids"),
    (["--set", "evaluations.score=1"],
     "--set evaluations.score: evaluations is a list; address one entry by its id"),
    (["--set", "model.id=other"], "--set model.id: the model id cannot be changed"),
    (["--set", "evaluations[ha2-bio-screen.score=1"],
     "--set evaluations[ha2-bio-screen.score: malformed"),
    (["--set", "evaluations[ha2-bio-screen].score"], "expected PATH=VALUE"),
    (["--set", "evaluations[ha2-bio-screen].score=[1"], "is not valid YAML"),
    (["--unset", "evaluations[nope]"], "--unset evaluations[nope]: no evaluation with id"),
])
def test_bad_paths_are_located_errors(edits: list[str], message: str) -> None:
    path = str(DATA / "rnd-agent-security-gap.yaml")
    result = run(path, *edits, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{path}: ")
    assert message in result.stderr


@pytest.mark.parametrize(("edit", "error"), [
    ("evaluations[ha2-bio-screen].score=high",
     "evaluations[2].score: expected a number, got 'high'"),
    ("evaluations[ha2-bio-screen].warning_score=0.9",
     "evaluations[2].warning_score: warning_score 0.9 is above threshold_score 0.75"),
    ("findings[rt-1]={verdict: crossed}", "findings[1].threshold: field required"),
    ("safeguards[asl3-security.audit].status=implemented",
     "safeguards[5].id: unknown safeguard 'asl3-security.audit' (did you mean "
     "'asl3-security.audits'?)"),
    ("deployment.channels=[api, web]", "deployment.channels[1]: unknown channel 'web'"),
    ("model.last_comprehensive_assessment.months_since=-1",
     "model.last_comprehensive_assessment.months_since: expected a number at least 0, got -1"),
])
def test_bad_values_get_the_evidence_loaders_errors(edit: str, error: str) -> None:
    path = str(DATA / "rnd-agent-security-gap.yaml")
    result = run(path, "--set", edit)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path}: {error}" in result.stderr.splitlines()[0]


def test_portfolio_errors_name_the_document_and_refuse_cycles() -> None:
    path = str(DATA / "lineage-base-and-tune.yaml")
    result = run(path, "--model", "marlin-base", "--set", "evaluations[mb-bio-workflow].score=x")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"{path}: models[0].evaluations[0].score: expected a number, "
                             "got 'x'\n")
    result = run(path, "--model", "marlin-base", "--set",
                 "model.last_comprehensive_assessment={model: marlin-base-instruct, "
                 "months_since: 1}")
    assert result.exit_code == 2
    assert result.stderr == (f"{path}: models[0].model.last_comprehensive_assessment.model: "
                             "reference cycle: marlin-base -> marlin-base-instruct -> "
                             "marlin-base\n")
    result = run(path, "--set", "model.name=x")
    assert result.exit_code == 2
    assert "choose one with --model (marlin-base, marlin-base-instruct)" in result.stderr
    result = run(path, "--model", "marlin-bse", "--set", "model.name=x")
    assert "(did you mean 'marlin-base'?)" in result.stderr


def test_json_lines_and_json_inputs(tmp_path: Path) -> None:
    documents = yaml.safe_load((DATA / "lineage-base-and-tune.yaml").read_text())
    lines = tmp_path / "p.jsonl"
    lines.write_text("\n".join(json.dumps(d) for d in documents["models"]) + "\n")
    report = run_json(str(lines), "--model", "marlin-base",
                      "--set", "evaluations[mb-bio-workflow].score=0.3")
    assert changed(report, "marlin-base-instruct")["asl"] == ("ASL-3", "ASL-2")
    result = run(str(lines), "--model", "marlin-base", "--set",
                 "evaluations[mb-bio-workflow].score=x")
    assert result.stderr == (f"{lines}: line 1: evaluations[0].score: expected a number, "
                             "got 'x'\n")
    single = tmp_path / "m.json"
    single.write_text(json.dumps(documents["models"][0]))
    report = run_json(str(single), "--set", "evaluations[mb-bio-workflow].score=0.3")
    assert report["after"]["asl"] == "ASL-2"


def test_no_edit_is_a_usage_error() -> None:
    result = run(str(DATA / "asl2-minor-update.yaml"))
    assert result.exit_code == 2
    assert "--set PATH=VALUE" in result.stderr


# Fields whose current value can be written back: (section, field) of list entries, and
# dotted paths of mappings.
_ENTRY_FIELDS = {"evaluations": ("score", "threshold_score", "warning_score", "elicitation",
                                 "purpose", "threshold"),
                 "findings": ("verdict", "threshold"), "safeguards": ("status",)}
_PATHS = ("model.effective_compute_flop", "model.last_comprehensive_assessment.months_since",
          "model.last_comprehensive_assessment.determination", "deployment.channels",
          "deployment.fine_tuning_access")


def _fields(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """(path, current value) of every editable numeric or enum field that is present."""
    found = []
    for section, names in _ENTRY_FIELDS.items():
        for entry in document.get(section) or []:
            found += [(f"{section}[{entry['id']}].{name}", entry[name])
                      for name in names if name in entry]
    for path in _PATHS:
        value: Any = document
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            found.append((path, value))
    return found


def _cases() -> list[tuple[Path, str, str, Any]]:
    """(file, model id, path, value) for every editable field of every public example and
    of the bundled examples."""
    files = sorted(DATA.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml")) + \
        [EXAMPLES / "portfolio" / "lineage.yaml"]
    cases = []
    for file in files:
        data = EvidenceLoader(file.read_text()).get_single_data()
        for document in data.get("models", [data]):
            cases += [(file, document["model"]["id"], path, value)
                      for path, value in _fields(document)]
    return cases


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_setting_a_field_to_its_current_value_changes_nothing(data: st.DataObject) -> None:
    file, model, path, value = data.draw(st.sampled_from(_cases()))
    edit = parse_edit(SET, f"{path}={json.dumps(value)}")
    result = what_if(assess([str(file)]), [edit], model, str(file))
    assert result.before.keys() == result.after.keys()
    for name, before in result.before.items():
        after = result.after[name]
        assert contract_changes(before.output, after.output) == []
        assert changed_conclusions(provenance(before), provenance(after)) == ([], [])


def test_editing_aliased_yaml_changes_only_the_chosen_model() -> None:
    # lineage.yaml shares one safeguards list among all models through a YAML alias.
    report = run_json(str(EXAMPLES / "portfolio" / "lineage.yaml"), "--model",
                      "corvid-atlas-5", "--set",
                      "safeguards[asl3-security.audits].status=planned")
    assert report["affected"] == ["corvid-atlas-5"]
    assert changed(report, "corvid-atlas-5")["decision"] == ("proceed", "pause")


def test_a_directory_is_a_portfolio() -> None:
    report = run_json(str(EXAMPLES), "--model", "larkspur-kite-4", "--unset", "deployment")
    assert report["model"] == "larkspur-kite-4"
    assert changed(report, "larkspur-kite-4")["actions"][1] == [
        a for a in report["before"]["actions"]
        if a not in ("notify_board_and_ltbt", "publish_report_summaries")]
