"""Reading and writing the record: one call per thing a command needs.

`Store` wraps an engine from store.db. Writes are one transaction each: an assessment
is committed with its evidence document, or not at all, so a batch killed at any moment
leaves only whole results behind. Inserts of models, documents and pack versions that
may already exist do nothing when they do, and so does an assessment already stored by
another writer that decided the same thing (store.tables: one per model, input hash,
pack version and assessment superseded), which is what lets two batches share one
database and store each model once.

Results and provenance graphs are stored compressed with zstd and the shared dictionary
of knowledge_graph.stored (records stored before revision 0008 are zlib'd, and read as
ever).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Insert, Row, Select, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoResultFound

from knowledge_graph.stored import inflate, pack
from store import audit, pg_bulk
from store.db import Read
from store.newest import newest
from store.tables import BatchRun, EvidenceDocument, PackVersion, StoredAssessment, StoredModel

CHUNK = 500  # ids per IN (...) query

A = StoredAssessment.__table__  # type: ignore[attr-defined]
D = EvidenceDocument.__table__  # type: ignore[attr-defined]
M = StoredModel.__table__  # type: ignore[attr-defined]
P = PackVersion.__table__  # type: ignore[attr-defined]
B = BatchRun.__table__  # type: ignore[attr-defined]

SUMMARY_COLUMNS = (A.c.id, A.c.model_id, A.c.assessed_at, A.c.pack_name, A.c.pack_version,
                   A.c.input_hash, A.c.evidence_hash, A.c.level, A.c.required, A.c.scalars,
                   A.c.decision, A.c.missing_safeguards, A.c.actions, A.c.batch_id,
                   A.c.pack_stack, A.c.framework, A.c.contract_hash)
# A model's history, as a store.db.Read (compiled once per dialect, no BEGIN/ROLLBACK).
_HISTORY = Read(select(*SUMMARY_COLUMNS).where(A.c.model_id == bindparam("model"))
                .order_by(A.c.id))
_SUMMARY_FIELDS = tuple(column.name for column in SUMMARY_COLUMNS)
# An assessment's stored provenance graph, by primary key, as a store.db.Read.
_PROVENANCE = Read(select(A.c.provenance).where(A.c.id == bindparam("id")))
# The id of the newest assessment of each of the models bound to "models" (an IN list),
# and what `Store.latest` and `Store._newest` (what a writer compares with) read of it.
_NEWEST_IDS = (select(func.max(A.c.id))
               .where(A.c.model_id.in_(bindparam("models", expanding=True)))
               .group_by(A.c.model_id))
_LATEST = select(*SUMMARY_COLUMNS).where(A.c.id.in_(_NEWEST_IDS))
_NEWEST = select(A.c.id, A.c.model_id, A.c.input_hash, A.c.pack_version).where(
    A.c.id.in_(_NEWEST_IDS))
# Contract keys every result has, whatever its framework, with columns of their own (or,
# for model and pack, none needed); a result's other single-valued keys are `scalars`.
NEUTRAL_KEYS = ("model", "framework", "level", "decision")

Layer = dict[str, str]  # one pack of a result's stack: {"name": ..., "version": ...}


def compress(data: Any) -> bytes:
    """JSON data (keys sorted) compressed as results are stored: zstd with the shared
    dictionary of knowledge_graph.stored (about 1.7 KiB a result, zlib took 3.7)."""
    return pack(sorted_json(data))


def sorted_json(data: Any) -> bytes:
    """JSON data as `compress` serialises it before compressing: compact, keys sorted
    (what `decompress` parses back; store.jcs.from_sorted gives its canonical form)."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def decompress(blob: bytes) -> Any:
    """Data stored by `compress` (or zlib'd, as results were before revision 0008)."""
    return orjson.loads(inflate(blob))


def pack_names(names: Iterable[str]) -> bytes:
    """Names (the rules that fired, the kinds of fact present) as the `fired` and `kinds`
    columns keep them: sorted, one a line, zstd with the shared dictionary of
    knowledge_graph.stored, which knows the pack's rule ids and kinds (about 100 bytes
    each where zlib took 290 and a JSON list 310)."""
    return pack("\n".join(sorted(set(names))).encode())


def unpack_names(blob: bytes) -> set[str]:
    """Names kept by `pack_names` (or zlib'd, as `fired` was before revision 0011)."""
    text = inflate(blob).decode()
    return set(text.split("\n")) if text else set()


def framework_of(stack: Sequence[Layer]) -> str:
    """The framework of a pack stack: its base pack's name (for a stack stored before
    revision 0002, the first name of its combined pack name)."""
    return stack[0]["name"].split("+", 1)[0]


def scalars(contract: dict[str, Any]) -> dict[str, Any]:
    """A result's framework-specific single-valued keys (text, numbers, booleans), which
    `asl list` shows beside the neutral ones: rsp-2.1's `asl` and
    `comprehensive_assessment_required`."""
    return {k: v for k, v in contract.items() if k not in NEUTRAL_KEYS
            and isinstance(v, str | int | float | bool)}


def now() -> str:
    """The current UTC time, ISO 8601 to the microsecond (so history sorts by it)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Summary:
    """An assessment's queryable columns (everything but the result and provenance)."""

    id: int
    model_id: str
    assessed_at: str
    pack_name: str
    pack_version: str
    input_hash: str
    evidence_hash: str
    level: str  # the framework's headline level
    required: dict[str, Any]  # required safeguards by name
    scalars: dict[str, Any]  # the framework's other single-valued keys
    decision: str
    missing_safeguards: list[str]
    actions: list[str]
    batch_id: int | None
    pack_stack: list[Layer]  # each pack's name and version, the base first
    framework: str  # the base pack's name
    contract_hash: str | None  # None for results stored before revision 0002


class Saved(NamedTuple):
    """What `Store.save_chunk` did with one assessment: its id, and whether it stored it
    (False: another writer had stored the same assessment; `id` is that one's)."""

    id: int
    stored: bool


@dataclass(frozen=True)
class NewAssessment:
    """Everything one finished assessment writes, ready to insert: built (serialised and
    compressed) by the worker that assessed it, so the one process that owns the
    database connection only writes."""

    model_id: str
    evidence_hash: str
    evidence_body: dict[str, Any]
    file: str
    input_hash: str
    contract: dict[str, Any]  # the output contract without `conclusions`
    result: bytes  # `compress` of the whole output, conclusions included
    provenance: bytes  # knowledge_graph.provenance.dump of the graph
    fired: bytes  # `pack_names` of the rules that fired
    kinds: bytes  # `pack_names` of the kinds of fact present, for deciding re-assessment
    contract_hash: str  # a hash of the contract keys, to compare with the previous result
    evidence: bytes  # `compress` of `evidence_body`, as the record keeps it

    @classmethod
    def build(cls, model_id: str, evidence_hash: str, evidence_body: dict[str, Any],
              file: str, input_hash: str, result: dict[str, Any], provenance: bytes,
              edges: Sequence[tuple[str, str, str, str | None, str] | str], kinds: list[str],
              contract_hash: str, result_json: bytes | None = None,
              evidence_json: bytes | None = None) -> NewAssessment:
        """Serialise a result for `Store.save`; of the provenance rows `edges`
        (provenance.edge_rows) it keeps the rule ids, or takes `edges` as those rule ids
        (provenance.fired_rules) when given as strings. `result_json` and
        `evidence_json`: `result` and `evidence_body` as `compress` serialises them
        (`sorted_json`), when the caller has them already, so that they are not
        serialised again."""
        rules = (edge if isinstance(edge, str) else edge[4] for edge in edges)
        return cls(model_id, evidence_hash, evidence_body, file, input_hash,
                   {k: v for k, v in result.items() if k != "conclusions"},
                   pack(sorted_json(result) if result_json is None else result_json),
                   provenance, pack_names(rules), pack_names(kinds), contract_hash,
                   pack(sorted_json(evidence_body) if evidence_json is None
                        else evidence_json))


class Store:
    """The assessment record in one database. Batch runs are entered in the decision log
    (store.audit) as `actor` with `role` (default: the command line's OS user)."""

    def __init__(self, engine: Engine, actor: str | None = None,
                 role: str | None = None, copy: bool | None = None) -> None:
        self.engine = engine
        self.actor = actor
        self.role = role
        # Whether save_chunk writes through store.pg_bulk (COPY): on PostgreSQL unless
        # told not to (benchmarks/store_write_bench.py compares the two), never on SQLite.
        self.copy = engine.dialect.name == "postgresql" if copy is None else copy
        # Statements built once: SQLAlchemy then reuses their compiled form.
        self._new_model = self._insert_new(M)
        self._new_document = self._insert_new(D)
        # Rows the unique index refuses (another writer stored them) come back as none.
        self._new_assessment = self._insert_new(A).returning(
            A.c.id, A.c.model_id, A.c.input_hash, sort_by_parameter_order=True)

    def _insert_new(self, table: Any) -> Insert:
        """INSERT that does nothing when the row's primary key already exists."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    # -- writing -------------------------------------------------------------------

    def ensure_pack(self, version: str, name: str, rules: dict[str, Any], base: str) -> None:
        """Record a pack version (once) with the fingerprints re-assessment compares."""
        with self.engine.begin() as conn:
            conn.execute(self._insert_new(P), {"version": version, "name": name,
                                               "rules": rules, "base": base,
                                               "first_used": now()})

    def pack(self, version: str) -> PackVersion | None:
        """A recorded pack version."""
        with self.engine.connect() as conn:
            row = conn.execute(select(P).where(P.c.version == version)).mappings().first()
        return PackVersion(**row) if row else None

    def start_batch(self, pack_version: str, inputs: Sequence[str]) -> int:
        """Record the start of a batch run, and its decision-log entry; its id."""
        with self.engine.begin() as conn:
            result = conn.execute(insert(B).values(started=now(), pack_version=pack_version,
                                                   inputs=list(inputs)))
            batch_id = int(result.inserted_primary_key[0])
            self._log(conn, "batch.start", pack_version, {"inputs": list(inputs)},
                      {"batch": batch_id})
            return batch_id

    def finish_batch(self, batch_id: int, assessed: int, skipped: int, rejected: int) -> None:
        """Record that a batch run finished, and what it did, with its decision-log entry."""
        with self.engine.begin() as conn:
            conn.execute(update(B).where(B.c.id == batch_id).values(
                finished=now(), assessed=assessed, skipped=skipped, rejected=rejected))
            version = conn.execute(select(B.c.pack_version).where(B.c.id == batch_id)
                                   ).scalar_one()
            self._log(conn, "batch.finish", version, {"batch": batch_id},
                      {"batch": batch_id, "assessed": assessed, "skipped": skipped,
                       "rejected": rejected})

    def _log(self, conn: Connection, action: str, pack_version: str, given: Any,
             result: Any) -> None:
        """The decision-log entry of a batch's start or finish, in its transaction."""
        pack = conn.execute(select(P.c.name).where(P.c.version == pack_version)).scalar()
        audit.append(conn, actor=self.actor or audit.cli_actor(), role=self.role,
                     action=action, pack=pack, pack_version=pack_version,
                     input_sha256=audit.sha256_of(given), result_sha256=audit.sha256_of(result))

    def save(self, new: NewAssessment, pack_name: str, pack_version: str,
             stack: Sequence[Layer], batch_id: int | None = None) -> int:
        """Store one assessment with its evidence, in one transaction; its id (or, when
        another writer stored the same one first, that one's). `stack` is the packs it
        was made with (batch.stack)."""
        return self.save_many([new], pack_name, pack_version, stack, batch_id)[0]

    def save_many(self, batch: Sequence[NewAssessment], pack_name: str, pack_version: str,
                  stack: Sequence[Layer], batch_id: int | None = None,
                  conn: Connection | None = None,
                  based_on: Mapping[str, int] | None = None) -> list[int]:
        """`save_chunk`, giving only the ids (of an assessment another writer stored
        first, that one's)."""
        return [saved.id for saved in self.save_chunk(batch, pack_name, pack_version, stack,
                                                      batch_id, conn, based_on)]

    def save_chunk(self, batch: Sequence[NewAssessment], pack_name: str, pack_version: str,
                   stack: Sequence[Layer], batch_id: int | None = None,
                   conn: Connection | None = None,
                   based_on: Mapping[str, int] | None = None) -> list[Saved]:
        """Store assessments that arrived together (one worker's chunk) in one
        transaction, whole or not at all, each row kind in one statement (on SQLite an
        executemany; on PostgreSQL an insert of arrays, and COPY for the assessments:
        store.pg_bulk), with the batch run's count of what it assessed (so a killed
        run's record is true); per assessment, in order, its id and whether this call
        stored it.

        `based_on`: each model's newest assessment id when the writer decided to assess it
        (a model missing from it had none). An assessment that another writer, deciding
        on the same grounds, stored first (same model, input hash, pack version and
        assessment superseded) is not stored again: its `Saved` has that one's id and
        `stored` False. Without `based_on` the grounds are the newest assessment in this
        transaction, and one with the same input hash and pack version counts as the
        same assessment stored first. With `conn`, the rows are written in the caller's
        open transaction (which then also holds, say, their decision-log entry)."""
        if not batch:
            return []
        layers = [dict(layer) for layer in stack]
        framework = framework_of(layers)
        with self._transaction(conn) as conn:
            stamp = now()
            models = [{"id": m, "first_assessed": stamp}
                      for m in dict.fromkeys(n.model_id for n in batch)]
            documents = list({n.evidence_hash: {
                "hash": n.evidence_hash, "model_id": n.model_id, "content": n.evidence,
                "file": n.file, "received": stamp} for n in batch}.values())
            if self.copy:
                pg_bulk.insert_new(conn, M, models)
                pg_bulk.insert_new(conn, D, documents)
            else:
                conn.execute(self._new_model, models)
                conn.execute(self._new_document, documents)
            done: dict[int, int] = {}  # position in `batch` -> id stored before
            if based_on is None:
                newest = self._newest(conn, [n.model_id for n in batch])
                supersedes = {}
                for i, new in enumerate(batch):
                    last = newest.get(new.model_id)
                    if last is not None and last[1:] == (new.input_hash, pack_version):
                        done[i] = last[0]
                    supersedes[i] = 0 if last is None else last[0]
            else:
                supersedes = {i: based_on.get(new.model_id, 0) for i, new in enumerate(batch)}
            rows = [{
                "model_id": new.model_id, "evidence_hash": new.evidence_hash,
                "pack_name": pack_name, "pack_version": pack_version,
                "pack_stack": layers, "framework": framework,
                "contract_hash": new.contract_hash,
                "input_hash": new.input_hash, "assessed_at": stamp, "batch_id": batch_id,
                "level": new.contract["level"], "required": new.contract.get("required") or {},
                "scalars": scalars(new.contract), "decision": new.contract["decision"],
                "missing_safeguards": new.contract["missing_safeguards"],
                "actions": new.contract["actions"], "result": new.result,
                "provenance": new.provenance, "fired": new.fired, "kinds": new.kinds,
                "supersedes": supersedes[i]} for i, new in enumerate(batch) if i not in done]
            inserted = self._insert_assessments(conn, rows) if rows else {}
            saved = []
            for i, new in enumerate(batch):
                if i in done:
                    saved.append(Saved(done[i], False))
                    continue
                aid = inserted.pop((new.model_id, new.input_hash), None)
                if aid is not None:
                    saved.append(Saved(aid, True))
                    continue
                saved.append(Saved(conn.execute(select(A.c.id).where(
                    A.c.model_id == new.model_id, A.c.input_hash == new.input_hash,
                    A.c.pack_version == pack_version, A.c.supersedes == supersedes[i])
                ).scalar_one(), False))
            count = sum(s.stored for s in saved)
            if batch_id is not None and count:  # the run's count, true even if it is killed
                conn.execute(update(B).where(B.c.id == batch_id).values(
                    assessed=B.c.assessed + count))
        return saved

    def _insert_assessments(self, conn: Connection, rows: list[dict[str, Any]]
                            ) -> dict[tuple[str, str], int]:
        """Insert assessment rows, in order; the id of each stored, by model and input
        hash (a row another writer stored first is not stored, and not in it). With
        `copy`, numbered from the id sequence and written by COPY (store.pg_bulk), unless
        a unique index refuses a row: then, with those ids, by the one INSERT ... ON
        CONFLICT DO NOTHING that SQLite's rows take."""
        if self.copy:
            rows = [{"id": aid, **row} for aid, row in zip(
                pg_bulk.next_ids(conn, A, len(rows)), rows, strict=True)]
            if pg_bulk.copy_rows(conn, A, rows):
                return {(row["model_id"], row["input_hash"]): row["id"] for row in rows}
        return {(row.model_id, row.input_hash): row.id
                for row in conn.execute(self._new_assessment, rows)}

    @staticmethod
    def newest_ids(conn: Connection, models: Sequence[str]) -> dict[str, int]:
        """The id of each model's newest assessment, as `conn`'s transaction sees it (a
        writer checking, inside its transaction, what it decided on before)."""
        return {model: row[0] for model, row in Store._newest(conn, models).items()}

    @staticmethod
    def _newest(conn: Connection, models: Sequence[str]) -> dict[str, tuple[int, str, str]]:
        """(id, input hash, pack version) of each model's newest assessment, as this
        transaction sees it."""
        return {row.model_id: (row.id, row.input_hash, row.pack_version)
                for row in conn.execute(_NEWEST, {"models": sorted(set(models))})}

    @contextmanager
    def _transaction(self, conn: Connection | None) -> Iterator[Connection]:
        """`conn`, the caller's open transaction, or a new transaction committed at the
        end."""
        if conn is not None:
            yield conn
            return
        with self.engine.begin() as new:
            yield new

    # -- reading -------------------------------------------------------------------

    def _in_chunks(self, query: Callable[[list[Any]], Select[Any]], values: Iterable[Any]
                   ) -> Iterator[Row[Any]]:
        """The rows of `query(chunk)` for `values` in chunks (one IN (...) per chunk, so
        a hundred thousand ids never make one statement); none, without taking a
        connection, for no values (a service request whose references are not stored
        asks for their evidence with none)."""
        wanted = list(values)
        if not wanted:
            return
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                yield from conn.execute(query(wanted[start:start + CHUNK]))

    def latest(self, model_ids: Iterable[str]) -> dict[str, Summary]:
        """The newest assessment of each of these models that has one (one statement
        built once: building its select cost the service's stored assessment more than
        running it)."""
        wanted = sorted(set(model_ids))
        with self.engine.connect() as conn:
            return {row.model_id: Summary(**row._mapping)
                    for start in range(0, len(wanted), CHUNK)
                    for row in conn.execute(_LATEST, {"models": wanted[start:start + CHUNK]})}

    def all_latest(self, level: str | None = None, decision: str | None = None,
                   framework: str | None = None) -> Iterator[Summary]:
        """The newest assessment of every stored model, by model id, optionally only
        those with this headline level and/or decision. With `framework` (a base pack's
        name), the newest assessment under that framework of every model assessed
        under it."""
        newest = select(func.max(A.c.id)).group_by(A.c.model_id)
        if framework is not None:
            newest = newest.where(A.c.framework == framework)
        query = select(*SUMMARY_COLUMNS).where(A.c.id.in_(newest))
        if level is not None:
            query = query.where(A.c.level == level)
        if decision is not None:
            query = query.where(A.c.decision == decision)
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(A.c.model_id)).mappings():
                yield Summary(**row)

    def history(self, model_id: str) -> list[Summary]:
        """Every assessment of a model, oldest first (one statement, run past a
        Connection: the service reads a history in most requests)."""
        return [Summary(**dict(zip(_SUMMARY_FIELDS, row, strict=True)))
                for row in _HISTORY.all(self.engine, model=model_id)]

    def results(self, assessment_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The full results (output contract with conclusions) of these assessments."""
        return {aid: decompress(result) for aid, result in self._in_chunks(
            lambda chunk: select(A.c.id, A.c.result).where(A.c.id.in_(chunk)), assessment_ids)}

    def newest(self, model_id: str) -> tuple[int, str, bytes] | None:
        """The id, framework and stored provenance graph of a model's newest assessment,
        None when it has none (store.newest: by index, then by primary key)."""
        return newest(self.engine, model_id)

    def provenance(self, assessment_id: int) -> bytes:
        """The stored provenance graph of an assessment (knowledge_graph.provenance.dump);
        NoResultFound when there is no such assessment."""
        found = self.find_provenance(assessment_id)
        if found is None:
            raise NoResultFound("No row was found when one was required")
        return found

    def find_provenance(self, assessment_id: int) -> bytes | None:
        """`provenance`, or None when there is no such assessment (the service's `why`
        answers 404 for one removed since its history was read). One statement, run past
        a Connection, as `history` is: `why` reads both on a request naming an
        assessment."""
        row = _PROVENANCE.first(self.engine, id=assessment_id)
        return None if row is None else bytes(row[0])

    def evidence(self, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored evidence documents by hash."""
        return {digest: decompress(content) for digest, content in self._in_chunks(
            lambda chunk: select(D.c.hash, D.c.content).where(D.c.hash.in_(chunk)),
            sorted(set(hashes)))}

    def fired_rules(self, assessment_ids: Sequence[int]) -> dict[int, set[str]]:
        """The rules that fired in each of these assessments."""
        fired: dict[int, set[str]] = {aid: set() for aid in assessment_ids}
        for aid, rules in self._in_chunks(
                lambda chunk: select(A.c.id, A.c.fired).where(A.c.id.in_(chunk)),
                assessment_ids):
            fired[aid] = unpack_names(rules)
        return fired

    def kinds_present(self, assessment_ids: Sequence[int]) -> dict[int, set[str]]:
        """The kinds of fact present in each of these assessments (input, pack and
        derived), whether or not a rule used them."""
        return {aid: unpack_names(kinds) for aid, kinds in self._in_chunks(
            lambda chunk: select(A.c.id, A.c.kinds).where(A.c.id.in_(chunk)), assessment_ids)}
