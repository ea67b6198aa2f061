"""The `asl` command line, run the way a user runs it (click's runner in-process, and the
installed console script once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import DATA, EXAMPLES, GOLDEN, expected_outcomes

from cli.main import main

UPDATE_GOLDEN = os.environ.get("ASL_UPDATE_GOLDEN") == "1"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def test_assess_json_is_the_output_contract() -> None:
    result = run("assess", str(DATA / "cbrn3-margin-remediation-gap.yaml"), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    expected = expected_outcomes()["cbrn3-margin-remediation-gap"]
    assert {k: document[k] for k in expected} == expected
    assert document["pack"]["name"] == "rsp-2.1"
    assert document["pack"]["version"].startswith("sha256:")
    assert any(c["kind"] == "asl" for c in document["conclusions"])


def test_assess_portfolio_prints_an_array_and_jsonl_one_line_each() -> None:
    path = str(DATA / "lineage-base-and-tune.yaml")
    array = json.loads(run("assess", path, "--format", "json").stdout)
    assert [d["model"] for d in array] == ["marlin-base", "marlin-base-instruct"]
    lines = run("assess", path, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["model"] for line in lines] == ["marlin-base",
                                                             "marlin-base-instruct"]


def test_assess_is_byte_for_byte_repeatable() -> None:
    args = ("assess", str(EXAMPLES), "--format", "json")
    assert run(*args).stdout == run(*args).stdout


def test_assess_text_summary_names_every_contract_key() -> None:
    result = run("assess", str(EXAMPLES / "security-gap-pause.yaml"))
    assert result.exit_code == 0
    text = result.stdout
    for needle in ("larkspur-kite-4: ASL-3", "deployment ASL-3, security ASL-3",
                   "decision            pause", "asl3-security.audits", "interim_measures",
                   "CBRN-4: not_assessed", "Autonomy checkpoint: ruled_out"):
        assert needle in text


def test_assess_reads_standard_input() -> None:
    text = (DATA / "asl2-minor-update.yaml").read_text()
    result = run("assess", "-", "--format", "json", stdin=text)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["asl"] == "ASL-2"


def test_bad_document_exits_2_with_one_line_and_nothing_on_stdout(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {id: m1}\nevaluations:\n  - {id: e, threshold: CBRN-3, "
                   "score: high, threshold_score: 0.8}\n")
    result = run("assess", str(bad), "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"{bad}: evaluations[0].score: expected a number, got 'high'\n"


def test_portfolio_with_one_bad_document_assesses_the_rest(tmp_path: Path) -> None:
    good = (DATA / "asl2-minor-update.yaml").read_text()
    portfolio = tmp_path / "p.jsonl"
    import yaml

    doc = yaml.safe_load(good)
    portfolio.write_text(json.dumps(doc) + "\n" + '{"model": {"id": "x"}, "findings": '
                         '[{"id": "f", "threshold": "CBRN-9", "verdict": "crossed"}]}\n')
    result = run("assess", str(portfolio), "--format", "jsonl")
    assert result.exit_code == 2
    assert [json.loads(line)["model"] for line in result.stdout.splitlines()] == [
        "bramble-lite-4"]
    assert result.stderr.startswith(f"{portfolio}: line 2: findings[0].threshold: unknown "
                                    "threshold 'CBRN-9'")


def test_missing_file_is_a_clear_error() -> None:
    result = run("assess", "no/such/file.yaml")
    assert result.exit_code == 2
    assert "no/such/file.yaml: no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_why_json_reaches_evidence() -> None:
    result = run("why", str(DATA / "rnd-agent-security-gap.yaml"), "--conclusion",
                 "required.security", "--format", "json")
    assert result.exit_code == 0
    tree = json.loads(result.stdout)
    assert tree["model"] == "heliotrope-agent-2"
    text = json.dumps(tree, ensure_ascii=False)
    assert "evidence:ha2-replication" in text and "RSP v2.1 §2" in text


def test_why_needs_model_for_a_portfolio_and_names_the_choices() -> None:
    result = run("why", str(DATA / "lineage-base-and-tune.yaml"))
    assert result.exit_code == 2
    assert "choose one with --model (marlin-base, marlin-base-instruct)" in result.stderr


def test_why_unknown_conclusion_is_a_clear_error() -> None:
    result = run("why", str(DATA / "asl2-minor-update.yaml"), "--conclusion",
                 "threshold:CBRN-9")
    assert result.exit_code == 2
    assert "has no conclusion 'threshold:CBRN-9'" in result.stderr


@pytest.mark.parametrize("command", [[], ["assess"], ["why"]])
def test_every_help_has_an_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and "asl " in result.stdout


GOLDEN_CASES = {
    "why-security-gap-pause-decision.txt": [str(EXAMPLES / "security-gap-pause.yaml"),
                                             "--conclusion", "decision"],
    "why-lineage-chat-asl.txt": [str(EXAMPLES / "portfolio" / "lineage.yaml"), "--model",
                                 "corvid-atlas-5-chat"],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_why_text_matches_golden(name: str) -> None:
    """The explanation text is stable and complete (rules with titles, citations and
    filled `because` sentences, down to evidence with its source). Regenerate with
    ASL_UPDATE_GOLDEN=1 after an intended change, and read the diff."""
    result = run("why", *GOLDEN_CASES[name])
    assert result.exit_code == 0, result.stderr
    golden = GOLDEN / name
    if UPDATE_GOLDEN:
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()


ASL_SCRIPT = Path(sys.executable).with_name("asl")


@pytest.mark.skipif(not ASL_SCRIPT.exists(), reason="the asl console script is not installed "
                    "beside this Python (pip install .)")
def test_installed_console_script_runs() -> None:
    path = str(EXAMPLES / "asl2-patch-carryover.yaml")
    completed = subprocess.run([str(ASL_SCRIPT), "assess", path, "--format", "json"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["asl"] == "ASL-2"
