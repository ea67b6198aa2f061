"""`asl why MODEL` from the record (issue 13, item 6) loads only what reading it needs.

The answer is one stored row turned into text: no engine evaluator (durable-rules,
pydantic's evidence schema), no alembic (the schema is current: HEAD_REVISION), no
SQLAlchemy nor sqlmodel (store.sqlite_reader reads a current SQLite record with sqlite3),
no networkx (the record is explained from its adjacency, knowledge_graph.reading), no
rich (nothing is drawn for a terminal), no stored packs. The time is measured by
benchmarks/why_bench.py; this checks what it rests on, in a fresh interpreter running the
command's entry point, and that the answer is the one the full record gives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "security-gap-pause.yaml"
ASL = (sys.executable, "-c", "from cli.main import main; main()")  # the entry point
NOT_NEEDED = ("durable_rules", "durable_rules_engine", "engine.evaluator", "engine.assess",
              "alembic", "sqlmodel", "store.packs", "store.tables", "sqlalchemy", "networkx",
              "pydantic", "rich", "knowledge_graph.provenance", "store.db")


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A database holding the assessment of one example, and that model's id."""
    db = tmp_path_factory.mktemp("why") / "asl.db"
    subprocess.run([*ASL, "batch", str(EXAMPLE), "--db", str(db)],
                   check=True, capture_output=True)
    listed = subprocess.run([*ASL, "list", "--db", str(db),
                             "--format", "csv"], check=True, capture_output=True, text=True)
    model = listed.stdout.splitlines()[1].split(",")[0]
    return db, model


def _run_why(db: Path, *args: str) -> tuple[str, set[str]]:
    """The output of `asl why ARGS --db DB` run by the CLI's entry point in a fresh
    interpreter, and the modules it had imported by the end."""
    probe = ("import sys\nfrom cli.main import main\n"
             f"sys.argv = ['asl', 'why', *{list(args)!r}, '--db', {str(db)!r}]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print('\\x00' + ' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    text, _, modules = done.stdout.rpartition("\x00")
    return text, set(modules.split())


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_why_model_from_sqlite_imports_neither_engine_nor_sqlalchemy_nor_networkx(
        record: tuple[Path, str], fmt: str) -> None:
    db, model = record
    text, modules = _run_why(db, model, "--format", fmt)
    assert text.strip()
    assert {m for m in modules if m.split(".")[0] in NOT_NEEDED or m in NOT_NEEDED} == set()


def test_why_model_answers_as_the_assessment_of_the_file_does(record: tuple[Path, str]) -> None:
    """The light path explains the same conclusion as assessing the file now."""
    db, model = record
    stored, _ = _run_why(db, model, "--conclusion", "decision")
    fresh = subprocess.run([*ASL, "why", str(EXAMPLE),
                            "--conclusion", "decision", "--db", str(db)],
                           check=True, capture_output=True, text=True).stdout
    assert stored.splitlines()[1:] == fresh.splitlines()[1:]


def test_why_model_refuses_a_database_it_cannot_read_as_other_commands_do(
        tmp_path: Path) -> None:
    """Without --pack, the stored pack stack is read as for every command (only not
    written out), so a database that cannot be used is the same one line, exit 2."""
    db = tmp_path / "asl.db"
    db.write_text("not a database\n")
    done = subprocess.run([*ASL, "why", "some-model", "--db", str(db)], capture_output=True,
                          text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"asl: cannot use database sqlite:///{db}: file is not a database "
                           "(it holds the active pack stack; --pack chooses the packs "
                           "instead)\n")


@pytest.mark.parametrize("command", [("why", "some-model"), ("assess", str(EXAMPLE))],
                         ids=["why", "assess"])
def test_a_damaged_pack_stack_table_is_one_line_not_a_traceback(
        record: tuple[Path, str], tmp_path: Path, command: tuple[str, ...]) -> None:
    """A record whose stored pack stack cannot be read (here its table replaced by one of
    another shape) is refused with the database's own reason, as an unreadable file is."""
    import shutil
    import sqlite3

    db = tmp_path / "asl.db"
    shutil.copy(record[0], db)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE pack_active RENAME TO pack_active_old")
        conn.execute("CREATE TABLE pack_active (x INTEGER)")
    done = subprocess.run([*ASL, *command, "--db", str(db)] if command[0] == "why"
                          else [*ASL, *command], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith("asl: cannot use database sqlite:///")
    assert "its active pack stack cannot be read: no such column" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
