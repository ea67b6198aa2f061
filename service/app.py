"""The application: routers, error rendering and the outer guard, and the per-process
state opened at start-up and closed at shutdown.

`create_app(config)` returns the ASGI application (the FastAPI app inside the guard);
`app_from_environ` is the factory uvicorn's workers call, reading the configuration
`asl serve` put in the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.batches import BatchRunner
from service.config import ServiceConfig
from service.guard import Guard
from service.problems import install
from service.routers import assess, batches, decisions, health, imports, models, packs, rules
from service.state import ServiceState
from service.ui import mount as mount_ui

ROUTERS = (health.router, assess.router, imports.router, models.router, rules.router,
           packs.router, batches.router, decisions.router)
DESCRIPTION = """\
Which AI Safety Level of safeguards a frontier model requires under RSP v2.1, with the
evidence behind every conclusion: the record of assessments, explanations, rules and
rule packs, for a team. Every endpoint but `/health` and `/openapi.json` takes
`Authorization: Bearer TOKEN` (`asl tokens create`). Errors are
`application/problem+json`.
"""


def fastapi_app(config: ServiceConfig) -> FastAPI:
    """The FastAPI application alone (without the guard)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    install(app)
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
