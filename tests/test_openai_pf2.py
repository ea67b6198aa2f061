"""The second built-in framework, OpenAI's Preparedness Framework v2 (`openai-pf-2`): its
public cases exactly, its own rule tests at full coverage, order-independence, the
`--framework` choice on the commands, "did you mean" across frameworks, and the
engine's freedom from any framework's vocabulary."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import DATA, EXAMPLES, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from engine.api import assess
from engine.assess import assess_document, evaluator_for, vocabulary
from engine.evidence import parse_document
from engine.packstack import builtin_pack_dir, pack_stack
from engine.yamlsafe import load_yaml
from knowledge_graph.report import assessment_document

PF = "openai-pf-2"
CASES = DATA / PF
PF_DIR = builtin_pack_dir(PF)


def run(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_public_cases_exactly() -> None:
    """tests/data/openai-pf-2 (copies of the public cases; test_public_examples.py checks
    the originals when they are beside the checkout), through `asl assess`."""
    cases = CASES
    expected = json.loads((cases / "expected.json").read_text())
    found = {}
    for path in sorted(cases.glob("*.yaml")):
        result = run("assess", path, "--framework", PF, "--format", "json")
        assert result.exit_code == 0, result.output
        output = json.loads(result.output)
        found[output["model"]] = {k: output[k] for k in expected.get(output["model"], {})}
    assert found == expected


def test_the_pack_tests_cover_every_rule() -> None:
    result = run("rules", "test", PF_DIR, "--fail-under", "100")
    assert result.exit_code == 0, result.output
    assert re.search(r"coverage: (\d+)/\1 rules fired", result.output), result.output


def test_the_pack_is_valid_and_every_rule_cites_the_framework() -> None:
    result = run("rules", "validate", PF_DIR)
    assert result.exit_code == 0, result.output
    pack = evaluator_for(pack_stack((), PF)).pack
    assert pack.framework == PF and pack.layers == (PF,)
    assert all(r.cite.startswith("OpenAI PF v2 ") for r in pack.rules)
    assert not list(PF_DIR.rglob("*.py"))  # data only


def test_the_default_framework_is_unchanged_and_says_its_name() -> None:
    path = EXAMPLES / "security-gap-pause.yaml"
    default = json.loads(run("assess", path, "--format", "json").output)
    chosen = json.loads(run("assess", path, "--framework", "rsp-2.1", "--format",
                            "json").output)
    assert default == chosen
    assert default["framework"] == "rsp-2.1" and default["level"] == default["asl"]


def test_evidence_of_another_framework_is_told_which_to_use() -> None:
    result = run("assess", EXAMPLES / "security-gap-pause.yaml", "--framework", PF)
    assert result.exit_code == 2
    line = next(x for x in result.output.splitlines() if "'CBRN-3'" in x)
    assert "evaluations[0].threshold: unknown threshold 'CBRN-3'" in line
    assert "--framework rsp-2.1" in line and "asl crosswalk FILE --to openai-pf-2" in line
    back = run("assess", CASES / "bio-high-misuse-gap.yaml")
    assert back.exit_code == 2 and "--framework openai-pf-2" in back.output
    assert "Traceback" not in result.output + back.output


def test_an_unknown_framework_is_a_usage_error() -> None:
    result = run("assess", EXAMPLES / "security-gap-pause.yaml", "--framework", "pf-9")
    assert result.exit_code == 2 and "--framework" in result.output
    assert "openai-pf-2" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", [
    ["why", "--conclusion", "decision"], ["why-not", "decision=proceed"],
    ["what-if", "--set", "safeguards[high-misuse].status=implemented"],
    ["impact", "--evidence", "heron3-sag-bio"]])
def test_the_commands_take_the_framework(command: list[str]) -> None:
    path = CASES / "bio-high-misuse-gap.yaml"
    name, *rest = command
    args = [name, path, *rest]
    result = run(*args, "--framework", PF)
    assert result.exit_code in (0, 1), result.output  # why-not exits 1 if blocked
    assert "Traceback" not in result.output
    if name == "why":
        assert "OpenAI PF v2 §4.2" in result.output  # the restricting rule's citation
        assert "heron3-sag-bio" in result.output or "high-misuse" in result.output
    if name == "what-if":
        assert re.search(r"decision +restrict_deployment -> proceed", result.output)


def test_batch_stores_the_framework_and_list_filters_by_it(tmp_path: Path) -> None:
    db = tmp_path / "asl.db"
    first = run("batch", *sorted(CASES.glob("*.yaml")), "--framework", PF, "--db", db,
                "--no-progress")
    assert first.exit_code == 0, first.output
    assert "with openai-pf-2" in first.output
    second = run("batch", EXAMPLES / "security-gap-pause.yaml", "--db", db,
                 "--no-progress")
    assert second.exit_code == 0, second.output
    rows = json.loads(run("list", "--db", db, "--framework", PF, "--format", "json").output)
    assert sorted(r["model"] for r in rows) == ["heron-3", "heron-3-mini", "heron-4-preview"]
    assert {r["framework"] for r in rows} == {PF}
    high = json.loads(run("list", "--db", db, "--framework", PF, "--level", "critical",
                          "--format", "json").output)
    assert [r["model"] for r in high] == ["heron-4-preview"]
    both = run("list", "--db", db)
    assert "framework" in both.output and "larkspur-kite-4" in both.output


_NAMES = ["Bio/Chem High", "Bio/Chem Critical", "Cyber High", "Cyber Critical",
          "AI Self-improvement High", "AI Self-improvement Critical", "Long-range Autonomy",
          "Sandbagging", "Autonomous Replication and Adaptation", "Undermining Safeguards",
          "Nuclear and Radiological"]
_evaluation = st.fixed_dictionaries({
    "threshold": st.sampled_from(_NAMES),
    "score": st.floats(0, 1), "threshold_score": st.floats(0.05, 1),
    "elicitation": st.sampled_from(["full", "partial", "none"]),
})
_finding = st.fixed_dictionaries({
    "threshold": st.sampled_from(_NAMES),
    "verdict": st.sampled_from(["crossed", "cannot_rule_out", "ruled_out"])})
_document = st.fixed_dictionaries({
    "evaluations": st.lists(_evaluation, max_size=6),
    "findings": st.lists(_finding, max_size=4),
    "channels": st.lists(st.sampled_from(["internal", "api", "consumer", "cloud_platform",
                                          "open_weights"]), unique=True),
    "safeguards": st.lists(st.tuples(
        st.sampled_from(["high-security", "high-misuse", "high-misalignment"]),
        st.sampled_from(["implemented", "partial", "planned", "absent"])),
        unique_by=lambda s: s[0]),
})


def _pf_output(data: dict[str, Any]) -> str:
    evaluator = evaluator_for(pack_stack((), PF))
    doc, errors = parse_document(data, "doc.yaml", "", vocabulary(evaluator.pack))
    assert doc is not None, errors
    return json.dumps(assessment_document(assess_document(evaluator, doc)), sort_keys=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=_document, seed=st.randoms())
def test_shuffling_pf_evidence_never_changes_the_output(drawn: dict[str, Any],
                                                         seed: Any) -> None:
    document = {
        "model": {"id": "pf-model"},
        "evaluations": [{"id": f"e{i}", **e} for i, e in enumerate(drawn["evaluations"])],
        "findings": [{"id": f"f{i}", **f} for i, f in enumerate(drawn["findings"])],
        "deployment": {"channels": drawn["channels"]},
        "safeguards": [{"id": s, "status": status} for s, status in drawn["safeguards"]],
    }
    shuffled = copy.deepcopy(document)
    for key in ("evaluations", "findings", "safeguards"):
        seed.shuffle(shuffled[key])
    seed.shuffle(shuffled["deployment"]["channels"])
    assert _pf_output(shuffled) == _pf_output(document)


def _framework_names() -> set[str]:
    """Every level, decision and capability name of the built-in frameworks that is not
    a plain English word (`pause`, `high` are also words of messages)."""
    names: set[str] = set()
    for pack in (REPO / "rules").glob("*/pack.yaml"):
        doc = load_yaml(pack.read_text())
        names |= {v["name"] for v in doc["framework"]["level"]["values"]}
        names |= set(doc["framework"]["decisions"])
        names |= {c["name"] for c in doc["catalogue"]["capabilities"]}
    return {n for n in names if not re.fullmatch(r"[a-z]+", n)}


ENGINE_FREE = ("engine", "knowledge_graph", "store", "batch", "cli", "service", "importers")


def test_no_module_outside_rules_names_a_framework_value() -> None:
    """No string in the code (docstrings aside) of the engine, the graph, the store, the
    batch runner, the command line, the service (web UI included) or the importers names
    a threshold, level or decision of either framework: all of that is pack data."""
    names = sorted(_framework_names(), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    found = []
    for root in ENGINE_FREE:
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                        | ast.AsyncFunctionDef)
                          and node.body and isinstance(node.body[0], ast.Expr)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and id(node) not in docstrings and pattern.search(node.value):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: "
                                 f"{pattern.search(node.value).group(1)!r}")  # type: ignore[union-attr]
    assert found == []


def test_assess_front_door_reads_the_framework_stack() -> None:
    run_ = assess([str(CASES / "self-improvement-critical.yaml")], pack_stack((), PF))
    assert run_.rejected == []
    assert run_.assessments[0].output["level"] == "critical"


def test_the_worked_example_of_docs_frameworks_is_a_framework_of_its_own() -> None:
    """docs/frameworks.md's worked example: a lab's framework, no Python, full coverage."""
    northwind = EXAMPLES / "frameworks" / "northwind"
    assert "examples/frameworks/northwind" in (REPO / "docs" / "frameworks.md").read_text()
    tested = run("rules", "test", northwind, "--fail-under", "100")
    assert tested.exit_code == 0, tested.output
    result = run("assess", "--pack", northwind, northwind / "example-model.yaml",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    assert (output["framework"], output["level"], output["decision"]) == (
        "northwind-1", "elevated", "hold")
    assert output["capabilities"] == {"Bio uplift": "crossed"}


def test_rsp_outputs_are_byte_identical_apart_from_the_two_new_keys() -> None:
    """Every rsp-2.1 output of the examples and the suite's own cases, as `asl assess
    --format json` prints it without `framework` and `level`, hashes to what it was
    before results carried those keys (tests/golden/rsp-outputs.sha256.json, made with
    the code before the framework-neutral contract)."""
    pinned = json.loads((REPO / "tests" / "golden" / "rsp-outputs.sha256.json").read_text())
    found = {}
    for name in sorted({key.split("::")[0] for key in pinned}):
        for assessment in assess([str(REPO / name)]).assessments:
            document = assessment_document(assessment)
            assert (document.pop("framework"), document.pop("level")) == (
                "rsp-2.1", document["asl"])
            text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
            found[f"{name}::{assessment.model}"] = hashlib.sha256(text.encode()).hexdigest()
    assert found == pinned


def test_every_built_in_decision_has_its_readers_sentence_in_the_pack() -> None:
    """The web UI's sentence for a decision is pack data (`framework.decision_descriptions`),
    read through the result's framework; rsp-2.1 keeps the words the UI always showed."""
    from engine.framework import builtin_spec
    from service.ui.render import DECISIONS, decision_sentence

    for name in ("rsp-2.1", "openai-pf-2"):
        spec = builtin_spec(name)
        assert spec is not None
        assert [d for d, _ in spec.descriptions] == list(spec.decisions)
    assert DECISIONS == ("proceed", "assessment_required", "restrict_deployment", "pause")
    rsp = {"framework": "rsp-2.1", "decision": "pause"}
    assert decision_sentence(rsp) == (
        "Pause: training or deployment waits for the missing safeguards.")
    assert decision_sentence({**rsp, "decision": "proceed"}) == (
        "Proceed: the required safeguards are in place.")
    pf = decision_sentence({"framework": "openai-pf-2", "decision": "pause"})
    assert pf.startswith("Pause:") and "Critical" in pf
    assert decision_sentence({"framework": "rsp-2.1", "decision": "unheard-of"}) == ""


def test_decision_descriptions_are_checked_with_their_line(tmp_path: Path) -> None:
    """A sentence for a decision the pack does not have, or an empty one, is one located
    line from `asl rules validate`; the sentences do not enter the pack's version."""
    import shutil

    pack = tmp_path / "pf"
    shutil.copytree(builtin_pack_dir("openai-pf-2"), pack)
    text = (pack / "pack.yaml").read_text(encoding="utf-8")
    marker = "  decision_descriptions:\n"
    assert marker in text
    lines = text.replace(marker, marker + "    halt: Stop everything.\n").splitlines()
    empty = next(n for n, t in enumerate(lines, 1) if t.startswith('    proceed: "Proceed'))
    lines[empty - 1] = "    proceed: ''"
    (pack / "pack.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("rules", "validate", pack)
    assert result.exit_code == 1, result.output
    line = text[:text.index(marker)].count("\n") + 2
    assert result.output.splitlines()[:2] == [
        f"{pack / 'pack.yaml'}:{line}: framework: framework.decision_descriptions: "
        "'halt' is not one of framework.decisions",
        f"{pack / 'pack.yaml'}:{empty}: framework: framework.decision_descriptions."
        "proceed is one sentence of text"]
    assert "Traceback" not in result.output and "catalogue" not in result.output
    (pack / "pack.yaml").write_text(text.replace(
        "    pause: \"Pause: further", "    pause: \"Halt: further"), encoding="utf-8")
    evidence = DATA / "openai-pf-2" / "bio-high-misuse-gap.yaml"
    before = json.loads(run("assess", "--framework", "openai-pf-2", evidence,
                            "--format", "json").output)
    after = json.loads(run("assess", "--pack", pack, evidence, "--format", "json").output)
    assert after["pack"] == before["pack"]
