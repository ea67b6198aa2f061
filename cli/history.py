"""`asl history`, `asl diff` and `asl list`: reading the record of assessments.

Each reads the database (`--db`, `ASL_DATABASE_URL`, or ./asl.db) and never needs the
evidence files: results and provenance graphs are stored with every assessment.
"""

from __future__ import annotations

import csv
import sys
from typing import Any

import click

from batch.stack import stack_names
from cli.options import EXIT_REJECTED, dumps, fail
from cli.render import table as _table
from cli.store_options import check_assessment, db_option, open_store, stored_history
from engine.framework import (
    builtin_spec,
    builtin_specs,
    default_spec,
    known_decisions,
    known_levels,
)
from knowledge_graph.compare import compare, value_changes
from knowledge_graph.provenance import load
from store.browse import summary_json as _row_json
from store.record import Store, Summary


def _short(version: str) -> str:
    return version[:19]


def _when(stamp: str) -> str:
    return stamp[:19].replace("T", " ")


def _level_names(rows: list[Summary], framework: str | None = None) -> tuple[str, str]:
    """What tables and CSV call the headline level of these rows: their framework's
    label and key (rsp-2.1: `ASL`, `asl`) when they share one framework, else `level`."""
    names = {s.framework for s in rows} or {framework}
    spec = builtin_spec(names.pop()) if len(names) == 1 else None
    if spec is None and not rows and framework is None:
        spec = default_spec()
    if spec is None:
        return "level", "level"
    return spec.level.label, spec.level.key or "level"


def _required_names(rows: list[Summary]) -> list[str]:
    """The names of required safeguards these rows give, in the order they first do."""
    return list(dict.fromkeys(name for s in rows for name in s.required))


def _history_of(store: Store, model: str) -> list[Summary]:
    return stored_history(store, model, f"no stored assessment of a model {model!r}; "
                          "see asl list")


@click.command("history")
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@db_option
def history_command(model: str, fmt: str, db: str | None) -> None:
    """Every stored assessment of MODEL, oldest first: when, with which pack version,
    the ASL and the decision. The first column is the id `asl diff` takes.

    \b
    Example:
      asl history corvid-atlas-5
      asl history corvid-atlas-5 --format json
    """
    found = _history_of(open_store(db, read_only=True), model)
    if fmt == "json":
        click.echo(dumps([_row_json(s) for s in found]))
        return
    click.echo(_table([[str(s.id), _when(s.assessed_at), f"{s.pack_name} {_short(s.pack_version)}",
                        s.level, s.decision, str(s.batch_id or "-")] for s in found],
                      ["id", "assessed (UTC)", "pack", _level_names(found)[0], "decision",
                       "batch"]))


@click.command("diff")
@click.argument("model")
@click.argument("assessments", nargs=-1, type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_option
def diff_command(model: str, assessments: tuple[int, ...], fmt: str, db: str | None) -> None:
    """What changed between two stored assessments of MODEL (ids A B from asl history;
    by default its two newest): each contract key that changed, with the evidence behind
    the change, the conclusions added and removed, and the evidence that changed.

    \b
    Examples:
      asl diff corvid-atlas-5
      asl diff corvid-atlas-5 3 17 --format json
    """
    store = open_store(db, read_only=True)
    found = {s.id: s for s in _history_of(store, model)}
    if len(assessments) not in (0, 2):
        raise click.UsageError("give two assessment ids (A B), or none for the newest two")
    if assessments:
        for aid in assessments:
            check_assessment(model, aid, list(found.values()))
        a, b = assessments
    else:
        if len(found) < 2:
            fail(f"{model} has one stored assessment ({next(iter(found))}); nothing to "
                 "compare it with", EXIT_REJECTED)
        a, b = sorted(found)[-2:]
    results = store.results([a, b])
    change = compare(results[a], load(store.provenance(a)), results[b],
                     load(store.provenance(b)))
    if fmt == "json":
        click.echo(dumps({"model": model, "old": _row_json(found[a]),
                           "new": _row_json(found[b]), **change}))
        return
    click.echo(_diff_text(model, found[a], found[b], change))


def _diff_text(model: str, old: Summary, new: Summary, change: dict[str, Any]) -> str:
    lines = [f"{model}: assessment {old.id} ({_when(old.assessed_at)}, {old.pack_name} "
             f"{_short(old.pack_version)}) -> {new.id} ({_when(new.assessed_at)}, "
             f"{new.pack_name} {_short(new.pack_version)})"]
    if old.pack_version != new.pack_version:
        lines.append("  the rule pack differs: asl rules diff shows how")
    if not change["keys"]:
        lines.append("  no contract key changed")
    for key in change["keys"]:
        lines.append(f"  {key['key']}: {_show(key['old'])} -> {_show(key['new'])}")
        for behind in key["because"]:
            conclusion = behind["conclusion"]["new"] or behind["conclusion"]["old"]
            lines.append(f"    conclusion {conclusion}")
            for evidence in behind["evidence_changed"]:
                lines.append(f"      evidence {evidence}: {_evidence_change(change, evidence)}")
            if not behind["evidence_changed"]:
                lines.append("      (no evidence under it changed: the rules or a carried-over "
                             "reference did)")
    added, removed = change["conclusions_added"], change["conclusions_removed"]
    lines.append(f"  conclusions: {len(added)} added, {len(removed)} removed")
    lines += [f"    + {c}" for c in added] + [f"    - {c}" for c in removed]
    evidence = (len(change["evidence_added"]) + len(change["evidence_removed"])
                + len(change["evidence_changed"]))
    lines.append(f"  evidence: {evidence} items changed")
    for item in [*change["evidence_added"], *change["evidence_removed"],
                 *change["evidence_changed"]]:
        lines.append(f"    {item}: {_evidence_change(change, item)}")
    return "\n".join(lines)


def _evidence_change(change: dict[str, Any], item: str) -> str:
    if item in change["evidence_added"]:
        return "added"
    if item in change["evidence_removed"]:
        return "removed"
    values = change["evidence_changed"][item]
    return ", ".join(value_changes(values["old"], values["new"]))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _known(kind: str, value: str | None, known: list[str]) -> str | None:
    """`value` if it is one of `known`, else a usage error naming them."""
    if value is None or value in known:
        return value
    raise click.BadParameter(f"{value!r} is not a {kind} of any built-in framework; "
                             f"known: {', '.join(known)}", param_hint=f"--{kind}")


@click.command("list")
@click.option("--framework", metavar="NAME",
              help="Only models assessed under this framework (the base pack's name, "
              "e.g. openai-pf-2), each with its newest assessment under it.")
@click.option("--level", metavar="LEVEL",
              help="Only models whose newest assessment has this headline level.")
@click.option("--asl", "asl", metavar="LEVEL", help="The same as --level (an ASL).")
@click.option("--decision", metavar="DECISION",
              help="Only models whose newest assessment has this decision.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
              default="table", show_default=True)
@db_option
def list_command(framework: str | None, level: str | None, asl: str | None,
                 decision: str | None, fmt: str, db: str | None) -> None:
    """Every stored model with its newest assessment, and the packs it was made with
    (the table names them; JSON and CSV give each pack's version too).

    \b
    Examples:
      asl list
      asl list --asl ASL-3 --decision pause
      asl list --framework openai-pf-2 --level high
      asl list --format csv > portfolio.csv
    """
    specs = builtin_specs()
    level = _known("level", level or asl, known_levels(specs))
    decision = _known("decision", decision, known_decisions(specs))
    rows = list(open_store(db, read_only=True).all_latest(level=level, decision=decision,
                                                         framework=framework))
    if fmt == "json":
        click.echo(dumps([_row_json(s) for s in rows]))
        return
    label, key = _level_names(rows, framework)
    required = _required_names(rows) if rows else list(_default_required(framework))
    mixed = len({s.framework for s in rows}) > 1
    first = ["model", *(["framework"] if mixed else [])]

    def lead(s: Summary) -> list[str]:
        return [s.model_id, *([s.framework] if mixed else []), s.level,
                *(str(s.required.get(name, "-")) for name in required)]

    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*first, key, *(f"required.{name}" for name in required),
                         "decision", "missing_safeguards", "assessed_at", "assessment",
                         "pack.version", "pack.name", "pack.stack"])
        for s in rows:
            writer.writerow([*lead(s), s.decision, " ".join(s.missing_safeguards),
                             s.assessed_at, s.id, s.pack_version, s.pack_name,
                             " ".join(f"{layer['name']}@{layer['version']}"
                                      for layer in s.pack_stack)])
        return
    header = [*first, label, *required, "decision", "missing", "pack", "assessed (UTC)",
              "assessment"]
    values = [[*lead(s), s.decision, str(len(s.missing_safeguards)),
               stack_names(s.pack_stack), _when(s.assessed_at), str(s.id)] for s in rows]
    click.echo(_table(values, header) if values else "no stored assessments match")


def _default_required(framework: str | None) -> tuple[str, ...]:
    """The required names an empty CSV's header gives: the framework's (the default's)."""
    spec = (builtin_spec(framework) if framework else None) or default_spec()
    key = spec.key("required")
    return key.names if key is not None else ()
