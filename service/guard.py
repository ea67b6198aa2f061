"""The outermost layer of the service: what holds for every request and response.

- Request bodies are held to the size limit while they are read, whether they come with
  a Content-Length or chunked: a declared length over the limit is refused before any of
  it is read, and a chunked body is cut off as soon as it passes the limit (413).
- A request body with a Content-Encoding other than identity is refused (413, as the
  spec puts it with the size limit, with `Accept-Encoding: identity`), so a small
  compressed body cannot expand past the limit.
- Every response carries the security headers of the spec, and `Cache-Control:
  no-store` (what the service answers is either authenticated or live state).
- Anything that escapes the application after its response has started is logged, never
  shown: the client has its status line already.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.problems import PROBLEM_TYPE, Problem, problem_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
_REPLACED = {name for name, _ in SECURITY_HEADERS}
log = logging.getLogger("asl.service")


class BodyTooLarge(Problem):
    """The request body passed the limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit:,}-byte limit "
                         "(asl serve --max-body)")


class Guard:
    """Wraps the application: body limit, content coding, security headers."""

    def __init__(self, app: ASGIApp, max_body: int,
                 larger: dict[tuple[str, str], int] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.larger = larger or {}  # (method, path) -> that endpoint's own limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                kept = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() not in _REPLACED]
                message["headers"] = kept + list(SECURITY_HEADERS)
            await send(message)

        limit = self.larger.get((scope.get("method", ""), scope.get("path", "")),
                                self.max_body)
        refusal = self._refusal(scope, limit)
        if refusal is not None:
            await _send_problem(send_secured, refusal)
            return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, receive_limited, send_secured)
        except Exception as exc:  # the app's own handlers have had their turn
            if not started:
                problem = exc if isinstance(exc, Problem) else Problem(
                    500, "internal error; the server log has the details")
                await _send_problem(send_secured, problem)
            if not isinstance(exc, Problem):
                log.error("error after the response started: %s %s", scope.get("method"),
                          scope.get("path"), exc_info=exc)

    def _refusal(self, scope: Scope, limit: int) -> Problem | None:
        """A problem to answer without reading the body: a content coding, or a declared
        length over the limit."""
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        coding = headers.get(b"content-encoding", b"").decode("latin-1").strip().lower()
        if coding and coding != "identity":
            return Problem(413, f"Content-Encoding {coding!r} is not accepted; send the body "
                           "uncompressed", {"Accept-Encoding": "identity"})
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return Problem(400, "Content-Length is not a number")
            if declared > limit:
                return BodyTooLarge(limit)
        return None


async def _send_problem(send: Send, problem: Problem) -> None:
    body = problem_body(problem.status, problem.detail, **problem.extra)
    headers = [(b"content-type", PROBLEM_TYPE.encode()),
               (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"),
               *((k.lower().encode("latin-1"), v.encode("latin-1"))
                 for k, v in problem.headers.items())]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
