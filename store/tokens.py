"""API tokens: made, listed and revoked from the command line, checked by the service.

A token reads `asl_<id>_<secret>`: `id` is 16 hex digits, stored in the clear and used
to find the token; `secret` is 32 random bytes, base64url, of which only the SHA-256 is
stored and which is compared in constant time. Each token belongs to a person and has
one role. Every check reads the database, so a revocation takes effect on the next
request in every worker (the check is one read by primary key, `store.db.Read`). Making
and revoking a token each append a decision-log entry in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from store import audit
from store.db import Read
from store.service_tables import ApiToken

ROLES = ("viewer", "analyst", "rule-author", "admin")
TOKEN_FORMAT = re.compile(r"asl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
NAME_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}")
PERSON_FORMAT = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,198}[^\s\x00-\x1f\x7f])?")
LAST_USE_EVERY_S = 60  # `last_used_at` is written at most this often per token
MAX_EXPIRY_DAYS = 36_500

T = ApiToken.__table__  # type: ignore[attr-defined]
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


class TokenError(Exception):
    """A token cannot be made or revoked; the message says why and what to do."""


@dataclass(frozen=True)
class Token:
    """A token as `asl tokens list` shows it: never its secret or hash."""

    id: str
    name: str
    person: str
    role: str
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None

    def state(self, now: str | None = None) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or audit.rfc3339_now()):
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state()}


def _token(row: Any) -> Token:
    return Token(**{name: row[name] for name in Token.__dataclass_fields__})


# What a request's check reads: the secret's hash, then a Token's fields in order.
_BY_ID = Read(select(T.c.secret_sha256, *(T.c[name] for name in Token.__dataclass_fields__))
              .where(T.c.id == bindparam("token_id")))


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _public(token: Token) -> dict[str, Any]:
    """What the decision log hashes as a token action's result: no secret, no hash."""
    return {k: v for k, v in asdict(token).items() if k != "last_used_at"}


def create(engine: Engine, name: str, role: str, person: str | None = None,
           expires_days: int | None = None, actor: str | None = None,
           actor_role: str | None = None) -> tuple[str, Token]:
    """Make a token; return the token text (shown once) and its record. The decision
    log records it (actor: `actor`, default the CLI's) in the same transaction."""
    person = name if person is None else person
    if not NAME_FORMAT.fullmatch(name):
        raise TokenError(f"token name {name!r}: use letters, digits and _.@+- (at most 100, "
                         "starting with a letter or digit)")
    if not PERSON_FORMAT.fullmatch(person):
        raise TokenError(f"--user {person!r}: give the person's name or e-mail (at most "
                         "200 characters, no control characters)")
    if role not in ROLES:
        raise TokenError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise TokenError(f"--expires {expires_days}: give a number of days from 1 to "
                         f"{MAX_EXPIRY_DAYS}")
    actor = actor or audit.cli_actor()
    token_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    created = audit.rfc3339_now()
    expires = None
    if expires_days is not None:
        expires = (datetime.now(UTC) + timedelta(days=expires_days)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
    token = Token(token_id, name, person, role, created, actor, expires, None, None)
    try:
        with engine.begin() as conn:
            conn.execute(insert(T), {**asdict(token), "secret_sha256": _secret_hash(secret)})
            audit.append(conn, actor=actor, role=actor_role, action="token.create",
                         input_sha256=audit.sha256_of({"name": name, "role": role,
                                                       "person": person,
                                                       "expires_days": expires_days}),
                         result_sha256=audit.sha256_of(_public(token)))
    except IntegrityError:
        if any(t.name == name and t.revoked_at is None for t in list_tokens(engine)):
            raise TokenError(f"a live token named {name!r} exists; revoke it first or "
                             "choose another --name") from None
        raise
    return f"asl_{token_id}_{secret}", token


def list_tokens(engine: Engine) -> list[Token]:
    """Every token, live or not, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(T).order_by(T.c.created_at, T.c.id)).mappings().all()
    return [_token(row) for row in rows]


def revoke(engine: Engine, name: str, actor: str | None = None,
           actor_role: str | None = None) -> Token:
    """Revoke the live token called `name` (logged in the same transaction)."""
    actor = actor or audit.cli_actor()
    with engine.begin() as conn:
        row = conn.execute(select(T).where(T.c.name == name, T.c.revoked_at.is_(None))
                           ).mappings().first()
        if row is None:
            raise TokenError(f"no live token named {name!r}; asl tokens list shows them")
        stamp = audit.rfc3339_now()
        conn.execute(update(T).where(T.c.id == row["id"]).values(revoked_at=stamp))
        token = _token({**row, "revoked_at": stamp})
        audit.append(conn, actor=actor, role=actor_role, action="token.revoke",
                     input_sha256=audit.sha256_of({"name": name}),
                     result_sha256=audit.sha256_of(_public(token)))
    return token


def authenticate(engine: Engine, presented: str) -> Token | None:
    """The live token `presented` is, or None (malformed, unknown, wrong secret, expired
    or revoked), as `check` finds it; records the use (at most once a minute per
    token)."""
    now = audit.rfc3339_now()
    token = check(engine, presented, now)
    if token is not None and use_due(token, now):
        record_use(engine, token.id, now)
    return token


def check(engine: Engine, presented: str, now: str) -> Token | None:
    """The live token `presented` is at `now` (an audit.rfc3339_now stamp), or None
    (malformed, unknown, wrong secret, expired or revoked): one read by primary key,
    nothing written. The secret's hash is compared in constant time, and a hash is
    compared even for an unknown id, so timing says nothing about which ids exist."""
    found = TOKEN_FORMAT.fullmatch(presented)
    if found is None:
        return None
    token_id, secret = found.groups()
    row = _BY_ID.first(engine, token_id=token_id)
    stored = row[0] if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(_secret_hash(secret), stored)
    if row is None or not matches:
        return None
    token = Token(*row[1:])
    return token if token.state(now) == "active" else None


def use_due(token: Token, now: str) -> bool:
    """Whether a use of `token` at `now` is to be recorded: its first, or the first
    LAST_USE_EVERY_S or more after the one recorded."""
    return token.last_used_at is None or _seconds_between(token.last_used_at, now) \
        >= LAST_USE_EVERY_S


def record_use(engine: Engine, token_id: str, now: str) -> None:
    """Record `now` as the token's last use (a write: it may wait for the write lock)."""
    with engine.begin() as conn:
        conn.execute(update(T).where(T.c.id == token_id).values(last_used_at=now))


def _seconds_between(earlier: str, later: str) -> float:
    """Seconds between two of our RFC 3339 UTC stamps (`...T...Z`, audit.rfc3339_now)."""
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
