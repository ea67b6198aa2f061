"""`asl serve`: the HTTP service on the same database as the command line.

The database is opened (and migrated) before the server starts, so one that cannot be
used is refused with one line and exit status 2, not by each worker. The service needs
the `serve` extra (FastAPI and uvicorn); without it the command says so. (service.config
needs neither, so the options' defaults come from there.)
"""

from __future__ import annotations

import click

from cli.options import EXIT_REJECTED, fail
from cli.store_options import db_option, open_store
from service.config import (
    BATCH_STALE_ENV,
    DEFAULT_BATCH_STALE,
    DEFAULT_MAX_BATCH_BODY,
    DEFAULT_MAX_BODY,
    DEFAULT_RATE_LIMIT,
    RATE_LIMIT_ENV,
    ServiceConfig,
    parse_rate_limit,
)
from store.db import database_url, describe


@click.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes; they share the database.")
@click.option("--max-body", type=click.IntRange(1), default=DEFAULT_MAX_BODY,
              show_default=True, metavar="BYTES",
              help="The largest request body taken (chunked ones included).")
@click.option("--rate-limit", default=DEFAULT_RATE_LIMIT, show_default=True,
              metavar="N/SECONDS", envvar=RATE_LIMIT_ENV,
              help="Requests one token may make per SECONDS in each worker (bursts up "
              "to N); 0 turns the limit off.")
@click.option("--max-batch-body", type=click.IntRange(1), default=DEFAULT_MAX_BATCH_BODY,
              show_default=True, metavar="BYTES",
              help="The largest portfolio POST /v1/batches takes.")
@click.option("--batch-stale", type=click.FloatRange(1), default=DEFAULT_BATCH_STALE,
              show_default=True, metavar="SECONDS", envvar=BATCH_STALE_ENV,
              help="A running batch without a heartbeat for this long is marked failed "
              "(it can be resumed).")
def serve_command(db: str | None, host: str, port: int, workers: int, max_body: int,
                  rate_limit: str, max_batch_body: int, batch_stale: float) -> None:
    """Serve the assessments, explanations, rules and packs over HTTP.

    Every request but GET /health and GET /openapi.json needs a token: make the first
    admin's with `asl tokens create --name NAME --role admin`.

    \b
    Examples:
      asl serve
      asl serve --db postgresql://asl@db.internal/asl --host 0.0.0.0 --workers 2
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/models
    """
    try:
        from service.server import run
    except ImportError as exc:
        fail(f"asl serve needs the serve extra ({exc.name} is missing): "
             "pip install 'asl[serve]'", EXIT_REJECTED)
    try:
        limit = parse_rate_limit(rate_limit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate-limit") from None
    url = database_url(db)
    open_store(db).engine.dispose()  # refuses an unusable database, migrates a new one
    click.echo(f"asl: serving {describe(url)} on http://{host}:{port} "
               f"({workers} worker{'s' if workers > 1 else ''})", err=True)
    run(ServiceConfig(url, max_body, limit, max_batch_body, batch_stale), host, port,
        workers)
