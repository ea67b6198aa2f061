"""Evidence loading: every refusal the evidence format promises, each form, and fuzzing.

Error lines are asserted exactly as `str(InputError)` prints them: they are part of the
input contract (`docs/evidence-format.md`, "Errors").
"""

import copy
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import InputError
from engine.evidence import LoadResult, load_evidence, parse_document
from engine.evidence_reading import MAX_DEPTH, MAX_FILE_BYTES
from engine.evidence_schema import Vocabulary

_ELEMENTS = {
    "asl2-deployment": ["acceptable-use-and-model-cards", "harmlessness-training-and-detection",
                        "fine-tuning-protections", "vulnerability-reporting"],
    "asl2-security": ["supply-chain", "offices", "workforce", "compartmentalization",
                      "infrastructure", "operations"],
    "asl3-deployment": ["threat-modeling", "defense-in-depth", "red-teaming", "rapid-remediation",
                        "monitoring", "trusted-users", "third-party-environments"],
    "asl3-security": ["threat-modeling", "perimeters-and-access-controls", "lifecycle-security",
                      "monitoring", "resourcing", "existing-guidance", "audits",
                      "third-party-environments"],
    "asl4-deployment": [],
    "asl4-security": [],
}
VOCABULARY = Vocabulary(
    capabilities=frozenset(
        {"CBRN-3", "CBRN-4", "AI R&D-4", "AI R&D-5", "Autonomy checkpoint", "Cyber operations"}
    ),
    safeguards=frozenset(
        [*_ELEMENTS, *(f"{standard}.{e}" for standard, es in _ELEMENTS.items() for e in es)]
    ),
    levels=("ASL-2", "ASL-3", "ASL-4"),
)

BASE: dict[str, Any] = {
    "model": {
        "id": "acme-2",
        "name": "Acme 2",
        "effective_compute_flop": 4.0e26,
        "predecessor": "acme-1",
        "last_comprehensive_assessment": {
            "model": "acme-1", "effective_compute_flop": 1.0e26, "months_since": 3,
            "determination": "ASL-2",
        },
    },
    "evaluations": [
        {"id": "bio", "threshold": "CBRN-3", "score": 0.62, "threshold_score": 0.8,
         "warning_score": 0.6, "date": "2026-05-01"},
    ],
    "findings": [{"id": "rt", "threshold": "CBRN-3", "verdict": "cannot_rule_out"}],
    "deployment": {"channels": ["api", "consumer"]},
    "safeguards": [
        {"id": "asl2-security", "status": "implemented"},
        {"id": "asl3-deployment.red-teaming", "status": "partial", "evidence": "SR-7"},
    ],
}
DELETE = object()


def variant(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """BASE with the value at `path` replaced (or deleted, for DELETE)."""
    data = copy.deepcopy(BASE)
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


def errors_of(data: object) -> list[str]:
    document, errors = parse_document(data, "doc.yaml", "", VOCABULARY)
    assert (document is None) == bool(errors)
    return [str(e) for e in errors]


def load(*paths: str, stdin: io.StringIO | None = None) -> LoadResult:
    return load_evidence(list(paths), VOCABULARY, stdin=stdin)


def lines(result: LoadResult) -> list[str]:
    return [str(e) for e in result.errors]


def ids(result: LoadResult) -> list[str]:
    return [loaded.document.model.id for loaded in result.documents]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a fresh directory so error lines show short relative file names."""
    monkeypatch.chdir(tmp_path)


def write(name: str, content: str | bytes | object) -> str:
    if isinstance(content, bytes):
        Path(name).write_bytes(content)
    elif isinstance(content, str):
        Path(name).write_text(content)
    elif name.endswith(".json"):
        Path(name).write_text(json.dumps(content))
    else:
        Path(name).write_text(yaml.safe_dump(content))
    return name


# --- one document, field by field -----------------------------------------------------------


def test_a_valid_document_is_read_with_defaults_and_normalised_dates() -> None:
    data = variant(("evaluations", 0, "warning_score"), DELETE)
    data["evaluations"][0]["date"] = yaml.safe_load("2026-05-01")  # a YAML date
    document, errors = parse_document(data, "doc.yaml", "", VOCABULARY)
    assert errors == []
    assert document is not None
    evaluation = document.evaluations[0]
    assert (evaluation.warning_score, evaluation.purpose, evaluation.elicitation) == (
        0.8, "rule_out", "full")
    assert evaluation.date == "2026-05-01"
    assert document.deployment is not None and document.deployment.fine_tuning_access is False


LCA = ("model", "last_comprehensive_assessment")
KNOWN_THRESHOLDS = "AI R&D-4, AI R&D-5, Autonomy checkpoint, CBRN-3, CBRN-4, Cyber operations"
KNOWN_SAFEGUARDS = ", ".join(sorted(VOCABULARY.safeguards))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        # wrong type
        (("evaluations", 0, "score"), "high",
         "evaluations[0].score: expected a number, got 'high'"),
        (("evaluations", 0, "score"), True, "evaluations[0].score: expected a number, got true"),
        (("evaluations", 0, "score"), None, "evaluations[0].score: expected a number, got null"),
        (("model", "id"), 7, "model.id: expected a string, got 7"),
        (("deployment", "fine_tuning_access"), "yes",
         "deployment.fine_tuning_access: expected true or false, got 'yes'"),
        (("evaluations",), {"id": "x"}, "evaluations: expected a list, got a mapping"),
        (("evaluations", 0), "bio", "evaluations[0]: expected a mapping, got 'bio'"),
        (("evaluations", 0, "date"), "May 1st",
         "evaluations[0].date: expected an ISO date (YYYY-MM-DD), got 'May 1st'"),
        (("model", "id"), "Acme 2",
         "model.id: invalid model id 'Acme 2'; expected 1 to 128 lowercase letters, digits, "
         "'.', '_' or '-', starting with a letter or digit"),
        (("evaluations", 0, "id"), "", "evaluations[0].id: expected a non-empty string"),
        # NaN, infinite, out of range
        (("evaluations", 0, "score"), math.nan,
         "evaluations[0].score: expected a finite number, got nan"),
        (("model", "effective_compute_flop"), 10**400,
         "model.effective_compute_flop: number out of range: "
         "10000000000000000000000000000000000000000000000..."),
        (("evaluations", 0, "threshold_score"), -math.inf,
         "evaluations[0].threshold_score: expected a finite number, got -inf"),
        (("model", "effective_compute_flop"), 0,
         "model.effective_compute_flop: expected a number greater than 0, got 0"),
        ((*LCA, "months_since"), -1,
         "model.last_comprehensive_assessment.months_since: expected a number at least 0, "
         "got -1"),
        # missing required field
        (("model",), DELETE, "model: field required"),
        (("evaluations", 0, "score"), DELETE, "evaluations[0].score: field required"),
        ((*LCA, "months_since"), DELETE,
         "model.last_comprehensive_assessment.months_since: field required"),
        # unknown names
        (("evaluations", 0, "threshold"), "CBRN3",
         f"evaluations[0].threshold: unknown threshold 'CBRN3' (did you mean 'CBRN-3'?); "
         f"known: {KNOWN_THRESHOLDS}"),
        (("findings", 0, "threshold"), "Bioweapons",
         f"findings[0].threshold: unknown threshold 'Bioweapons'; known: {KNOWN_THRESHOLDS}"),
        (("safeguards", 1, "id"), "asl3-security.audit",
         "safeguards[1].id: unknown safeguard 'asl3-security.audit' (did you mean "
         f"'asl3-security.audits'?); known: {KNOWN_SAFEGUARDS}"),
        (("deployment", "channels", 1), "web",
         "deployment.channels[1]: unknown channel 'web'; expected one of internal, api, "
         "consumer, cloud_platform, open_weights"),
        (("findings", 0, "verdict"), "cannot-rule-out",
         "findings[0].verdict: unknown verdict 'cannot-rule-out' (did you mean "
         "'cannot_rule_out'?); expected one of crossed, cannot_rule_out, ruled_out"),
        (("safeguards", 0, "status"), "done",
         "safeguards[0].status: unknown status 'done'; expected one of implemented, partial, "
         "planned, absent"),
        (("evaluations", 0, "elicitation"), "some",
         "evaluations[0].elicitation: unknown elicitation 'some'; expected one of full, "
         "partial, none"),
        (("evaluations", 0, "purpose"), "rule-in",
         "evaluations[0].purpose: unknown purpose 'rule-in' (did you mean 'rule_in'?); "
         "expected one of rule_out, rule_in"),
        ((*LCA, "determination"), "ASL-5",
         "model.last_comprehensive_assessment.determination: unknown determination 'ASL-5' "
         "(did you mean 'ASL-4'?); expected one of ASL-2, ASL-3, ASL-4"),
        (("evaluations", 0, "scor"), 0.5,
         "evaluations[0].scor: unknown field 'scor' (did you mean 'score'?); expected one of "
         "date, elicitation, id, name, purpose, score, source, threshold, threshold_score, "
         "warning_score"),
        # the safety margin, and duplicates
        (("evaluations", 0, "warning_score"), 0.9,
         "evaluations[0].warning_score: warning_score 0.9 is above threshold_score 0.8"),
        (("findings", 0, "id"), "bio", "findings[0].id: duplicate id 'bio' (also evaluations[0])"),
        (("safeguards", 1, "id"), "asl2-security",
         "safeguards[1].id: duplicate id 'asl2-security' (also safeguards[0])"),
        (("deployment", "channels"), ["api", "consumer", "api"],
         "deployment.channels: duplicate channel 'api'"),
    ],
)
def test_each_bad_field_gets_one_plain_message(
    path: tuple[str | int, ...], value: object, expected: str
) -> None:
    assert errors_of(variant(path, value)) == [f"doc.yaml: {expected}"]


def test_every_problem_of_a_document_is_reported_sorted() -> None:
    data = variant(("evaluations", 0, "score"), "high")
    data["findings"][0]["verdict"] = "maybe"
    data["evaluations"].append(copy.deepcopy(data["evaluations"][0]) | {"score": 0.1})
    assert errors_of(data) == [
        "doc.yaml: evaluations[0].score: expected a number, got 'high'",
        "doc.yaml: evaluations[1].id: duplicate id 'bio' (also evaluations[0])",
        "doc.yaml: findings[0].verdict: unknown verdict 'maybe'; expected one of crossed, "
        "cannot_rule_out, ruled_out",
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([BASE], "doc.yaml: expected a mapping, got a list"),
        ({1: 2, "model": {"id": "a"}}, "doc.yaml: field names must be strings, got 1"),
    ],
)
def test_a_document_that_is_not_a_mapping_of_fields_is_refused(
    data: object, expected: str
) -> None:
    assert errors_of(data) == [expected]


def test_parse_document_survives_self_referencing_data() -> None:
    looped: dict[str, Any] = {"id": "a"}
    looped["self"] = looped
    data = {"model": looped}
    assert errors_of(data) == [f"doc.yaml: nested deeper than {MAX_DEPTH} levels"]
    _, errors = parse_document(data, "p.yaml", "models[2]", VOCABULARY)
    assert [str(e) for e in errors] == [f"p.yaml: models[2]: nested deeper than {MAX_DEPTH} levels"]


# --- malformed, oversized and hostile files --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "model:\n  id: a\n bad: [1\n",
         "bad.yaml: invalid YAML at line 3, column 2: expected <block end>, but found "
         "'<block mapping start>'"),
        ("bad.yaml", "model: {id: a\nx: 1\n",
         "bad.yaml: invalid YAML at line 2, column 2: expected ',' or '}', but got ':'"),
        ("dup.yaml", "model:\n  id: a\n  id: b\n",
         "dup.yaml: invalid YAML at line 3, column 3: found duplicate key 'id'"),
        ("two.yaml", "model: {id: a}\n---\nmodel: {id: b}\n",
         "two.yaml: invalid YAML at line 2, column 1: expected a single document in the "
         "stream but found another document"),
        ("code.yaml", "model: !!python/object/apply:os.system [echo]\n",
         "code.yaml: invalid YAML at line 1, column 8: could not determine a constructor for "
         "the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
        ("date.yaml", "model: {id: a}\nfindings: [{id: f, threshold: CBRN-3, verdict: crossed, "
         "date: 2026-02-30}]\n",
         "date.yaml: invalid YAML at line 2, column 63: day is out of range for month"),
        ("nul.yaml", "model: \x00\n",
         "nul.yaml: invalid YAML: unacceptable character #x0000: special characters are not "
         "allowed"),
        ("bad.json", '{"model": {"id": "a",}}',
         "bad.json: invalid JSON at line 1, column 22: Expecting property name enclosed in "
         "double quotes"),
        ("dup.json", '{"model": {"id": "a", "id": "b"}}',
         "dup.json: invalid JSON at model.id: duplicate key 'id'"),
        ("dup2.json", '{"model": {"id": "a"}, "evaluations": [{"id": "e1"}, '
         '{"id": "e2", "score": 0.1, "score": 0.2}]}',
         "dup2.json: invalid JSON at evaluations[1].score: duplicate key 'score'"),
        ("empty.yaml", "", "empty.yaml: empty; expected a model document or a portfolio"),
        ("empty.jsonl", "\n \n", "empty.jsonl: empty; expected a model document or a portfolio"),
        ("notes.txt", "model: {id: a}", "notes.txt: unsupported file type '.txt'; expected "
         ".yaml, .yml, .json, .jsonl"),
        ("latin1.yaml", b"model: {id: caf\xe9}",
         "latin1.yaml: not UTF-8 text: invalid continuation byte at byte 15"),
    ],
)
def test_malformed_files_are_refused_with_their_line(
    name: str, text: str | bytes, expected: str
) -> None:
    result = load(write(name, text))
    assert (result.documents, lines(result)) == ([], [expected])


def test_a_missing_file_is_reported() -> None:
    assert lines(load("absent.yaml")) == ["absent.yaml: no such file or directory"]


def test_a_file_over_the_size_limit_is_refused_before_reading() -> None:
    with open("huge.yaml", "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk and no reading
    assert lines(load("huge.yaml")) == [
        "huge.yaml: larger than the 52,428,800-byte limit (50 MB)"
    ]


def test_standard_input_over_the_size_limit_is_refused() -> None:
    stdin = io.StringIO(" " * (MAX_FILE_BYTES + 1))
    assert lines(load("-", stdin=stdin)) == [
        "<stdin>: larger than the 52,428,800-byte limit (50 MB)"
    ]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("deep.yaml", "model: " + "[" * 40 + "]" * 40,
         "deep.yaml: nested deeper than 32 levels"),
        ("deep.json", '{"model": ' + "[" * 40 + "]" * 40 + "}",
         "deep.json: nested deeper than 32 levels"),
        ("deeper.json", "[" * 100_000 + "]" * 100_000, "deeper.json: nested deeper than 32 levels"),
        ("deeper.yaml", "[" * 600 + "]" * 600,  # past the recursion limit of PyYAML's composer
         "deeper.yaml: nested deeper than 32 levels"),
        # each piece is shallow, but the aliases nest them deeper than the limit
        ("aliased.yaml", "a: &a " + "[" * 20 + "]" * 20 + "\nb: " + "[" * 20 + "*a" + "]" * 20,
         "aliased.yaml: nested deeper than 32 levels"),
        ("loop.yaml", "model: &m {id: a, self: *m}\n", "loop.yaml: nested deeper than 32 levels"),
    ],
)
def test_nesting_deeper_than_any_real_file_is_refused(
    name: str, text: str, expected: str
) -> None:
    assert lines(load(write(name, text))) == [expected]


def test_an_alias_bomb_is_refused_quickly() -> None:
    rows = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.perf_counter()
    result = load(write("bomb.yaml", "\n".join(rows)))
    assert time.perf_counter() - started < 2
    assert lines(result) == ["bomb.yaml: more than 2,000,000 values once aliases are expanded"]


def test_yaml_12_floats_are_numbers_not_strings() -> None:
    text = (
        "model: {id: a, effective_compute_flop: 1e24}\n"
        "evaluations: [{id: e, threshold: CBRN-3, score: 5E-1, threshold_score: 8.0e-1}]\n"
    )
    result = load(write("doc.yaml", text))
    assert lines(result) == []
    document = result.documents[0].document
    assert document.model.effective_compute_flop == 1e24
    assert (document.evaluations[0].score, document.evaluations[0].threshold_score) == (0.5, 0.8)


# --- the forms a portfolio takes -------------------------------------------------------------


def model(ident: str, **fields: object) -> dict[str, Any]:
    return {"model": {"id": ident, **fields}}


def test_a_json_document_loads() -> None:
    result = load(write("doc.json", BASE))
    assert (lines(result), ids(result)) == ([], ["acme-2"])
    assert result.documents[0].where == ""


def test_json_numbers_that_are_not_finite_are_refused() -> None:
    text = json.dumps(variant(("evaluations", 0, "score"), math.inf)).replace("Infinity", "NaN")
    assert lines(load(write("doc.json", text))) == [
        "doc.json: evaluations[0].score: expected a finite number, got nan"
    ]


def test_a_portfolio_keeps_its_good_documents_and_reports_the_bad_one() -> None:
    bad = variant(("evaluations", 0, "score"), "high")
    bad["model"]["id"] = "acme-3"
    result = load(write("p.yaml", {"models": [BASE, bad, model("acme-4")]}))
    assert ids(result) == ["acme-2", "acme-4"]
    assert [loaded.where for loaded in result.documents] == ["models[0]", "models[2]"]
    assert lines(result) == [
        "p.yaml: models[1].evaluations[0].score: expected a number, got 'high'"
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"models": {"id": "a"}}, "p.yaml: models: expected a list, got a mapping"),
        ({"models": [model("a")], "modles": 1},
         "p.yaml: modles: unknown field 'modles' (did you mean 'models'?); expected one of models"),
        ({"models": [model("a"), "b"]}, "p.yaml: models[1]: expected a mapping, got 'b'"),
    ],
)
def test_a_malformed_portfolio_is_reported(content: object, expected: str) -> None:
    assert lines(load(write("p.yaml", content))) == [expected]


def test_json_lines_name_the_line_of_each_problem() -> None:
    text = "\n".join([
        json.dumps(model("a")),
        "",
        json.dumps(variant(("findings", 0, "verdict"), "maybe")),
        '{"model": ',
        json.dumps(model("b")),
        "[]",
    ])
    result = load(write("p.jsonl", text + "\n"))
    assert ids(result) == ["a", "b"]
    assert [loaded.where for loaded in result.documents] == ["line 1", "line 5"]
    assert lines(result) == [
        "p.jsonl: line 3: findings[0].verdict: unknown verdict 'maybe'; expected one of "
        "crossed, cannot_rule_out, ruled_out",
        "p.jsonl: line 4: invalid JSON at column 11: Expecting value",
        "p.jsonl: line 6: expected a mapping, got a list",
    ]


def test_a_directory_loads_its_evidence_files_in_name_order() -> None:
    Path("dir").mkdir()
    write("dir/b.yaml", model("b"))
    write("dir/a.json", model("a"))
    write("dir/c.jsonl", json.dumps(model("c")) + "\n" + json.dumps(model("d")))
    write("dir/README.md", "not evidence")
    write("dir/z.yml", "model: {id: Z}")
    result = load("dir")
    assert ids(result) == ["a", "b", "c", "d"]
    assert [(d.file, d.where) for d in result.documents] == [
        ("dir/a.json", ""), ("dir/b.yaml", ""),
        ("dir/c.jsonl", "line 1"), ("dir/c.jsonl", "line 2"),
    ]
    assert lines(result) == [
        "dir/z.yml: model.id: invalid model id 'Z'; expected 1 to 128 lowercase letters, digits, "
        "'.', '_' or '-', starting with a letter or digit"
    ]


def test_an_empty_directory_is_reported() -> None:
    Path("none").mkdir()
    assert lines(load("none")) == ["none: no evidence files (.yaml, .yml, .json, .jsonl)"]


def test_standard_input_is_read_as_yaml_or_json() -> None:
    result = load("-", stdin=io.StringIO(yaml.safe_dump(BASE)))
    assert (lines(result), ids(result), result.documents[0].file) == ([], ["acme-2"], "<stdin>")
    result = load("-", stdin=io.StringIO(json.dumps(model("a", name=3))))
    assert lines(result) == ["<stdin>: model.name: expected a string, got 3"]


def test_null_for_an_optional_field_means_it_was_not_given() -> None:
    """`evaluations:` with nothing after it (every entry commented out) is YAML null."""
    data = variant(("evaluations",), None)
    data["findings"] = data["safeguards"] = None
    data["deployment"] = {"channels": None, "fine_tuning_access": None}
    document, errors = parse_document(data, "doc.yaml", "", VOCABULARY)
    assert errors == [] and document is not None
    assert (document.evaluations, document.findings, document.safeguards) == ([], [], [])
    assert document.deployment is not None
    assert (document.deployment.channels, document.deployment.fine_tuning_access) == ([], False)
    data = variant(("evaluations", 0, "purpose"), None)
    data["evaluations"][0]["elicitation"] = None
    document, errors = parse_document(data, "doc.yaml", "", VOCABULARY)
    assert document is not None
    assert (document.evaluations[0].purpose, document.evaluations[0].elicitation) == (
        "rule_out", "full")


def test_a_deployment_without_channels_is_deployed_nowhere() -> None:
    document, errors = parse_document(variant(("deployment", "channels"), DELETE), "doc.yaml",
                                      "", VOCABULARY)
    assert errors == [] and document is not None and document.deployment is not None
    assert document.deployment.channels == []


def test_json_that_yaml_cannot_read_is_still_read_from_standard_input() -> None:
    tabbed = json.dumps(BASE, indent="\t")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(tabbed)
    result = load("-", stdin=io.StringIO(tabbed))
    assert (lines(result), ids(result)) == ([], ["acme-2"])
    result = load("-", stdin=io.StringIO("model:\n\tid: a\n"))  # not JSON: the YAML error
    assert lines(result) == ["<stdin>: invalid YAML at line 2, column 1: found character "
                             "'\\t' that cannot start any token"]


def test_standard_input_is_decoded_as_a_file_is() -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"model: {id: caf\xe9}"), encoding="utf-8")
    assert lines(load("-", stdin=stdin)) == [
        "<stdin>: not UTF-8 text: invalid continuation byte at byte 15"]


def test_one_line_of_json_lines_that_is_not_utf8_rejects_only_that_line() -> None:
    write("p.jsonl", b'{"model": {"id": "a"}}\n{"model": {"id": "caf\xe9"}}\n'
                     b'{"model": {"id": "c"}}\n')
    result = load("p.jsonl")
    assert ids(result) == ["a", "c"]
    assert lines(result) == ["p.jsonl: line 2: not UTF-8 text: invalid continuation byte at "
                             "byte 21"]


def test_an_integer_too_long_to_convert_is_refused_at_its_path() -> None:
    write("big.json", '{"model": {"id": "a", "effective_compute_flop": 1' + "0" * 5000 + "}}")
    assert lines(load("big.json")) == [
        "big.json: model.effective_compute_flop: expected a finite number, got inf"]


def test_a_field_name_with_a_line_break_stays_on_one_line() -> None:
    write("nl.yaml", 'model: {id: a}\n"a\\nb": 1\n')
    assert lines(load("nl.yaml")) == [
        'nl.yaml: "a\\nb": unknown field \'a\\nb\'; expected one of deployment, evaluations, '
        "findings, model, safeguards"]


def test_a_broken_link_in_a_directory_is_reported() -> None:
    Path("d").mkdir()
    write("d/a.yaml", model("a"))
    (Path("d") / "b.yaml").symlink_to("/nonexistent/b.yaml")
    result = load("d")
    assert (ids(result), lines(result)) == (["a"], ["d/b.yaml: no such file or directory"])


def test_one_document_nested_too_deep_rejects_only_itself() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    content = {"models": [model("a"), model("b") | {"x": deep}]}
    result = load(write("p.yaml", content))
    assert ids(result) == ["a"]
    assert lines(result) == [f"p.yaml: models[1]: nested deeper than {MAX_DEPTH} levels"]


# --- portfolio-level checks ------------------------------------------------------------------


def test_a_repeated_model_id_rejects_the_later_documents() -> None:
    write("p.yaml", {"models": [model("a"), model("b"), model("a", name="again")]})
    write("q.json", model("b"))
    result = load("p.yaml", "q.json")
    assert ids(result) == ["a", "b"]
    assert lines(result) == [
        "p.yaml: models[2].model.id: duplicate model id 'a' (also models[0])",
        "q.json: model.id: duplicate model id 'b' (also p.yaml: models[1])",
    ]


def lca(ident: str) -> dict[str, Any]:
    return {"model": ident, "months_since": 1}


def test_a_cycle_of_last_assessment_references_rejects_every_model_on_it() -> None:
    content = {"models": [
        model("a", last_comprehensive_assessment=lca("c")),
        model("b", last_comprehensive_assessment=lca("a")),
        model("c", last_comprehensive_assessment=lca("b")),
        model("d", last_comprehensive_assessment=lca("a")),  # points into it: kept
        model("e", last_comprehensive_assessment=lca("elsewhere")),  # outside: fine
    ]}
    result = load(write("p.yaml", content))
    assert ids(result) == ["d", "e"]
    assert lines(result) == [
        f"p.yaml: models[{i}].model.last_comprehensive_assessment.model: reference cycle: {c}"
        for i, c in enumerate(["a -> c -> b -> a", "b -> a -> c -> b", "c -> b -> a -> c"])
    ]


def test_a_cycle_of_predecessors_across_files_is_rejected() -> None:
    write("a.yaml", model("a", predecessor="b"))
    write("b.json", model("b", predecessor="a"))
    write("c.yaml", model("c", predecessor="c"))
    result = load("a.yaml", "b.json", "c.yaml")
    assert ids(result) == []
    assert lines(result) == [
        "a.yaml: model.predecessor: reference cycle: a -> b -> a",
        "b.json: model.predecessor: reference cycle: b -> a -> b",
        "c.yaml: model.predecessor: reference cycle: c -> c",
    ]


def test_a_cycle_mixing_both_kinds_of_reference_is_rejected() -> None:
    content = {"models": [
        model("a", predecessor="b"),
        model("b", last_comprehensive_assessment=lca("a")),
    ]}
    assert lines(load(write("p.yaml", content))) == [
        "p.yaml: models[0].model.predecessor: reference cycle: a -> b -> a",
        "p.yaml: models[1].model.last_comprehensive_assessment.model: reference cycle: "
        "b -> a -> b",
    ]


def test_keeping_a_compact_form_changes_nothing_but_what_is_held() -> None:
    """A batch keeps each document compact as it is validated; the checks across the
    portfolio (repeats, cycles) must see exactly what they see with whole documents."""
    write("p.yaml", {"models": [model("a", predecessor="b"), model("b", predecessor="a"),
                                model("c"), model("c", name="again"),
                                model("d", last_comprehensive_assessment=lca("c"))]})
    write("q.json", model("e", predecessor="e"))
    whole = load("p.yaml", "q.json")
    kept = load_evidence(["p.yaml", "q.json"], VOCABULARY,
                         keep=lambda item: (item.document.model.id, item.file, item.where))
    assert kept.documents == [("c", "p.yaml", "models[2]"), ("d", "p.yaml", "models[4]")]
    assert ids(whole) == ["c", "d"]
    assert kept.errors == whole.errors and len(whole.errors) == 4


# --- the suite's own cases -------------------------------------------------------------------


def test_the_suites_cases_load_without_errors() -> None:
    result = load(*(str(path) for path in sorted(DATA.glob("*.yaml"))))  # not expected.json
    assert lines(result) == []
    assert ids(result) == [
        "bramble-lite-4", "corbel-frontier-5", "marlin-base", "marlin-base-instruct",
        "heliotrope-agent-2",
    ]
    tuned = result.documents[3].document.model
    assert tuned.last_comprehensive_assessment is not None
    assert tuned.last_comprehensive_assessment.determination is None
    assert tuned.last_comprehensive_assessment.effective_compute_flop is None


# --- junk never crashes ----------------------------------------------------------------------

_FIELDS = ["model", "id", "evaluations", "findings", "deployment", "safeguards", "score",
           "threshold", "threshold_score", "warning_score", "verdict", "channels",
           "last_comprehensive_assessment", "months_since", "models", "status"]
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.dates() | st.sampled_from(["CBRN-3", "api", "implemented", "acme-1", "ASL-3"])
)
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=5) | st.integers(), inner,
                      max_size=5),
    max_leaves=30,
)
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the autouse tmp directory is reusable


@settings(max_examples=200, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(_JUNK)
def test_random_data_yields_input_errors_never_an_exception(data: object) -> None:
    document, errors = parse_document(data, "junk.yaml", "", VOCABULARY)
    assert (document is None) == bool(errors)
    assert all(isinstance(e, InputError) and e.file == "junk.yaml" for e in errors)


@settings(max_examples=200, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(st.binary(max_size=200), st.sampled_from(["junk.yaml", "junk.json", "junk.jsonl"]))
def test_random_bytes_yield_input_errors_never_an_exception(content: bytes, name: str) -> None:
    result = load(write(name, content))
    assert result.documents == []
    assert all(isinstance(e, InputError) for e in result.errors)
    assert result.errors
