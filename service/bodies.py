"""Reading request bodies: the media type first (415), then the syntax (400), then the
shape (422, unknown fields included), so a handler only ever sees a valid model.

Routes declare their body through `openapi_body` rather than a FastAPI body parameter,
so the order and the status codes above are ours, and the body is read through the
size limit of `service.guard`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from service.problems import Problem

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
JSONL_TYPES = frozenset({"application/jsonl", "application/x-ndjson"})

M = TypeVar("M", bound=BaseModel)


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters ('' when none)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"path": ".".join(["body", *(str(p) for p in e["loc"])]), "message": e["msg"]}
            for e in exc.errors()]


async def json_model(request: Request, model: type[M]) -> M:
    """The JSON body of `request` as a `model` (which should forbid extra fields)."""
    kind = media_type(request)
    if kind not in JSON_TYPES:
        raise Problem(415, f"this endpoint takes application/json, not {kind or 'no type'}")
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"malformed JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _errors(exc)
        raise Problem(422, f"{errors[0]['path']}: {errors[0]['message']}",
                      errors=errors) from None


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with each `{"$ref": "#/$defs/NAME"}` replaced by that definition (the
    body's models are not recursive), since a request body's own `$defs` are not
    resolvable where `openapi_extra` puts it."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body of `model`."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inlined(schema, schema.get("$defs", {}))}}}}
