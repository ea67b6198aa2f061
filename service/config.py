"""The service's settings, passed from `asl serve` to every worker through the
environment (uvicorn starts each worker afresh from an import string)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from store.db import ENV_VAR, database_url

MAX_BODY_ENV = "ASL_SERVE_MAX_BODY"
RATE_LIMIT_ENV = "ASL_SERVE_RATE_LIMIT"
MAX_BATCH_BODY_ENV = "ASL_SERVE_MAX_BATCH_BODY"
BATCH_STALE_ENV = "ASL_SERVE_BATCH_STALE"
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_BATCH_BODY = 256 * 1024 * 1024
DEFAULT_BATCH_STALE = 60.0  # seconds without a heartbeat before a running batch is failed
DEFAULT_RATE_LIMIT = "1200/60"


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `seconds` per token, with bursts up to `requests`."""

    requests: int
    seconds: float


def parse_rate_limit(text: str) -> RateLimit | None:
    """`N/SECONDS` (or `N`, per minute); `0` turns limiting off. ValueError otherwise."""
    count, _, period = text.strip().partition("/")
    try:
        requests = int(count)
        seconds = float(period) if period else 60.0
    except ValueError:
        raise ValueError(f"rate limit {text!r}: give N/SECONDS, e.g. 600/60") from None
    if requests < 0 or seconds <= 0:
        raise ValueError(f"rate limit {text!r}: N must be 0 or more and SECONDS positive")
    return RateLimit(requests, seconds) if requests else None


DEFAULT_LIMIT = parse_rate_limit(DEFAULT_RATE_LIMIT)


@dataclass(frozen=True)
class ServiceConfig:
    """What one `asl serve` was started with."""

    db_url: str
    max_body: int = DEFAULT_MAX_BODY
    rate_limit: RateLimit | None = DEFAULT_LIMIT
    max_batch_body: int = DEFAULT_MAX_BATCH_BODY  # POST /v1/batches has its own limit
    batch_stale: float = DEFAULT_BATCH_STALE

    def environ(self) -> dict[str, str]:
        """The environment variables that carry this configuration to a worker."""
        rate = "0" if self.rate_limit is None else \
            f"{self.rate_limit.requests}/{self.rate_limit.seconds:g}"
        return {ENV_VAR: self.db_url, MAX_BODY_ENV: str(self.max_body), RATE_LIMIT_ENV: rate,
                MAX_BATCH_BODY_ENV: str(self.max_batch_body),
                BATCH_STALE_ENV: f"{self.batch_stale:g}"}

    @classmethod
    def from_environ(cls) -> ServiceConfig:
        """The configuration `environ` wrote (defaults for what is not set)."""
        return cls(database_url(None), int(os.environ.get(MAX_BODY_ENV, DEFAULT_MAX_BODY)),
                   parse_rate_limit(os.environ.get(RATE_LIMIT_ENV, DEFAULT_RATE_LIMIT)),
                   int(os.environ.get(MAX_BATCH_BODY_ENV, DEFAULT_MAX_BATCH_BODY)),
                   float(os.environ.get(BATCH_STALE_ENV, DEFAULT_BATCH_STALE)))
