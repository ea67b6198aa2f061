"""`asl why-not` answers first (issue 10, item 16): the text opens with the few smallest
changes of evidence that make the target hold, each checked here again by running it
through `asl what-if`; and no raw binding (`capability=e.capability`, `d.value`)
reaches the reader."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from click.testing import CliRunner
from helpers import EXAMPLES

from cli.main import main
from engine.api import assess
from knowledge_graph.report import provenance
from knowledge_graph.whynot import parse_target, why_not
from knowledge_graph.whynot_changes import MAX_CHANGES, MAX_SIZE, smallest_changes

GAP = str(EXAMPLES / "security-gap-pause.yaml")
HEADING = "Smallest changes that make it hold (each checked with asl what-if):"
RAW_BINDING = re.compile(r"\b[a-z]\.[a-z_]+\b")  # e.capability, d.value, n.name


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def proposed(text: str) -> list[list[str]]:
    """The `--set` options of each numbered change of the text's to-do list."""
    groups: list[list[str]] = []
    lines = text.splitlines()
    for line in lines[lines.index(HEADING) + 1:]:
        if not line.startswith("  "):
            break
        number, _, rest = line.strip().partition("--set ")
        if number:
            groups.append([])
        groups[-1].append(shlex.split(rest.rpartition("  (now ")[0])[0])
    return groups


def test_security_gap_pause_opens_with_changes_that_each_reach_proceed() -> None:
    result = run("why-not", GAP, "decision=proceed")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:4] == ["larkspur-kite-4: why not decision=proceed?",
                         "It does not hold: wanted decision with value == proceed.", "",
                         HEADING]
    assert lines.index(HEADING) < lines.index("What stands in the way:")
    groups = proposed(result.output)
    assert 1 <= len(groups) <= MAX_CHANGES and all(len(g) <= MAX_SIZE for g in groups)
    assert ["evaluations[kite4-bio-acquisition-2026-09].score=0.59"] in groups
    for group in groups:
        sets = [arg for edit in group for arg in ("--set", edit)]
        after = run("what-if", GAP, *sets, "--format", "json")
        assert after.exit_code == 0, after.output
        assert json.loads(after.output)["after"]["decision"] == "proceed", group


def test_the_reader_never_sees_a_raw_binding() -> None:
    text = run("why-not", GAP, "decision=proceed").output
    assert "would conclude signal capability=CBRN-3, severity=3, value=crossed" in text
    assert "concludes decision value=proceed" in text
    assert "it needs decision_default d with value == proceed" in text
    shown = [line for line in text.splitlines()
             if "conclude" in line or ("needs" in line and "wanted" in line)]
    assert shown and not [line for line in shown if RAW_BINDING.search(line)]


def test_when_no_change_is_found_it_says_so_and_still_explains() -> None:
    text = run("why-not", GAP, "threshold:CBRN-4=ruled_out").output
    assert (f"No change of at most {MAX_SIZE} of the evidence values named below makes "
            "it hold (each was tried as a what-if).") in text.splitlines()
    assert "What stands in the way:" in text


def test_a_target_that_holds_needs_no_changes() -> None:
    text = run("why-not", GAP, "comprehensive=true").output
    assert text.startswith("larkspur-kite-4: why not comprehensive=true?\nIt holds:")
    assert HEADING not in text


def test_changes_are_smallest_first_and_none_contains_another() -> None:
    """Through the API: each answer is needed whole (no answer is part of another), and
    they come smallest first."""
    run_ = assess([GAP])
    chosen = run_.assessments[0]
    target = parse_target("decision=proceed", run_.evaluator.pack)
    report = why_not(chosen, target, provenance(chosen))
    found = smallest_changes(run_, chosen.model, GAP, target, report)
    sizes = [len(group) for group in found]
    assert found and sizes == sorted(sizes)
    paths = [{c.path for c in group} for group in found]
    assert not [(a, b) for a in paths for b in paths if a is not b and a <= b]


def test_json_keeps_the_report_as_it_was() -> None:
    """The to-do list is for the reader of the text; the JSON report is unchanged in
    shape (the service answers why-not from it for stored assessments, which have no
    evidence document to try changes on)."""
    report = json.loads(run("why-not", GAP, "decision=proceed", "--format", "json").output)
    assert set(report) == {"holds", "inconsistencies", "model", "never", "present", "rules",
                           "standing", "target", "wanted"}
