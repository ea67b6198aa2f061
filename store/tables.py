"""The stored record of assessments, as sqlmodel tables.

One row per model, per evidence document as submitted (keyed by its hash), per rule pack
version, and per assessment. An assessment keeps the full result (the output contract
with its `conclusions`) and its provenance graph, and copies the contract keys into
columns so portfolios can be queried (`asl list --framework F --level L --decision D`):
the framework-neutral ones each in a column of its own, the framework's other
single-valued keys together (`scalars`); the
result is kept as compressed JSON and the provenance graph in its compact compressed
encoding (knowledge_graph.provenance.dump), a few KiB per model in all. It names the
stack of packs it was made with (base pack first), and the rules that fired for it
(`fired`, compressed), which is all re-assessment asks of the derivation without
reading it; since revision 0008 the conclusions and provenance edges are no longer rows
of their own (they cost some 40 KiB per model, and are in the result and the graph).

One assessment per model, input hash, pack version and the assessment it supersedes
(`supersedes`: the model's newest assessment when the writer decided to assess it, 0 for
its first): two writers that decided the same thing store it once, the second skipping,
while `--force` and evidence changed back (which supersede another assessment) are kept.

The schema is created and changed only by the Alembic migrations in store/migrations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class StoredModel(SQLModel, table=True):
    """A model or checkpoint that has been assessed at least once."""

    __tablename__ = "model"

    id: str = Field(primary_key=True)
    first_assessed: str  # UTC, ISO 8601


class EvidenceDocument(SQLModel, table=True):
    """A model document exactly as submitted (as parsed JSON data, compressed), and its
    hash."""

    __tablename__ = "evidence_document"

    hash: str = Field(primary_key=True)  # sha256 of the canonical JSON of the document
    model_id: str = Field(foreign_key="model.id", index=True)
    # The document's canonical JSON (keys sorted), compressed as results are
    # (store.record.compress); before revision 0008, a JSON column `body`.
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    file: str  # where it was first submitted from: the file, and its place in a portfolio
    received: str


class PackVersion(SQLModel, table=True):
    """A rule pack version (its content hash) and what re-assessment needs to know of it:
    a fingerprint per rule, and one for everything that is not a rule."""

    __tablename__ = "pack_version"

    version: str = Field(primary_key=True)
    name: str
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    base: str  # fingerprint of the kinds, pack facts and catalogue
    first_used: str


class StoredAssessment(SQLModel, table=True):
    """One assessment of one model with one pack version."""

    __tablename__ = "assessment"
    __table_args__ = (
        UniqueConstraint("batch_id", "model_id", name="uq_assessment_batch_model"),
        Index("ix_assessment_model_latest", "model_id", "id"),
        Index("uq_assessment_once", "model_id", "input_hash", "pack_version", "supersedes",
              unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(foreign_key="model.id")
    evidence_hash: str = Field(foreign_key="evidence_document.hash")
    pack_name: str
    pack_version: str = Field(foreign_key="pack_version.version")
    # Each loaded pack's {"name", "version"}, the base first (batch.stack); one entry,
    # the combined name and version, for results stored before revision 0002.
    pack_stack: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    framework: str = Field(index=True)  # the base pack's name
    input_hash: str  # evidence + what a reference carried over
    assessed_at: str
    batch_id: int | None = Field(default=None, foreign_key="batch_run.id")
    level: str = Field(index=True)  # the framework's headline level (rsp-2.1: the ASL)
    # The required safeguards by name ({} when the framework's output has no `required`).
    required: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The framework's other single-valued contract keys (rsp-2.1: asl and
    # comprehensive_assessment_required).
    scalars: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    decision: str = Field(index=True)
    missing_safeguards: list[str] = Field(sa_column=Column(JSON, nullable=False))
    actions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    result: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # zlib'd JSON
    provenance: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The kinds of fact present (input, pack and derived), as `fired` keeps rule ids
    # (`pack_names` in store.record): what --reassess asks of them.
    kinds: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # sha256 of the contract keys (knowledge_graph.compare.contract_values), so a batch
    # sees which results changed without reading them; None before revision 0002.
    contract_hash: str | None = None
    # The ids of the rules that fired, sorted, one a line, compressed (`pack_names` in
    # store.record): what --reassess asks of the derivation.
    fired: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The model's newest assessment when this one was decided on (0: none), see above.
    supersedes: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class BatchRun(SQLModel, table=True):
    """One `asl batch` run: what it was asked, and how far it got."""

    __tablename__ = "batch_run"

    id: int | None = Field(default=None, primary_key=True)
    started: str
    finished: str | None = None
    pack_version: str
    inputs: list[str] = Field(sa_column=Column(JSON, nullable=False))
    assessed: int = 0
    skipped: int = 0
    rejected: int = 0


# The service's tables (tokens, decision log, packs) share the metadata and migrations.
import store.service_tables  # noqa: E402,F401
from store import ui_tables  # noqa: E402,F401  (the web UI: sessions, newest assessments)
