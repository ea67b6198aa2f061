"""The crosswalk between rsp-2.1 and openai-pf-2: checked like a pack, translating an
evidence document item by item (and saying what it left out), and `asl crosswalk`
showing both assessments side by side, with `--why` through the translation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import DATA, EXAMPLES

from cli.crosswalk import NOT_STATED
from cli.main import main
from engine.crosswalk import builtin_crosswalks, find_crosswalk, load_crosswalk, translate
from engine.errors import PackError

RSP, PF = "rsp-2.1", "openai-pf-2"


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_builtin_crosswalk_is_valid_and_every_row_says_why() -> None:
    [path] = builtin_crosswalks()
    walk = load_crosswalk(path)
    assert set(walk.frameworks) == {RSP, PF}
    assert all(row.why and row.match in ("partial", "none") for row in walk.rows)
    assert walk.row_for(RSP, "CBRN-3").names[PF] == "Bio/Chem High"  # type: ignore[union-attr]
    assert find_crosswalk(PF, RSP).name == walk.name


def test_a_bad_crosswalk_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("frameworks: [rsp-2.1, openai-pf-2]\nrows:\n"
                   "  - {rsp-2.1: CBRN-33, openai-pf-2: Bio/Chem High, match: partial, why: x}\n"
                   "  - {rsp-2.1: CBRN-4, match: maybe}\n")
    with pytest.raises(PackError) as caught:
        load_crosswalk(bad)
    text = "\n".join(map(str, caught.value.problems))
    assert f"{bad}:3: crosswalk: row: 'CBRN-33' is not a capability of rsp-2.1" in text
    assert f"{bad}:4: crosswalk: row: `match` is one of exact, partial, none" in text
    assert "`why`" in text
    result = run("crosswalk", EXAMPLES / "security-gap-pause.yaml", "--to", PF,
                 "--crosswalk", bad)
    assert result.exit_code == 1 and "nothing was translated" in result.output


def test_translating_to_pf_drops_rsp_only_fields_and_failed_rule_in_tests() -> None:
    walk = find_crosswalk(RSP, PF)
    raw = {"model": {"id": "m", "effective_compute_flop": 1e26},
           "evaluations": [
               {"id": "e1", "threshold": "CBRN-3", "score": 0.5, "threshold_score": 0.8,
                "warning_score": 0.4},
               {"id": "e2", "threshold": "AI R&D-4", "purpose": "rule_in", "score": 0.1,
                "threshold_score": 0.5}],
           "findings": [{"id": "f1", "threshold": "CBRN-4", "verdict": "ruled_out"}],
           "deployment": {"channels": ["api"]},
           "safeguards": [{"id": "asl3-security", "status": "implemented"}]}
    done = translate(raw, walk, RSP, PF)
    [evaluation] = done.document["evaluations"]
    assert evaluation["threshold"] == "Bio/Chem High" and evaluation["score"] == 0.5
    assert "warning_score" not in evaluation and "purpose" not in evaluation
    assert "e1 (rsp-2.1 CBRN-3)" in evaluation["source"] and "row CBRN-3" in evaluation["source"]
    assert done.document["findings"][0]["threshold"] == "Bio/Chem Critical"
    assert done.document["model"] == raw["model"]
    assert done.document["deployment"] == raw["deployment"]
    assert "safeguards" not in done.document
    assert [(t["evidence"], t["to"], t["match"]) for t in done.translated] == [
        ("e1", "Bio/Chem High", "partial"), ("f1", "Bio/Chem Critical", "partial")]
    reasons = {item["evidence"]: item["reason"] for item in done.left_out}
    assert "rules nothing out" in reasons["e2"]
    assert "never translated" in reasons["asl3-security"]


def test_translating_from_pf_makes_rule_out_tests_with_the_indicative_threshold() -> None:
    walk = find_crosswalk(PF, RSP)
    raw = {"model": {"id": "m"},
           "evaluations": [{"id": "e", "threshold": "Cyber High", "score": 0.2,
                            "threshold_score": 0.6},
                           {"id": "s", "threshold": "Sandbagging", "score": 0.9,
                            "threshold_score": 0.5}]}
    done = translate(raw, walk, PF, RSP)
    [evaluation] = done.document["evaluations"]
    assert evaluation["threshold"] == "Cyber operations"
    assert evaluation["purpose"] == "rule_out" and evaluation["warning_score"] == 0.6
    assert [i["evidence"] for i in done.left_out] == ["s"]
    assert "no counterpart in rsp-2.1" in done.left_out[0]["reason"]


def test_crosswalk_shows_both_assessments_and_where_they_disagree() -> None:
    result = run("crosswalk", EXAMPLES / "security-gap-pause.yaml", "--to", PF,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert set(shown) >= {"model", "from", "to", "translated", "left_out"}
    assert shown["from"]["framework"] == RSP and shown["to"]["framework"] == PF
    assert shown["from"]["thresholds"]["CBRN-3"] == "cannot_rule_out"
    assert shown["to"]["statuses"]["Bio/Chem High"] == "ruled_out"
    assert shown["to"]["decision"] == shown["to"]["missing_safeguards"] == NOT_STATED
    assert {"from": "CBRN-3", "to": "Bio/Chem High", "from_status": "cannot_rule_out",
            "to_status": "ruled_out"}.items() <= shown["disagreements"][0].items()
    assert all({"evidence", "from", "to", "match", "why"} <= set(t)
               for t in shown["translated"])
    text = run("crosswalk", EXAMPLES / "security-gap-pause.yaml", "--to", PF).output
    assert ("CBRN-3 is cannot_rule_out under rsp-2.1, but Bio/Chem High is ruled_out "
            "under openai-pf-2") in text


def test_crosswalk_reads_pf_evidence_back_into_rsp() -> None:
    result = run("crosswalk", DATA / PF / "bio-high-misuse-gap.yaml", "--to", RSP,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["from"]["framework"] == PF and shown["to"]["framework"] == RSP
    assert shown["to"]["thresholds"]["CBRN-3"] == "crossed"


def test_why_through_the_crosswalk_ends_at_the_original_item_and_its_row() -> None:
    result = run("crosswalk", EXAMPLES / "security-gap-pause.yaml", "--to", PF,
                 "--why", "threshold:Bio/Chem High")
    assert result.exit_code == 0, result.output
    assert "[OpenAI PF v2 §3.3" in result.output
    assert ("translated from evaluation kite4-bio-vmcq-2026-09 (rsp-2.1 CBRN-3) by "
            "crosswalk rsp-2.1--openai-pf-2 row CBRN-3 -> Bio/Chem High (partial)") \
        in result.output
