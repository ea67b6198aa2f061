"""Reading and writing the record: one call per thing a command needs.

`Store` wraps an engine from store.db. Writes are one transaction each: an assessment
is committed with its evidence document, conclusions and provenance edges, or not at
all, so a batch killed at any moment leaves only whole results behind. Inserts of
models, documents and pack versions that may already exist do nothing when they do,
which is what lets two batches share one database.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Insert, Row, Select, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from store import audit
from store.db import json_text
from store.tables import (
    BatchRun,
    EvidenceDocument,
    PackVersion,
    ProvenanceEdge,
    StoredAssessment,
    StoredConclusion,
    StoredModel,
)

CHUNK = 500  # ids per IN (...) query

A = StoredAssessment.__table__  # type: ignore[attr-defined]
C = StoredConclusion.__table__  # type: ignore[attr-defined]
E = ProvenanceEdge.__table__  # type: ignore[attr-defined]
D = EvidenceDocument.__table__  # type: ignore[attr-defined]
M = StoredModel.__table__  # type: ignore[attr-defined]
P = PackVersion.__table__  # type: ignore[attr-defined]
B = BatchRun.__table__  # type: ignore[attr-defined]

SUMMARY_COLUMNS = (A.c.id, A.c.model_id, A.c.assessed_at, A.c.pack_name, A.c.pack_version,
                   A.c.input_hash, A.c.evidence_hash, A.c.level, A.c.required, A.c.scalars,
                   A.c.decision, A.c.missing_safeguards, A.c.actions, A.c.batch_id,
                   A.c.pack_stack, A.c.framework, A.c.contract_hash)
# Contract keys every result has, whatever its framework, with columns of their own (or,
# for model and pack, none needed); a result's other single-valued keys are `scalars`.
NEUTRAL_KEYS = ("model", "framework", "level", "decision")

Layer = dict[str, str]  # one pack of a result's stack: {"name": ..., "version": ...}


def compress(data: Any) -> bytes:
    """JSON data as zlib-compressed bytes (keys sorted), as results are stored."""
    # Level 3, as for provenance graphs: a third of level 6's time for 20% more bytes.
    return zlib.compress(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), 3)


def decompress(blob: bytes) -> Any:
    """Data stored by `compress`."""
    return orjson.loads(zlib.decompress(blob))


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
    conclusions: list[tuple[str, str, str, str, str]]  # id, kind, value, rule, because (JSON)
    edges: list[tuple[str, str, str, str | None, str]]  # provenance.edge_rows
    kinds: list[str]  # the kinds of fact present, for deciding re-assessment
    contract_hash: str  # a hash of the contract keys, to compare with the previous result

    @classmethod
    def build(cls, model_id: str, evidence_hash: str, evidence_body: dict[str, Any],
              file: str, input_hash: str, result: dict[str, Any], provenance: bytes,
              edges: list[tuple[str, str, str, str | None, str]], kinds: list[str],
              contract_hash: str) -> NewAssessment:
        """Serialise a result and its provenance rows for `Store.save`."""
        return cls(model_id, evidence_hash, evidence_body, file, input_hash,
                   {k: v for k, v in result.items() if k != "conclusions"}, compress(result),
                   provenance,
                   [(c["id"], c["kind"], json_text(c["value"]), c["rule"],
                     json_text(c["because"])) for c in result["conclusions"]],
                   edges, kinds, contract_hash)


class Store:
    """The assessment record in one database. Batch runs are entered in the decision log
    (store.audit) as `actor` with `role` (default: the command line's OS user)."""

    def __init__(self, engine: Engine, actor: str | None = None,
                 role: str | None = None) -> None:
        self.engine = engine
        self.actor = actor
        self.role = role
        # Statements built once: SQLAlchemy then reuses their compiled form.
        self._new_model = self._insert_new(M)
        self._new_document = self._insert_new(D)
        self._new_assessment = insert(A)
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = {
            table: f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                   f"({', '.join([mark] * len(columns))})"
            for table, columns in (
                ("conclusion", ("assessment_id", "conclusion_id", "kind", "value", "rule",
                                "because")),
                ("provenance_edge", ("assessment_id", "source", "target", "role", "name",
                                     "rule_id")))}

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
        """Store one assessment with its evidence, conclusions and provenance, in one
        transaction; its id. `stack` is the packs it was made with (batch.stack)."""
        return self.save_many([new], pack_name, pack_version, stack, batch_id)[0]

    def save_many(self, batch: Sequence[NewAssessment], pack_name: str, pack_version: str,
                  stack: Sequence[Layer], batch_id: int | None = None,
                  conn: Connection | None = None) -> list[int]:
        """Store assessments that arrived together (one worker's chunk) in one
        transaction, whole or not at all, with the batch run's count of what it
        assessed (so a killed run's record is true); their ids, in order. Conclusion and
        edge rows go straight to the driver's executemany: they are already serialised,
        and there are a hundred and fifty per model. With `conn`, they are written in the
        caller's open transaction (which then also holds, say, their decision-log entry)."""
        ids = []
        layers = [dict(layer) for layer in stack]
        framework = framework_of(layers)
        with self._transaction(conn) as conn:
            stamp = now()
            for new in batch:
                contract = new.contract
                conn.execute(self._new_model, {"id": new.model_id, "first_assessed": stamp})
                conn.execute(self._new_document, {
                    "hash": new.evidence_hash, "model_id": new.model_id,
                    "body": new.evidence_body, "file": new.file, "received": stamp})
                row = conn.execute(self._new_assessment, {
                    "model_id": new.model_id, "evidence_hash": new.evidence_hash,
                    "pack_name": pack_name, "pack_version": pack_version,
                    "pack_stack": layers, "framework": framework,
                    "contract_hash": new.contract_hash,
                    "input_hash": new.input_hash, "assessed_at": stamp, "batch_id": batch_id,
                    "level": contract["level"], "required": contract.get("required") or {},
                    "scalars": scalars(contract), "decision": contract["decision"],
                    "missing_safeguards": contract["missing_safeguards"],
                    "actions": contract["actions"], "result": new.result,
                    "provenance": new.provenance, "kinds": new.kinds})
                assessment_id = int(row.inserted_primary_key[0])
                ids.append(assessment_id)
                if new.conclusions:
                    conn.exec_driver_sql(self._sql["conclusion"],
                                         [(assessment_id, *c) for c in new.conclusions])
                if new.edges:
                    conn.exec_driver_sql(self._sql["provenance_edge"],
                                         [(assessment_id, *e) for e in new.edges])
            if batch_id is not None and batch:  # the run's count, true even if it is killed
                conn.execute(update(B).where(B.c.id == batch_id).values(
                    assessed=B.c.assessed + len(batch)))
        return ids

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
        a hundred thousand ids never make one statement)."""
        wanted = list(values)
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                yield from conn.execute(query(wanted[start:start + CHUNK]))

    def latest(self, model_ids: Iterable[str]) -> dict[str, Summary]:
        """The newest assessment of each of these models that has one."""
        def query(chunk: list[Any]) -> Select[Any]:
            newest = (select(func.max(A.c.id)).where(A.c.model_id.in_(chunk))
                      .group_by(A.c.model_id))
            return select(*SUMMARY_COLUMNS).where(A.c.id.in_(newest))

        return {row.model_id: Summary(**row._mapping)
                for row in self._in_chunks(query, sorted(set(model_ids)))}

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
        """Every assessment of a model, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*SUMMARY_COLUMNS).where(A.c.model_id == model_id)
                                .order_by(A.c.id)).mappings().all()
        return [Summary(**row) for row in rows]

    def results(self, assessment_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The full results (output contract with conclusions) of these assessments."""
        return {aid: decompress(result) for aid, result in self._in_chunks(
            lambda chunk: select(A.c.id, A.c.result).where(A.c.id.in_(chunk)), assessment_ids)}

    def provenance(self, assessment_id: int) -> bytes:
        """The stored provenance graph of an assessment (knowledge_graph.provenance.dump)."""
        with self.engine.connect() as conn:
            return bytes(conn.execute(select(A.c.provenance).where(A.c.id == assessment_id))
                         .scalar_one())

    def evidence(self, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored evidence documents by hash."""
        return dict(self._in_chunks(
            lambda chunk: select(D.c.hash, D.c.body).where(D.c.hash.in_(chunk)),
            sorted(set(hashes))))

    def fired_rules(self, assessment_ids: Sequence[int]) -> dict[int, set[str]]:
        """The rules that fired in each of these assessments."""
        fired: dict[int, set[str]] = {aid: set() for aid in assessment_ids}
        for aid, rule in self._in_chunks(
                lambda chunk: select(E.c.assessment_id, E.c.rule_id).distinct()
                .where(E.c.assessment_id.in_(chunk)), assessment_ids):
            fired[aid].add(rule)
        return fired

    def kinds_present(self, assessment_ids: Sequence[int]) -> dict[int, set[str]]:
        """The kinds of fact present in each of these assessments (input, pack and
        derived), whether or not a rule used them."""
        return {aid: set(kinds) for aid, kinds in self._in_chunks(
            lambda chunk: select(A.c.id, A.c.kinds).where(A.c.id.in_(chunk)), assessment_ids)}
