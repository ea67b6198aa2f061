"""Schema revision 0008: the compact stored derivation, and one assessment per model,
input hash, pack version and assessment superseded (SQLite and PostgreSQL, `db_url`).

- The stored graph (knowledge_graph.stored) decodes to exactly the graph built, node and
  edge order and attribute key order included, for every example; records stored before
  0008 (zlib'd JSON) still decode.
- A database made by an earlier asl (store_fixtures/asl-0001.db.gz, see
  test_store_migration) upgraded to 0008 keeps every result and graph as it was, knows
  which rules fired from its old edge rows, and loses its conclusion and edge tables;
  downgraded again, those rows come back as they were.
- Duplicates stored by two batches that ran at the same time are deleted by the
  migration (the oldest kept), and two `asl batch` processes on one portfolio store
  each model once, the second counting what the first stored as skipped.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from helpers import EXAMPLES, assess_paths
from sqlalchemy import MetaData, create_engine, inspect, select, text
from sqlalchemy.exc import NoResultFound
from test_batch import LINEAGE, parse_summary, record
from test_store_migration import LEGACY, legacy_database, to_revision

from knowledge_graph.provenance import dump, edge_rows, fired_rules, load
from knowledge_graph.report import assessment_document, provenance
from knowledge_graph.stored import encode_legacy
from store.db import connect
from store.record import Store, compress, decompress
from store.tables import StoredAssessment

A = StoredAssessment.__table__  # type: ignore[attr-defined]
ASL = str(Path(sys.executable).parent / "asl")


def _same(g: nx.DiGraph, h: nx.DiGraph, preds: bool = True) -> None:
    """Nodes, edges, attributes, their order and their keys' order all alike, and (unless
    `preds` is False: the zlib'd JSON of before 0008 did not keep it) the order of each
    node's predecessors."""
    assert list(h.nodes) == list(g.nodes)
    assert [list(a.items()) for _, a in h.nodes(data=True)] == [
        list(a.items()) for _, a in g.nodes(data=True)]
    assert [(u, v, list(a.items())) for u, v, a in h.edges(data=True)] == [
        (u, v, list(a.items())) for u, v, a in g.edges(data=True)]
    for node in g:  # what why and why-not walk: predecessors and successors, in order
        assert list(h.succ[node]) == list(g.succ[node])
        assert not preds or list(h.pred[node]) == list(g.pred[node])


@pytest.fixture(scope="module")
def graphs() -> list[tuple[nx.DiGraph, dict[str, Any]]]:
    found = []
    for assessment in assess_paths(*sorted(EXAMPLES.glob("*.yaml")), LINEAGE):
        graph = provenance(assessment)
        found.append((graph, assessment_document(assessment, graph)))
    return found


def test_a_stored_graph_is_the_graph_built(graphs: list[tuple[nx.DiGraph, Any]]) -> None:
    assert len(graphs) == 15
    for graph, result in graphs:
        blob = dump(graph)
        _same(graph, load(blob))
        _same(graph, load(encode_legacy(graph)), preds=False)  # stored before 0008
        assert decompress(compress(result)) == result
        assert len(blob) < len(encode_legacy(graph)) / 2
    odd = nx.DiGraph()  # values of every JSON type, and keys in no sorted order
    odd.add_node("z", b=1, a=[1, "x"], c={"k": None}, d=True, e=0.5, f="")
    odd.add_node("a")
    odd.add_edge("z", "a", role="used", **{"as": "x"})
    _same(odd, load(dump(odd)))



def test_graphs_are_stored_and_read_from_many_threads_at_once(
        graphs: list[tuple[nx.DiGraph, Any]]) -> None:
    """The service stores and explains from several threads; a zstd (de)compressor shared
    between them produced corrupt frames ('Src size is incorrect') and dropped workers."""
    blobs = [dump(graph) for graph, _ in graphs]
    failures: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(6):
                for (graph, _), blob in zip(graphs, blobs, strict=True):
                    assert dump(graph) == blob
                    _same(graph, load(blob))
        except BaseException as exc:  # reported by the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]

def test_a_database_before_0008_is_converted_and_back(db_url: str, tmp_path: Path) -> None:
    legacy_database(db_url, tmp_path)
    engine = connect(db_url, migrate=False)
    to_revision(engine, "0005")
    with engine.connect() as conn:
        before = {row.id: (bytes(row.result), bytes(row.provenance))
                  for row in conn.execute(text("SELECT id, result, provenance FROM assessment"))}
        edges = _rows(conn, "SELECT assessment_id, source, target, role, name, rule_id "
                            "FROM provenance_edge ORDER BY id")
        conclusions = _rows(conn, "SELECT assessment_id, conclusion_id, kind, value, rule, "
                                  "because FROM conclusion ORDER BY id")
    assert len(before) == 4 and edges and conclusions
    to_revision(engine, "head")
    tables = set(inspect(engine).get_table_names())
    assert not {"conclusion", "provenance_edge"} & tables
    store = Store(engine)
    results = store.results(sorted(before))
    fired = store.fired_rules(sorted(before))
    for aid, (result, graph) in before.items():
        assert results[aid] == decompress(result)
        new = store.provenance(aid)
        assert new[:1] == b"\x01" and len(new) < len(graph)
        _same(load(graph), load(new))
        assert fired[aid] == {e[5] for e in edges if e[0] == aid} == set(
            fired_rules(load(graph)))
    to_revision(engine, "0005", down=True)
    with engine.connect() as conn:
        assert _rows(conn, "SELECT assessment_id, source, target, role, name, rule_id "
                           "FROM provenance_edge ORDER BY assessment_id, id") == sorted(
            edges, key=lambda e: e[0])
        assert sorted(_rows(conn, "SELECT assessment_id, conclusion_id, kind, value, rule, "
                                  "because FROM conclusion")) == sorted(conclusions)
        for row in conn.execute(text("SELECT id, result, provenance FROM assessment")):
            assert decompress(bytes(row.result)) == decompress(before[row.id][0])
            assert bytes(row.provenance)[0] == 0x78  # zlib'd again, as 0005 reads it
            _same(load(before[row.id][1]), load(bytes(row.provenance)))
    engine.dispose()


def _rows(conn: Any, query: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(text(query))]


def test_the_migration_deletes_what_concurrent_batches_stored_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/asl.db"
    with gzip.open(LEGACY) as packed, (tmp_path / "asl.db").open("wb") as out:
        shutil.copyfileobj(packed, out)
    engine = create_engine(url)
    to_revision(engine, "0005")
    tables = MetaData()
    tables.reflect(engine, only=["assessment", "batch_run"])
    assessment, runs = tables.tables["assessment"], tables.tables["batch_run"]
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(assessment).order_by(assessment.c.id))
                .mappings()]
        first = rows[-1]  # the newest assessment of its model
        run = conn.execute(select(runs).where(runs.c.id == first["batch_id"])).mappings().one()
        # A batch run at the same time as the one that made it stored it again; one run
        # after every other stored it again on purpose (as --force does).
        at_once = conn.execute(runs.insert().values(
            started=run["started"], finished=run["finished"], pack_version=run["pack_version"],
            inputs=[], assessed=1, skipped=0, rejected=0)).inserted_primary_key[0]
        later = conn.execute(runs.insert().values(
            started="9999-01-01", finished="9999-01-02", pack_version=run["pack_version"],
            inputs=[], assessed=1, skipped=0, rejected=0)).inserted_primary_key[0]
        same = {k: v for k, v in first.items() if k != "id"}
        twice = conn.execute(assessment.insert().values(
            {**same, "batch_id": at_once})).inserted_primary_key[0]
        forced = conn.execute(assessment.insert().values(
            {**same, "batch_id": later})).inserted_primary_key[0]
    to_revision(engine, "head")
    with engine.connect() as conn:
        kept = dict(conn.execute(select(A.c.id, A.c.supersedes).where(
            A.c.model_id == first["model_id"]).order_by(A.c.id)).all())
    assert twice not in kept
    ids = sorted(kept)
    assert first["id"] in kept and forced in kept
    assert [kept[i] for i in ids] == [0, *ids[:-1]]  # each supersedes the one before
    engine.dispose()


def test_a_second_writer_of_the_same_assessment_skips_it(db_url: str,
                                                          tmp_path: Path) -> None:
    assert run_batch(db_url, EXAMPLES).returncode == 0
    engine = connect(db_url)
    store = Store(engine)
    latest = {s.model_id: s for s in store.all_latest()}
    summary = next(iter(latest.values()))
    (new,) = _new_assessments(engine, summary.id)
    stack = summary.pack_stack
    # Decided on the same grounds as the stored one (no assessment before): skipped.
    (saved,) = store.save_chunk([new], summary.pack_name, summary.pack_version, stack,
                                based_on={})
    assert saved == (summary.id, False)
    # Without grounds given, the newest stored one with the same input is the same.
    assert store.save_chunk([new], summary.pack_name, summary.pack_version, stack) == [
        (summary.id, False)]
    # Decided on with the stored one in view (as --force does): a new assessment.
    (forced,) = store.save_chunk([new], summary.pack_name, summary.pack_version, stack,
                                 based_on={summary.model_id: summary.id})
    assert forced.stored and forced.id > summary.id
    with engine.connect() as conn:
        assert conn.execute(select(A.c.supersedes).where(A.c.id == forced.id)
                            ).scalar_one() == summary.id
    engine.dispose()


def _new_assessments(engine: Any, aid: int) -> list[Any]:
    """A stored assessment as a writer would hand it to the store again."""
    from store.record import NewAssessment

    store = Store(engine)
    with engine.connect() as conn:
        row = conn.execute(select(A).where(A.c.id == aid)).mappings().one()
    result = store.results([aid])[aid]
    body = store.evidence([row["evidence_hash"]])[row["evidence_hash"]]
    graph = load(store.provenance(aid))
    return [NewAssessment.build(row["model_id"], row["evidence_hash"], body, "f",
                                row["input_hash"], result, dump(graph), edge_rows(graph),
                                sorted(store.kinds_present([aid])[aid]),
                                row["contract_hash"])]


def run_batch(db_url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASL, "batch", *map(str, args),
                           "--db", db_url, "--no-progress"],
                          capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)


def test_two_concurrent_batches_store_each_model_once(db_url: str) -> None:
    args = [ASL, "batch", str(EXAMPLES), str(LINEAGE), "--db", db_url, "--no-progress"]
    connect(db_url).dispose()  # the schema made up front: both batches start writing
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parent.parent)
             for _ in range(2)]
    outs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outs
    printed = [parse_summary(out) for out, _ in outs]
    assert all(p.assessed + p.unchanged == 15 for p in printed)
    assert sum(p.assessed for p in printed) == 15  # each model stored by one of them
    stored = record(db_url)
    assert stored.assessments == 15 and len(stored.latest) == 15
    assert sorted(run[1] for run in stored.runs) == sorted(p.assessed for p in printed)


def test_an_assessments_graph_is_read_by_id_and_none_when_there_is_none(
        db_url: str) -> None:
    """Store.provenance and Store.find_provenance are the one reader of a stored graph by
    id (the service's `why` of a named assessment reads it there): the graph `asl why`
    reads as the newest; None, or NoResultFound from `provenance`, for no such id."""
    assert run_batch(db_url, EXAMPLES).returncode == 0
    engine = connect(db_url)
    store = Store(engine)
    latest = list(store.all_latest())
    assert latest
    for summary in latest:
        newest = store.newest(summary.model_id)
        assert newest is not None
        graph = store.find_provenance(summary.id)
        assert graph == store.provenance(summary.id) == newest[2]
        assert type(graph) is bytes
    missing = max(s.id for s in latest) + 1
    assert store.find_provenance(missing) is None
    with pytest.raises(NoResultFound):
        store.provenance(missing)
    engine.dispose()


def test_why_names_the_graph_formats_export_draws() -> None:
    from cli import why
    from knowledge_graph import export

    assert (why.GRAPH_FORMATS, why.BINARY_FORMATS) == (export.GRAPH_FORMATS,
                                                       export.BINARY_FORMATS)
