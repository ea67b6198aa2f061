"""PostgreSQL's bulk writes (store.pg_bulk): `Store.save_chunk` by COPY stores exactly the
rows the executemany path stores, on PostgreSQL and on SQLite -- ids, JSON text, blobs,
what it skips and the batch run's count -- including a chunk part of which another writer
stored first (the COPY is refused, and the chunk inserted with ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import EXAMPLES
from sqlalchemy import JSON, Text, cast, select

from batch.runner import pack_fingerprint
from batch.stack import stack_of
from batch.work import Entry, Failed, Job, assess_jobs, input_hash
from engine.assess import evaluator_for, vocabulary
from engine.evidence import load_evidence
from store.db import connect
from store.record import A, B, D, M, NewAssessment, Saved, Store

# Columns written with the time of writing, which two writes cannot share.
STAMPS = {"first_assessed", "received", "assessed_at", "started", "finished"}


@pytest.fixture(scope="module")
def chunk() -> tuple[Any, list[NewAssessment]]:
    """The examples' assessments, as a batch worker hands them to the writer."""
    evaluator = evaluator_for()
    paths = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    loaded = load_evidence(paths, vocabulary(evaluator.pack), keep=Entry.of)
    jobs = [Job(e, None, input_hash(orjson.loads(e.body), None)) for e in loaded.documents]
    done = [r for r in assess_jobs((), jobs) if not isinstance(r, Failed)]
    assert len(done) >= 6
    return evaluator.pack, done


def write(url: str, copy: bool, pack: Any, new: list[NewAssessment]
          ) -> tuple[list[list[Saved]], dict[str, list[dict[str, Any]]]]:
    """Two chunks, as two batch runs write them: all but the last two assessments; then
    the first two again on the same grounds (stored already: skipped), the third again
    superseding its stored one, and the last two (new). What save_chunk said of each,
    and every row of the four tables (stamps left out; JSON as the text stored)."""
    store = Store(connect(url), copy=copy)
    try:
        rules, base = pack_fingerprint(pack)
        store.ensure_pack(pack.version, pack.name, rules, base)
        stack = stack_of(pack, ())
        first = store.start_batch(pack.version, ["one"])
        said = [store.save_chunk(new[:-2], pack.name, pack.version, stack, first,
                                 based_on={})]
        again = store.start_batch(pack.version, ["two"])
        stored = store.latest([new[2].model_id])[new[2].model_id].id
        said.append(store.save_chunk([*new[:3], *new[-2:]], pack.name, pack.version, stack,
                                     again, based_on={new[2].model_id: stored}))
        rows = {}
        with store.engine.connect() as conn:
            for table in (M, D, A, B):
                columns = [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c
                           for c in table.c if c.name not in STAMPS]
                rows[table.name] = [dict(row._mapping) for row in conn.execute(
                    select(*columns).order_by(*table.primary_key.columns))]
        return said, rows
    finally:
        store.engine.dispose()


def renumbered(written: tuple[list[list[Saved]], dict[str, list[dict[str, Any]]]]
               ) -> tuple[list[list[Saved]], dict[str, list[dict[str, Any]]]]:
    """`written` with assessment ids replaced by their rank (1 the oldest): PostgreSQL's
    sequence is spent on a row another writer stored first, SQLite's numbering is not."""
    said, rows = written
    rank = {row["id"]: i for i, row in enumerate(rows["assessment"], 1)} | {0: 0}
    return ([[Saved(rank[s.id], s.stored) for s in chunk] for chunk in said],
            {**rows, "assessment": [row | {"id": rank[row["id"]],
                                           "supersedes": rank[row["supersedes"]]}
                                    for row in rows["assessment"]]})


def test_copy_stores_what_sqlite_stores(chunk: tuple[Any, list[NewAssessment]],
                                        postgres_url: str, tmp_path: Path) -> None:
    pack, new = chunk
    n = len(new)
    copied = write(postgres_url, True, pack, new)
    said, rows = copied
    assert [s.id for s in said[0]] == list(range(1, n - 1))  # numbered in order
    assert said[1][:2] == [Saved(1, False), Saved(2, False)]
    assert [s.stored for s in said[1][2:]] == [True, True, True]
    assert len(rows["assessment"]) == n + 1
    assert [(run["id"], run["assessed"]) for run in rows["batch_run"]] == [(1, n - 2), (2, 3)]
    assert renumbered(copied) == renumbered(write(f"sqlite:///{tmp_path}/asl.db", False,
                                                  pack, new))


def test_copy_stores_what_executemany_stores_on_postgresql(
        chunk: tuple[Any, list[NewAssessment]], postgres_server: Any) -> None:
    pack, new = chunk
    got = []
    for copy in (False, True):
        name = f"asl_test_{uuid.uuid4().hex[:16]}"
        with postgres_server.connect_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            got.append(write(postgres_server.url(name), copy, pack, new))
        finally:
            with postgres_server.connect_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert got[1] == got[0]  # ids included: the refused COPY's ids are the INSERT's
