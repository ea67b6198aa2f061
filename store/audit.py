"""The decision log: one hash-chained entry per state-changing action, service or CLI.

Each entry records who (`actor`, the person; `cli:<os user>` for the command line) did
what (`action`), with which pack, on which input and with which result (SHA-256 of their
RFC 8785 canonical JSON, so a JSON and a YAML body of one document agree). `hash` is the
SHA-256 of the previous entry's hash followed by the canonical JSON of the entry's
fields from `seq` to `result_sha256`; the first entry's `prev_hash` is 64 zeros. With
`ASL_AUDIT_KEY` set, an entry also carries an HMAC of its hash.

`append` writes an entry inside the caller's transaction, so the entry and what it
records commit together or not at all. `verify` walks the chain: an edited, deleted or
reordered entry breaks it; removal of the newest entries is caught against a head kept
elsewhere (`expect_head`); with the key, a rewrite of the whole chain by someone without
it is caught too. The database's append-only triggers (migration 0003) are a second
line; the chain does not rely on them.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from store import jcs
from store.service_tables import DecisionEntry

KEY_ENV = "ASL_AUDIT_KEY"
GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "decision_id", "time", "actor", "role", "action", "pack",
                 "pack_version", "input_sha256", "result_sha256")
APPEND_LOCK = 7_146_582_319  # PostgreSQL advisory lock: one appender at a time

L = DecisionEntry.__table__  # type: ignore[attr-defined]


def canonical_json(data: Any) -> bytes:
    """The RFC 8785 (JCS) canonical JSON of `data` (store.jcs: exactly what the `rfc8785`
    package writes, faster)."""
    return jcs.dumps(data)


def sha256_of(data: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `data`."""
    return sha256_of_canonical(canonical_json(data))


def sha256_of_canonical(text: bytes) -> str:
    """SHA-256 (hex) of canonical JSON already written (`sha256_of` of the data it is
    the canonical form of): for a caller that has it from store.jcs.from_sorted."""
    return hashlib.sha256(text).hexdigest()


def rfc3339_now() -> str:
    """The current time, RFC 3339 in UTC to the microsecond."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_key() -> bytes | None:
    """The HMAC key from ASL_AUDIT_KEY, or None when it is not set."""
    value = os.environ.get(KEY_ENV)
    return value.encode() if value else None


def cli_actor() -> str:
    """The actor of an entry the command line writes: `cli:` and the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


@dataclass(frozen=True)
class Decision:
    """One entry of the log, as stored."""

    seq: int
    decision_id: str
    time: str
    actor: str
    role: str | None
    action: str
    pack: str | None
    pack_version: str | None
    input_sha256: str | None
    result_sha256: str | None
    prev_hash: str
    hash: str
    hmac: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def expected_hash(self) -> str:
        """The hash this entry's fields and `prev_hash` call for."""
        return entry_hash(self.prev_hash, {f: getattr(self, f) for f in HASHED_FIELDS})


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 (hex) of `prev_hash` followed by the canonical JSON of the hashed fields
    (a missing field counts as null)."""
    body = canonical_json({name: fields.get(name) for name in HASHED_FIELDS})
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def entry_hmac(key: bytes, entry_hash_hex: str) -> str:
    """HMAC-SHA256 (hex) of an entry's hash under the audit key."""
    return hmac.new(key, entry_hash_hex.encode("ascii"), hashlib.sha256).hexdigest()


# Built once: building a statement costs more than SQLite takes to run these.
_HEAD = select(L.c.seq, L.c.hash).order_by(L.c.seq.desc()).limit(1)
_APPEND = insert(L)


def _head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(_HEAD).first()
    return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


def append(conn: Connection, *, actor: str, action: str, role: str | None = None,
           pack: str | None = None, pack_version: str | None = None,
           input_sha256: str | None = None, result_sha256: str | None = None,
           decision_id: str | None = None, key: bytes | None = None) -> Decision:
    """Append an entry inside the caller's open transaction on `conn` (commit it with
    what it records, a writer's: `engine.begin()`). Appenders are serialised: SQLite's
    writers already are (store.db begins a writer's transaction IMMEDIATE),
    PostgreSQL's take an advisory lock held to the end of the transaction. `key`
    defaults to ASL_AUDIT_KEY."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({APPEND_LOCK})")
    last_seq, prev = _head(conn)
    fields: dict[str, Any] = {
        "seq": last_seq + 1, "decision_id": decision_id or str(uuid.uuid4()),
        "time": rfc3339_now(), "actor": actor, "role": role, "action": action, "pack": pack,
        "pack_version": pack_version, "input_sha256": input_sha256,
        "result_sha256": result_sha256}
    digest = entry_hash(prev, fields)
    key = key if key is not None else audit_key()
    row = {**fields, "prev_hash": prev, "hash": digest,
           "hmac": entry_hmac(key, digest) if key else None}
    conn.execute(_APPEND, row)
    return Decision(**row)


def _decision(row: Any) -> Decision:
    return Decision(**{name: row[name] for name in Decision.__dataclass_fields__})


def recent(engine: Engine, limit: int, before: int | None = None) -> list[Decision]:
    """Up to `limit` entries, newest first, only those before seq `before` if given."""
    query = select(L).order_by(L.c.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(L.c.seq < before)
    with engine.connect() as conn:
        return [_decision(row) for row in conn.execute(query).mappings()]


def entries(engine: Engine, chunk: int = 1000) -> Iterator[Decision]:
    """Every entry in seq order, read a chunk at a time (the log may be long)."""
    after = None
    with engine.connect() as conn:
        while True:
            query = select(L).order_by(L.c.seq).limit(chunk)
            if after is not None:
                query = query.where(L.c.seq > after)
            rows = [_decision(row) for row in conn.execute(query).mappings()]
            yield from rows
            if len(rows) < chunk:
                return
            after = rows[-1].seq


@dataclass(frozen=True)
class Verification:
    """What `verify` found: how many entries it checked, the head it reached (SEQ:HASH)
    and the first failure (None when the chain is intact)."""

    checked: int
    head: str
    failure: str | None


def parse_head(text: str) -> tuple[int, str]:
    """`SEQ:HASH` as (seq, hash); ValueError with a reason otherwise."""
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 \
            or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{text!r} is not SEQ:HASH (a number, a colon and 64 hex digits)")
    return int(seq), digest


def verify(engine: Engine, key: bytes | None = None,
           expect_head: tuple[int, str] | None = None) -> Verification:
    """Walk the chain in seq order and report the first entry that fails: a seq out of
    place (deleted or reordered entries), a `prev_hash` that is not the previous entry's
    hash, a hash that does not match the entry (edited), or, with `key`, a missing or
    wrong HMAC. With `expect_head` (seq, hash), the log must still hold that entry."""
    prev_seq, prev_hash = 0, GENESIS
    checked = 0
    reached: str | None = None
    for entry in entries(engine):
        failure = _check(entry, prev_seq, prev_hash, key)
        if failure:
            return Verification(checked, f"{prev_seq}:{prev_hash}", failure)
        checked += 1
        prev_seq, prev_hash = entry.seq, entry.hash
        if expect_head is not None and entry.seq == expect_head[0]:
            reached = entry.hash
    head = f"{prev_seq}:{prev_hash}"
    if expect_head is not None:
        seq, digest = expect_head
        if seq > prev_seq:
            return Verification(checked, head, f"the log ends at entry {prev_seq}, before the "
                                f"expected head {seq}: entries were removed from the end")
        if (reached if seq else GENESIS) != digest:
            return Verification(checked, head, f"entry {seq}: its hash is not the expected "
                                "head's: the log was rewritten from there")
    return Verification(checked, head, None)


def _check(entry: Decision, prev_seq: int, prev_hash: str, key: bytes | None) -> str | None:
    where = f"entry {entry.seq}"
    if entry.seq != prev_seq + 1:
        return (f"{where}: expected entry {prev_seq + 1} after entry {prev_seq}: entries "
                "were deleted or reordered")
    if entry.prev_hash != prev_hash:
        return (f"{where}: prev_hash is not the hash of entry {prev_seq}: entries were "
                "deleted, reordered or rewritten")
    if entry.expected_hash() != entry.hash:
        return f"{where}: its hash does not match its fields: the entry was edited"
    if key is not None:
        if entry.hmac is None:
            return (f"{where}: has no HMAC, but {KEY_ENV} is set (written without the key, "
                    "or the chain was rewritten)")
        if not hmac.compare_digest(entry.hmac, entry_hmac(key, entry.hash)):
            return f"{where}: its HMAC does not match under {KEY_ENV}: the chain was rewritten"
    return None
