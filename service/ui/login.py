"""Logging in and out of the web UI (`/ui/login`, `/ui/logout`).

The login form carries its own CSRF value (a random value in a short-lived HttpOnly,
SameSite=Strict cookie, repeated in the form); a token that works makes a new session
and its cookie, and the token itself is never kept by the browser or the session.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from service.auth import VIEWER, security_log
from service.ui.render import html_page
from service.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    Session,
    field,
    form_fields,
    page,
    sessions_of,
)
from store import tokens

router = APIRouter(prefix="/ui", include_in_schema=False)
LOGIN_COOKIE_S = 15 * 60


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_form(request: Request, status: int = 200, error: str | None = None) -> Response:
    value = secrets.token_urlsafe(32)
    response = html_page(request, "login.html", None, status, csrf=value, error=error)
    response.set_cookie(LOGIN_COOKIE, value, max_age=LOGIN_COOKIE_S, path="/ui/login",
                        httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.get("", response_model=None)
@router.get("/", response_model=None)
def home(request: Request) -> Response:
    return RedirectResponse("/ui/models", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    """The login form (no session needed)."""
    return _login_form(request)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token and open a session; the form again, with why, if it fails."""
    fields = await form_fields(request, request.cookies.get(LOGIN_COOKIE))
    # A read of the token and, when its use is due, a write (which may wait for the
    # write lock): in a worker thread, never in the event loop.
    token = await run_in_threadpool(tokens.authenticate, request.app.state.asl.engine,
                                    field(fields, "token").strip())
    if token is None:
        security_log.warning("401 POST /ui/login from %s: the token is unknown, expired or "
                             "revoked", request.client.host if request.client else "-")
        return _login_form(request, 401, "That token is unknown, expired or revoked.")
    sessions = sessions_of(request)
    # Never reuse a session id from before login.
    await run_in_threadpool(sessions.drop, request.cookies.get(COOKIE))
    session = await run_in_threadpool(sessions.create, token)
    response = RedirectResponse("/ui/models", status_code=303)
    response.set_cookie(COOKIE, session.id, path="/", httponly=True, samesite="strict",
                        secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login", httponly=True, samesite="strict",
                           secure=_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request, session: Annotated[Session, Depends(page(VIEWER))]
                 ) -> Response:
    """End the session (a form with the session's CSRF value)."""
    await form_fields(request, session.csrf)
    await run_in_threadpool(sessions_of(request).drop, session.id)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure(request))
    return response
