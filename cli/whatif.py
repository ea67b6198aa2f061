"""`asl what-if` and `asl impact`: what changes if the evidence changes, and what rests on it.

Both are thin: they assess the evidence through the engine's front door, call
`engine.whatif` or `knowledge_graph.impact`, and render. Exit status as for `asl
assess`: 2 for a bad edit, an unknown id or rejected evidence (bad edits, and a model
that could not be assessed, print nothing on standard output), 1 when the pack or the
engine failed.
"""

from __future__ import annotations

import difflib
import json
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import networkx as nx
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from cli.options import (
    EXIT_REJECTED,
    assess_inputs,
    deferred_pack_option,
    dumps,
    fail,
    load_evaluator,
    pack_option,
    report,
)
from cli.progress import Quiet, progress_for
from cli.store_options import existing_record, open_store, stored_overlays
from engine.api import AssessmentRun, assess
from engine.errors import AssessmentError, InputError
from engine.evidence_reading import STDIN_NAME
from engine.facts_id import render_value
from engine.whatif import SET, UNSET, EditRejected, WhatIf, parse_edit
from engine.whatif import what_if as run_what_if
from knowledge_graph.impact import (
    UnknownEvidence,
    concluded_by,
    evidence_nodes,
    portfolio_graph,
    rests_on_evidence,
    rule_reads,
    rule_uses,
)
from knowledge_graph.provenance import matched
from knowledge_graph.report import provenance
from knowledge_graph.whatif import changes_of, conclusion_data, what_if_report
from store import audit
from store.canonical import run_input
from store.db import database_url, describe


def _show(value: Any) -> str:
    """A contract value for text output: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={render_value(v)}" for k, v in sorted(values.items()))


def _render_whatif(result: WhatIf, changes: list[dict[str, Any]],
                   concluded: list[dict[str, Any]]) -> str:
    lines = [f"what-if for {result.model} ({result.file})"]
    lines += [f"  {edit}" for edit in result.edits]
    models = [result.model, *sorted({c["model"] for c in [*changes, *concluded]}
                                    - {result.model})]
    if not changes and not concluded:
        lines += ["", "no contract key or conclusion changed"]
    width = max([len(c["key"]) for c in changes] + [len("conclusions")]) + 2
    for model in models:
        mine = [c for c in changes if c["model"] == model]
        theirs = [c for c in concluded if c["model"] == model]
        if not mine and not theirs:
            continue
        lines += ["", model]
        for change in mine:
            if "added" in change:
                parts = [f"-{x}" for x in change["removed"]] + [f"+{x}" for x in change["added"]]
                text = textwrap.fill(" ".join(parts), width=100, initial_indent=" " * (width + 2),
                                     subsequent_indent=" " * (width + 2),
                                     break_on_hyphens=False).lstrip()
            else:
                text = f"{_show(change['before'])} -> {_show(change['after'])}"
            lines.append(f"  {change['key']:<{width}}{text}")
        if theirs:
            count = {k: sum(c["change"] == k for c in theirs) for k in ("added", "removed")}
            lines.append(f"  {'conclusions':<{width}}{count['added']} added, "
                         f"{count['removed']} removed")
            lines += [f"    {'+' if c['change'] == 'added' else '-'} {c['id']}  ({c['rule']})"
                      for c in theirs]
    return "\n".join(lines) + "\n"


@click.command("what-if")
@click.argument("file")
@click.option("--model", "model_id", help="The model to change (needed for a portfolio).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Set a field of the model's document; VALUE is YAML (0.3, true, [api], "
              "a level). List entries are addressed by id: evaluations[ID].score, "
              "findings[ID].verdict, safeguards[ID].status (a safeguard not listed is "
              "added). Repeatable; applied in order.")
@click.option("--unset", "unsets", multiple=True, metavar="PATH",
              help="Remove a field or a whole entry (evaluations[ID]). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: {changes, conclusion_changes, before, after}.")
@pack_option  # and --db
def what_if(file: str, model_id: str | None, sets: tuple[str, ...], unsets: tuple[str, ...],
            fmt: str, db: str | None, packs: tuple[str, ...]) -> None:
    """Re-assess FILE with some evidence changed, and show every contract key and
    conclusion that changes, in the model and in the models of its portfolio that carry
    its determination over. Nothing is stored; when there is a record of assessments
    (--db), the what-if is entered in its decision log, as the service's are.

    \b
    Examples:
      asl what-if examples/security-gap-pause.yaml \\
          --set 'safeguards[asl3-security.audits].status=implemented'
      asl what-if examples/portfolio/lineage.yaml --model corvid-atlas-5 \\
          --set 'evaluations[atlas5-bio-acquisition-2026-01].score=0.3' --format json
      asl what-if model.yaml --set deployment.channels=[api] --unset 'findings[rt-7]'
    """
    if not sets and not unsets:
        raise click.UsageError("give at least one --set PATH=VALUE or --unset PATH")
    label = STDIN_NAME if file == "-" else file
    edits, bad = [], []
    for option, text in [*((SET, t) for t in sets), *((UNSET, t) for t in unsets)]:
        try:
            edits.append(parse_edit(option, text))
        except ValueError as exc:
            path = text.partition("=")[0] if option == SET else text
            bad.append(InputError(label, f"{option} {path}", str(exc)))
    if bad:
        report(bad)
        sys.exit(EXIT_REJECTED)
    run = assess([file], evaluator=load_evaluator(packs), stdin=sys.stdin)
    try:
        result = run_what_if(run, edits, model_id, label)
    except EditRejected as exc:
        report([*run.load_errors, *exc.errors])
        sys.exit(EXIT_REJECTED)
    except AssessmentError as exc:
        fail(f"assessment failed: {exc}")
    report([*result.errors, *result.after_errors])
    if result.model not in result.before or result.model not in result.after:
        sys.exit(EXIT_REJECTED)  # the model itself could not be assessed: said above
    found = what_if_report(result)
    _log(db, run, found)
    if fmt == "json":
        click.echo(dumps(found))
    else:
        changes, concluded = changes_of(result)
        click.echo(_render_whatif(result, changes, concluded), nl=False)
    if result.errors or result.after_errors:
        sys.exit(EXIT_REJECTED)


def _log(db: str | None, run: AssessmentRun, found: dict[str, Any]) -> None:
    """Enter a what-if in the decision log of the record at `db` (actor `cli:` and the
    OS user), as service.md asks of every what-if, from the service or the CLI; nothing
    when there is no record there (a SQLite file that does not exist is not made for
    it). The entry hashes the canonical evidence and the report, as the service's do."""
    url = existing_record(db)
    if url is None:
        return
    pack = run.evaluator.pack
    store = open_store(db)
    try:
        with store.engine.begin() as conn:
            audit.append(conn, actor=audit.cli_actor(), action="what-if", pack=pack.name,
                         pack_version=pack.version,
                         input_sha256=audit.sha256_of(run_input(run)),
                         result_sha256=audit.sha256_of(found))
    except SQLAlchemyError as exc:
        fail(f"cannot write the decision log of {describe(url)}: "
             f"{str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}")
    finally:
        store.engine.dispose()


def _evidence_impact(G: nx.DiGraph, evidence_id: str) -> dict[str, Any]:
    try:
        found = rests_on_evidence(G, evidence_id)
    except UnknownEvidence as exc:
        fail(f"{exc}; an evidence id is an evaluation or finding id as written, or a fact "
             "id such as deployment.channels:api or safeguard:asl3-security.audits",
             EXIT_REJECTED)
    stated = [{"model": G.nodes[n]["model"], "fact": G.nodes[n]["local"],
               "entry": G.nodes[n]["info"].get("entry")} for n in evidence_nodes(G, evidence_id)]
    conclusions = [conclusion_data(G, f"{m}::{c}", model=m) for m, c in found]
    return {"evidence": evidence_id, "stated_in": stated, "conclusions": conclusions,
            "models": sorted({c["model"] for c in conclusions})}


def _rule_impact(G: nx.DiGraph, evaluator: Any, rule_id: str) -> dict[str, Any]:
    rules = {rule.id: rule for rule in evaluator.pack.rules}
    if rule_id not in rules:
        guess = difflib.get_close_matches(rule_id, sorted(rules), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        fail(f"unknown rule {rule_id!r}{hint}; the pack {evaluator.pack.name} has "
             f"{len(rules)} rules", EXIT_REJECTED)
    uses = []
    for model, firing in rule_uses(G, rule_id):
        node = f"{model}::{firing}"
        uses.append({"model": model, "firing": firing, "because": G.nodes[node]["because"],
                     "matched": [G.nodes[f]["local"] if G.nodes[f]["model"] == model else f
                                 for f in matched(G, node)],
                     "conclusions": [conclusion_data(G, f"{model}::{c}")
                                     for c in concluded_by(G, model, firing)]})
    rule = rules[rule_id]
    return {"rule": rule_id, "title": rule.title, "cite": rule.cite, "pack": rule.pack,
            "uses": uses, "models": sorted({u["model"] for u in uses})}


def _render_evidence(report: dict[str, Any]) -> str:
    where = "; ".join(f"{s['model']} ({s['entry'] or s['fact']})" for s in report["stated_in"])
    lines = [f"evidence {report['evidence']}: stated in {where}",
             f"{len(report['conclusions'])} conclusions in {len(report['models'])} "
             f"model(s) rest on it"]
    rows = report["conclusions"]
    kind_w = max((len(c["kind"]) for c in rows), default=0) + 2
    value_w = max((len(_values(c["value"])) for c in rows), default=0) + 2
    for model in report["models"]:
        mine = [c for c in rows if c["model"] == model]
        lines += ["", f"{model} ({len(mine)})"]
        lines += [f"  {c['kind']:<{kind_w}}{_values(c['value']):<{value_w}}{c['rule']}"
                  for c in mine]
    return "\n".join(lines) + "\n"


def _render_rule(report: dict[str, Any]) -> str:
    count = len(report["uses"])
    head = f"rule {report['rule']}: {report['title']} [{report['cite']}]"
    if not count:
        return f"{head}\ndid not fire for any model\n"
    lines = [head, f"fired {count} time(s) in {len(report['models'])} model(s)"]
    for use in report["uses"]:
        lines += ["", f"{use['model']}: {use['because']}",
                  f"  matched    {', '.join(use['matched'])}"]
        lines += [f"  concluded  {c['kind']}: {_values(c['value'])}"
                  for c in use["conclusions"]]
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("files", nargs=-1)
@click.option("--evidence", "evidence_id", metavar="ID",
              help="An evidence item: an evaluation or finding id as written in a model "
              "document (or a fact id such as deployment.channels:api).")
@click.option("--rule", "rule_id", metavar="RULE_ID", help="A rule id of the pack.")
@click.option("--draft", "draft_name", metavar="NAME",
              help="A draft pack awaiting activation in the database (--db): which stored "
              "models would get another result once it is active. Takes no FILES.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@deferred_pack_option  # and --db; --draft reads the stored stack itself, with the draft
def impact(files: tuple[str, ...], evidence_id: str | None, rule_id: str | None,
           draft_name: str | None, fmt: str, db: str | None,
           packs: tuple[str, ...] | None) -> None:
    """List the models and conclusions in FILES (a portfolio) that rest on an evidence
    item, following carried-over determinations from model to model, or where a rule
    fired and what it concluded; with --draft, every stored model a draft pack would
    change.

    With --draft NAME, the database's active stack is compared with that stack with the
    stored draft NAME, over every stored model (as the web UI's draft page shows it);
    only the models the draft could change are assessed again.

    \b
    Examples:
      asl impact examples/portfolio/lineage.yaml --evidence atlas5-bio-acquisition-2026-01
      asl impact examples/portfolio/lineage.yaml --rule requirements.carry-over.security
      asl impact --draft acme-lab --db asl.db
    """
    if draft_name is not None:
        if files or evidence_id or rule_id or packs is not None:
            raise click.UsageError("--draft compares the database's active stack with the "
                                   "draft over the stored models: give no FILES, --evidence, "
                                   "--rule or --pack")
        _draft_impact(draft_name, fmt, db)
        return
    if not files:
        raise click.UsageError("give the portfolio FILES (or --draft NAME)")
    if (evidence_id is None) == (rule_id is None):
        raise click.UsageError("give exactly one of --evidence ID or --rule RULE_ID")
    run = assess_inputs(files, stored_overlays(db) if packs is None else packs)
    evaluator = run.evaluator
    G = portfolio_graph({a.model: provenance(a) for a in run.assessments},
                        rule_reads(evaluator.pack.rules), evaluator.pack.spec.level.kind)
    if evidence_id is not None:
        found = _evidence_impact(G, evidence_id)
        text = _render_evidence(found)
    else:
        found = _rule_impact(G, evaluator, rule_id or "")
        text = _render_rule(found)
    click.echo(dumps(found) if fmt == "json" else text, nl=fmt == "json")
    if run.rejected:
        sys.exit(EXIT_REJECTED)


def _draft_impact(name: str, fmt: str, db: str | None) -> None:
    """`asl impact --draft NAME`: batch.impact.draft_impact of the database's active
    stack and that stack with the stored draft NAME, over every stored model. The stack
    and the draft are read once, in one transaction, so the two evaluators and the stack
    the answer names are the same stack however packs are activated meanwhile."""
    from batch.draft_stack import with_draft
    from batch.impact import draft_impact
    from store import packs as stored_packs
    from store.db import reason

    url = existing_record(db)
    if url is None:
        fail(f"no database at {describe(database_url(db))}: the draft and the models it "
             "would change are stored there", EXIT_REJECTED)
    store = open_store(db, read_only=True)
    root = Path(tempfile.mkdtemp(prefix="asl-draft-"))
    try:
        try:
            with store.engine.connect() as conn:
                stack = stored_packs.active_overlays(conn)
                draft = stored_packs.draft(conn, name)
        except DBAPIError as exc:  # a damaged or foreign table: one line, never a traceback
            fail(f"cannot use database {describe(url)}: its stored packs cannot be read: "
                 f"{reason(exc)}", EXIT_REJECTED)
        if draft is None:
            fail(f"no draft pack {name!r} in {describe(url)}", EXIT_REJECTED)
        layers = [(p.name, stored_packs.materialize(p, root)) for p in stack]
        before = load_evaluator([str(d) for _, d in layers])
        after = load_evaluator([str(d) for d in with_draft(
            layers, name, stored_packs.materialize(draft, root))])
        with progress_for(None, sys.stderr) as shown:
            found = draft_impact(store, before, after, before.pack.framework,
                                 _progress(shown))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        store.engine.dispose()
    result = {"draft": name, "version": draft.version,
              "stack": [{"name": p.name, "version": p.version} for p in stack],
              **found.to_json()}
    click.echo(dumps(result) if fmt == "json" else _render_draft(result), nl=fmt == "json")


def _progress(shown: Quiet) -> Callable[[str, int, int], None]:
    """The draft impact's progress (phase, done, total) on `asl batch`'s bar or lines."""
    last = {"phase": "", "done": 0}

    def tell(phase: str, done: int, total: int) -> None:
        if phase != last["phase"]:
            shown.phase(phase)
            if total:
                shown.set_total(total)
            last.update(phase=phase, done=0)
        shown.advance(done - last["done"])
        last["done"] = done

    return tell


def _render_draft(result: dict[str, Any]) -> str:
    """The text of `asl impact --draft`: the counts, then each model that changes with
    every contract key that changes."""
    models = result["models"]
    lines = [f"draft {result['draft']} ({result['version']}) over the active stack: "
             f"{result['stored']} stored model(s), {result['reassessed']} could change and "
             "were assessed with both stacks",
             f"{len(models)} would change, {result['unchanged']} unchanged"]
    for side, rejected in (("active stack", result["rejected_old"]),
                           ("with the draft", result["rejected_new"])):
        lines += [f"rejected ({side}): {line}" for line in rejected]
    width = max((len(c["key"]) for changes in models.values() for c in changes), default=0) + 2
    for model, changes in models.items():
        lines += ["", model]
        lines += [f"  {c['key']:<{width}}{_show(c['old'])} -> {_show(c['new'])}"
                  for c in changes]
    return "\n".join(lines) + "\n"
