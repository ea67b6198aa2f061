"""The mapping file of `asl import inspect`: the issue's form accepted, every problem
reported at its line (as a rule pack's are), and the pack's thresholds enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.evidence_schema import Vocabulary
from importers.mapping import MappingEntry, load_mapping, parse_mapping
from importers.problems import ImportRefused

WORDS = Vocabulary(frozenset({"CBRN-3", "CBRN-4", "Cyber operations"}), frozenset())

ISSUE_FORM = """\
models:
  mockllm/model: lyra-5-opus        # Inspect model name -> model id in the evidence
evaluations:
  - task: bio_uplift_probe
    scorer: match                   # optional when the log has one scorer
    metric: accuracy
    threshold: CBRN-3
    purpose: rule_out
    threshold_score: 0.8
    warning_score: 0.6
    elicitation: full
    direction: higher               # or lower: score becomes 1 - value
"""


def problems(text: str, vocabulary: Vocabulary | None = WORDS) -> list[str]:
    with pytest.raises(ImportRefused) as caught:
        parse_mapping(text, "map.yaml", vocabulary)
    return [str(p) for p in caught.value.problems]


def test_the_form_of_the_issue_is_accepted() -> None:
    mapping = parse_mapping(ISSUE_FORM, "map.yaml", WORDS)
    assert mapping.models == {"mockllm/model": "lyra-5-opus"}
    assert mapping.evaluations == (MappingEntry(
        task="bio_uplift_probe", metric="accuracy", threshold="CBRN-3", threshold_score=0.8,
        direction="higher", scorer="match", reducer=None, purpose="rule_out",
        warning_score=0.6, elicitation="full", id="bio_uplift_probe", name=None, line=4),)


def test_optional_keys_take_the_evidence_formats_defaults() -> None:
    mapping = parse_mapping("models: {m/x: x}\nevaluations:\n  - {task: t, metric: m, "
                            "threshold: CBRN-3, threshold_score: 1, direction: lower, "
                            "id: t-lower, name: T}\n", "map.yaml", WORDS)
    [entry] = mapping.evaluations
    assert (entry.purpose, entry.elicitation, entry.warning_score, entry.scorer) == (
        "rule_out", "full", None, None)
    assert (entry.id, entry.name, entry.threshold_score) == ("t-lower", "T", 1.0)
    assert entry.score_of(0.25) == 0.75


def test_every_problem_is_reported_at_its_line() -> None:
    text = """\
models:
  mockllm/model: Lyra 5
evaluation: []
evaluations:
  - task: bio_uplift_probe
    metric: accuracy
    threshold: CBRN-33
    threshold_score: 1.5
    warning_score: 0.6
    elicitation: most
    direction: up
    scorrer: match
  - task: cyber
    metric: 7
    threshold: Cyber operations
    threshold_score: 0.5
    warning_score: 0.7
  - just a string
"""
    assert problems(text) == [
        "map.yaml:2: models.mockllm/model: invalid model id 'Lyra 5'; expected 1 to 128 "
        "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        "map.yaml:3: evaluation: unknown field 'evaluation' (did you mean 'evaluations'?); "
        "expected one of models, evaluations",
        "map.yaml:4: evaluations[2]: expected a mapping, got 'just a string'",
        "map.yaml:7: evaluations[0].threshold: unknown threshold 'CBRN-33' (did you mean "
        "'CBRN-3'?); expected one of CBRN-3, CBRN-4, Cyber operations",
        "map.yaml:8: evaluations[0].threshold_score: expected a number from 0 to 1 (scores "
        "are fractions once direction is applied), got 1.5",
        "map.yaml:10: evaluations[0].elicitation: unknown elicitation 'most'; expected one "
        "of full, partial, none",
        "map.yaml:11: evaluations[0].direction: unknown direction 'up'; expected one of "
        "higher, lower",
        "map.yaml:12: evaluations[0].scorrer: unknown field 'scorrer' (did you mean "
        "'scorer'?); expected one of task, metric, threshold, threshold_score, direction, "
        "scorer, reducer, purpose, warning_score, elicitation, id, name",
        "map.yaml:13: evaluations[1].direction: field required: higher or lower (which way "
        "of the metric means more capable)",
        "map.yaml:14: evaluations[1].metric: expected a non-empty string, got 7",
        "map.yaml:17: evaluations[1].warning_score: warning_score 0.7 is above "
        "threshold_score 0.5",
    ]


def test_the_whole_file_and_its_sections_must_be_there() -> None:
    assert problems("") == ["map.yaml: expected a mapping with `models` and `evaluations`, "
                            "got null"]
    assert problems("models: {}\nevaluations: []\n") == [
        "map.yaml:1: models: expected a mapping of Inspect model names to model ids, got "
        "a mapping",
        "map.yaml:2: evaluations: expected a list of evaluations, got a list"]
    assert problems("models: {a/b: c}\n") == [
        "map.yaml:1: evaluations: expected a list of evaluations, got nothing"]


def test_two_evaluations_of_one_task_need_their_own_ids() -> None:
    entry = "  - {task: t, metric: m, threshold: CBRN-3, threshold_score: 0.5, " \
            "direction: higher%s}\n"
    text = "models: {a/b: c}\nevaluations:\n" + entry % "" + entry % ""
    assert problems(text) == [
        "map.yaml:4: evaluations[1].id: duplicate id 't' (also evaluations[0], line 3); "
        "give each evaluation of the same task its own `id`"]
    parse_mapping("models: {a/b: c}\nevaluations:\n" + entry % "" + entry % ", id: t2",
                  "map.yaml", WORDS)


def test_thresholds_are_checked_only_against_a_pack() -> None:
    text = ISSUE_FORM.replace("CBRN-3", "ACME-1")
    assert problems(text)[0].startswith("map.yaml:7: evaluations[0].threshold: unknown "
                                        "threshold 'ACME-1'")
    assert parse_mapping(text, "map.yaml").evaluations[0].threshold == "ACME-1"


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    assert problems("models: {a/b: c}\nevaluations:\n  - task: [\n") == [
        "map.yaml:4: invalid YAML: expected the node content, but found '<stream end>'"]
    path = tmp_path / "map.yaml"
    path.write_bytes(b"models: \xff\n")
    with pytest.raises(ImportRefused, match="not UTF-8 text"):
        load_mapping(str(path))
    with pytest.raises(ImportRefused, match="no such file"):
        load_mapping(str(tmp_path / "missing.yaml"))


def test_yaml_never_runs_code() -> None:
    text = "models: !!python/object/apply:os.system ['true']\nevaluations: []\n"
    assert problems(text)[0].startswith("map.yaml:1: invalid YAML: could not determine a "
                                        "constructor")
