"""Schema revision 0002 (each result's pack stack, framework and contract hash) on real
databases, SQLite and PostgreSQL (the `db_url` fixture).

`store_fixtures/asl-0001.db.gz` is a database made by asl before revision 0002 (at
revision 0001), exactly as that code wrote it:

    asl batch examples/security-gap-pause.yaml examples/cbrn4-asl4-pause.yaml --db asl.db
    asl batch --reassess --pack examples/packs/acme-lab --db asl.db

so it holds two models, each assessed with the built-in pack and then with the
acme-lab overlay (pack names `rsp-2.1` and `rsp-2.1+acme-lab`). On SQLite the file
itself is upgraded; on PostgreSQL its rows are copied into a database created at
revision 0001, as the PostgreSQL database of a user of that version would hold them.
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import zlib
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result
from helpers import EXAMPLES
from service_server import make_token, start_server
from sqlalchemy import Integer, MetaData, create_engine, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel
from test_batch import ACME, batch, changes, parse_summary, record

import store.tables  # noqa: F401  (registers the tables on the metadata)
from batch.stack import layer_version
from cli.main import main
from engine.packstack import builtin_pack_dir
from knowledge_graph.provenance import load as load_graph
from knowledge_graph.stored import FORMAT
from store import packs
from store.db import HEAD_REVISION, _config, connect, current_revision, head_revision
from store.record import Store, decompress, unpack_names

BUILTIN = builtin_pack_dir()
LEGACY = Path(__file__).parent / "store_fixtures" / "asl-0001.db.gz"
LEGACY_MODELS = ("larkspur-kite-4", "oriel-meridian-3")
LEGACY_FILES = (EXAMPLES / "security-gap-pause.yaml", EXAMPLES / "cbrn4-asl4-pause.yaml")
# Parents first, so every foreign key finds its row.
TABLES = ("model", "evidence_document", "pack_version", "batch_run", "assessment",
          "conclusion", "provenance_edge")
NEW_COLUMNS = {"pack_stack", "framework", "contract_hash", "level", "required", "scalars",
               "fired", "supersedes"}
# Revision 0005 replaced the RSP-only columns with framework-neutral ones (level,
# required, scalars), filled from them.
RSP_COLUMNS = ("asl", "required_deployment", "required_security", "comprehensive_required")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def to_revision(engine: Engine, revision: str, down: bool = False) -> None:
    """Migrate the database up (or down) to `revision`, as `asl db upgrade` migrates."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def legacy_database(url: str, tmp_path: Path) -> None:
    """Put the revision-0001 database at `url`: the file itself for SQLite, its rows in
    a database created at revision 0001 for PostgreSQL."""
    unpacked = tmp_path / "legacy.db"
    with gzip.open(LEGACY) as packed, unpacked.open("wb") as out:
        shutil.copyfileobj(packed, out)
    if make_url(url).get_backend_name() == "sqlite":
        shutil.move(unpacked, make_url(url).database or "")
        return
    source = create_engine(f"sqlite:///{unpacked}")
    target = connect(url, migrate=False)
    try:
        to_revision(target, "0001")
        old, new = MetaData(), MetaData()
        old.reflect(source, only=TABLES)
        new.reflect(target, only=TABLES)
        with source.connect() as src, target.begin() as dst:
            for name in TABLES:
                rows = [dict(row) for row in src.execute(select(old.tables[name])).mappings()]
                dst.execute(new.tables[name].insert(), rows)
                ids = new.tables[name].c.get("id")
                if ids is not None and isinstance(ids.type, Integer):  # serials go on after
                    dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"(SELECT max(id) FROM {name}))"))
    finally:
        source.dispose()
        target.dispose()


def assessment_rows(url: str) -> list[dict[str, Any]]:
    """Every assessment row as the database holds it (whatever its revision), oldest
    first; JSON columns as stored data."""
    engine = connect(url, migrate=False)
    try:
        tables = MetaData()
        tables.reflect(engine, only=["assessment"])
        table = tables.tables["assessment"]
        with engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(select(table).order_by(table.c.id))
                    .mappings()]
    finally:
        engine.dispose()
    for row in rows:  # SQLite reflects JSON columns as JSON; decode any given as text
        for key in ("missing_safeguards", "actions", "kinds", "pack_stack", "required",
                    "scalars"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        # Compared as what they decode to: revisions 0008 and 0011 store them more
        # compactly.
        for key in ("kinds", "fired"):
            if isinstance(row.get(key), bytes | memoryview):
                row[key] = sorted(unpack_names(bytes(row[key])))
        row["result"] = decompress(bytes(row["result"]))
        graph = load_graph(bytes(row["provenance"]))
        row["provenance"] = (list(graph.nodes(data=True)), list(graph.edges(data=True)))
    return rows


def columns(url: str) -> set[str]:
    engine = connect(url, migrate=False)
    try:
        with engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("assessment")}
    finally:
        engine.dispose()


def test_a_database_made_before_revision_0002_is_upgraded_and_used(
        db_url: str, tmp_path: Path) -> None:
    legacy_database(db_url, tmp_path)
    assert not NEW_COLUMNS & columns(db_url)
    before = assessment_rows(db_url)
    assert [(r["model_id"], r["pack_name"]) for r in before] == [
        ("larkspur-kite-4", "rsp-2.1"), ("oriel-meridian-3", "rsp-2.1"),
        ("larkspur-kite-4", "rsp-2.1+acme-lab"), ("oriel-meridian-3", "rsp-2.1+acme-lab")]

    # Any command opens the record and so migrates it.
    listed = run("list", "--db", db_url, "--format", "json")
    assert listed.exit_code == 0, listed.output
    engine = connect(db_url, migrate=False)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    after = assessment_rows(db_url)
    # Every old row keeps what it had, and its stack is its stored pack name and version.
    assert [{k: v for k, v in r.items() if k not in NEW_COLUMNS} for r in after] == [
        {k: v for k, v in r.items() if k not in RSP_COLUMNS} for r in before]
    for row, old_row in zip(after, before, strict=True):
        assert row["level"] == old_row["asl"]
        assert row["required"] == {"deployment": old_row["required_deployment"],
                                   "security": old_row["required_security"]}
        assert row["scalars"] == {"asl": old_row["asl"], "comprehensive_assessment_required":
                                  bool(old_row["comprehensive_required"])}
    for row in after:
        assert row["pack_stack"] == [{"name": row["pack_name"], "version": row["pack_version"]}]
        assert row["framework"] == "rsp-2.1"
        assert row["contract_hash"] is None
        assert row["result"]["pack"] == {"name": row["pack_name"],
                                                      "version": row["pack_version"]}

    # asl list shows the pack of each model's newest result, in every format.
    rows = json.loads(listed.output)
    assert [(r["model"], r["pack"]["name"], r["pack_stack"]) for r in rows] == [
        (r["model_id"], "rsp-2.1+acme-lab", r["pack_stack"]) for r in after[2:]]
    table = run("list", "--db", db_url).output.splitlines()
    assert table[0].split()[:7] == ["model", "ASL", "deployment", "security", "decision",
                                    "missing", "pack"]
    assert all(line.split()[6] == "rsp-2.1+acme-lab" for line in table[1:])
    csv_lines = run("list", "--db", db_url, "--format", "csv").output.splitlines()
    assert csv_lines[0].endswith(",pack.version,pack.name,pack.stack")
    assert all(line.endswith(f",rsp-2.1+acme-lab,rsp-2.1+acme-lab@{after[2]['pack_version']}")
               for line in csv_lines[1:])
    assert run("history", LEGACY_MODELS[0], "--db", db_url).exit_code == 0
    assert run("diff", LEGACY_MODELS[0], "--db", db_url).exit_code == 0

    # A batch without the overlay says the stack differs, and re-assesses both models;
    # what changed is found from the old rows' stored results.
    old = record(db_url)
    result = batch(db_url, *LEGACY_FILES)
    assert result.exit_code == 0, result.stderr
    printed = parse_summary(result.stdout)
    assert printed.stack == (2, "rsp-2.1+acme-lab", "rsp-2.1")
    assert (printed.assessed, printed.unchanged) == (2, 0)
    new = record(db_url)
    assert printed.changed == changes(old, new)
    for model in LEGACY_MODELS:
        assert [layer["name"] for layer in new.latest[model].pack_stack] == ["rsp-2.1"]
        assert new.latest[model].contract_hash is not None


def test_down_to_0001_and_up_again_keeps_results_and_what_is_skipped(
        db_url: str, tmp_path: Path) -> None:
    assert batch(db_url, EXAMPLES).exit_code == 0
    made = record(db_url)
    engine = connect(db_url)
    to_revision(engine, "0001", down=True)
    assert current_revision(engine) == "0001"
    engine.dispose()
    assert not NEW_COLUMNS & columns(db_url)

    # Up again (on first use): the stacks are the stored pack name and version, which
    # stand for the built-in pack in use, so nothing is re-assessed or said of stacks.
    again = batch(db_url, EXAMPLES)
    assert again.exit_code == 0, again.stderr
    printed = parse_summary(again.stdout)
    assert (printed.assessed, printed.unchanged, printed.stack) == (0, 10, None)
    upgraded = record(db_url)
    assert {m: (s.id, s.pack_stack, s.framework) for m, s in upgraded.latest.items()} == {
        m: (s.id, [{"name": "rsp-2.1", "version": s.pack_version}], "rsp-2.1")
        for m, s in made.latest.items()}
    assert upgraded.results == made.results

    overlay = batch(db_url, EXAMPLES, "--pack", ACME)
    printed = parse_summary(overlay.stdout)
    assert printed.stack == (10, "rsp-2.1", "rsp-2.1+acme-lab")
    assert printed.assessed == 10


def test_the_migrated_schema_is_the_tables_schema(db_url: str) -> None:
    engine = connect(db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_revision_0006_gives_service_batches_their_own_framework_column(
        db_url: str) -> None:
    """Batches stored before 0006 carried their framework in `format`
    (`jsonl framework=openai-pf-2`): upgrading splits it into `framework`, and
    downgrading folds it back, row by row."""
    engine = connect(db_url)
    try:
        to_revision(engine, "0005", down=True)
        with engine.begin() as conn:
            for fmt in ("jsonl framework=openai-pf-2", "yaml", "json framework=rsp-2.1"):
                conn.execute(text(
                    "INSERT INTO service_batch (state, submitted_by, submitted_at, format, "
                    "body, done, total) VALUES ('queued', 'ana', '2026-12-02T06:00:00Z', "
                    ":fmt, :body, 0, 0)"), {"fmt": fmt, "body": b"x"})
        to_revision(engine, "0006")
        query = text("SELECT format, framework FROM service_batch ORDER BY id")
        with engine.connect() as conn:
            assert [tuple(row) for row in conn.execute(query)] == [
                ("jsonl", "openai-pf-2"), ("yaml", None), ("json", "rsp-2.1")]
        to_revision(engine, "0005", down=True)
        with engine.connect() as conn:
            assert [row[0] for row in conn.execute(
                text("SELECT format FROM service_batch ORDER BY id"))] == [
                "jsonl framework=openai-pf-2", "yaml", "json framework=rsp-2.1"]
            assert "framework" not in {
                c["name"] for c in inspect(conn).get_columns("service_batch")}
    finally:
        engine.dispose()


def test_revision_0011_keeps_the_name_lists_compact_and_gives_them_back(db_url: str) -> None:
    """0011 stores each assessment's kinds (a JSON list before) and fired rules (zlib'd
    before) compressed with the derivations' dictionary and drops two unread indexes;
    down and up again, every row's lists are the same sets, and what re-assessment
    reads of them (`fired_rules`, `kinds_present`) does not change."""
    assert batch(db_url, EXAMPLES).exit_code == 0
    engine = connect(db_url)
    try:
        store = Store(engine)
        ids = sorted(s.id for s in store.all_latest())
        fired, kinds = store.fired_rules(ids), store.kinds_present(ids)
        assert all(fired.values()) and all("model" in k for k in kinds.values())
        rows = assessment_rows(db_url)
        to_revision(engine, "0010", down=True)
        with engine.connect() as conn:
            old = {r.id: (r.kinds, bytes(r.fired)) for r in conn.execute(
                text("SELECT id, kinds, fired FROM assessment"))}
            indexes = {i["name"] for i in inspect(conn).get_indexes("assessment")}
        assert {"ix_assessment_input_hash", "ix_assessment_pack_version"} <= indexes
        for aid in ids:  # as 0010 kept them: a sorted JSON list, zlib'd lines
            listed = old[aid][0] if isinstance(old[aid][0], list) else json.loads(old[aid][0])
            assert listed == sorted(kinds[aid])
            assert zlib.decompress(old[aid][1]).decode().split("\n") == sorted(fired[aid])
        assert assessment_rows(db_url) == rows
        to_revision(engine, "0011")
        with engine.connect() as conn:
            indexes = {i["name"] for i in inspect(conn).get_indexes("assessment")}
            blobs = [bytes(b) for (b,) in conn.execute(text("SELECT kinds FROM assessment"))]
        assert not {"ix_assessment_input_hash", "ix_assessment_pack_version"} & indexes
        assert all(b[:1] == FORMAT for b in blobs)
        assert (store.fired_rules(ids), store.kinds_present(ids)) == (fired, kinds)
        assert assessment_rows(db_url) == rows
    finally:
        engine.dispose()


def test_the_head_revision_constant_is_alembics_head() -> None:
    """store.db answers "is this database current?" from HEAD_REVISION without importing
    alembic; it must name the newest migration, or every database would be re-checked
    (and a new migration never applied on the fast path's say-so)."""
    assert head_revision() == HEAD_REVISION


def test_revision_0012_gives_stored_packs_the_version_of_all_their_files(
        db_url: str, tmp_path: Path) -> None:
    """Before 0012 a stored pack's version hashed its pack.yaml and rules only, so a
    draft that changed nothing but a test case had the active pack's version. Upgrading
    gives every stored pack the version of all of its files; the service started on the
    upgraded database shows those, refuses the old version and activates the shown one;
    downgrading gives the old versions back."""
    active = packs.read_pack_files(ACME)
    draft = {**active, "tests/10-acme.yaml": active["tests/10-acme.yaml"].replace(
        "- name: Cyber operations not ruled out", "- name: Cyber operations open")}
    old = layer_version(ACME)  # what revision 0011's service stored for either
    engine = connect(db_url)
    try:
        to_revision(engine, "0011", down=True)
        with engine.begin() as conn:
            conn.execute(packs.AC.insert().values(
                name="acme-lab", position=1, version=old, files=active, uploaded_by="bob",
                uploaded_at="2026-12-01T00:00:00Z", activated_by="alice",
                activated_at="2026-12-01T01:00:00Z"))
            conn.execute(packs.DR.insert().values(
                name="acme-lab", version=old, files=draft, uploaded_by="bob",
                uploaded_at="2026-12-02T00:00:00Z"))
    finally:
        engine.dispose()

    server = start_server(db_url, tmp_path / "serve.log")  # opening it upgrades it
    try:
        admin = {"Authorization": f"Bearer {make_token(db_url, 'admin', 'alice')}"}
        shown = httpx.get(f"{server.url}/v1/packs", headers=admin).json()["packs"]
        assert [(p["name"], p["state"], p["version"]) for p in shown] == [
            ("rsp-2.1", "base", packs.files_version(packs.read_pack_files(BUILTIN))),
            ("acme-lab", "active", packs.files_version(active)),
            ("acme-lab", "draft", packs.files_version(draft))]
        health = httpx.get(f"{server.url}/health").json()["packs"]
        assert health[1] == {"name": "acme-lab", "version": packs.files_version(active)}
        url = f"{server.url}/v1/packs/acme-lab/activate"
        assert httpx.post(url, json={"version": old}, headers=admin).status_code == 409
        done = httpx.post(url, json={"version": packs.files_version(draft)}, headers=admin)
        assert done.status_code == 200, done.text
    finally:
        assert server.stop() in (0, -signal.SIGTERM), server.log_text()
    # The command line reads the upgraded stack as before.
    assessed = run("assess", "--db", db_url, ACME / "example-model.yaml", "--format", "json")
    assert json.loads(assessed.stdout)["pack"]["name"] == "rsp-2.1+acme-lab"

    engine = connect(db_url, migrate=False)
    try:
        with engine.connect() as conn:
            assert packs.active_layers(conn) == [("acme-lab", packs.files_version(draft))]
        to_revision(engine, "0011", down=True)
        with engine.connect() as conn:
            assert packs.active_layers(conn) == [("acme-lab", old)]
    finally:
        engine.dispose()
