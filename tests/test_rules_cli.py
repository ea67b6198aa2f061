"""`asl rules list | show | reference | test | diff | new`, run through click's runner the
way policy staff run them (`asl rules validate` has its own file, test_validate.py).

Every command has a --help with an example; errors are one line without a traceback;
the exit status is 0 when all is well, 1 for problems, 2 for usage errors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES, REPO

from cli.main import main
from engine.assess import evaluator_for, vocabulary
from engine.packstack import pack_stack

BUILTIN = REPO / "rules" / "rsp-2.1"
ACME = EXAMPLES / "packs" / "acme-lab"
LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
COMMANDS = ("list", "show", "reference", "validate", "test", "diff", "new")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["rules", *args], catch_exceptions=False)


def one_line_error(result: Result, status: int) -> str:
    """The single error line of a failed command (and that there is no traceback)."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"asl rules {command}" in result.stdout


def test_the_group_is_registered_on_asl() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "rules" in result.stdout
    assert all(c in run("--help").stdout for c in COMMANDS)


# --- list, show, reference ----------------------------------------------------------------


def test_list_is_a_table_of_every_rule() -> None:
    result = run("list")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "STRATUM", "PACK", "CITATION", "TITLE"]
    assert len(rows) == 57
    assert rows[0].split()[:5] == ["signals.eval.rule-in-reached", "0", "rsp-2.1", "RSP",
                                   "v2.1"]


def test_list_json_with_an_overlay_names_each_rules_pack() -> None:
    rows = json.loads(run("list", "--pack", str(ACME), "--format", "json").stdout)
    by_id = {row["id"]: row for row in rows}
    assert len(rows) == 58
    cyber = by_id["acme.cyber.requires-asl3-security"]
    assert cyber["pack"] == "acme-lab" and cyber["cite"] == "RSP v2.1 §2"
    assert by_id["assessment.trigger.months"]["pack"] == "acme-lab"  # the replacement
    assert by_id["decision.most-severe"]["stratum"] > by_id["signals.finding.crossed"]["stratum"]
    assert set(cyber) == {"id", "title", "cite", "stratum", "pack", "file", "line"}


def test_show_prints_the_source_and_the_rules_around_it() -> None:
    result = run("show", "requirements.highest")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("requirements.highest: Each standard is required at the highest")
    assert "  consumes  requirement\n" in text and "  negates   requirement\n" in text
    assert "  produces  required\n" in text
    assert "requirements.threshold.security (requirement)" in text  # fed by
    assert "requirements.asl (none required)" in text  # feeds, through a negation
    assert "- id: requirements.highest\n  title: Each standard" in text
    assert text.rstrip().endswith("required: {standard: {ref: r.standard}, level: "
                                  "{ref: r.level}, rank: {ref: r.rank}}")
    assert "- id: requirements.asl" not in text


def test_show_json_and_an_overlay_rule() -> None:
    result = run("show", "acme.cyber.requires-asl3-security", "--pack", str(ACME),
                 "--format", "json")
    data = json.loads(result.stdout)
    assert data["pack"] == "acme-lab"
    assert data["consumes"] == ["status"] and data["produces"] == ["requirement"]
    assert "requirements.highest (requirement)" in data["feeds"]
    assert "status.from-own-evidence (status)" in data["fed_by"]
    assert data["source"].startswith("- id: acme.cyber.requires-asl3-security")
    evidence = json.loads(run("show", "signals.finding.crossed", "--format", "json").stdout)
    assert evidence["given"] == ["finding (evidence)"] and evidence["fed_by"] == []


def test_show_an_unknown_rule_suggests_the_closest() -> None:
    line = one_line_error(run("show", "status.impled"), 2)
    assert line.startswith("asl: no rule 'status.impled' in rsp-2.1, nor a capability or "
                           "safeguard of that name; did you mean 'status.implied'")


@pytest.mark.parametrize("framework", ["rsp-2.1", "openai-pf-2"])
def test_show_without_a_rule_lists_every_name_evidence_may_use(framework: str) -> None:
    words = vocabulary(evaluator_for(pack_stack(framework=framework)).pack)
    listed = json.loads(run("show", "--framework", framework, "--format", "json").stdout)
    capabilities = [c["name"] for c in listed["capabilities"]]
    safeguards = [s["id"] for s in listed["safeguards"]]
    safeguards += [e["id"] for s in listed["safeguards"] for e in s["elements"]]
    assert sorted(capabilities) == sorted(words.capabilities)
    assert sorted(safeguards) == sorted(words.safeguards)
    assert all(c["title"] and c["category"] and c["file"] for c in listed["capabilities"])
    text = run("show", "--framework", framework).stdout
    assert all(name in text for name in [*capabilities, *safeguards])


def test_show_lists_an_overlays_names_with_their_pack() -> None:
    listed = json.loads(run("show", "--pack", str(EXAMPLES / "packs" / "acme-lab"),
                            "--format", "json").stdout)
    elements = {e["id"]: e["pack"] for s in listed["safeguards"] for e in s["elements"]}
    assert elements["asl3-security.internal-red-team-rotation"] == "acme-lab"
    assert elements["asl3-security.audits"] == "rsp-2.1"


@pytest.mark.parametrize(("name", "entry", "key", "value"), [
    ("CBRN-3", "capability", "category", "threshold"),
    ("asl3-security", "standard", "level", "ASL-3"),
    ("asl3-security.audits", "element", "standard", "asl3-security"),
])
def test_show_a_catalogue_name(name: str, entry: str, key: str, value: str) -> None:
    shown = json.loads(run("show", name, "--format", "json").stdout)
    assert shown["entry"] == entry and shown[key] == value
    assert run("show", name).stdout.startswith(f"{name}: ")


def test_show_an_unknown_name_suggests_a_catalogue_name_too() -> None:
    line = one_line_error(run("show", "CBRN3"), 2)
    assert "did you mean 'CBRN-3'" in line


def test_reference_is_the_generated_document() -> None:
    result = run("reference")
    assert result.stdout == (REPO / "docs" / "rule-reference.md").read_text()


def test_a_broken_pack_is_reported_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "bad" / "rules").mkdir(parents=True)
    (tmp_path / "bad" / "pack.yaml").write_text("name: bad\n")
    (tmp_path / "bad" / "rules" / "10.yaml").write_text("- id: x\n  when: [{match: nokind}]\n")
    result = run("list", "--pack", str(tmp_path / "bad"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("asl: the rule pack has")
    assert all(": missing-" in line or ": " in line for line in lines[:-1])
    assert any(line.endswith("rules/10.yaml:1: missing-title: rule 'x' needs a non-empty "
                             "title") for line in lines)


# --- test ---------------------------------------------------------------------------------


def test_test_runs_an_overlays_cases_with_coverage_of_its_rules() -> None:
    result = run("test", str(ACME))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sum(line.startswith("PASS examples/packs/acme-lab/tests/10-acme.yaml: ")
               for line in lines) == 6
    assert "6/6 cases passed" in lines
    assert "coverage: 2/2 rules fired in some case (100.0%)" in lines
    assert "  examples/packs/acme-lab/rules/10-acme.yaml: 2/2 (100.0%)" in lines
    assert run("test", str(ACME), "--fail-under", "100").exit_code == 0


def test_test_of_the_builtin_pack_passes_with_full_coverage() -> None:
    result = run("test", "--fail-under", "100")
    assert result.exit_code == 0, result.output
    assert "coverage: 57/57 rules fired in some case (100.0%)" in result.stdout


FAILING_CASES = """\
cases:
  - name: a crossed finding is expected to rule out
    rules: [lab.review]
    model:
      model: {id: case-lab}
      findings:
        - {id: f1, threshold: CBRN-3, verdict: crossed}
    expect:
      - status: {capability: CBRN-3, value: ruled_out}
    absent:
      - action: {name: review}
    output: {asl: ASL-2, required: {deployment: ASL-3, security: ASL-2}}
  - name: passes
    model:
      model: {id: case-lab-2}
"""
PASSING_CASE = """\
cases:
  - name: a crossed finding calls for review
    rules: [lab.review]
    model:
      model: {id: case-lab}
      findings:
        - {id: f1, threshold: CBRN-3, verdict: crossed}
    expect:
      - action: {name: review}
"""
LAB_RULES = """\
- id: lab.review
  title: A crossed finding calls for review
  cite: RSP v2.1 §3.3
  because: "finding {f.id}"
  when:
    - match: finding
      as: f
      where: {verdict: crossed}
  then:
    action: {name: review}

- id: lab.unused
  title: Never exercised by a case
  cite: RSP v2.1 §3.3
  because: "finding {f.id}"
  when:
    - match: finding
      as: f
      where: {verdict: ruled_out}
  then:
    action: {name: unused}
"""


def lab_pack(tmp_path: Path, cases: str = FAILING_CASES) -> Path:
    root = tmp_path / "lab"
    (root / "rules").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pack.yaml").write_text("name: lab\n")
    (root / "rules" / "10-lab.yaml").write_text(LAB_RULES)
    (root / "tests" / "10-lab.yaml").write_text(cases)
    return root


def test_a_failing_case_shows_expected_against_derived(tmp_path: Path) -> None:
    root = lab_pack(tmp_path)
    result = run("test", str(root))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    file = f"{root}/tests/10-lab.yaml"
    assert lines[:9] == [
        f"FAIL {file}: a crossed finding is expected to rule out",
        "    - status {capability: CBRN-3, value: ruled_out}",
        "    + status {capability: CBRN-3, value: crossed}",
        "    - no action {name: review}",
        "    + action {name: review}",
        "    - output.asl: ASL-2",
        "    + output.asl: ASL-3",
        "    - output.required.security: ASL-2",
        "    + output.required.security: ASL-3",
    ]
    assert f"PASS {file}: passes" in lines
    assert "1/2 cases passed, 1 failed" in lines
    assert "coverage: 1/2 rules fired in some case (50.0%)" in lines
    assert "    fired in no case: lab.unused" in lines


def test_fail_under_and_verbose(tmp_path: Path) -> None:
    root = lab_pack(tmp_path, PASSING_CASE)
    result = run("test", str(root), "--verbose", "--fail-under", "75")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "asl: coverage 50.0% is below --fail-under 75"
    assert "    fired: lab.review (and " in result.stdout
    assert run("test", str(root), "--fail-under", "50").exit_code == 0
    assert run("test", str(root), "--fail-under", "101").exit_code == 2


def test_test_json(tmp_path: Path) -> None:
    data = json.loads(run("test", str(lab_pack(tmp_path)), "--format", "json").stdout)
    failed, passed = data["cases"]
    assert not failed["passed"] and passed["passed"]
    assert "+ status {capability: CBRN-3, value: crossed}" in failed["diff"]
    assert "lab.review" in failed["fired"]
    assert data["coverage"]["percent"] == 50.0
    assert data["coverage"]["files"][0]["missed"] == ["lab.unused"]


# --- diff ---------------------------------------------------------------------------------


def test_diff_of_an_overlay_against_the_builtin() -> None:
    result = run("diff", str(BUILTIN), str(ACME))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("rsp-2.1 sha256:") and " -> rsp-2.1+acme-lab sha256:" in lines[0]
    assert "  + acme.cyber.requires-asl3-security" in lines
    at = lines.index("  ~ assessment.trigger.months  (examples/packs/acme-lab/rules/"
                     "10-acme.yaml:14)")
    assert "        - match reference as r where months_since >= 6" in lines[at:]
    assert "        + match reference as r where months_since >= 4" in lines[at:]
    assert "      pack:" in lines[at:] and "      rationale:" in lines[at:]
    assert "  + element asl3-security.internal-red-team-rotation" in lines


def test_diff_with_a_portfolio_lists_each_models_changed_keys() -> None:
    result = run("diff", str(BUILTIN), str(ACME), "--portfolio", str(LINEAGE))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("portfolio "))
    assert lines[at].endswith(": 1 of 5 model(s) change")
    assert lines[at + 1] == "  corvid-atlas-5-code"
    assert "    comprehensive_assessment_required: false -> true" in lines
    assert "    decision: proceed -> assessment_required" in lines
    data = json.loads(run("diff", str(BUILTIN), str(ACME), "--portfolio", str(LINEAGE),
                          "--format", "json").stdout)
    changes = {c["key"]: (c["old"], c["new"])
               for c in data["portfolio"]["models"]["corvid-atlas-5-code"]}
    assert changes["decision"] == ("proceed", "assessment_required")
    assert data["rules_added"] == ["acme.cyber.requires-asl3-security"]


def test_diff_of_two_versions_of_the_builtin_pack(tmp_path: Path) -> None:
    copy = tmp_path / "rsp-2.1-next"
    shutil.copytree(BUILTIN, copy)
    same = run("diff", str(BUILTIN), str(copy))
    assert same.stdout.splitlines()[1:] == ["no differences"]
    signals = copy / "rules" / "10-signals.yaml"
    signals.write_text(signals.read_text().replace("value: crossed, severity: 3}\n\n- id: "
                                                   "signals.eval.rule-out-reached",
                                                   "value: cannot_rule_out, severity: 2}\n\n"
                                                   "- id: signals.eval.rule-out-reached"))
    pack = copy / "pack.yaml"
    pack.write_text(pack.read_text().replace("    - name: Cyber operations",
                                             "    - name: Persuasion\n      category: ongoing\n"
                                             "    - name: Cyber operations"))
    result = run("diff", str(BUILTIN), str(copy), "--portfolio", str(EXAMPLES))
    lines = result.stdout.splitlines()
    assert "  ~ signals.eval.rule-in-reached  (" in "\n".join(lines)
    assert "        - signal capability=e.capability, severity=3, value='crossed'" in lines
    assert "        + signal capability=e.capability, severity=2, value='cannot_rule_out'" \
        in lines
    assert "  + capability Persuasion" in lines
    assert "    ongoing_assessment.Persuasion: (none) -> not_assessed" in lines


# --- new ----------------------------------------------------------------------------------


def test_new_scaffolds_a_rule_and_a_case_that_validate_and_pass(tmp_path: Path) -> None:
    root = tmp_path / "my-pack"
    result = run("new", "--id", "lab.finding.review", "--title", "A crossed finding calls "
                 "for review", "--cite", "RSP v2.1 §3.3", "--dir", str(root))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:3] == [f"wrote {root}/pack.yaml",
                                             f"wrote {root}/rules/lab.finding.review.yaml",
                                             f"wrote {root}/tests/lab.finding.review.yaml"]
    validated = run("validate", str(root))
    assert validated.exit_code == 0, validated.output
    tested = run("test", str(root), "--fail-under", "100")
    assert tested.exit_code == 0, tested.output
    assert "1/1 cases passed" in tested.stdout
    again = run("new", "--id", "lab.second", "--title", "Another", "--cite", "RSP v2.1 §2",
                "--kind-out", "requirement", "--dir", str(root))
    assert again.exit_code == 0, again.output
    assert run("validate", str(root)).exit_code == 0
    assert "2/2 cases passed" in run("test", str(root)).stdout


@pytest.mark.parametrize(("args", "status", "message"), [
    (["--id", "status.implied"], 2, "rule 'status.implied' already exists"),
    (["--id", "Bad Id"], 2, "--id 'Bad Id' must match"),
    (["--cite", "section 3"], 2, "--cite 'section 3' does not match the pack's citation "
     "form"),
    (["--kind-out", "actoin"], 2, "--kind-out 'actoin' is not a kind rules conclude; did "
     "you mean 'action'?"),
    (["--kind-out", "decision"], 2, "--kind-out 'decision' is single-valued"),
    (["--kind-out", "finding"], 2, "--kind-out 'finding' is not a kind rules conclude"),
])
def test_new_refuses_what_cannot_work(tmp_path: Path, args: list[str], status: int,
                                      message: str) -> None:
    options = {"--id": "lab.x", "--title": "T", "--cite": "RSP v2.1 §2",
               "--dir": str(tmp_path / "p")}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    line = one_line_error(run("new", *[x for pair in options.items() for x in pair]), status)
    assert line.startswith(f"asl: {message}")
    assert not (tmp_path / "p").exists()


def test_new_does_not_overwrite(tmp_path: Path) -> None:
    args = ("new", "--id", "lab.x", "--title", "T", "--cite", "RSP v2.1 §2",
            "--dir", str(tmp_path))
    assert run(*args).exit_code == 0
    (tmp_path / "rules" / "lab.x.yaml").rename(tmp_path / "rules" / "moved.yaml")
    (tmp_path / "rules" / "moved.yaml").unlink()
    assert run(*args).exit_code == 1  # the case file is still there
    assert run("new", "--title", "T", "--cite", "x").exit_code == 2  # --id is required
