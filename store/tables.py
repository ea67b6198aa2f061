"""The stored record of assessments, as sqlmodel tables.

One row per model, per evidence document as submitted (keyed by its hash), per rule pack
version, and per assessment. An assessment keeps the full result (the output contract
with its `conclusions`) and its provenance graph, and copies the contract keys into
columns so portfolios can be queried (`asl list --framework F --level L --decision D`):
the framework-neutral ones each in a column of its own, the framework's other
single-valued keys together (`scalars`); the
result and the graph are kept as compressed JSON, which keeps a 100,000-model record to
a few GB. It names the stack of packs it was made with (base pack first), and its
conclusions and provenance edges are rows of their own, so "which assessments rest on
evidence X / on rule R" is a query, not a scan of JSON.

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
    """A model document exactly as submitted (as parsed JSON data), and its hash."""

    __tablename__ = "evidence_document"

    hash: str = Field(primary_key=True)  # sha256 of the canonical JSON of `body`
    model_id: str = Field(foreign_key="model.id", index=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
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
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(foreign_key="model.id")
    evidence_hash: str = Field(foreign_key="evidence_document.hash")
    pack_name: str
    pack_version: str = Field(foreign_key="pack_version.version", index=True)
    # Each loaded pack's {"name", "version"}, the base first (batch.stack); one entry,
    # the combined name and version, for results stored before revision 0002.
    pack_stack: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    framework: str = Field(index=True)  # the base pack's name
    input_hash: str = Field(index=True)  # evidence + what a reference carried over
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
    kinds: list[str] = Field(sa_column=Column(JSON, nullable=False))  # kinds of fact present
    # sha256 of the contract keys (knowledge_graph.compare.contract_values), so a batch
    # sees which results changed without reading them; None before revision 0002.
    contract_hash: str | None = None


class StoredConclusion(SQLModel, table=True):
    """A conclusion of an assessment (one entry of its `conclusions`)."""

    __tablename__ = "conclusion"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="assessment.id", index=True)
    conclusion_id: str
    kind: str
    value: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    rule: str = Field(index=True)  # the first supporting rule, as in the output
    because: list[str] = Field(sa_column=Column(JSON, nullable=False))


class ProvenanceEdge(SQLModel, table=True):
    """An edge of an assessment's provenance graph: a fact used by a rule firing, or a
    conclusion generated by one."""

    __tablename__ = "provenance_edge"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="assessment.id", index=True)
    source: str
    target: str
    role: str  # used | generated
    name: str | None = None  # the rule's name for a used fact
    rule_id: str  # the rule of the firing at either end


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
