"""The service's tables: API tokens, the decision log, and draft and active rule packs.

They live beside the assessment record (store.tables) in the same database, so the CLI
and `asl serve` share them: a token made with `asl tokens create` works in every worker,
the active pack stack is the same for the service and the CLI, and the decision log has
one hash chain whatever wrote to it. Created only by migration 0003.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, text
from sqlmodel import Field, SQLModel


class ApiToken(SQLModel, table=True):
    """A bearer token of one person with one role. Only the SHA-256 of its secret is
    kept; the token itself (`asl_<id>_<secret>`) is shown once, when it is made."""

    __tablename__ = "api_token"
    __table_args__ = (
        # A name is reused only once its token is revoked: `asl tokens revoke NAME`
        # always means the one live token of that name.
        Index("uq_api_token_live_name", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"),
              postgresql_where=text("revoked_at IS NULL")),
    )

    id: str = Field(primary_key=True)  # 16 hex digits, the public part of the token
    name: str
    person: str  # who holds it: four eyes compares people, not tokens
    role: str  # viewer | analyst | rule-author | admin
    secret_sha256: str
    created_at: str  # RFC 3339, UTC
    created_by: str
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None


class DecisionEntry(SQLModel, table=True):
    """One entry of the decision log: who did what, with which pack, on what input and
    with what result, chained to the entry before it by `prev_hash` (store.audit)."""

    __tablename__ = "decision_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    decision_id: str = Field(unique=True)
    time: str
    actor: str
    role: str | None = None
    action: str
    pack: str | None = None
    pack_version: str | None = None
    input_sha256: str | None = None
    result_sha256: str | None = None
    prev_hash: str = Field(unique=True)
    hash: str = Field(unique=True)
    hmac: str | None = None  # HMAC-SHA256 of `hash` under ASL_AUDIT_KEY, when it was set


class PackDraft(SQLModel, table=True):
    """An uploaded overlay pack awaiting review: one draft per pack name, replaced by
    the next upload of that name."""

    __tablename__ = "pack_draft"

    name: str = Field(primary_key=True)
    version: str  # store.packs.files_version of `files` (all of them, tests included)
    files: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # path -> text
    uploaded_by: str  # the person
    uploaded_at: str


class ActivePack(SQLModel, table=True):
    """An overlay pack in force, at its place in the active stack (over the built-in
    base pack, in activation order)."""

    __tablename__ = "pack_active"

    name: str = Field(primary_key=True)
    position: int = Field(unique=True)
    version: str  # the draft's version when it was activated (store.packs.files_version)
    files: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    uploaded_by: str
    uploaded_at: str
    activated_by: str
    activated_at: str


class ServiceBatch(SQLModel, table=True):
    """A portfolio submitted to `POST /v1/batches`: the body itself (compressed) until
    it has run, where the run is (`queued`, `running`, `done`, `failed`), its progress
    and summary. The runner holding it writes `heartbeat_at` every few seconds; a
    running batch whose heartbeat has stopped is marked failed, and can be resumed (run
    again: what was stored is skipped as unchanged). Created by migration 0004;
    `framework` added by 0006."""

    __tablename__ = "service_batch"

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(index=True)  # queued | running | done | failed
    submitted_by: str  # the person
    submitted_at: str  # RFC 3339, UTC
    format: str  # json | yaml | jsonl
    # the built-in framework it was submitted under (`?framework=`), or None: the active
    # pack stack. Its own column since migration 0006 (it rode in `format` before).
    framework: str | None = None
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # zlib'd
    done: int = 0
    total: int = 0
    heartbeat_at: str | None = None
    finished_at: str | None = None
    batch_run_id: int | None = None  # the batch_run row of the last run
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
