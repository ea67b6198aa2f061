"""`asl why MODEL` explains a stored record from its adjacency (issue 13, item 6), the
same way and with the same answer as from the networkx graph the record decodes to.

The one walker (knowledge_graph.explain.why_tree) and the one selector grammar
(knowledge_graph.reading) read either; these tests hold them to it on every stored
assessment of the public examples (README's batch) and every conclusion, and hold the
standard-library SQLite reader (store.sqlite_reader) to the answers and errors of the
full SQLAlchemy way.
"""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from engine.framework import builtin_spec, default_spec
from engine.jsontext import dumps
from knowledge_graph import stored
from knowledge_graph.explain import render_text, why_tree
from knowledge_graph.reading import (
    CONCLUSION,
    UnknownConclusion,
    find_conclusion,
    subjects_for,
)

ROOT = Path(__file__).resolve().parents[1]
ASL = (sys.executable, "-c", "from cli.main import main; main()")


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """README's batch: every example, and the lineage portfolio, into a fresh record."""
    db = tmp_path_factory.mktemp("why-stored") / "asl.db"
    subprocess.run([*ASL, "batch", str(ROOT / "examples"),
                    str(ROOT / "examples" / "portfolio" / "lineage.yaml"), "--db", str(db)],
                   check=True, capture_output=True)
    return db


def _newest(db: Path) -> list[tuple[str, str, bytes]]:
    """Each stored model's newest assessment: model id, framework, provenance."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT model_id, framework, provenance FROM assessment a WHERE id = "
            "(SELECT max(id) FROM assessment b WHERE b.model_id = a.model_id) "
            "ORDER BY model_id").fetchall()


def _selectors(graph: stored.Adjacency, subjects: dict) -> list[str]:
    """Every selector that names a conclusion of the graph: its id, each subject of its
    kind (with the argument its key takes, in both spellings), and a few that name none."""
    found = {"level", "decision", "no-such-subject", "required.no-such-thing"}
    for node, data in graph.nodes.items():
        if data["node"] != CONCLUSION:
            continue
        found.add(node)
        for name, subject in subjects.items():
            if subject.kind == data["kind"]:
                arg = data["values"].get(subject.key) if subject.key else None
                found |= {f"{name}:{arg}", f"{name}.{arg}"} if subject.key else {name}
    return sorted(found)


def test_every_stored_conclusion_is_explained_alike_from_the_adjacency_and_networkx(
        record: Path) -> None:
    stored_models = _newest(record)
    assert len(stored_models) >= 15  # every example and the lineage portfolio
    compared = 0
    for model, framework, blob in stored_models:
        light, full = stored.decode_adjacency(blob), stored.decode(blob)
        assert list(light.nodes.items()) == list(full.nodes(data=True))
        subjects = subjects_for(builtin_spec(framework) or default_spec())
        for selector in _selectors(light, subjects):
            try:
                node = find_conclusion(full, selector, subjects)
            except UnknownConclusion:
                with pytest.raises(UnknownConclusion):
                    find_conclusion(light, selector, subjects)
                continue
            assert find_conclusion(light, selector, subjects) == node, (model, selector)
            tree = why_tree(full, node)
            assert why_tree(light, node) == tree, (model, selector)
            assert dumps(why_tree(light, node)) == dumps(tree)
            assert render_text(why_tree(light, node)) == render_text(tree)
            compared += 1
    assert compared > 1000


def test_the_adjacency_decoded_as_read_is_the_graphs(record: Path) -> None:
    """`decode_adjacency` decodes each node's attributes, successors and predecessors
    when they are first read: what it gives, read in any order, is what networkx keeps
    of the decoded graph (the same mappings in the same order, one attribute dict per
    edge shared by both its ends, the same dict each time it is read)."""
    for _, _, blob in _newest(record):
        full = stored.decode(blob)
        light = stored.decode_adjacency(blob)
        ids = list(full.nodes)
        assert list(light.nodes) == ids and len(light.nodes) == len(ids)
        assert all(node in light.nodes for node in ids) and "no such node" not in light.nodes
        for node in reversed(ids):  # read out of order: each from its own rows
            assert list(light.pred[node].items()) == list(full.pred[node].items())
            assert light.nodes[node] == full.nodes[node]
        for node in ids:
            assert list(light.succ[node].items()) == list(full.succ[node].items())
            for other in light.succ[node]:
                assert light.succ[node][other] is light.pred[other][node]
            assert light.nodes[node] is light.nodes[node]
        assert dict(light.nodes) == dict(full.nodes(data=True))
        with pytest.raises(KeyError):
            light.nodes["no such node"]


def test_an_explanation_leaves_no_reference_cycle(record: Path) -> None:
    """Explaining a stored record builds nothing that only the cyclic garbage collector
    could free: a cycle kept each request's decoded graph alive past its request, and
    the collections it brought on cost the service more CPU than the walk."""
    for _, framework, blob in _newest(record)[:5]:
        subjects = subjects_for(builtin_spec(framework) or default_spec())
        gc.collect()
        gc.disable()
        try:
            graph = stored.decode_adjacency(blob)
            tree = why_tree(graph, find_conclusion(graph, "decision", subjects))
            assert render_text(tree) and dumps(tree)
            del graph, tree
            assert gc.collect() == 0
        finally:
            gc.enable()


def _why(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["why", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_sqlite_reader_answers_as_the_full_way(record: Path) -> None:
    """`--db PATH` (read with sqlite3) and `--db sqlite+pysqlite:///PATH` (the same
    file, which only SQLAlchemy reads) print the same bytes for every stored model."""
    full_url = f"sqlite+pysqlite:///{record}"
    for model, _, _ in _newest(record):
        for args in ([], ["--conclusion", "decision"], ["--format", "json"],
                     ["--conclusion", "decision", "--format", "json"]):
            light = _why(model, *args, "--db", str(record))
            assert light[0] == 0 and light[1]
            assert light == _why(model, *args, "--db", full_url), (model, args)


def _copy(record: Path, tmp_path: Path) -> Path:
    """A copy of the record to damage."""
    db = tmp_path / "asl.db"
    with sqlite3.connect(record) as source, sqlite3.connect(db) as target:
        source.backup(target)
    target.close()
    return db


def _same_error(db: Path, model: str) -> tuple[int, str]:
    """The exit status and message of `asl why MODEL` on `db`, checked to be the full
    way's (its URL aside), with nothing on standard output."""
    light = subprocess.run([*ASL, "why", model, "--db", str(db)], capture_output=True,
                           text=True)
    full = subprocess.run([*ASL, "why", model, "--db", f"sqlite+pysqlite:///{db}"],
                          capture_output=True, text=True)
    assert light.stdout == full.stdout == ""
    assert light.returncode == full.returncode != 0
    assert light.stderr == full.stderr.replace("sqlite+pysqlite:///", "sqlite:///")
    return light.returncode, light.stderr


def test_no_such_model_is_the_same_line(record: Path, tmp_path: Path) -> None:
    status, message = _same_error(_copy(record, tmp_path), "no-such-model")
    assert status == 2 and "no stored assessment of a model 'no-such-model'" in message


def test_a_newer_schema_is_refused_alike(record: Path, tmp_path: Path) -> None:
    db = _copy(record, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    model = _newest(record)[0][0]
    status, message = _same_error(db, model)
    assert status == 2 and "schema revision 9999" in message


def test_a_database_that_is_not_one_is_refused_alike(tmp_path: Path) -> None:
    db = tmp_path / "asl.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)  # a damaged header
    status, message = _same_error(db, "some-model")
    assert status == 2 and message.startswith("asl: cannot use database")



def test_reading_leaves_the_record_as_it_was(record: Path, tmp_path: Path) -> None:
    """The sqlite3 reader writes nothing and, like the full way, leaves no -wal or -shm
    file behind (a read-only open would)."""
    db = _copy(record, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model = _newest(record)[0][0]
    assert _why(model, "--db", str(db))[0] == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
