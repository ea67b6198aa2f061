"""Packs at and past what one durable-rules ruleset can hold (issue 15 point 3).

durable-rules 2.0.28 refuses a ruleset in which about 256 conditions end at the same
node of its alpha network (error code 108), and never finishes compiling one in which
more than 512 distinct tests follow one node: engine.durable_network models both, a pack
that needs it is compiled as several rulesets, and a rule no ruleset can take is one
located `compile` problem from every command, found when the pack loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES

import engine.durable_network as network
from cli.main import main
from engine.api import assess
from engine.assess import assess_document, vocabulary
from engine.compiler import compile_pack
from engine.durable_adapter import DurableRuleset, check_compiles
from engine.errors import AssessmentError
from engine.evaluator import Evaluator
from engine.evidence import parse_document
from engine.loader import load_pack
from engine.packstack import pack_stack
from engine.yamlsafe import load_yaml

MODEL = EXAMPLES / "security-gap-pause.yaml"  # CBRN-3: cannot_rule_out


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def overlay(directory: Path, rules: list[str]) -> Path:
    """An overlay pack over rsp-2.1 with these rules, concluding `note` facts."""
    (directory / "rules").mkdir(parents=True)
    (directory / "pack.yaml").write_text(
        "name: gen\ntitle: generated\nkinds:\n  note:\n    fields: {n: number}\n",
        encoding="utf-8")
    (directory / "rules" / "10-gen.yaml").write_text("\n".join(rules), encoding="utf-8")
    return directory


def rule(number: int, where: str) -> str:
    return (f"- id: gen.r{number}\n  title: rule {number}\n  cite: RSP v2.1 §3.3\n"
            f"  because: generated rule {number}\n  when:\n"
            f"    - match: status\n      as: s\n      where: {where}\n"
            f"  then:\n    note: {{n: {number}}}\n")


def same_path(count: int) -> dict[str, Any]:
    """`count` durable rules whose one condition ends at the same alpha node."""
    return {f"r{i}": {"all": [{"a": {"$and": [{"kind": "x"}, {"$gte": {"v": 0}}]}}]}
            for i in range(count)}


def test_the_measured_limit_of_one_ruleset() -> None:
    """durable-rules itself: conditions ending at one node compile up to the model's
    limit (255), and 300 are refused with error code 108 (from the 257th on durable-rules
    refuses them or writes past its table, depending on the memory after it)."""
    DurableRuleset.spelled(same_path(network.BETA_LIMIT)).close()
    with pytest.raises(AssessmentError, match="error code: 108"):
        DurableRuleset.spelled(same_path(300))


def test_the_model_splits_where_durable_would_refuse() -> None:
    definitions = same_path(network.BETA_LIMIT + 1)
    chunks = network.plan(definitions, {})
    assert [len(c) for c in chunks] == [network.BETA_LIMIT, 1]
    distinct = {f"r{i}": {"all": [{"a": {"$and": [{"kind": "x"}, {"v": i}]}}]}
                for i in range(network.HASH_LIMIT + 1)}
    assert [len(c) for c in network.plan(distinct, {})] == [network.HASH_LIMIT, 1]


def test_a_pack_of_300_rules_on_one_condition_is_split_and_assessed(tmp_path: Path) -> None:
    """300 rules each matching `status where value: cannot_rule_out` (error 108 in one
    ruleset) load, validate and assess: every rule fires once, as in one ruleset."""
    pack_dir = overlay(tmp_path / "gen", [rule(i, "{value: cannot_rule_out}")
                                          for i in range(300)])
    pack = load_pack(pack_stack([pack_dir]))
    evaluator = Evaluator(pack)
    assert evaluator.ruleset.rulesets == 2
    assert check_compiles(compile_pack(pack).compiled) == 2
    found = assess([str(MODEL)], pack_stack([pack_dir]))
    assert found.rejected == []
    notes = found.assessments[0].derivation.of_kind("note")
    unsure = [f for f in found.assessments[0].derivation.of_kind("status")
              if f.values["value"] == "cannot_rule_out"]
    assert len(unsure) == 1 and sorted(f.values["n"] for f in notes) == list(range(300))
    result = run("assess", "--pack", pack_dir, MODEL, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["decision"] == "pause"


def test_a_split_pack_derives_exactly_what_one_ruleset_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in pack forced into rulesets of five rules gives every example the
    output (conclusions and their support included) it gets in one ruleset."""
    files = [str(p) for p in sorted(EXAMPLES.glob("*.yaml"))]
    pack = load_pack(pack_stack(()))

    def outputs(evaluator: Evaluator) -> list[str]:
        found = []
        for file in files:
            doc, _errors = parse_document(load_yaml(Path(file).read_text(encoding="utf-8")),
                                         file, "", vocabulary(pack))
            if doc is None:  # a portfolio: the single-model documents are enough here
                continue
            output = assess_document(evaluator, doc).output
            found.append(json.dumps(output, sort_keys=True, default=str))
        assert len(found) >= 5
        return found

    whole = Evaluator(pack)
    assert whole.ruleset.rulesets == 1
    monkeypatch.setattr(network, "RULE_LIMIT", 5)
    split = Evaluator(pack)
    assert split.ruleset.rulesets >= len(pack.rules) // 5
    assert outputs(split) == outputs(whole)


def test_a_rule_no_ruleset_can_hold_is_one_located_line_in_every_command(
        tmp_path: Path) -> None:
    """An `in` list of 600 values (durable-rules would never finish compiling it) is
    refused when the pack loads, at the rule's line, by validate, assess, test and
    batch alike, without a traceback."""
    values = ", ".join(f"v{i}" for i in range(600))
    pack_dir = overlay(tmp_path / "huge", [rule(0, "{value: crossed}"),
                                           rule(1, f"{{value: [{values}]}}")])
    text = (pack_dir / "rules" / "10-gen.yaml").read_text(encoding="utf-8")
    line = text[:text.index("- id: gen.r1")].count("\n") + 1
    expected = (f"{pack_dir / 'rules' / '10-gen.yaml'}:{line}: compile: rule 'gen.r1': "
                "durable-rules cannot compile it, even alone: more than 511 distinct tests")
    for args in (["rules", "validate", pack_dir], ["assess", "--pack", pack_dir, MODEL],
                 ["rules", "test", pack_dir],
                 ["batch", "--pack", pack_dir, MODEL, "--db", tmp_path / "asl.db"]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        lines = [x for x in result.output.splitlines() if ": compile: " in x]
        assert len(lines) == 1 and lines[0].startswith(expected), (args, result.output)


def test_the_services_draft_check_refuses_it_at_the_rule_too(tmp_path: Path) -> None:
    """An uploaded draft is checked as `asl rules validate` checks it (service.packcheck,
    in a child process under limits): the same one `compile` problem, at the rule."""
    from engine.packstack import builtin_pack_dir
    from service.packcheck import Layer, check_draft

    values = ", ".join(f"v{i}" for i in range(600))
    rules = rule(0, f"{{value: [{values}]}}")
    files = {"pack.yaml": "name: huge\ntitle: generated\nkinds:\n  note:\n"
                          "    fields: {n: number}\n",
             "rules/10-gen.yaml": rules}
    checked = check_draft("huge", files, [Layer("rsp-2.1", builtin_pack_dir())], tmp_path)
    assert [(p["file"], p["line"], p["code"]) for p in checked.problems] == [
        ("rules/10-gen.yaml", 1, "compile")]
