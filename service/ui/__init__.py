"""The web UI under `/ui/`: server-rendered pages (Jinja2) on the service's own state,
readable without JavaScript, behind a login by token (service.ui.session).

`mount(app)` adds the pages, the vendored static files (`/ui/static/`) and the handlers
that answer a page error with a page (and a missing session with the login form).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from service.ui import batches, login, models, packs, rules, whatif
from service.ui.render import STATIC, html_page
from service.ui.session import COOKIE, LoginNeeded, PageError, sessions_of

ROUTERS = (login.router, models.router, rules.router, whatif.router, packs.router,
           batches.router)


async def _login_needed(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/ui/login", status_code=303)


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    session = await run_in_threadpool(sessions_of(request).get, request.cookies.get(COOKIE))
    return html_page(request, "error.html", session, exc.status, exc.headers,
                     code=exc.status, message=exc.message)


def mount(app: FastAPI) -> None:
    """Add the web UI to the service's FastAPI `app`."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_exception_handler(LoginNeeded, _login_needed)
    app.add_exception_handler(PageError, _page_error)
