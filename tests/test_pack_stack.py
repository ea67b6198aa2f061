"""One stacking rule for every command (issue 10, item 2).

A copy of `rules/rsp-2.1` used to pass `asl rules validate` and fail `asl assess --pack`
with `duplicate-fact`: the rules commands loaded it alone, every other command stacked
it over the built-in pack. `engine.packstack.pack_stack` now decides for all of them: a
pack that is a base pack (a framework: `standalone: true`, or declaring the evidence
kinds, as any copy of the built-in does) is used in the built-in's place, and overlays
go over whichever base is in use.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES

from cli.main import main
from engine.errors import PackError
from engine.packstack import base_reason, builtin_frameworks, builtin_pack_dir, pack_stack
from engine.yamlsafe import load_yaml

ACME = EXAMPLES / "packs" / "acme-lab"
PAUSE = EXAMPLES / "security-gap-pause.yaml"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def copy_builtin(root: Path, name: str = "copy", replace: tuple[str, str] | None = None) -> Path:
    """A copy of the built-in pack in `root/name`, its pack.yaml edited by `replace`."""
    path = root / name
    shutil.copytree(builtin_pack_dir(), path)
    if replace is not None:
        pack_yaml = path / "pack.yaml"
        text = pack_yaml.read_text(encoding="utf-8")
        assert replace[0] in text
        pack_yaml.write_text(text.replace(*replace, 1), encoding="utf-8")
    return path


def overlay(root: Path, name: str, text: str) -> Path:
    path = root / f"dir-{name}"
    (path / "rules").mkdir(parents=True)
    (path / "pack.yaml").write_text(text, encoding="utf-8")
    return path


def assessed(*packs: Path) -> dict[str, Any]:
    args = [a for p in packs for a in ("--pack", str(p))]
    result = run("assess", *args, str(PAUSE), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def without_pack(output: dict[str, Any], renamed: str = "") -> dict[str, Any]:
    """The output but its `pack` (name and content hash), with the pack name `renamed`
    that conclusions quote read as the built-in's."""
    rest = json.dumps({k: v for k, v in output.items() if k != "pack"})
    return json.loads(rest.replace(f'"{renamed}"', '"rsp-2.1"') if renamed else rest)


# --- the reported defect, command by command ---------------------------------------------


def test_a_copy_of_the_builtin_is_the_builtin_for_every_command(tmp_path: Path) -> None:
    """Validated, it assesses; and every command gives exactly the output it gives
    without `--pack` (the copy's content hash is the built-in's)."""
    copy = copy_builtin(tmp_path)
    validated = run("rules", "validate", str(copy))
    assert validated.exit_code == 0, validated.output
    assert validated.stderr == "asl: 57 rules and 104 cases of rsp-2.1: no problems\n"
    commands = [
        ["assess", str(PAUSE), "--format", "json"],
        ["why", str(PAUSE), "--conclusion", "decision"],
        ["why-not", str(PAUSE), "decision=proceed"],
        ["what-if", str(PAUSE), "--set", "safeguards[asl3-security.audits].status=implemented"],
        ["impact", str(EXAMPLES / "portfolio" / "lineage.yaml"), "--rule",
         "requirements.carry-over.security"],
    ]
    for command in commands:
        plain, with_copy = run(*command), run(*command, "--pack", str(copy))
        assert (with_copy.exit_code, with_copy.stdout) == (plain.exit_code, plain.stdout), command
    listed = run("rules", "list", "--pack", str(copy), "--format", "json")
    builtin = run("rules", "list", "--format", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == \
        [r["id"] for r in json.loads(builtin.stdout)]
    shown = run("rules", "show", "requirements.highest", "--pack", str(copy))
    assert shown.exit_code == 0 and shown.stdout.startswith("requirements.highest: ")
    diffed = run("rules", "diff", str(builtin_pack_dir()), str(copy))
    assert diffed.stdout.splitlines()[1:] == ["no differences"]


def test_a_renamed_copy_is_a_base_pack_and_takes_overlays(tmp_path: Path) -> None:
    """A framework of one's own: a renamed copy stands in the built-in's place, and an
    overlay goes over it exactly as over the built-in."""
    copy = copy_builtin(tmp_path, replace=("name: rsp-2.1", "name: my-rsp"))
    assert pack_stack([copy, ACME]) == [copy, ACME]
    assert run("rules", "validate", str(copy)).exit_code == 0
    own = assessed(copy)
    assert own["pack"]["name"] == "my-rsp"
    assert without_pack(own, "my-rsp") == without_pack(assessed())
    stacked = assessed(copy, ACME)
    assert stacked["pack"]["name"] == "my-rsp+acme-lab"
    assert without_pack(stacked, "my-rsp") == without_pack(assessed(ACME))
    tested = run("rules", "test", str(ACME), "--pack", str(copy))
    assert tested.exit_code == 0, tested.output


def test_a_base_pack_after_another_pack_is_refused_alike_everywhere(tmp_path: Path) -> None:
    copy = copy_builtin(tmp_path, replace=("name: rsp-2.1", "name: my-rsp"))
    line = text_line(copy / "pack.yaml", "kinds:")
    expected = (f"{copy / 'pack.yaml'}:{line}: standalone: pack 'my-rsp' is a base pack (it "
                "declares the evidence kinds model, reference, evaluation, finding, channel, "
                "safeguard), loaded in place of the built-in framework, so it must be the "
                "first pack given")
    validated = run("rules", "validate", "--pack", str(ACME), "--pack", str(copy))
    assert validated.exit_code == 1
    assert validated.stdout.splitlines() == [expected]
    result = run("assess", "--pack", str(ACME), "--pack", str(copy), str(PAUSE))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == expected


@pytest.mark.parametrize("case", ["overlay", "copy", "renamed", "standalone", "copy+overlay",
                                  "overlay+copy", "named-like-builtin", "says-not-standalone"])
def test_what_validate_accepts_assess_accepts(tmp_path: Path, case: str) -> None:
    """For every shape of stack: `asl rules validate` and `asl assess` load the same
    packs, so a stack validate passes assesses, under the same name, and a stack assess
    refuses is refused by validate with the same lines."""
    renamed = ("name: rsp-2.1", "name: my-rsp")
    stacks = {
        "overlay": lambda: [ACME],
        "copy": lambda: [copy_builtin(tmp_path)],
        "renamed": lambda: [copy_builtin(tmp_path, replace=renamed)],
        "standalone": lambda: [copy_builtin(tmp_path, replace=(
            "name: rsp-2.1", "name: own\nstandalone: true"))],
        "copy+overlay": lambda: [copy_builtin(tmp_path), ACME],
        "overlay+copy": lambda: [ACME, copy_builtin(tmp_path)],
        "named-like-builtin": lambda: [overlay(tmp_path, "rsp-2.1", "name: rsp-2.1\n")],
        "says-not-standalone": lambda: [copy_builtin(tmp_path, replace=(
            "name: rsp-2.1", "name: mine\nstandalone: false"))],
    }
    packs = stacks[case]()
    args = [a for p in packs for a in ("--pack", str(p))]
    validated = run("rules", "validate", *args)
    result = run("assess", *args, str(PAUSE), "--format", "json")
    if validated.exit_code == 0:
        assert result.exit_code == 0, result.stderr
        name = json.loads(result.stdout)["pack"]["name"]
        assert validated.stderr.endswith(f" of {name}: no problems\n")
    if result.exit_code != 0:
        assert validated.exit_code == 1
        assert validated.stdout.splitlines() == result.stderr.splitlines()[:-1]
    accepted = {"overlay", "copy", "renamed", "standalone", "copy+overlay"}
    assert (result.exit_code == 0) is (case in accepted)


# --- the rule itself --------------------------------------------------------------------


def text_line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if line.startswith(needle))


def test_what_makes_a_base_pack() -> None:
    builtin = load_yaml((builtin_pack_dir() / "pack.yaml").read_text())
    assert base_reason(builtin) == ("it declares the evidence kinds model, reference, "
                                    "evaluation, finding, channel, safeguard")
    assert base_reason({"name": "x", "standalone": True}) == "it says `standalone: true`"
    assert base_reason({**builtin, "standalone": False}) is None
    assert base_reason({"name": "rsp-2.1"}) is None  # a name alone: an overlay, refused
    assert base_reason({"kinds": {"badge": {"origin": "evidence"}}}) is None
    assert base_reason({"kinds": {"model": {"origin": "derived"}}}) is None
    assert base_reason(load_yaml(ACME.joinpath("pack.yaml").read_text())) is None
    assert base_reason(None) is None


def test_overlays_go_over_the_chosen_framework(tmp_path: Path) -> None:
    """A framework is chosen by name (`--framework`); overlays go over it."""
    assert builtin_frameworks() == {"openai-pf-2": builtin_pack_dir("openai-pf-2"),
                                    "rsp-2.1": builtin_pack_dir()}
    assert pack_stack() == [builtin_pack_dir()]
    assert pack_stack([ACME], framework="rsp-2.1") == [builtin_pack_dir(), ACME]
    copy = copy_builtin(tmp_path)
    assert pack_stack([copy], framework="rsp-2.1") == [copy]  # a version of that framework
    with pytest.raises(PackError) as caught:
        pack_stack([ACME], framework="no-such-framework")
    assert [p.code for p in caught.value.problems] == ["pack-missing"]
    assert "built in: openai-pf-2, rsp-2.1" in str(caught.value)
    renamed = copy_builtin(tmp_path, "renamed", replace=("name: rsp-2.1", "name: my-rsp"))
    with pytest.raises(PackError) as caught:
        pack_stack([renamed, ACME], framework="rsp-2.1")
    assert str(caught.value) == (
        f"{renamed / 'pack.yaml'}:{text_line(renamed / 'pack.yaml', 'name:')}: framework: "
        "pack 'my-rsp' is a base pack (it declares the evidence kinds model, reference, "
        "evaluation, finding, channel, safeguard), used in place of a framework, so it "
        "cannot be loaded with framework 'rsp-2.1'")


def test_an_unreadable_first_pack_is_stacked_and_reported_by_the_loader(tmp_path: Path) -> None:
    broken = overlay(tmp_path, "broken", "name: [unclosed\n")
    assert pack_stack([broken]) == [builtin_pack_dir(), broken]
    result = run("assess", "--pack", str(broken), str(PAUSE))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{broken / 'pack.yaml'}:2: yaml: invalid YAML")
