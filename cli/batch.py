"""`asl batch` and `asl db`: assess portfolios into the record, and manage its schema.

The work itself is batch.runner's; this module parses options, picks the executor,
shows progress (cli.progress), prints the closing summary and writes `--output`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from batch.executors import CHUNK, DaskExecutor, Executor, InProcess, LocalPool, Results
from batch.runner import Batch, BatchReport, contract_changes
from batch.spool import Spool
from batch.stack import describe_stacks
from batch.work import Job
from cli.db import db_check, refuse_if_damaged, write_failed
from cli.extras import require
from cli.options import (
    EXIT_FAILED,
    EXIT_REJECTED,
    dumps,
    fail,
    load_evaluator,
    pack_option,
)
from cli.progress import INTERVAL_VAR, ProgressError, Quiet, progress_for
from cli.store_options import db_option, open_store
from engine.assess import vocabulary
from engine.errors import InputError
from engine.evidence import load_evidence
from engine.framework import FrameworkSpec, default_spec, spec_of
from engine.model import Pack
from knowledge_graph.compare import contract_values
from store.db import current_revision, describe, head_revision
from store.record import Store

SHOW_AT_MOST = 50
OUTPUT_SUFFIXES = (".jsonl", ".csv")


class Adaptive:
    """The local executor: small generations run in this process (no pool to start);
    the pool of `workers` processes starts the first time a generation is big enough."""

    def __init__(self, packs: Sequence[str], workers: int) -> None:
        self.inline = InProcess(packs)
        self.packs = packs
        self.workers = workers
        self.pool: LocalPool | None = None

    def run(self, jobs: Sequence[Job]) -> Iterator[Results]:
        if self.workers == 1 or len(jobs) <= CHUNK:
            return self.inline.run(jobs)
        if self.pool is None:
            self.pool = LocalPool(self.packs, self.workers)
        return self.pool.run(jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _check_output(output: str | None) -> None:
    if output is None:
        return
    path = Path(output)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{output}: expected a .jsonl or .csv file name",
                                 param_hint="--output")
    parent = path.parent  # "." for a bare file name
    if not parent.is_dir():
        raise click.BadParameter(f"{output}: directory {parent} does not exist",
                                 param_hint="--output")
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"{output}: directory {parent} is not writable",
                                 param_hint="--output")


@click.command("batch")
@click.argument("portfolios", nargs=-1)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default="the number of CPUs", help="Worker processes (or Dask workers).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="local: a process pool on this machine; dask: a Dask "
              "distributed cluster (a LocalCluster of --jobs workers unless --scheduler).")
@click.option("--scheduler", metavar="ADDRESS", help="A running Dask scheduler, e.g. "
              "tcp://10.0.0.5:8786 (implies --executor dask).")
@click.option("--output", "-o", metavar="FILE.jsonl|FILE.csv",
              help="Also write every portfolio model's result (unchanged ones included), "
              "one per line: the output contract as JSON Lines, or its keys as CSV.")
@click.option("--force", is_flag=True, help="Re-assess models whose input and pack are "
              "unchanged since their last assessment.")
@click.option("--reassess", is_flag=True, help="Instead of PORTFOLIOS, re-run the stored "
              "models whose results could depend on rules that changed (use with --pack).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress on standard error (default: when it is a terminal): a "
              f"bar on a terminal, else a line every {INTERVAL_VAR} seconds (default 5) "
              "with done/total, rate and time left.")
@pack_option
def batch_command(portfolios: tuple[str, ...], db: str | None, jobs: int, executor: str,
                  scheduler: str | None, output: str | None, force: bool, reassess: bool,
                  progress: bool | None, packs: tuple[str, ...]) -> None:
    """Assess every model of PORTFOLIOS (files, directories, - for standard input) into
    the record, in lineage order, and print a summary.

    Results are committed as they arrive (a worker's chunk in one transaction). Models
    whose evidence, carried-over reference and pack are unchanged since their last
    assessment are skipped, so a batch that was stopped, even killed, resumes where it
    was by running it again.

    \b
    Examples:
      asl batch examples/ examples/portfolio/lineage.yaml
      asl batch portfolio.jsonl --jobs 2 --output results.csv
      asl batch portfolio.jsonl --executor dask --scheduler tcp://10.0.0.5:8786
      asl batch --reassess --pack my-lab-pack/
      ASL_DATABASE_URL=postgresql://asl@db.internal/asl asl batch portfolio.yaml
    """
    if reassess and portfolios:
        raise click.UsageError("--reassess re-runs stored models; give no PORTFOLIOS")
    # A write failing on PostgreSQL is reported in one line (cli.db.write_failed); psycopg
    # would add its own warning on standard error as it abandons the failed pipeline.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    if not reassess and not portfolios:
        raise click.UsageError("give at least one PORTFOLIO (or --reassess)")
    _check_output(output)
    try:
        shown = progress_for(progress, sys.stderr)
    except ProgressError as exc:
        fail(str(exc), EXIT_REJECTED)
    if scheduler is not None:
        executor = "dask"
    if executor == "dask":
        require("dask", "--executor dask")
    try:
        with shown:
            report, store, pack = _run(shown, portfolios, db, jobs, executor, scheduler,
                                       force, reassess, packs)
    except KeyboardInterrupt:
        fail("interrupted; every result finished so far is stored, and running the same "
             "command again resumes", 130)
    except BrokenProcessPool:
        fail("a worker process died (out of memory, or killed); every result finished so "
             "far is stored, and running the same command again resumes")
    except DBAPIError as exc:
        write_failed(db, exc)
    for error in sorted(report.rejected):
        click.echo(str(error), err=True)
    if output is not None:
        _write_output(store, report, output, pack.spec)
    changed = report.changed()[:SHOW_AT_MOST]
    # The level and the decision are on a changed model's own line; other keys below it.
    headline = (pack.spec.level.key or "level", "decision")
    click.echo(summary(report, pack.name, describe(store.engine.url.render_as_string(False)),
                       reassess, contract_changes(store, changed, leave_out=headline),
                       pack.spec))
    if report.rejected:
        sys.exit(EXIT_REJECTED)


def _run(shown: Quiet, portfolios: tuple[str, ...], db: str | None, jobs: int,
         executor: str, scheduler: str | None, force: bool, reassess: bool,
         packs: tuple[str, ...]) -> tuple[BatchReport, Store, Pack]:
    """Load the pack, open the record, read the portfolios and run the batch, telling
    `shown` what is going on; the report, the store and the pack."""
    shown.phase("loading the rule pack")
    evaluator = load_evaluator(packs)
    shown.phase("opening the database")
    store = open_store(db)  # FULL: its decision-log entries must survive power loss
    refuse_if_damaged(store, db)
    rejected: list[InputError] = []
    spool = Spool()  # each document's bytes wait on disk until their generation comes
    if not reassess:
        shown.phase("reading portfolios")
        try:
            loaded = load_evidence(portfolios, vocabulary(evaluator.pack), stdin=sys.stdin,
                                   keep=spool.keep, table=spool)
        except OSError as exc:
            spool.close()
            fail(f"cannot park the portfolio in a temporary file ({tempfile.gettempdir()}, "
                 f"set TMPDIR to choose another directory): {exc.strerror or exc}",
                 EXIT_FAILED)
        rejected = loaded.errors  # the documents that passed are the spool's
        del loaded
        spool.done_reading()
    shown.phase("finding what to re-assess" if reassess else "starting")
    work = _executor(executor, packs, jobs, scheduler)

    def assessing(total: int) -> None:
        shown.phase("re-assessing" if reassess else "assessing")
        shown.set_total(total)

    try:
        runner = Batch(store, evaluator.pack, work, progress=shown.advance, overlays=packs,
                       total=assessing)
        if reassess:
            report = runner.reassess(vocabulary(evaluator.pack), force=force)
        else:
            report = runner.run(spool, portfolios, force=force, rejected=rejected)
    finally:
        work.close()
        spool.close()
    return report, store, evaluator.pack


def _executor(kind: str, packs: Sequence[str], jobs: int, scheduler: str | None) -> Executor:
    if kind == "local":
        return Adaptive(packs, jobs)
    try:
        return DaskExecutor(packs, jobs, scheduler)
    except (OSError, TimeoutError) as exc:
        if scheduler is None:
            fail(f"cannot start a local Dask cluster of {jobs} workers: {exc}", EXIT_FAILED)
        fail(f"cannot reach the Dask scheduler {scheduler}: {exc}", EXIT_FAILED)


def summary(report: BatchReport, pack_name: str, where: str, reassess: bool = False,
            details: dict[str, list[str]] | None = None,
            spec: FrameworkSpec | None = None) -> str:
    """The closing summary: counts by headline level (rsp-2.1: ASL) and decision, the
    models that need action (any decision but the framework's least restrictive), the
    models last assessed with another pack stack, and the models whose result changed
    (any key of the output contract), each with its level and decision before and after
    and, from `details`, every other key that changed (`key old -> new`)."""
    spec = spec or default_spec()
    order = spec.decisions
    outcomes = sorted(report.outcomes.values(), key=lambda o: o.model)
    levels = Counter(o.level for o in outcomes)
    decisions = Counter(o.decision for o in outcomes)
    what = "re-assessment" if reassess else "batch"
    lines = [f"{what} {report.batch_id}: {_count(len(outcomes), 'model')} with {pack_name} "
             f"{report.pack_version[:19]} into {where}",
             f"  assessed {report.assessed}, unchanged {report.skipped} (skipped), "
             f"rejected {len(report.rejected)}"]
    if report.other_stacks:
        lines.append(_stack_line(report))
    by_level = f"by {spec.level.label}"
    lines += [f"  {by_level:<13}" + (", ".join(f"{k}: {levels[k]}" for k in sorted(levels))
                                     or "-"),
              "  by decision  " + (", ".join(f"{k}: {decisions[k]}" for k in order
                                             if decisions[k]) or "-")]
    action = sorted((o for o in outcomes if o.decision != spec.needs_no_action),
                    key=lambda o: (_rank(order, o.decision), o.model))
    lines.append(f"  need action  {len(action)}")
    width = max((len(o.model) for o in action[:SHOW_AT_MOST]), default=0)
    level_width = max((len(o.level) for o in action[:SHOW_AT_MOST]), default=0)
    for o in action[:SHOW_AT_MOST]:
        lines.append(f"    {o.model:<{width}}  {o.level:<{level_width}}  {o.decision:<19}  "
                     f"{len(o.actions)} actions")
    if len(action) > SHOW_AT_MOST:
        lines.append(f"    ... and {len(action) - SHOW_AT_MOST} more (asl list "
                     f"--decision {'|'.join(order[:-1])})")
    changed = report.changed()
    lines.append(f"  changed      {len(changed)} (output contract, since the previous "
                 "assessment)")
    width = max((len(o.model) for o in changed[:SHOW_AT_MOST]), default=0)
    for o in changed[:SHOW_AT_MOST]:
        assert o.before is not None
        lines.append(f"    {o.model:<{width}}  {o.before[0]} {o.before[1]:<19} -> "
                     f"{o.level} {o.decision}")
        lines += [f"      {change}" for change in (details or {}).get(o.model, [])]
    if len(changed) > SHOW_AT_MOST:
        lines.append(f"    ... and {len(changed) - SHOW_AT_MOST} more (asl diff MODEL)")
    return "\n".join(lines)


def _rank(order: Sequence[str], decision: str) -> int:
    """A decision's place in the framework's order (one it does not name: last)."""
    return order.index(decision) if decision in order else len(order)


def _stack_line(report: BatchReport) -> str:
    """One line: how many models this run assessed that had last been assessed with
    another pack stack, that stack (or those stacks), and this run's."""
    stacks = sorted(report.other_stacks.items())
    old, new = describe_stacks([[{"name": name, "version": version} for name, version in stack]
                                for stack, _ in stacks], report.stack)
    if len(old) == 1:
        before = old[0]
    else:
        before = "; ".join(f"{label} ({_count(n, 'model')})"
                           for label, (_, n) in zip(old, stacks, strict=True))
    return (f"  pack stack   differs for {_count(report.other_stacks.total(), 'model')} "
            f"(re-assessed): {before} -> {new}")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _write_output(store: Store, report: BatchReport, output: str,
                  spec: FrameworkSpec) -> None:
    """Write every kept model's result to `output`, whole or not at all: into a temporary
    file beside it, renamed over it at the end."""
    path = Path(output)
    ids = [report.outcomes[m].assessment_id for m in sorted(report.outcomes)]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            rows = _results(store, ids)
            if path.suffix.lower() == ".csv":
                _write_csv(out, rows, spec)
            else:
                for result in rows:
                    out.write(dumps(result, indent=None) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_REJECTED)


def _results(store: Store, ids: Sequence[int], chunk: int = 500) -> Iterator[dict[str, Any]]:
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        found = store.results(part)
        for aid in part:
            yield found[aid]


def csv_fixed(spec: FrameworkSpec) -> list[str]:
    """The CSV columns every result of the framework fills, before a column per tracked
    capability: model, the headline level, the keys `asl assess` summarises (mappings by
    name), and the pack (rsp-2.1: model, asl, required.deployment, required.security,
    comprehensive_assessment_required, decision, missing_safeguards, actions, ...)."""
    columns = ["model", spec.level.key or "level"]
    for name in spec.summary:
        key = spec.key(name)
        if key is None or key.category is not None or key.key == spec.level.key:
            continue
        columns += [f"{key.key}.{n}" for n in key.names] if key.by else [key.key]
    return [*columns, "pack.name", "pack.version"]


def csv_row(result: dict[str, Any], spec: FrameworkSpec | None = None) -> dict[str, Any]:
    """The contract keys of one result as a flat CSV row: the fixed columns, then a
    column per tracked capability's status (lists joined with spaces)."""
    spec = spec or spec_of(result)
    flat = contract_values(result, spec)
    row: dict[str, Any] = {"model": result["model"], "pack.name": result["pack"]["name"],
                           "pack.version": result["pack"]["version"]}
    for key, value in flat.items():
        if isinstance(value, list):
            value = " ".join(value)
        elif isinstance(value, bool):
            value = str(value).lower()
        row[key] = value
    fixed = csv_fixed(spec)
    statuses = [key for key in flat if key not in fixed]
    return {key: row.get(key, "") for key in [*fixed, *statuses]}


def _write_csv(out: io.TextIOBase, results: Iterator[dict[str, Any]],
               spec: FrameworkSpec) -> None:
    first = next(results, None)
    if first is None:
        csv.writer(out).writerow(csv_fixed(spec))
        return
    row = csv_row(first, spec)
    writer = csv.DictWriter(out, fieldnames=list(row), restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerow(row)
    for result in results:
        writer.writerow(csv_row(result, spec))


@click.group("db")
def db_group() -> None:
    """Manage the assessment database's schema.

    \b
    Example:
      asl db upgrade --db postgresql://asl@localhost/asl
    """


@db_group.command("upgrade")
@db_option
def db_upgrade(db: str | None) -> None:
    """Bring the database's schema to the newest revision (also done on first use).

    \b
    Example:
      asl db upgrade
      asl db upgrade --db /srv/asl/asl.db
    """
    store = open_store(db)
    click.echo(f"{describe(store.engine.url.render_as_string(False))}: schema at revision "
               f"{current_revision(store.engine)} (newest {head_revision()})")


db_group.add_command(db_check)
