"""docs/evidence-format.md and docs/assessment-output.md say exactly what the code
accepts and produces: their examples are run, and their tables are compared with the
models, constants and real output they describe."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

from helpers import DATA, EXAMPLES, REPO, assess_paths
from pydantic import BaseModel

from engine import evidence_reading
from engine import evidence_schema as evidence
from engine.assess import evaluator_for, vocabulary
from engine.evidence import ModelDocument, load_evidence
from knowledge_graph.export import DRAWN_FORMATS, GRAPH_FORMATS
from knowledge_graph.report import assessment_document

EVIDENCE_DOC = REPO / "docs" / "evidence-format.md"
OUTPUT_DOC = REPO / "docs" / "assessment-output.md"


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def table(path: Path, heading: str, nth: int = 0) -> list[list[str]]:
    """The rows (cells stripped, header and rule dropped) of the `nth` table whose header
    row starts with `| heading |`."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"| {heading} |")]
    start = starts[nth]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def code(cell: str) -> str:
    """The text of the first `code` span of a table cell."""
    return re.findall(r"`([^`]+)`", cell)[0]


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of a pydantic model, dotted; a list of mappings gives the fields of
    its entries (`evaluations[].score`), not a row of its own."""
    paths = set()
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        listed = False
        while not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if not args:
                break
            listed = listed or getattr(annotation, "__origin__", None) is list
            annotation = args[0]
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if nested and listed:  # a list of mappings: its entries' fields, as `name[].field`
            paths |= field_paths(annotation, f"{prefix}{name}[].")
            continue
        paths.add(f"{prefix}{name}")
        if nested:
            paths |= field_paths(annotation, f"{prefix}{name}.")
    return paths


# --- evidence-format.md ---------------------------------------------------------------

def test_the_evidence_example_loads_and_assesses(tmp_path: Path) -> None:
    (example,) = blocks(EVIDENCE_DOC, "yaml")
    path = tmp_path / "example.yaml"
    path.write_text(example)
    evaluator = evaluator_for()
    loaded = load_evidence([str(path)], vocabulary(evaluator.pack))
    assert loaded.errors == []
    (document,) = loaded.documents
    # every field of the format is shown in the example
    shown = document.document.model_dump(exclude_unset=True)
    assert set(shown) == set(ModelDocument.model_fields)
    assert set(shown["evaluations"][0]) == set(evidence.Evaluation.model_fields)
    assert set(shown["findings"][0]) == set(evidence.Finding.model_fields)
    assert set(shown["model"]) == set(evidence.ModelInfo.model_fields)
    lca = shown["model"]["last_comprehensive_assessment"]
    assert set(lca) == set(evidence.LastAssessment.model_fields)
    assert assess_paths(path)[0].output["model"] == "wrenfield-3"


def test_the_field_table_lists_every_field_and_only_those() -> None:
    rows = table(EVIDENCE_DOC, "field")
    documented = [code(row[0]) for row in rows]
    assert len(documented) == len(set(documented))
    assert set(documented) == field_paths(ModelDocument)
    required = {code(row[0]) for row in rows if row[2] == "yes"}
    expected = {f"{prefix}{name}" for model, prefix in [
        (ModelDocument, ""), (evidence.ModelInfo, "model."), (evidence.LastAssessment,
                                         "model.last_comprehensive_assessment."),
        (evidence.Evaluation, "evaluations[]."), (evidence.Finding, "findings[]."),
        (evidence.SafeguardEntry, "safeguards[].")]
        for name, info in model.model_fields.items() if info.is_required()}
    assert required == expected


def test_the_field_table_names_every_allowed_value() -> None:
    cells = {code(row[0]): f"{row[1]} {row[3]}" for row in table(EVIDENCE_DOC, "field")}
    for field, values in [("deployment.channels", evidence.CHANNELS),
                          ("findings[].verdict", evidence.VERDICTS),
                          ("safeguards[].status", evidence.SAFEGUARD_STATUSES),
                          ("evaluations[].elicitation", evidence.ELICITATIONS),
                          ("evaluations[].purpose", evidence.PURPOSES),
                          ("model.last_comprehensive_assessment.determination",
                           vocabulary(evaluator_for().pack).levels or ())]:
        assert set(re.findall(r"`([^`]+)`", cells[field])) >= set(values), field


def test_the_limits_and_readers_are_the_codes() -> None:
    text = EVIDENCE_DOC.read_text()
    assert evidence_reading.MAX_FILE_BYTES == 50 * 1024 * 1024 and "at most 50 MB" in text
    assert f"deeper than {evidence_reading.MAX_DEPTH} levels" in text
    assert f"more than {evidence_reading.MAX_VALUES:,} values" in text
    readers = {name.removeprefix("NAME") for row in table(EVIDENCE_DOC, "path")
               for name in re.findall(r"`([^`]+)`", row[0]) if name.startswith("NAME")}
    assert readers == set(evidence_reading.EXTENSIONS)


def test_the_built_in_names_are_the_packs() -> None:
    pack = evaluator_for().pack
    text = EVIDENCE_DOC.read_text()
    for name in [*pack.capability_names, *(s.id for s in pack.standards)]:
        assert f"`{name}`" in text


# --- assessment-output.md -------------------------------------------------------------

def _real(name: str) -> dict[str, Any]:
    (assessment,) = assess_paths(DATA / name)
    document: dict[str, Any] = json.loads(json.dumps(assessment_document(assessment)))
    return document


def test_the_output_example_is_a_real_result() -> None:
    (example,) = blocks(OUTPUT_DOC, "json")
    shown = json.loads(example)
    assert "`tests/data/cbrn3-margin-remediation-gap.yaml`" in OUTPUT_DOC.read_text()
    real = _real("cbrn3-margin-remediation-gap.yaml")
    assert shown.pop("pack") == {"name": "rsp-2.1", "version": "sha256:…"}
    assert real.pop("pack")["version"].startswith("sha256:")
    conclusions = shown.pop("conclusions")
    assert conclusions and all(c in real.pop("conclusions") for c in conclusions)
    assert shown == real


def test_the_key_tables_list_exactly_the_keys() -> None:
    real = _real("rnd-agent-security-gap.yaml")
    keys = set()
    for row in table(OUTPUT_DOC, "key"):
        keys |= {k.split(".")[0] for k in re.findall(r"`([^`]+)`", row[0])}
    assert keys == set(real)
    entry_keys = set()
    for row in table(OUTPUT_DOC, "key", 1):
        entry_keys |= set(re.findall(r"`([^`]+)`", row[0]))
    assert entry_keys == set(real["conclusions"][0])
    supports = re.search(r"`supports` \| every derivation .*? each with (.*?), sorted",
                         OUTPUT_DOC.read_text())
    assert supports is not None
    assert set(re.findall(r"`([^`]+)`", supports.group(1))) == set(
        real["conclusions"][0]["supports"][0])


def test_the_listed_actions_are_those_the_examples_reach() -> None:
    """examples/README.md shows every action of the built-in pack reached somewhere."""
    text = OUTPUT_DOC.read_text()
    listed = re.search(r"The built-in pack's actions are (.*?)\. Which", text, re.S)
    assert listed is not None
    reached = {action for a in assess_paths(EXAMPLES, EXAMPLES / "portfolio" / "lineage.yaml")
               for action in a.output["actions"]}
    assert set(re.findall(r"`([^`]+)`", listed.group(1))) == reached


def test_the_why_table_says_exactly_which_formats_need_dot() -> None:
    formats = {code(row[0]): row[2] for row in table(OUTPUT_DOC, "`--format`", 1)}
    assert set(formats) == {"text", "json", *GRAPH_FORMATS}
    assert {f for f, needs in formats.items() if needs == "**yes**"} == set(DRAWN_FORMATS)
    assert {f for f, needs in formats.items() if needs == "no"} == set(formats) - set(
        DRAWN_FORMATS)


# --- the README points at them --------------------------------------------------------

def test_the_readme_links_the_format_docs_and_nothing_outside() -> None:
    """Every link of the README and of the format docs, and every document path the
    README names, is a file of this repository."""
    readme = (REPO / "README.md").read_text()
    assert "(docs/evidence-format.md)" in readme and "(docs/assessment-output.md)" in readme
    assert "(evidence-format.md)" in OUTPUT_DOC.read_text()
    named = [(REPO, t) for t in re.findall(r"\]\(([^)#]+)[^)]*\)", readme)]
    named += [(REPO, t) for t in re.findall(r"`([^`\s]+/[^`\s]+\.md)`", readme)]
    for doc in (EVIDENCE_DOC, OUTPUT_DOC):
        named += [(doc.parent, t) for t in re.findall(r"\]\(([^)#]+)[^)]*\)", doc.read_text())]
    assert len(named) >= 8
    for base, target in named:
        path = (base / target).resolve()
        assert path.is_relative_to(REPO) and path.is_file(), target
