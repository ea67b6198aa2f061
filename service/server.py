"""Running the service under uvicorn: one process, or `workers` of them.

The configuration travels to the workers in the environment (each is started afresh
from an import string). With several workers, each listens on a socket of its own,
bound to the same address with SO_REUSEPORT, so that the kernel spreads new connections
over them. On the one socket uvicorn otherwise shares, the first worker to wake takes
every connection waiting: 32 keep-alive clients connecting at once all went to one
worker, and the second stayed idle (benchmarks/serve_bench.py).

On SIGTERM or Ctrl-C uvicorn stops accepting connections and lets requests in flight
finish (up to GRACE_SECONDS); every write the service makes is one transaction, so a
stop never leaves anything half-written. 401 and 403 go to the `asl.security` log, on
standard error with uvicorn's own.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.config import ServiceConfig

GRACE_SECONDS = 30
# A new worker process imports the engine before it can answer the supervisor's first
# health check; uvicorn's 5 s default kills slow starters on a busy machine, in a loop.
WORKER_CHECK_SECONDS = 120
FACTORY = "service.app:app_from_environ"
OWN_SOCKET_LOOP = "service.server:own_socket_loop"  # uvicorn's --loop MODULE:FUNCTION


class _OwnSocketLoop(asyncio.SelectorEventLoop):
    """asyncio's event loop (uvicorn's `asyncio` choice: with several workers, never
    uvloop, even where it is installed), except that a server asked to listen on a TCP
    socket shared with other workers listens on one of its own."""

    async def create_server(self, protocol_factory: Any, host: Any = None, port: Any = None,
                            *, sock: socket.socket | None = None, **kwargs: Any
                            ) -> asyncio.Server:
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock = own_socket(sock)
            except OSError as exc:  # refused here (a sandbox, an odd kernel): shared
                logging.getLogger("asl.service").warning(
                    "worker %d listens on the shared socket (no socket of its own: %s)",
                    os.getpid(), exc)
        return await super().create_server(protocol_factory, host, port, sock=sock, **kwargs)


def own_socket(shared: socket.socket) -> socket.socket:
    """A new socket bound to `shared`'s address, for this worker alone. Both carry
    SO_REUSEPORT; `shared` (bound by uvicorn's supervisor, which never listens on it)
    gets it here, after its bind, which Linux honours for the binds that follow, and
    takes no connections as long as nothing listens on it. Connections waiting in a
    worker's own queue when it stops (a restart, a worker that failed its health
    check) are reset rather than passed to another, unless the kernel is told to
    migrate them (sysctl net.ipv4.tcp_migrate_req=1)."""
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own = socket.socket(shared.family, shared.type, shared.proto)
    try:
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        own.bind(shared.getsockname())
    except BaseException:
        own.close()
        raise
    return own


def own_socket_loop() -> asyncio.AbstractEventLoop:
    """A worker's event loop (uvicorn calls it to make one)."""
    return _OwnSocketLoop()


def log_config() -> dict[str, object]:
    """uvicorn's logging, plus the service's own loggers (`asl.service`,
    `asl.security`) on standard error."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["asl"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run(config: ServiceConfig, host: str, port: int, workers: int) -> None:
    """Serve until stopped."""
    os.environ.update(config.environ())
    # Linux spreads connections over SO_REUSEPORT sockets; other systems (macOS) would
    # give them all to one socket, worse than the shared one.
    spread = {"loop": OWN_SOCKET_LOOP} if workers > 1 and sys.platform == "linux" else {}
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=GRACE_SECONDS,
                timeout_worker_healthcheck=WORKER_CHECK_SECONDS, server_header=False,
                proxy_headers=False, log_config=log_config(), lifespan="on", **spread)
