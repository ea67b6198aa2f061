"""The web UI under `/ui/`: server-rendered pages (Jinja2) on the service's own state,
readable without JavaScript, behind a login by token (service.ui.session).

`mount(app)` adds the pages, the vendored static files (`/ui/static/`) and the handlers
that answer a page error with a page (and a missing session with the login form);
`unmatched` answers a `/ui/` path no page matched as the pages answer one without a
session.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from service.auth import VIEWER
from service.ui import batches, login, models, packs, rules, whatif
from service.ui.render import STATIC, html_page
from service.ui.session import COOKIE, LoginNeeded, PageError, page, sessions_of

ROUTERS = (login.router, models.router, rules.router, whatif.router, packs.router,
           batches.router)
PREFIX = "/ui/"
PUBLIC = ("/ui/login", "/ui/static/")  # the login page, and what it is drawn with


async def _login_needed(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/ui/login", status_code=303)


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    session = await run_in_threadpool(sessions_of(request).get, request.cookies.get(COOKIE))
    return html_page(request, "error.html", session, exc.status, exc.headers,
                     code=exc.status, message=exc.message)


async def unmatched(request: Request) -> Response | None:
    """For a `/ui/` path no page matched (404, 405): without a live session, the
    redirect to the login page every page gives (or its page error, at the rate
    limit), so that the paths that exist are told only to someone logged in; None
    with a session (the 404 or 405 stands), and for the public login page and static
    files and any path outside `/ui/`."""
    path = request.url.path
    if not path.startswith(PREFIX) or path == PUBLIC[0] or path.startswith(PUBLIC[1]):
        return None
    try:
        await run_in_threadpool(page(VIEWER), request)
    except LoginNeeded as exc:
        return await _login_needed(request, exc)
    except PageError as exc:
        return await _page_error(request, exc)
    return None


def mount(app: FastAPI) -> None:
    """Add the web UI to the service's FastAPI `app`."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_exception_handler(LoginNeeded, _login_needed)
    app.add_exception_handler(PageError, _page_error)
