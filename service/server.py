"""Running the service under uvicorn: one process, or `workers` of them.

The configuration travels to the workers in the environment (each is started afresh
from an import string). On SIGTERM or Ctrl-C uvicorn stops accepting connections and
lets requests in flight finish (up to GRACE_SECONDS); every write the service makes is
one transaction, so a stop never leaves anything half-written. 401 and 403 go to the
`asl.security` log, on standard error with uvicorn's own.
"""

from __future__ import annotations

import copy
import os

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.config import ServiceConfig

GRACE_SECONDS = 30
# A new worker process imports the engine before it can answer the supervisor's first
# health check; uvicorn's 5 s default kills slow starters on a busy machine, in a loop.
WORKER_CHECK_SECONDS = 120
FACTORY = "service.app:app_from_environ"


def log_config() -> dict[str, object]:
    """uvicorn's logging, plus the service's own loggers (`asl.service`,
    `asl.security`) on standard error."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["asl"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run(config: ServiceConfig, host: str, port: int, workers: int) -> None:
    """Serve until stopped."""
    os.environ.update(config.environ())
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=GRACE_SECONDS,
                timeout_worker_healthcheck=WORKER_CHECK_SECONDS, server_header=False,
                proxy_headers=False, log_config=log_config(), lifespan="on")
