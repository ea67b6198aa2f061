"""Who is using the web UI, and may they: server-side sessions, the role check, and the
CSRF and same-origin checks on every form that changes state.

Logging in with a token makes a new session: the browser's cookie holds only a random
session id (HttpOnly, SameSite=Strict, Path=/, Secure over TLS), never the token. A
session ends at logout, after `IDLE_S` without a request, or `ABSOLUTE_S` after login.
On every request the token behind the session is looked up again, so a revoked or
expired token ends its sessions at once, and the role is checked with the API's own
table (`service.auth.GRANTED_TO`) and rate limit.

Sessions live in the worker process that made them (`asl serve --workers 1`, the
default, for the UI; with more workers a browser may be asked to log in again).
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request

from service.auth import GRANTED_TO, security_log
from store import audit, tokens

COOKIE = "asl_session"
LOGIN_COOKIE = "asl_login"  # the login form's CSRF value, before there is a session
IDLE_S = 30 * 60
ABSOLUTE_S = 8 * 3600
MAX_SESSIONS = 10_000
FORM_TYPE = "application/x-www-form-urlencoded"


class LoginNeeded(Exception):
    """No live session: the browser is sent to the login page."""


class PageError(Exception):
    """A page that cannot be shown: an HTTP status and one line for the reader."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Session:
    """One browser's login: whose token, which role, and the CSRF value of its forms."""

    id: str
    token_id: str
    person: str
    role: str
    csrf: str
    created: float
    seen: float

    def may(self, role: str) -> bool:
        """Whether this session's role may do what `role` may (as the API decides)."""
        return self.role in GRANTED_TO[role]


class Sessions:
    """The sessions of this worker process, by id."""

    def __init__(self, idle_s: float = IDLE_S, absolute_s: float = ABSOLUTE_S) -> None:
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token: tokens.Token) -> Session:
        now = time.monotonic()
        session = Session(secrets.token_urlsafe(32), token.id, token.person, token.role,
                          secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            if len(self._by_id) >= MAX_SESSIONS:  # the oldest go first
                for old in sorted(self._by_id.values(), key=lambda s: s.seen)[:100]:
                    del self._by_id[old.id]
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session `session_id`, its idle clock restarted; None if there is none."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if now - session.seen > self.idle_s or now - session.created > self.absolute_s:
                del self._by_id[session_id]
                return None
            session.seen = now
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def _expire(self, now: float) -> None:
        for sid in [sid for sid, s in self._by_id.items()
                    if now - s.seen > self.idle_s or now - s.created > self.absolute_s]:
            del self._by_id[sid]


def sessions_of(request: Request) -> Sessions:
    return request.app.state.ui_sessions  # type: ignore[no-any-return]


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _live_token(request: Request, token_id: str) -> tokens.Token | None:
    now = audit.rfc3339_now()
    for token in tokens.list_tokens(request.app.state.asl.engine):
        if token.id == token_id:
            return token if token.state(now) == "active" else None
    return None


def page(role: str) -> Callable[[Request], Session]:
    """A dependency admitting a live session whose role may do what `role` may, within
    the token's rate limit; otherwise the login page (no session) or 403."""

    def authorised(request: Request) -> Session:
        sessions = sessions_of(request)
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise LoginNeeded
        if _live_token(request, session.token_id) is None:
            sessions.drop(session.id)
            security_log.warning("401 %s %s from %s: the session's token %s is no longer "
                                 "live", request.method, request.url.path, _client(request),
                                 session.token_id)
            raise LoginNeeded
        limiter = request.app.state.asl.limiter
        if limiter is not None:
            wait = limiter.wait(session.token_id)
            if wait > 0:
                raise PageError(429, "Too many requests with this token; wait a moment.",
                                {"Retry-After": str(max(1, math.ceil(wait)))})
        if not session.may(role):
            security_log.warning("403 %s %s from %s: token %s (%s, %s) is not %s",
                                 request.method, request.url.path, _client(request),
                                 session.token_id, session.person, session.role, role)
            raise PageError(403, f"The {session.role} role may not do this; it needs {role}"
                            + ("." if role == "admin" else " (or admin)."))
        return session

    return authorised


def same_origin(request: Request) -> bool:
    """Whether a form was sent from this site: its `Origin` is ours, or (when the
    browser sends `Origin: null` or none) `Sec-Fetch-Site` says same-origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        return hmac.compare_digest(origin.encode(), f"{request.url.scheme}://{host}".encode())
    return request.headers.get("sec-fetch-site") == "same-origin"


async def form_fields(request: Request, expected_csrf: str | None) -> dict[str, list[str]]:
    """The fields of a posted form, after the same-origin and CSRF checks (403 if either
    fails). `expected_csrf` is the session's (or the login form's) CSRF value."""
    if not same_origin(request):
        security_log.warning("403 %s %s from %s: cross-origin form", request.method,
                             request.url.path, _client(request))
        raise PageError(403, "This form was not sent from this site; reload the page and "
                        "send it again.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise PageError(415, f"A form is sent as {FORM_TYPE}.")
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = parse_qs(body, keep_blank_values=True, max_num_fields=2000)
    sent = (fields.get("csrf") or [""])[0]
    if not expected_csrf or not hmac.compare_digest(sent.encode(), expected_csrf.encode()):
        security_log.warning("403 %s %s from %s: missing or wrong CSRF token",
                             request.method, request.url.path, _client(request))
        raise PageError(403, "This form has expired or was not sent from this site; "
                        "reload the page and send it again.")
    return fields


def field(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    """One form field's first value."""
    return (fields.get(name) or [default])[0]
