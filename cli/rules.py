"""`asl rules`: read, check, test, compare and scaffold rule packs (for policy staff).

Each command parses its options, calls one engine function and renders the result:
`list` and `show` read a loaded pack, `validate` runs the load stages and then
`engine.validate`, `test` runs the packs' YAML cases (`engine.casetest`), `diff`
compares two packs (`engine.packdiff`) and `new` writes a rule and its case
(`engine.scaffold`). Exit status: 0 when all is well, 1 when the pack has problems (or
a case fails), 2 for a usage error. Errors are one line each, never a traceback.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cli.options import EXIT_FAILED, dumps, fail, pack_option
from engine.casetest import CaseRun, run_tests, show_value
from engine.errors import PackError, PackProblem
from engine.evaluator import Evaluator
from engine.join_check import product_joins
from engine.loader import load_pack, pack_stack
from engine.model import Pack, Rule
from engine.packdiff import PackDiff, PortfolioChanges, diff_packs, portfolio_changes
from engine.reference import reference_markdown
from engine.ruletext import catalogue, catalogue_entry, rule_links, rule_row, rule_source
from engine.scaffold import ScaffoldError, pack_yaml, scaffold
from engine.validate import validate_pack

EXIT_USAGE = 2
FORMATS = click.Choice(["text", "json"])
format_option = click.option("--format", "fmt", type=FORMATS, default="text",
                             show_default=True, help="text for people, json for programs.")
paths_argument = click.argument("paths", nargs=-1, metavar="[PATH]...",
                                type=click.Path(exists=True, file_okay=False))


def _rel(path: str | Path) -> str:
    """A path relative to the working directory when it is under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _problem_line(problem: PackProblem) -> str:
    return f"{_rel(problem.file)}:{problem.line}: {problem.code}: {problem.message}"


def _load(dirs: Sequence[Path]) -> Pack:
    """The loaded pack stack, or every load problem on standard error and exit 1."""
    try:
        return load_pack(dirs)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(_problem_line(problem), err=True)
        fail(f"the rule pack has {len(exc.problems)} problem(s), listed above")


def _evaluator(dirs: Sequence[Path]) -> Evaluator:
    """The stack compiled afresh (never a cached evaluator: its files may have changed
    since, which is the point of testing them)."""
    return Evaluator(_load(dirs))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def rules() -> None:
    """Read, check, test, compare and scaffold rule packs.

    Pack directories (PATH, --pack) are loaded over the built-in pack, in the order
    given, except a first one that is a base pack itself (its pack.yaml says
    `standalone: true`, or declares the evidence kinds, as a copy of rules/rsp-2.1
    does): that one is loaded in the built-in's place. `asl assess --pack` and every
    other command read pack directories the same way. Without --pack or --framework,
    list, show, reference, validate and test read the active stack stored in the
    database (--db, as for every command); diff and new read only their directories.

    \b
    Examples:
      asl rules list
      asl rules show status.own.most-severe
      asl rules reference > docs/rule-reference.md
      asl rules validate examples/packs/acme-lab
      asl rules test examples/packs/acme-lab --fail-under 100
      asl rules diff rules/rsp-2.1 my-copy-of-rsp-2.1 --portfolio examples/
      asl rules new --id acme.finding.review --title "..." --cite "RSP v2.1 §3.3" --dir my-pack
    """


# --- list and show ----------------------------------------------------------------------


def _rule_row(pack: Pack, rule: Rule) -> dict[str, Any]:
    return {**rule_row(pack, rule), "file": _rel(rule.file)}


@rules.command("list")
@pack_option
@format_option
def list_rules(db: str | None, packs: tuple[str, ...], fmt: str) -> None:
    """List every rule in force: id, stratum, pack, citation and title.

    \b
    Examples:
      asl rules list
      asl rules list --pack examples/packs/acme-lab --format json
      asl rules list --db /srv/asl/asl.db   # the stack activated in that database
    """
    pack = _load(pack_stack(packs))
    rows = [_rule_row(pack, r) for r in pack.rules]
    if fmt == "json":
        click.echo(dumps(rows, default=str))
        return
    columns = ("id", "stratum", "pack", "cite", "title")
    header = {"id": "ID", "stratum": "STRATUM", "pack": "PACK", "cite": "CITATION",
              "title": "TITLE"}
    widths = {c: max(len(str(r[c])) for r in [header, *rows]) for c in columns}
    for row in [header, *rows]:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


@rules.command()
@pack_option
def reference(db: str | None, packs: tuple[str, ...]) -> None:
    """Print the rule reference (every rule's id, title, citation, `because` and
    stratum, one table per rule file) as Markdown.

    \b
    Examples:
      asl rules reference > docs/rule-reference.md
      asl rules reference --pack examples/packs/acme-lab
    """
    click.echo(reference_markdown(_load(pack_stack(packs))), nl=False)


@rules.command()
@click.argument("rule_id", metavar="[RULE_ID|NAME]", required=False)
@pack_option
@format_option
def show(rule_id: str | None, db: str | None, packs: tuple[str, ...], fmt: str) -> None:
    """Show one rule: its YAML source, the kinds it consumes, negates and produces, and
    the rules that feed it and that it feeds. Given a capability name or a safeguard id
    instead, show that entry of the pack's catalogue; given nothing, list the catalogue:
    every threshold name and safeguard id evidence may use with these packs.

    \b
    Examples:
      asl rules show requirements.highest
      asl rules show acme.cyber.requires-asl3-security --pack examples/packs/acme-lab
      asl rules show                       # capability names and safeguard ids
      asl rules show CBRN-3
    """
    pack = _load(pack_stack(packs))
    if rule_id is None:
        _show_catalogue(catalogue(pack), fmt)
        return
    ids = [r.id for r in pack.rules]
    if rule_id not in ids:
        listed = catalogue(pack)
        entry = catalogue_entry(listed, rule_id)
        if entry is not None:
            _show_entry(entry, fmt)
            return
        names = [*ids, *(c["name"] for c in listed["capabilities"]),
                 *(s["id"] for s in listed["safeguards"]),
                 *(e["id"] for s in listed["safeguards"] for e in s["elements"])]
        close = difflib.get_close_matches(rule_id, names, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            "; `asl rules list` lists the rules, `asl rules show` the catalogue's names"
        fail(f"no rule {rule_id!r} in {pack.name}, nor a capability or safeguard of that "
             f"name{hint}", EXIT_USAGE)
    rule = pack.rule(rule_id)
    data = {**_rule_row(pack, rule), "consumes": sorted(rule.consumes),
            "negates": sorted(rule.negates), "produces": sorted(rule.produces),
            **rule_links(pack, rule), "source": rule_source(rule)}
    if fmt == "json":
        click.echo(dumps(data, default=str))
        return
    click.echo(f"{rule.id}: {rule.title}")
    for label, values in (("cite", [rule.cite]),
                          ("pack", [f"{rule.pack}, stratum {data['stratum']}"]),
                          ("file", [f"{data['file']}:{rule.line}"]),
                          ("consumes", [", ".join(data["consumes"])]),
                          ("negates", [", ".join(data["negates"])]),
                          ("produces", [", ".join(data["produces"])]),
                          ("given", data["given"]), ("fed by", data["fed_by"]),
                          ("feeds", data["feeds"])):
        for index, value in enumerate([v for v in values if v] or ["-"]):
            click.echo(f"  {label if index == 0 else '':<9} {value}")
    click.echo("")
    click.echo(data["source"])


def _show_catalogue(listed: dict[str, Any], fmt: str) -> None:
    """The catalogue as `asl rules show` prints it without a name."""
    if fmt == "json":
        click.echo(dumps({**listed, "capabilities": [{**c, "file": _rel(c["file"])} if c["file"]
                                                     else c for c in listed["capabilities"]],
                          "safeguards": [{**s, "file": _rel(s["file"])} if s["file"] else s
                                         for s in listed["safeguards"]]}))
        return
    click.echo(f"{listed['pack']}: the names evidence may use\n")
    click.echo("capabilities (evaluations[].threshold, findings[].threshold)")
    width = max((len(c["name"]) for c in listed["capabilities"]), default=0)
    for c in listed["capabilities"]:
        click.echo(f"  {c['name'].ljust(width)}  {c['category']:<10}  {c['title']}"
                   f"  [{c['pack']}]")
    click.echo("\nsafeguards (safeguards[].id: a standard, or one of its elements)")
    for s in listed["safeguards"]:
        click.echo(f"  {s['id']}  {s['title']}  [{s['pack']}]")
        for e in s["elements"]:
            click.echo(f"    {e['id']}" + (f"  [{e['pack']}]" if e["pack"] != s["pack"] else ""))


def _show_entry(entry: dict[str, Any], fmt: str) -> None:
    """One catalogue entry as `asl rules show NAME` prints it."""
    if entry.get("file"):
        entry = {**entry, "file": _rel(entry["file"])}
    if fmt == "json":
        click.echo(dumps(entry))
        return
    name = entry.get("name") or entry["id"]
    title = entry.get("title") or f"an element of {entry.get('standard')}"
    click.echo(f"{name}: {title}")
    rows = {"capability": (("category", entry.get("category")),),
            "standard": (("level", entry.get("level")),
                         ("elements", ", ".join(e["id"] for e in entry.get("elements", [])))),
            "element": (("standard", entry.get("standard")),)}[entry["entry"]]
    for label, value in (("entry", entry["entry"]), *rows, ("pack", entry["pack"]),
                         ("file", f"{entry['file']}:{entry['line']}" if entry.get("file")
                          else None)):
        if value:
            click.echo(f"  {label:<9} {value}")


# --- validate -------------------------------------------------------------------------


@rules.command()
@paths_argument
@pack_option
@format_option
def validate(paths: tuple[str, ...], db: str | None, packs: tuple[str, ...], fmt: str) -> None:
    """Check rule packs: every load stage, then rules that can never fire, conflicting
    conclusions, rules without a test case, malformed citations, and misspelt kinds,
    fields, capabilities and safeguard ids. One line per problem, `file:line: code:
    message`; exit status 1 when there is any.

    PATHs are pack directories, loaded over the built-in pack like --pack (default: the
    built-in pack and any --pack overlays).

    \b
    Examples:
      asl rules validate
      asl rules validate examples/packs/acme-lab
      asl rules validate my-pack --format json
    """
    dirs = pack_stack([*packs, *paths])
    warnings: list[PackProblem] = []
    try:
        pack = load_pack(dirs)
        problems = validate_pack(pack)
        warnings = product_joins(pack)
        scope = f"{len(pack.rules)} rules and {sum(len(c.cases) for c in pack.case_files)} " \
                f"cases of {pack.name}"
    except PackError as exc:
        problems, scope = exc.problems, "the pack"
    if fmt == "json":
        click.echo(dumps([{"file": _rel(p.file), "line": p.line, "code": p.code,
                           "message": p.message} for p in problems], default=str))
    else:
        for problem in problems:
            click.echo(_problem_line(problem))
    for warning in warnings:  # a warning, not a problem: the exit status does not change
        click.echo(f"warning: {_problem_line(warning)}", err=True)
    if problems:
        click.echo(f"asl: {len(problems)} problem(s) in {scope}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"asl: {scope}: no problems", err=True)


# --- test -----------------------------------------------------------------------------


def _tested_layers(pack: Pack, dirs: Sequence[Path], paths: Sequence[str]) -> set[str] | None:
    """The names of the packs whose cases and rules PATHs select (None: every pack)."""
    if not paths:
        return None
    wanted = {Path(p).resolve() for p in paths}
    return {pack.layers[i] for i, d in enumerate(dirs) if d.resolve() in wanted}


def _render_run(run: CaseRun, verbose: bool) -> None:
    tested = {rule for file in run.coverage for rule in file.rules}
    for index, result in enumerate(run.results):
        click.echo(f"{'PASS' if result.passed else 'FAIL'} {_rel(result.file)}: {result.name}")
        for line in run.diffs.get(index, []):
            click.echo(f"    {line}")
        if verbose:
            own = sorted(result.fired & tested)
            others = len(result.fired - tested)
            click.echo(f"    fired: {', '.join(own) or 'none of the tested rules'}"
                       + (f" (and {others} rule(s) of other packs)" if others else ""))
    passed = len(run.results) - run.failed
    click.echo(f"\n{passed}/{len(run.results)} cases passed"
               + (f", {run.failed} failed" if run.failed else ""))
    click.echo(f"coverage: {run.covered}/{run.total} rules fired in some case "
               f"({run.percent:.1f}%)")
    for file in run.coverage:
        fired = len(file.rules) - len(file.missed)
        pct = 100.0 * fired / len(file.rules)
        click.echo(f"  {_rel(file.file)}: {fired}/{len(file.rules)} ({pct:.1f}%)")
        if file.missed:
            click.echo(f"    fired in no case: {', '.join(file.missed)}")


@rules.command()
@paths_argument
@pack_option
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="N",
              help="Exit with status 1 when rule coverage is below N percent.")
@click.option("--verbose", "-v", is_flag=True, help="Also list the rules each case fired.")
@format_option
def test(paths: tuple[str, ...], db: str | None, packs: tuple[str, ...],
         fail_under: float | None, verbose: bool, fmt: str) -> None:
    """Run the packs' YAML test cases: PASS or FAIL per case, what a failing case
    expected against what was derived, then rule coverage per rule file. Exit status 1
    when a case fails or coverage is below --fail-under.

    PATHs are pack directories loaded over the built-in pack; only their cases run and
    only their rules count for coverage (default: every case of every pack in use).

    \b
    Examples:
      asl rules test
      asl rules test examples/packs/acme-lab --verbose
      asl rules test --fail-under 100
    """
    dirs = pack_stack([*packs, *paths])
    evaluator = _evaluator(dirs)
    run = run_tests(evaluator, _tested_layers(evaluator.pack, dirs, paths))
    if fmt == "json":
        click.echo(dumps(run.to_json(_rel), default=str))
    else:
        _render_run(run, verbose)
    if not run.results:
        click.echo("asl: no test cases found (a pack's cases go in its tests/ folder)",
                   err=True)
    low = fail_under is not None and run.percent < fail_under
    if low:
        click.echo(f"asl: coverage {run.percent:.1f}% is below --fail-under {fail_under:g}",
                   err=True)
    if run.failed or low:
        sys.exit(EXIT_FAILED)


# --- diff ---------------------------------------------------------------------------------


def _render_diff(diff: PackDiff) -> list[str]:
    lines = [f"{diff.old} -> {diff.new}"]
    sections = (("rules", diff.rules_added, diff.rules_removed, diff.rules_changed),
                ("kinds", diff.kinds_added, diff.kinds_removed, diff.kinds_changed),
                ("catalogue", diff.catalogue_added, diff.catalogue_removed,
                 diff.catalogue_changed))
    for title, added, removed, changed in sections:
        if not (added or removed or changed):
            continue
        lines.append(f"{title}:")
        lines += [f"  + {name}" for name in added]
        lines += [f"  - {name}" for name in removed]
        for entry in changed:
            lines.append(f"  ~ {entry.name}" + (f"  ({_rel_where(entry.where)})"
                                                 if entry.where else ""))
            for change in entry.changes:
                lines.append(f"      {change.part}:")
                lines += [f"        - {x}" for x in change.before]
                lines += [f"        + {x}" for x in change.after]
    if diff.empty:
        lines.append("no differences")
    return lines


def _rel_where(where: str) -> str:
    file, _, line = where.rpartition(":")
    return f"{_rel(file)}:{line}"


def _render_portfolio(changes: PortfolioChanges, source: str) -> list[str]:
    changed = len(changes.models)
    total = changed + changes.unchanged
    lines = [f"portfolio {source}: {changed} of {total} model(s) change"]
    for model, keys in changes.models.items():
        lines.append(f"  {model}")
        lines += [f"    {k.key}: {show_value(k.old)} -> {show_value(k.new)}" for k in keys]
    lines += [f"  only assessed with the old pack: {m}" for m in changes.only_old]
    lines += [f"  only assessed with the new pack: {m}" for m in changes.only_new]
    lines += [f"  rejected with the old pack: {e}" for e in changes.rejected_old]
    lines += [f"  rejected with the new pack: {e}" for e in changes.rejected_new]
    return lines


@rules.command()
@click.argument("old_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("new_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--portfolio", type=click.Path(exists=True), metavar="FILE",
              help="Assess this evidence (file or directory) with both packs and list "
              "which models' contract keys change.")
@format_option
def diff(old_dir: str, new_dir: str, portfolio: str | None, fmt: str) -> None:
    """Compare two packs: rules added, removed and changed (each changed part before
    and after), kinds and catalogue entries; with --portfolio, what changes for each
    model. A directory that is not a base pack (see `asl rules --help`) is compared as
    an overlay on the built-in pack.

    \b
    Examples:
      asl rules diff rules/rsp-2.1 examples/packs/acme-lab
      asl rules diff old-pack/ new-pack/ --portfolio examples/portfolio/lineage.yaml
    """
    old_dirs, new_dirs = pack_stack([old_dir]), pack_stack([new_dir])
    old, new = _load(old_dirs), _load(new_dirs)
    result = diff_packs(old, new)
    changes = None
    if portfolio is not None:
        changes = portfolio_changes(_evaluator(old_dirs), _evaluator(new_dirs), [portfolio])
    if fmt == "json":
        data = result.to_json()
        if changes is not None:
            data["portfolio"] = changes.to_json()
        click.echo(dumps(data, default=str))
        return
    lines = _render_diff(result)
    if changes is not None:
        lines += _render_portfolio(changes, portfolio or "")
    click.echo("\n".join(lines))


# --- new ----------------------------------------------------------------------------------


@rules.command()
@click.option("--id", "rule_id", required=True, help="The new rule's id (acme.finding.review).")
@click.option("--title", required=True, help="One line saying what the rule decides.")
@click.option("--cite", required=True, help='The policy section it encodes ("RSP v2.1 §3.3").')
@click.option("--kind-out", default="action", show_default=True, metavar="KIND",
              help="The kind of fact the rule concludes.")
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False), help="The pack directory (rules/ and tests/ "
              "are created; so is pack.yaml, for a new overlay pack).")
def new(rule_id: str, title: str, cite: str, kind_out: str, directory: str) -> None:
    """Scaffold a rule file and a matching test case in a pack directory, ready for
    `asl rules validate` and `asl rules test`: the rule matches a finding that judges a
    capability crossed and concludes a KIND fact; edit both to say what you mean.

    \b
    Example:
      asl rules new --id acme.finding.review --title "A crossed finding calls for review" \\
          --cite "RSP v2.1 §3.3" --dir my-pack
    """
    root = Path(directory)
    has_pack = (root / "pack.yaml").is_file()
    dirs = pack_stack([root] if has_pack else [])
    try:
        made = scaffold(_load(dirs), rule_id, title, cite, kind_out)
    except ScaffoldError as exc:
        fail(str(exc), EXIT_USAGE)
    targets = [root / "rules" / f"{rule_id}.yaml", root / "tests" / f"{rule_id}.yaml"]
    for target in targets:
        if target.exists():
            fail(f"{_rel(target)} already exists; choose another --id")
    try:
        for target, text in zip(targets, (made.rule_yaml, made.case_yaml), strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if not has_pack:
            (root / "pack.yaml").write_text(pack_yaml(root.resolve().name), encoding="utf-8")
            targets.insert(0, root / "pack.yaml")
    except OSError as exc:
        fail(f"cannot write the scaffold: {exc}")
    _load(pack_stack([root]))
    for target in targets:
        click.echo(f"wrote {_rel(target)}")
    click.echo(f"next: asl rules validate {directory} && asl rules test {directory}")
