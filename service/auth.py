"""Who is asking, and may they: bearer tokens, the four roles, and the rate limit, as
FastAPI dependencies (`Depends(require(ANALYST))`), never as checks inside handlers.

No token, or an unknown, expired or revoked one: 401 with `WWW-Authenticate: Bearer`.
A role that may not do it: 403. Too many requests from one token: 429 with
`Retry-After`. Each 401 and 403 is written to the `asl.security` log (never a secret).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from service.config import RateLimit
from service.problems import Problem
from store import audit, tokens

VIEWER, ANALYST, RULE_AUTHOR, ADMIN = tokens.ROLES
# Who may do what a role may: viewer is under every role; admin may do everything.
GRANTED_TO: dict[str, frozenset[str]] = {
    VIEWER: frozenset(tokens.ROLES),
    ANALYST: frozenset({ANALYST, ADMIN}),
    RULE_AUTHOR: frozenset({RULE_AUTHOR, ADMIN}),
    ADMIN: frozenset({ADMIN}),
}
security_log = logging.getLogger("asl.security")
T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="`asl_<id>_<secret>`, made with `asl tokens create`")


@dataclass(frozen=True)
class Principal:
    """The person behind a request, through which token and with which role."""

    token_id: str
    token_name: str
    person: str
    role: str


class RateLimiter:
    """A token bucket per API token, in this worker process: `requests` at once, then
    `requests / seconds` per second."""

    def __init__(self, limit: RateLimit) -> None:
        self.capacity = float(limit.requests)
        self.rate = limit.requests / limit.seconds
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, stamp)
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Take one request from `key`'s bucket: 0 when allowed, else the seconds until
        one is."""
        now = time.monotonic()
        with self._lock:
            level, stamp = self._buckets.get(key, (self.capacity, now))
            level = min(self.capacity, level + (now - stamp) * self.rate)
            if level >= 1:
                self._buckets[key] = (level - 1, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1 - level) / self.rate


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _unauthorized(request: Request, reason: str) -> Problem:
    security_log.warning("401 %s %s from %s: %s", request.method, request.url.path,
                         _client(request), reason)
    return Problem(401, f"{reason}; send Authorization: Bearer TOKEN (asl tokens create "
                   "makes one)", {"WWW-Authenticate": "Bearer"})


async def run_read(engine: Engine, read: Callable[..., T], *args: Any) -> T:
    """`read(*args)`: a short read of the database and what it computes from it, with no
    other wait in it. On SQLite it runs in the event loop: a WAL reader never waits for
    a writer, and the hop to a worker thread and back cost more CPU than a token check
    or a model's history, and under load its threads' contention for the GIL cost more
    still. On any other database it runs in a worker thread, as a sync handler does: a
    round trip to the server, or a wait for a pooled connection, must not hold up the
    event loop. Never for a write (which may wait for the write lock), nor for work
    that runs a program or sleeps."""
    if engine.dialect.name == "sqlite":
        return read(*args)
    return await run_in_threadpool(read, *args)


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting the holders of a live token whose role may do what `role`
    may, within the rate limit. The token is read from the database on every request,
    so that a revocation or an expiry takes effect at once in every worker; its use is
    recorded (at most once a minute per token: tokens.use_due) in a worker thread."""
    granted = GRANTED_TO[role]

    async def authorised(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
        state = request.app.state.asl
        if credentials is None:
            raise _unauthorized(request, "no bearer token")
        now = audit.rfc3339_now()
        token = await run_read(state.engine, tokens.check, state.engine,
                               credentials.credentials, now)
        if token is None:
            raise _unauthorized(request, "the token is unknown, expired or revoked")
        if tokens.use_due(token, now):
            await run_in_threadpool(tokens.record_use, state.engine, token.id, now)
        if state.limiter is not None:
            wait = state.limiter.wait(token.id)
            if wait > 0:
                raise Problem(429, "too many requests with this token; slow down",
                              {"Retry-After": str(max(1, math.ceil(wait)))})
        if token.role not in granted:
            security_log.warning("403 %s %s from %s: token %s (%s, %s) is not %s",
                                 request.method, request.url.path, _client(request),
                                 token.id, token.person, token.role, role)
            raise Problem(403, f"the {token.role} role may not do this; it needs {role}"
                          + ("" if role == ADMIN else " (or admin)"))
        return Principal(token.id, token.name, token.person, token.role)

    return authorised
