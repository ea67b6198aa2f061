"""engine.api, the front door: paths and bodies in, one AssessmentRun out, the same results
whichever way the evidence arrives, with references resolved from outside the input."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest
from helpers import EXAMPLES

from engine.api import AssessmentRun, Body, ReferenceInfo, assess
from engine.yamlsafe import load_yaml
from knowledge_graph.report import assessment_document

LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
GAP = EXAMPLES / "security-gap-pause.yaml"


def documents(run: AssessmentRun) -> list[str]:
    return [json.dumps(assessment_document(a), sort_keys=True) for a in run.assessments]


def lineage_data() -> dict:
    return json.loads(json.dumps(load_yaml(LINEAGE.read_text(encoding="utf-8")), default=str))


def test_a_path_and_a_body_of_the_same_portfolio_give_the_same_results() -> None:
    from_path = assess([str(LINEAGE)])
    data = lineage_data()
    as_yaml = assess([Body(LINEAGE.read_bytes(), "yaml")])
    as_json = assess([Body(json.dumps(data).encode(), "json")])
    as_jsonl = assess([Body("".join(json.dumps(d) + "\n" for d in data["models"]).encode(),
                            "jsonl")])
    assert from_path.rejected == as_yaml.rejected == as_json.rejected == as_jsonl.rejected == []
    assert documents(from_path) == documents(as_yaml) == documents(as_json) \
        == documents(as_jsonl)
    assert len(from_path.assessments) == 5 and not from_path.single and not as_json.single
    data["models"].reverse()
    reversed_body = assess([Body(json.dumps(data).encode(), "json")])
    assert [a.model for a in reversed_body.in_input_order()] == [
        d["model"]["id"] for d in data["models"]]
    assert documents(reversed_body) == documents(from_path)


def test_one_document_is_single_and_keeps_its_raw_data() -> None:
    run = assess([Body(GAP.read_bytes(), "yaml")])
    assert run.single and [a.model for a in run.assessments] == ["larkspur-kite-4"]
    raw = run.raw("larkspur-kite-4")
    assert isinstance(raw, dict) and raw == load_yaml(GAP.read_text(encoding="utf-8"))
    assert assess([str(GAP)]).single and not assess([str(EXAMPLES)]).single
    lean = assess([str(GAP)], keep_inputs=False)
    assert lean.documents == [] and lean.models == ["larkspur-kite-4"] and lean.single
    assert documents(lean) == documents(run)
    with pytest.raises(KeyError, match="without keep_inputs"):
        lean.raw("larkspur-kite-4")


def test_a_bad_body_is_reported_under_its_name() -> None:
    data = lineage_data()
    data["models"][2]["evaluations"][0]["score"] = "high"
    run = assess([Body(json.dumps(data).encode(), "json")])
    assert [str(e) for e in run.rejected] == [
        "body: models[2].evaluations[0].score: expected a number, got 'high'"]
    assert len(run.assessments) == 4
    unknown = assess([Body(b"<model/>", "xml", name="upload")])
    assert [str(e) for e in unknown.rejected] == [
        "upload: unsupported format 'xml'; expected json, yaml or jsonl"]
    broken = assess([Body(b'{"model": ', "json")])
    assert [str(e) for e in broken.rejected] == [
        "body: invalid JSON at line 1, column 11: Expecting value"]


def test_references_outside_the_input_come_from_the_caller() -> None:
    """corvid-atlas-5-chat alone, told what corvid-atlas-5's assessment concluded, is
    assessed exactly as within the portfolio; the caller is asked only for what the input
    references and does not hold."""
    together = {a.model: a for a in assess([str(LINEAGE)]).assessments}
    base = together["corvid-atlas-5"]
    info = ReferenceInfo(lineage_data()["models"][0]["model"]["effective_compute_flop"],
                         base.output["asl"])
    chat = next(d for d in lineage_data()["models"]
                if d["model"]["id"] == "corvid-atlas-5-chat")
    body = Body(json.dumps(chat).encode(), "json")
    asked: list[set[str]] = []

    def lookup(models: Collection[str]) -> Mapping[str, ReferenceInfo]:
        asked.append(set(models))
        return {"corvid-atlas-5": info}

    for references in ({"corvid-atlas-5": info}, lookup):
        alone = assess([body], references=references)
        assert alone.rejected == []
        assert documents(alone) == [json.dumps(assessment_document(
            together["corvid-atlas-5-chat"]), sort_keys=True)]
    assert asked == [{"corvid-atlas-5"}]
    whole = assess([str(LINEAGE)], references=lookup)
    assert asked[1:] == [{"corvid-atlas-4"}]  # corvid-atlas-5's own, not in the portfolio
    assert documents(whole) == documents(assess([str(LINEAGE)]))


def test_the_pack_stack_is_prepared_once_per_process() -> None:
    assert assess([str(GAP)]).evaluator is assess([str(LINEAGE)]).evaluator
    acme = EXAMPLES / "packs" / "acme-lab"
    run = assess([str(acme / "example-model.yaml")], packs=[acme])
    assert run.rejected == [] and run.evaluator.pack.name == "rsp-2.1+acme-lab"
    assert assess([str(GAP)], evaluator=run.evaluator).evaluator is run.evaluator


def test_a_model_referencing_a_rejected_body_document_is_not_assessed(tmp_path: Path) -> None:
    data = lineage_data()
    data["models"][1]["model"]["bogus"] = 1  # corvid-atlas-5-chat: rejected
    run = assess([Body(json.dumps(data).encode(), "json")])
    assert [a.model for a in run.assessments] == ["corvid-atlas-5", "corvid-atlas-6-pilot"]
    stopped = [e for e in run.rejected if "could not be assessed" in e.message]
    assert [(e.path, e.model) for e in stopped] == [
        ("models[2].model.predecessor", "corvid-atlas-5-code"),
        ("models[3].model.predecessor", "corvid-atlas-5.1")]
    assert all(e.file == "body" and "references 'corvid-atlas-5-chat'" in e.message
               and "models[1].model.bogus: unknown field 'bogus'" in e.message
               for e in stopped)
    assert run.load_errors == [e for e in run.rejected if e not in stopped]


def test_a_compute_ratio_past_the_largest_float_still_requires_a_comprehensive_assessment(
        ) -> None:
    body = json.dumps({"model": {"id": "m1", "effective_compute_flop": 1.7e308,
                                 "last_comprehensive_assessment": {
                                     "model": "m0", "effective_compute_flop": 0.1,
                                     "months_since": 0}}}).encode()
    run = assess([Body(body, "json", "m1.json")])
    assert not run.rejected and not run.load_errors
    (done,) = run.assessments
    assert assessment_document(done)["comprehensive_assessment_required"] is True
