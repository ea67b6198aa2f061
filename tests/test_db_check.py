"""`asl db check`, and the quick check a batch makes before it writes (issue 15, point 6).

A SQLite file with damaged pages used to be written to in silence (`batch --force`
added rows, exit 0). Here a leaf page of the conclusion table is overwritten, as a
failing disk would: `asl db check` lists what SQLite's integrity_check found (exit 1),
and a batch refuses in one line (exit 2) before writing anything.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES
from sqlalchemy.exc import DBAPIError

from cli.main import main
from store.check import check_database
from store.db import connect

LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def damage_a_page(database: Path) -> None:
    """Overwrite the second half of the assessment table's first leaf page."""
    with closing(sqlite3.connect(database)) as conn:
        pages = conn.execute("SELECT pageno FROM dbstat WHERE name = 'assessment' "
                             "AND pagetype = 'leaf' ORDER BY pageno").fetchall()
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with database.open("r+b") as raw:
        raw.seek((pages[0][0] - 1) * size + size // 2)
        raw.write(b"\xff" * (size // 2))


@pytest.fixture
def record(tmp_path: Path) -> Path:
    database = tmp_path / "asl.db"
    assert run("batch", LINEAGE, "--db", database, "--no-progress").exit_code == 0
    return database


def test_a_sound_record_checks_sound(db_url: str) -> None:
    assert run("batch", LINEAGE, "--db", db_url, "--no-progress").exit_code == 0
    for quick in ([], ["--quick"]):
        result = run("db", "check", "--db", db_url, *quick)
        assert result.exit_code == 0, result.output
        assert ": sound (" in result.stdout and result.stderr == ""


def test_damaged_pages_are_found(record: Path) -> None:
    damage_a_page(record)
    for quick, check in (([], "integrity_check"), (["--quick"], "quick_check")):
        result = run("db", "check", "--db", record, *quick)
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert lines[0].startswith(f"sqlite:///{record}: damaged (SQLite {check} found ")
        # then SQLite's own words for each problem (which ones depends on where the
        # damaged cells fall: a page number, an index entry, a malformed image)
        assert lines[1:] and all(line.startswith("  ") for line in lines[1:]), lines


def test_a_batch_refuses_a_damaged_record_and_writes_nothing(record: Path) -> None:
    damage_a_page(record)
    before = record.read_bytes()
    result = run("batch", LINEAGE, "--db", record, "--no-progress", "--force")
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"asl: cannot use database sqlite:///{record}: it is damaged (")
    assert line.endswith("; `asl db check` says more")
    assert record.read_bytes() == before
    assert not Path(f"{record}-wal").exists() or Path(f"{record}-wal").stat().st_size == 0


def test_postgresql_full_check_reads_every_table(postgres_url: str) -> None:
    """On PostgreSQL the full check reads every row of every table (a damaged page fails
    the read), plus amcheck's index checks where the extension is installed; the quick
    check says when it has nothing cheap to run."""
    assert run("batch", LINEAGE, "--db", postgres_url, "--no-progress").exit_code == 0
    engine = connect(postgres_url)
    try:
        full, quick = check_database(engine), check_database(engine, quick=True)
    finally:
        engine.dispose()
    assert full.sound and quick.sound, (full.problems, quick.problems)
    assert "every row of every table read" in full.checks
    assert quick.checks in (["none cheap without the amcheck extension"],
                            ["amcheck bt_index_check"])


def test_postgresql_amcheck_checks_every_index(postgres_url: str) -> None:
    assert run("batch", LINEAGE, "--db", postgres_url, "--no-progress").exit_code == 0
    engine = connect(postgres_url)
    try:
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE EXTENSION amcheck")
        except DBAPIError as exc:
            pytest.skip(f"no amcheck extension here: {exc.orig}")
        full, quick = check_database(engine), check_database(engine, quick=True)
    finally:
        engine.dispose()
    assert full.checks[0] == "amcheck bt_index_check (heapallindexed)"
    assert quick.checks == ["amcheck bt_index_check"]
    assert full.sound and quick.sound, (full.problems, quick.problems)
