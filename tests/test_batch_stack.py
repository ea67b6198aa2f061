"""What a batch remembers of the packs behind each result, and what its summary counts
as changed: through the real command line (click's CliRunner), on SQLite and PostgreSQL
(the `db_url` fixture).

Regressions: after `asl batch --reassess --pack P`, the plain batch re-assessed every
model without P and said nothing (`changed 0`); and an overlay that only added or
dropped an action showed as `changed 0`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from click.testing import CliRunner, Result
from helpers import EXAMPLES
from test_batch import (
    ACME,
    LINEAGE,
    assess_lines,
    batch,
    changes,
    other_keys,
    parse_summary,
    record,
    stored_line,
)

from cli.main import main
from knowledge_graph.compare import contract_values
from store.db import connect
from store.record import Store

# A rules-only overlay whose one rule adds an action to every model that needs no
# comprehensive assessment: it changes `actions` and nothing else.
SPOT_PACK = """\
name: spot-checks
title: A lab's own spot check of models that need no comprehensive assessment
"""
SPOT_RULE = """\
- id: spot-checks.lab-spot-check
  title: A model without a comprehensive assessment due gets the lab's spot check
  cite: RSP v2.1 §3.3
  because: "no comprehensive assessment is required"
  when:
    - match: comprehensive
      where: {required: false}
  then:
    action: {name: lab_spot_check}
"""


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def spot_checks(root: Path) -> Path:
    (root / "rules").mkdir(parents=True)
    (root / "pack.yaml").write_text(SPOT_PACK, encoding="utf-8")
    (root / "rules" / "10-spot.yaml").write_text(SPOT_RULE, encoding="utf-8")
    return root


def stack_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "pack stack" in line]


def test_a_batch_with_another_pack_stack_says_so_and_list_shows_the_pack(
        db_url: str) -> None:
    assert batch(db_url, EXAMPLES, LINEAGE).exit_code == 0
    builtin = record(db_url)
    base_stack = builtin.latest["corvid-atlas-5"].pack_stack
    assert [layer["name"] for layer in base_stack] == ["rsp-2.1"]

    overlaid = batch(db_url, "--reassess", "--pack", ACME)
    assert overlaid.exit_code == 0, overlaid.stderr
    assert parse_summary(overlaid.stdout).stack == (15, "rsp-2.1", "rsp-2.1+acme-lab")
    acme = record(db_url)
    stacks = {json.dumps(s.pack_stack) for s in acme.latest.values()}
    assert len(stacks) == 1
    stack = json.loads(stacks.pop())
    assert [layer["name"] for layer in stack] == ["rsp-2.1", "acme-lab"]
    assert stack[0] == base_stack[0]  # the same built-in pack
    assert stack[1]["version"].startswith("sha256:") and len(stack[1]["version"]) == 71
    assert {s.framework for s in acme.latest.values()} == {"rsp-2.1"}

    # asl list names the pack in the table, and gives the stack in JSON and CSV.
    table = run("list", "--db", db_url).stdout.splitlines()
    assert table[0].split()[6] == "pack"
    assert {line.split()[6] for line in table[1:]} == {"rsp-2.1+acme-lab"}
    listed = json.loads(run("list", "--db", db_url, "--format", "json").stdout)
    assert {(r["pack"]["name"], json.dumps(r["pack_stack"])) for r in listed} == {
        ("rsp-2.1+acme-lab", json.dumps(stack))}
    rows = list(csv.DictReader(io.StringIO(run("list", "--db", db_url, "--format",
                                               "csv").stdout)))
    assert {(r["pack.name"], r["pack.stack"]) for r in rows} == {
        ("rsp-2.1+acme-lab", " ".join(f"{x['name']}@{x['version']}" for x in stack))}

    # The plain batch again: one line says the stack differs, and every model is
    # re-assessed with the built-in pack alone.
    plain = batch(db_url, EXAMPLES, LINEAGE)
    assert plain.exit_code == 0, plain.stderr
    printed = parse_summary(plain.stdout)
    assert printed.stack == (15, "rsp-2.1+acme-lab", "rsp-2.1")
    assert len(stack_lines(plain.stdout)) == 1
    assert (printed.assessed, printed.unchanged) == (15, 0)
    back = record(db_url)
    assert [stored_line(back.results[m]) for m in sorted(back.results)] == assess_lines(
        EXAMPLES, LINEAGE)
    assert {json.dumps(s.pack_stack) for s in back.latest.values()} == {
        json.dumps(base_stack)}
    assert printed.changed == changes(acme, back)

    # With the stack unchanged there is nothing to say, and nothing is re-assessed.
    again = batch(db_url, EXAMPLES, LINEAGE)
    printed = parse_summary(again.stdout)
    assert (printed.stack, printed.assessed, printed.unchanged) == (None, 0, 15)
    assert stack_lines(again.stdout) == []


def test_an_edited_overlay_is_another_stack_named_with_versions(db_url: str,
                                                                tmp_path: Path) -> None:
    overlay = tmp_path / "acme-lab"
    shutil.copytree(ACME, overlay)
    assert batch(db_url, EXAMPLES, "--pack", overlay).exit_code == 0
    first = record(db_url).latest["larkspur-kite-4"].pack_stack
    rules = overlay / "rules" / "10-acme.yaml"
    rules.write_text(rules.read_text(encoding="utf-8") + "# reviewed again\n",
                     encoding="utf-8")

    edited = batch(db_url, EXAMPLES, "--pack", overlay)
    assert edited.exit_code == 0, edited.stderr
    printed = parse_summary(edited.stdout)
    second = record(db_url).latest["larkspur-kite-4"].pack_stack
    assert first[0] == second[0] and first[1]["version"] != second[1]["version"]
    # The same packs by name: the line tells the stacks apart by their versions.
    assert printed.stack == (10, " + ".join(f"{x['name']} {x['version'][:19]}" for x in first),
                             " + ".join(f"{x['name']} {x['version'][:19]}" for x in second))
    assert (printed.assessed, printed.changed) == (10, [])


def test_an_overlay_that_only_adds_an_action_is_a_change(db_url: str, tmp_path: Path) -> None:
    overlay = spot_checks(tmp_path / "spot-checks")
    assert batch(db_url, EXAMPLES, LINEAGE).exit_code == 0
    builtin = record(db_url)
    expected = {json.loads(line)["model"]: json.loads(line)
                for line in assess_lines(EXAMPLES, LINEAGE, packs=[overlay])}
    spotted = {m for m, doc in expected.items() if "lab_spot_check" in doc["actions"]}
    assert spotted, "some example needs no comprehensive assessment"
    for model in spotted:  # the action is the one difference
        assert {k: v for k, v in contract_values(expected[model]).items() if k != "actions"} \
            == {k: v for k, v in contract_values(builtin.results[model]).items()
                if k != "actions"}

    added = batch(db_url, EXAMPLES, LINEAGE, "--pack", overlay)
    assert added.exit_code == 0, added.stderr
    printed = parse_summary(added.stdout)
    with_spot = record(db_url)
    assert printed.changed == changes(builtin, with_spot)
    assert {m for m, *_ in printed.changed} == spotted
    for model, old, new in printed.changed:
        assert old == new  # neither ASL nor decision moved
        assert printed.details[model] == other_keys(builtin.results[model], expected[model])
        assert len(printed.details[model]) == 1
        old_actions, new_actions = printed.details[model][0].split(" -> ")
        assert old_actions.startswith("actions [") and "'lab_spot_check'" not in old_actions
        assert "'lab_spot_check'" in new_actions

    # Dropping the overlay drops the action: the same models change back.
    dropped = batch(db_url, EXAMPLES, LINEAGE)
    printed = parse_summary(dropped.stdout)
    without = record(db_url)
    assert printed.changed == changes(with_spot, without)
    assert {m for m, *_ in printed.changed} == spotted
    assert all("lab_spot_check" not in without.results[m]["actions"] for m in spotted)


def test_list_of_one_framework_takes_each_model_newest_under_it(db_url: str,
                                                                tmp_path: Path) -> None:
    other = tmp_path / "rsp-copy"
    shutil.copytree(Path(__file__).resolve().parents[1] / "rules" / "rsp-2.1", other)
    pack_yaml = other / "pack.yaml"
    text = pack_yaml.read_text(encoding="utf-8")
    assert text.count("\nname: rsp-2.1\n") == 1
    pack_yaml.write_text(text.replace("\nname: rsp-2.1\n", "\nname: rsp-copy\nstandalone: "
                                      "true\n"), encoding="utf-8")
    kite = EXAMPLES / "security-gap-pause.yaml"
    assert batch(db_url, EXAMPLES).exit_code == 0
    switched = batch(db_url, kite, "--pack", other)
    assert switched.exit_code == 0, switched.stderr
    assert parse_summary(switched.stdout).stack == (1, "rsp-2.1", "rsp-copy")
    engine = connect(db_url)
    try:
        store = Store(engine)
        everything = {s.model_id: s for s in store.all_latest()}
        builtin = {s.model_id: s for s in store.all_latest(framework="rsp-2.1")}
        copy = {s.model_id: s for s in store.all_latest(framework="rsp-copy")}
        assert list(store.all_latest(framework="openai-pf-2")) == []
    finally:
        engine.dispose()
    assert len(everything) == len(builtin) == 10 and list(copy) == ["larkspur-kite-4"]
    assert everything["larkspur-kite-4"] == copy["larkspur-kite-4"]
    assert builtin["larkspur-kite-4"].id < copy["larkspur-kite-4"].id
    assert builtin["larkspur-kite-4"].framework == "rsp-2.1"
    assert [x["name"] for x in copy["larkspur-kite-4"].pack_stack] == ["rsp-copy"]
