"""Checking the record for damage before trusting it: `asl db check`, and the quick
check a batch makes before it writes.

SQLite has its own page-level checks: `PRAGMA integrity_check` (every page, every
index entry against its row, foreign keys) and `PRAGMA quick_check` (the same without
matching index entries to rows; it still reads every page). A file whose pages are
damaged would otherwise be written to in silence, burying the damage under new rows.

PostgreSQL has no single equivalent. Where the `amcheck` extension is installed,
`bt_index_check` verifies every B-tree index of the record's tables (with
`heapallindexed` in the full check); the full check also reads every row of every
table, which fails on a damaged page. Without amcheck the quick check has nothing cheap
to run, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from store.db import reason

SHOW_AT_MOST = 20  # problems listed; SQLite's own checks stop at this many too


@dataclass
class CheckReport:
    """What one check ran (`checks`) and what it found (`problems`, empty when sound)."""

    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.problems


def check_database(engine: Engine, quick: bool = False) -> CheckReport:
    """Check the database behind `engine` for damage (`quick`: the cheaper checks that a
    batch runs before it writes). A check the database cannot even run is a problem."""
    report = CheckReport()
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                _sqlite(conn, quick, report)
            else:
                _postgresql(conn, quick, report)
    except DBAPIError as exc:
        report.problems.append(reason(exc))
    return report


def _sqlite(conn: Connection, quick: bool, report: CheckReport) -> None:
    pragma = "quick_check" if quick else "integrity_check"
    report.checks.append(f"SQLite {pragma}")
    rows = [row[0] for row in conn.exec_driver_sql(f"PRAGMA {pragma}({SHOW_AT_MOST})")]
    if rows != ["ok"]:  # a row may hold several lines, under a "*** in database" heading
        report.problems += [line for row in rows for line in str(row).splitlines()
                            if line.strip() and not line.startswith("*** in database")]
    if quick or report.problems:  # no use checking references through damaged pages
        return
    report.checks.append("SQLite foreign_key_check")
    for table, rowid, parent, _ in conn.exec_driver_sql("PRAGMA foreign_key_check"):
        if len(report.problems) >= SHOW_AT_MOST:
            break
        report.problems.append(f"{table} row {rowid} refers to a missing {parent} row")


def _postgresql(conn: Connection, quick: bool, report: CheckReport) -> None:
    tables = sorted(inspect(conn).get_table_names())
    has_amcheck = conn.execute(text(
        "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")).first() is not None
    if has_amcheck:
        report.checks.append("amcheck bt_index_check" + ("" if quick else " (heapallindexed)"))
        indexes = conn.execute(text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE a.amname = 'btree' AND t.relname = ANY(:tables) "
            "AND t.relnamespace = to_regnamespace(current_schema())::oid "
            "ORDER BY c.relname"), {"tables": tables}).scalars().all()
        for index in indexes:
            _try(conn, report, f"index {index}", text(
                "SELECT bt_index_check(CAST(:index AS regclass), :heap)"),
                {"index": index, "heap": not quick})
    elif quick:
        report.checks.append("none cheap without the amcheck extension")
    if not quick:
        report.checks.append("every row of every table read")
        for table in tables:
            _try(conn, report, f"table {table}",
                 text(f'SELECT count(*) FROM (SELECT t::text FROM "{table}" t) rows'), {})


def _try(conn: Connection, report: CheckReport, what: str, query: object,
         params: dict[str, object]) -> None:
    """Run one check in its own savepoint, so that a failure is recorded and the next
    check still runs."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(query, params)  # type: ignore[call-overload]
        savepoint.commit()
    except DBAPIError as exc:
        savepoint.rollback()
        report.problems.append(f"{what}: {reason(exc)}")

