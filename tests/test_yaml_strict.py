"""One strict YAML reader for evidence, rule packs and case files (issue 10, item 3).

A key given twice in one mapping used to be dropped silently in rule YAML (the last one
won), while evidence refused it. Both now go through `engine.yamlsafe`: a pack names the
file, the line of the second key and the code `duplicate-key`; evidence keeps its own
messages, word for word.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import EXAMPLES

from cli.main import main
from conftest import PackWriter
from engine import evidence_reading, yamlsafe
from engine.errors import PackError
from engine.loader import builtin_pack_dir, load_pack
from engine.yamlsafe import DuplicateKeyError, LineDict, load_data, load_yaml

# A rule whose `where` gives `value` twice: lines 1-10 of rules/50-test.yaml.
TWICE_IN_WHERE = """\
- id: t.twice
  title: Twice in where
  cite: RSP v2.1 §2
  because: "x {x.name}"
  when:
    - match: x
      where: {name: crossed, name: ruled_out}
  then:
    concern: {name: {ref: x.name}}
"""
# Two `concern:` conclusions under one `then`: the second is on line 9.
TWICE_IN_THEN = """\
- id: t.twice
  title: Twice in then
  cite: RSP v2.1 §2
  because: "x {x.name}"
  when:
    - match: x
  then:
    concern: {name: {ref: x.name}}
    concern: {name: other}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def problems(*dirs: Path) -> list[str]:
    with pytest.raises(PackError) as caught:
        load_pack(list(dirs))
    return [str(p) for p in caught.value.problems]


def test_a_key_twice_in_a_rules_where_is_refused_with_its_line(make_pack: PackWriter) -> None:
    root = make_pack(TWICE_IN_WHERE)
    file = root / "rules" / "50-test.yaml"
    assert problems(root) == [
        f"{file}:7: duplicate-key: key 'name' is given twice in one mapping (first at "
        "line 7); YAML would silently keep only the last"]


def test_a_conclusion_twice_under_then_is_refused(make_pack: PackWriter) -> None:
    root = make_pack(TWICE_IN_THEN)
    file = root / "rules" / "50-test.yaml"
    assert problems(root) == [
        f"{file}:9: duplicate-key: key 'concern' is given twice in one mapping (first at "
        "line 8); YAML would silently keep only the last"]


def test_pack_yaml_and_case_files_are_read_strictly_too(make_pack: PackWriter) -> None:
    root = make_pack("[]\n")
    pack_yaml = root / "pack.yaml"
    text = pack_yaml.read_text() + "title: again\n"
    pack_yaml.write_text(text)
    (root / "tests").mkdir()
    case = root / "tests" / "cases.yaml"
    case.write_text("cases:\n  - name: one\n    name: two\n")
    assert problems(root) == [
        f"{pack_yaml}:{len(text.splitlines())}: duplicate-key: key 'title' is given twice "
        "in one mapping (first at line 2); YAML would silently keep only the last",
        f"{case}:3: duplicate-key: key 'name' is given twice in one mapping (first at line "
        "2); YAML would silently keep only the last"]


def test_the_cli_reports_a_duplicate_key_in_an_overlay(tmp_path: Path) -> None:
    """Through `asl rules validate` and `asl assess --pack`: the same one line, exit 1."""
    overlay = tmp_path / "lab"
    (overlay / "rules").mkdir(parents=True)
    (overlay / "pack.yaml").write_text("name: lab\n")
    rules = overlay / "rules" / "10-lab.yaml"
    rules.write_text(
        "- id: lab.cyber\n  title: Cyber\n  cite: RSP v2.1 §2\n  because: \"{s.value}\"\n"
        "  when:\n    - match: status\n      as: s\n"
        "      where: {capability: Cyber operations, value: crossed, value: ruled_out}\n"
        "  then:\n    action: {name: cyber_review}\n    action: {name: other}\n")
    line = (f"{rules}:8: duplicate-key: key 'value' is given twice in one mapping (first at "
            "line 8); YAML would silently keep only the last")
    validated = run("rules", "validate", str(overlay))
    assert validated.exit_code == 1
    assert validated.stdout.splitlines() == [line]
    assessed = run("assess", "--pack", str(overlay), str(EXAMPLES / "security-gap-pause.yaml"))
    assert assessed.exit_code == 1
    assert assessed.stdout == ""
    assert assessed.stderr.splitlines()[0] == line


def test_the_builtin_pack_has_no_duplicate_key(tmp_path: Path) -> None:
    """Every file of the built-in pack reads with the strict reader (and loads)."""
    for path in sorted(builtin_pack_dir().rglob("*.yaml")):
        load_yaml(path.read_text(encoding="utf-8"))
    copy = tmp_path / "copy"
    shutil.copytree(builtin_pack_dir(), copy)
    assert load_pack([copy]).version == load_pack().version


def test_an_unbuildable_scalar_in_a_pack_is_a_yaml_problem_not_a_traceback(
        tmp_path: Path) -> None:
    pack = tmp_path / "p"
    (pack / "rules").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: p\nwritten: 2026-02-30\n")
    result = run("rules", "validate", str(pack))
    assert result.exit_code == 1
    assert result.stdout == (f"{pack / 'pack.yaml'}:2: yaml: invalid YAML: day is out of "
                             "range for month\n")


def test_evidence_and_packs_share_one_reader() -> None:
    """One strict loader: evidence reads with it, the pack reader only adds line numbers."""
    assert evidence_reading.EvidenceLoader is yamlsafe.StrictLoader
    assert issubclass(yamlsafe.SafeLineLoader, yamlsafe.StrictLoader)
    text = "a: {b: 1e24, c: [x, y]}\n"
    assert load_data(text) == load_yaml(text) == {"a": {"b": 1e24, "c": ["x", "y"]}}
    assert type(load_data(text)["a"]) is dict
    assert isinstance(load_yaml(text)["a"], LineDict) and load_yaml(text)["a"].line == 1
    for load in (load_data, load_yaml):
        with pytest.raises(DuplicateKeyError) as caught:
            load("a: 1\nb: 2\na: 3\n")
        assert (caught.value.key, caught.value.first_line) == ("a", 1)
        assert caught.value.problem == "found duplicate key 'a'"
        assert load("base: &b {x: 1}\nother: {<<: *b, y: 2}\n")["other"] == {"x": 1, "y": 2}
        with pytest.raises(yaml.YAMLError):
            load("!!python/object/apply:os.system [echo]\n")


def test_evidence_duplicate_key_message_is_unchanged(tmp_path: Path) -> None:
    """The evidence message pinned by test_evidence, through `asl assess` itself."""
    doc = tmp_path / "dup.yaml"
    doc.write_text("model:\n  id: a\n  id: b\n")
    result = run("assess", str(doc))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"{doc}: invalid YAML at line 3, column 3: found duplicate key 'id'")
