"""The rule-authoring tutorial (docs/rule-authoring.md) shows only what is real.

- Every YAML block starts with `# file: PATH` (it must parse to the same data as the
  whole file) or `# from: PATH` (each rule, case or key it shows must be in the file).
- Every `console` block is a list of `$ asl ...` commands, each followed by its output;
  each command is run through click's runner from the repository root, must succeed and
  must print exactly those lines (`...` in a line stands for any text).
- Every repository path the tutorial names exists, and it shows no Python.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import REPO

from cli.main import main

DOC = REPO / "docs" / "rule-authoring.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
MARKER = re.compile(r"^# (file|from): (\S+)\n")
PATH = re.compile(r"`((?:examples|rules|tests|docs)/[^`\s]*)`")
ACME = "examples/packs/acme-lab"


def blocks(language: str) -> list[str]:
    """The tutorial's fenced blocks of one language, in order."""
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == language]


def commands(block: str) -> list[tuple[str, list[str]]]:
    """A console block as (command, expected output lines) pairs."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"console block output before any `$` command: {line!r}"
            found[-1][1].append(line)
    return found


def within(part: Any, whole: Any) -> bool:
    """Whether an excerpt is part of a file's data: list items among the file's items,
    mapping keys with equal values (or, for lists, items among the file's)."""
    if isinstance(part, list):
        return isinstance(whole, list) and all(item in whole for item in part)
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and (within(value, whole[key]) if isinstance(value, list)
                              else value == whole[key]) for key, value in part.items())
    return bool(part == whole)


def yaml_blocks() -> list[tuple[str, str, str]]:
    """(marker, path, YAML text) of each YAML block; every block must carry a marker."""
    found = []
    for block in blocks("yaml"):
        marker = MARKER.match(block)
        assert marker, f"a YAML block without `# file:` or `# from:`: {block[:60]!r}"
        found.append((marker.group(1), marker.group(2), block[marker.end():]))
    return found


def test_yaml_blocks_parse_and_equal_the_files_they_show() -> None:
    found = yaml_blocks()
    assert len(found) >= 6
    for marker, path, text in found:
        shown = yaml.safe_load(text)
        real = yaml.safe_load((REPO / path).read_text(encoding="utf-8"))
        if marker == "file":
            assert shown == real, f"the tutorial's copy of {path} differs from the file"
        else:
            assert shown and within(shown, real), f"the tutorial's excerpt is not in {path}"


def test_the_worked_overlay_is_shown_in_full() -> None:
    whole = {path for marker, path, _ in yaml_blocks() if marker == "file"}
    assert {f"{ACME}/pack.yaml", f"{ACME}/rules/10-acme.yaml"} <= whole
    excerpts = {path for marker, path, _ in yaml_blocks() if marker == "from"}
    assert f"{ACME}/tests/10-acme.yaml" in excerpts


def test_yaml_blocks_cover_the_rule_format() -> None:
    text = "".join(text for _, _, text in yaml_blocks())
    for word in ("match:", "none:", "where:", "{field:", "{ref:", "then:", "because:",
                 "cite:", "replaces:", "rationale:", "gte:", "cases:", "expect:"):
        assert word in text, f"no YAML block shows {word}"


def console_commands() -> list[tuple[str, list[str]]]:
    return [pair for block in blocks("console") for pair in commands(block)]


def test_the_tutorial_runs_assess_with_and_without_the_overlay() -> None:
    shown = [command for command, _ in console_commands()]
    assert f"asl assess {ACME}/example-model.yaml" in shown
    assert f"asl assess --pack {ACME} {ACME}/example-model.yaml" in shown


@pytest.mark.parametrize(("command", "expected"), console_commands(),
                         ids=[c for c, _ in console_commands()])
def test_console_commands_print_what_the_tutorial_shows(
        command: str, expected: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    program, *args = shlex.split(command)
    assert program == "asl"
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    actual = result.stdout.splitlines()
    assert len(actual) == len(expected), f"{command}: {len(actual)} lines printed, " \
        f"{len(expected)} shown"
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(piece) for piece in want.split("..."))
        assert re.fullmatch(pattern, got), f"{command}:\n shown:   {want}\n printed: {got}"


def test_paths_the_tutorial_names_exist() -> None:
    text = DOC.read_text()
    named = {p.rstrip("/") for p in PATH.findall(text)}
    assert {ACME, "rules/rsp-2.1/pack.yaml"} <= named
    for path in sorted(named):
        assert (REPO / path).exists(), f"the tutorial names {path}, which does not exist"
    (layout,) = blocks("text")
    root, *entries = layout.splitlines()
    for entry in entries:
        assert (REPO / root / entry.split()[0]).exists(), entry


def test_the_tutorial_needs_no_python() -> None:
    languages = {lang for lang, _ in FENCE.findall(DOC.read_text())}
    assert languages <= {"yaml", "console", "text"}, languages
    assert Path(DOC).read_text().count("```") % 2 == 0
