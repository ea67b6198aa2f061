"""Who is using the web UI, and may they: server-side sessions, the role check, and the
CSRF and same-origin checks on every form that changes state.

Logging in with a token makes a new session: the browser's cookie holds only a random
session id (HttpOnly, SameSite=Strict, Path=/, Secure over TLS), never the token. A
session ends at logout, after `IDLE_S` without a request, or `ABSOLUTE_S` after login.
On every request the token behind the session is looked up again, so a revoked or
expired token ends its sessions at once, and the role is checked with the API's own
table (`service.auth.GRANTED_TO`) and rate limit.

Sessions are kept in the database (only a hash of each session id), so every worker
of `asl serve --workers N` honours a session whichever worker made it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from service.auth import GRANTED_TO, security_log
from store import audit, tokens
from store.service_tables import ApiToken
from store.ui_tables import UiSession

COOKIE = "asl_session"
LOGIN_COOKIE = "asl_login"  # the login form's CSRF value, before there is a session
IDLE_S = 30 * 60
ABSOLUTE_S = 8 * 3600
MAX_SESSIONS = 10_000
MAX_ID_LENGTH = 100  # a session id is 43 characters; a longer cookie is no session
TOUCH_S = 60.0
S = UiSession.__table__  # type: ignore[attr-defined]
T = ApiToken.__table__  # type: ignore[attr-defined]
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
MAX_TEXT_FIELD = 1024 * 1024  # a multipart form's text field (a file is bounded by the body)


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
    idle_until: float

    def may(self, role: str) -> bool:
        """Whether this session's role may do what `role` may (as the API decides)."""
        return self.role in GRANTED_TO[role]


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class Sessions:
    """The UI's sessions, in the database (store.ui_tables.UiSession), so that every
    worker of `asl serve` honours a session whichever worker made it. A session is found
    with the token behind it in one query, and ends when that token is revoked or
    expires, after `idle_s` unused or `absolute_s` after login, or at logout."""

    def __init__(self, engine: Engine, idle_s: float = IDLE_S,
                 absolute_s: float = ABSOLUTE_S) -> None:
        self.engine = engine
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        # The idle deadline is written at most this often per session (a read per
        # request, not a write); a tenth of the idle time, at most a minute, so a
        # session may end up to that much before `idle_s` of true idleness.
        self.touch_s = min(TOUCH_S, idle_s / 10)

    def create(self, token: tokens.Token) -> Session:
        now = time.time()
        session = Session(secrets.token_urlsafe(32), token.id, token.person, token.role,
                          secrets.token_urlsafe(32), now, now + self.idle_s)
        with self.engine.begin() as conn:
            conn.execute(delete(S).where(or_(S.c.idle_until <= now, S.c.expires_at <= now)))
            if conn.execute(select(func.count()).select_from(S)).scalar_one() >= MAX_SESSIONS:
                oldest = select(S.c.id_sha256).order_by(S.c.idle_until).limit(100)
                conn.execute(delete(S).where(S.c.id_sha256.in_(oldest.scalar_subquery())))
            conn.execute(insert(S).values(
                id_sha256=_hash(session.id), token_id=token.id, role=token.role,
                csrf=session.csrf, created_at=now, idle_until=session.idle_until,
                expires_at=now + self.absolute_s))
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session `session_id` whose token is live, its idle clock restarted;
        None if there is none (a session found dead is deleted)."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        now = time.time()
        key = _hash(session_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(S, T.c.person, T.c.role.label("token_role"), T.c.expires_at
                       .label("token_expires"), T.c.revoked_at)
                .join(T, T.c.id == S.c.token_id).where(S.c.id_sha256 == key)
            ).mappings().first()
        if row is None:
            return None
        if row["idle_until"] <= now or row["expires_at"] <= now:
            self.drop(session_id)
            return None
        token_dead = (row["revoked_at"] is not None or row["token_role"] != row["role"]
                      or (row["token_expires"] is not None
                          and row["token_expires"] <= audit.rfc3339_now()))
        if token_dead:
            self.end_token(row["token_id"])
            security_log.warning("401: the session's token %s is no longer live",
                                 row["token_id"])
            return None
        idle_until = row["idle_until"]
        if now + self.idle_s - idle_until >= self.touch_s:
            idle_until = now + self.idle_s
            with self.engine.begin() as conn:
                conn.execute(update(S).where(S.c.id_sha256 == key)
                             .values(idle_until=idle_until))
        return Session(session_id, row["token_id"], row["person"], row["role"], row["csrf"],
                       row["created_at"], idle_until)

    def drop(self, session_id: str | None) -> None:
        """End one session (logout, or a new login in the same browser)."""
        if session_id:
            with self.engine.begin() as conn:
                conn.execute(delete(S).where(S.c.id_sha256 == _hash(session_id)))

    def end_token(self, token_id: str) -> None:
        """End every session of a token (it was revoked or has expired)."""
        with self.engine.begin() as conn:
            conn.execute(delete(S).where(S.c.token_id == token_id))


def sessions_of(request: Request) -> Sessions:
    """The sessions in the database of the service that `request` came to (the engine
    exists once the app has started, so they are made on first use)."""
    engine = request.app.state.asl.engine
    sessions: Sessions | None = getattr(request.app.state, "ui_sessions", None)
    if sessions is None or sessions.engine is not engine:
        sessions = request.app.state.ui_sessions = Sessions(engine)
    return sessions


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def page(role: str) -> Callable[[Request], Session]:
    """A dependency admitting a live session whose role may do what `role` may, within
    the token's rate limit; otherwise the login page (no session) or 403."""

    def authorised(request: Request) -> Session:
        sessions = sessions_of(request)
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
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


def _checked_origin(request: Request) -> None:
    if not same_origin(request):
        security_log.warning("403 %s %s from %s: cross-origin form", request.method,
                             request.url.path, _client(request))
        raise PageError(403, "This form was not sent from this site; reload the page and "
                        "send it again.")


def _checked_csrf(request: Request, fields: dict[str, list[str]],
                  expected_csrf: str | None) -> None:
    sent = (fields.get("csrf") or [""])[0]
    if not expected_csrf or not hmac.compare_digest(sent.encode(), expected_csrf.encode()):
        security_log.warning("403 %s %s from %s: missing or wrong CSRF token",
                             request.method, request.url.path, _client(request))
        raise PageError(403, "This form has expired or was not sent from this site; "
                        "reload the page and send it again.")


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def form_fields(request: Request, expected_csrf: str | None) -> dict[str, list[str]]:
    """The fields of a posted form, after the same-origin and CSRF checks (403 if either
    fails). `expected_csrf` is the session's (or the login form's) CSRF value."""
    _checked_origin(request)
    if _content_type(request) != FORM_TYPE:
        raise PageError(415, f"A form is sent as {FORM_TYPE}.")
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = parse_qs(body, keep_blank_values=True, max_num_fields=2000)
    _checked_csrf(request, fields, expected_csrf)
    return fields


async def upload_fields(request: Request, expected_csrf: str | None, file_field: str
                        ) -> tuple[dict[str, list[str]], tuple[str, bytes] | None]:
    """The text fields and the one uploaded file (`file_field`: its name and bytes; None
    when no file was chosen) of a form sent as multipart/form-data, or the fields of a
    plain form, after the same-origin and CSRF checks. The whole body is already bounded
    by the service's body limit for the path (service.guard); here a text field is
    bounded too, and there is at most one file."""
    _checked_origin(request)
    if _content_type(request) == FORM_TYPE:
        return await form_fields(request, expected_csrf), None
    if _content_type(request) != MULTIPART_TYPE:
        raise PageError(415, f"A form is sent as {MULTIPART_TYPE} or {FORM_TYPE}.")
    try:
        form = await request.form(max_files=1, max_fields=20, max_part_size=MAX_TEXT_FIELD)
    except (HTTPException, MultiPartException) as exc:  # malformed, or over a limit
        reason = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise PageError(400, f"The form could not be read: {reason}") from None
    try:
        fields: dict[str, list[str]] = {}
        upload: tuple[str, bytes] | None = None
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(name, []).append(value)
            elif name == file_field and value.filename:
                upload = (value.filename, await value.read())
        _checked_csrf(request, fields, expected_csrf)
        return fields, upload
    finally:
        await form.close()


def field(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    """One form field's first value."""
    return (fields.get(name) or [default])[0]
