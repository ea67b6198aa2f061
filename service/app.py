"""The application: routers, error rendering and the outer guard, and the per-process
state opened at start-up and closed at shutdown.

`create_app(config)` returns the ASGI application (the FastAPI app inside the guard);
`app_from_environ` is the factory uvicorn's workers call, reading the configuration
`asl serve` put in the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import URL
from starlette.routing import Match

from engine.tuning import tune_for_throughput
from service.auth import VIEWER, bearer, require
from service.batches import BatchRunner
from service.config import ServiceConfig
from service.guard import Guard
from service.problems import Problem, install, problem_response
from service.routers import assess, batches, decisions, health, imports, models, packs, rules
from service.state import ServiceState
from service.ui import mount as mount_ui
from service.ui import unmatched as unmatched_page

ROUTERS = (health.router, assess.router, imports.router, models.router, rules.router,
           packs.router, batches.router, decisions.router)
DESCRIPTION = """\
Which AI Safety Level of safeguards a frontier model requires under RSP v2.1, with the
evidence behind every conclusion: the record of assessments, explanations, rules and
rule packs, for a team. Every endpoint but `/health` and `/openapi.json` takes
`Authorization: Bearer TOKEN` (`asl tokens create`). Errors are
`application/problem+json`.
"""


API_PREFIX = "/v1"


def slash_redirect(request: Request) -> Response | None:
    """The redirect Starlette's router gives (`redirect_slashes`, turned off on this
    app: see `unmatched`) to a request no route matches, when its path with the final
    slash taken off, or with one added, is one a route matches: 307 to that path. None
    otherwise (and for a request a route matched, whose method it does not take)."""
    scope = request.scope
    routes = request.app.router.routes
    # A route that matched (a mount's 404, a 405) left its endpoint in the scope, and
    # perhaps a root path of its own: the request is not matched again.
    if "endpoint" in scope or scope["path"] == "/" or any(
            route.matches(scope)[0] is not Match.NONE for route in routes):
        return None
    path = scope["path"]
    other = {**scope, "path": path.rstrip("/") if path.endswith("/") else f"{path}/"}
    if any(route.matches(other)[0] is not Match.NONE for route in routes):
        return RedirectResponse(str(URL(scope=other)))
    return None


async def unmatched(request: Request) -> Response | None:
    """For a request no endpoint matched: under `/v1/`, the check every endpoint there
    makes first, the bearer token (service.auth.require: 401 with `WWW-Authenticate:
    Bearer`, logged to the security log, for none or a bad one; the token's rate
    limit), so that only a caller with a live token gets the 404 or 405, or the
    redirect of a path with a slash too many or too few (`slash_redirect`: the router's
    own, which would answer before any check, is off); under `/ui/`, that redirect,
    else the pages' own check (service.ui.unmatched: the login page without a
    session). None: the 404 or 405 stands."""
    path = request.url.path
    if path == API_PREFIX or path.startswith(f"{API_PREFIX}/"):
        try:
            # Any live token's role may be told what exists (viewer is under every role).
            await require(VIEWER)(request, await bearer(request))
        except Problem as refused:
            return problem_response(refused)
        return slash_redirect(request)
    return slash_redirect(request) or await unmatched_page(request)


def fastapi_app(config: ServiceConfig) -> FastAPI:
    """The FastAPI application alone (without the guard)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tune_for_throughput()  # a worker's requests assess, as the CLI and batch workers do
        state = ServiceState.open(config)
        app.state.asl = state
        runner = BatchRunner(state)
        app.state.batches = runner
        runner.start()
        try:
            yield
        finally:
            runner.close()
            state.close()

    app = FastAPI(title="asl", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  # Given by `unmatched` instead, after the token check under /v1/.
                  redirect_slashes=False)
    install(app, unmatched)
    for router in ROUTERS:
        app.include_router(router)
    mount_ui(app)
    return app


def create_app(config: ServiceConfig) -> Guard:
    """The service for `config`, as uvicorn runs it."""
    return Guard(fastapi_app(config), config.max_body,
                 {("POST", "/v1/batches"): config.max_batch_body,
                  ("POST", "/ui/batches"): config.max_batch_body})  # the UI's upload


def app_from_environ() -> Guard:
    """The factory a uvicorn worker calls (`asl serve` set the environment)."""
    return create_app(ServiceConfig.from_environ())
