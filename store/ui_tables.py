"""The web UI's tables: server-side sessions, the newest assessment of each model, and
the drafts' portfolio impact jobs.

Both live in the record's database, so every `asl serve` worker sees the same: a session
made by one worker is honoured by all of them, and the model list reads which
assessment is each model's newest from one small table instead of grouping the whole
record on every page; a draft's impact, worked out once by one worker, is read by all.
Created only by migrations 0009 and 0010.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel


class UiSession(SQLModel, table=True):
    """A browser's login to the web UI. The cookie holds the session id; only its
    SHA-256 is kept, so a copy of the database opens no session. The token behind it is
    looked up again on every request (a revoked or expired token ends its sessions);
    times are seconds since the epoch (UTC), shared by every worker."""

    __tablename__ = "ui_session"

    id_sha256: str = Field(primary_key=True)
    token_id: str = Field(foreign_key="api_token.id", index=True)
    role: str  # the token's role when the session was made
    csrf: str  # the value every state-changing form of this session must repeat
    created_at: float
    idle_until: float  # pushed on by use (at most once a minute)
    expires_at: float  # created_at + the absolute timeout


class LatestAssessment(SQLModel, table=True):
    """The newest assessment (highest id) of each stored model, with the columns the
    model list filters and sorts by. Kept by a trigger on `assessment` (migration 0009),
    so every writer, whatever its path, keeps it true; read by store.browse."""

    __tablename__ = "assessment_latest"
    # A filter (level, decision, framework) and a sort (model id, level, decision,
    # assessment time; either way) each have an index that yields the rows in order, so
    # a page, however deep, is read from an index and never sorted.
    __table_args__ = (
        Index("ix_assessment_latest_level", "level", "model_id", "assessment_id"),
        Index("ix_assessment_latest_decision", "decision", "model_id", "assessment_id"),
        Index("ix_assessment_latest_assessed", "assessed_at", "model_id", "assessment_id"),
        Index("ix_assessment_latest_framework", "framework", "model_id", "assessment_id"),
        Index("ix_assessment_latest_level_assessed", "level", "assessed_at", "model_id"),
        Index("ix_assessment_latest_decision_assessed", "decision", "assessed_at",
              "model_id"),
        Index("ix_assessment_latest_level_decision", "level", "decision", "model_id"),
        Index("ix_assessment_latest_decision_level", "decision", "level", "model_id"),
    )

    model_id: str = Field(primary_key=True, foreign_key="model.id")
    assessment_id: int = Field(foreign_key="assessment.id", unique=True)
    level: str
    decision: str
    framework: str
    assessed_at: str


class DraftImpactJob(SQLModel, table=True):
    """A draft pack's portfolio impact (batch.impact), worked out in the background for
    the draft's page, one row per (draft version, active stack, record state): `key` is
    a hash of the three, so any change to them makes a new job and a reload of the page
    reads the finished one. The worker that inserts the row runs it and beats
    `heartbeat_at` (seconds since the epoch); a row left running without a beat is taken
    over by the next worker to show the page. `result` is the whole impact
    as zlib'd JSON, `summary` what the page shows of it (service.ui.impact.summary)."""

    __tablename__ = "draft_impact"

    key: str = Field(primary_key=True)  # sha256 of draft version, stack, record state
    draft: str = Field(index=True)  # the draft's name
    version: str  # the draft's version
    stack: str  # the active stack, JSON: [[name, version], ...]
    record: int  # the record state: the newest assessment id then
    state: str  # running | done | failed
    phase: str = ""  # what the job is doing (batch.impact's phases)
    done: int = 0
    total: int = 0
    started_at: float
    heartbeat_at: float
    finished_at: float | None = None
    summary: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    result: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    error: str | None = None
