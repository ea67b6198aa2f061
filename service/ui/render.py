"""Pages from the Jinja2 templates in `service/templates`, every value escaped
(autoescape on for everything), with the words and colours the pages share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from engine.framework import builtin_specs, known_decisions, spec_of
from service.ui.session import Session

SERVICE_DIR = Path(__file__).resolve().parents[1]
TEMPLATES = SERVICE_DIR / "templates"
STATIC = SERVICE_DIR / "static"

# What each status of a threshold, checkpoint or ongoing assessment means for a reader,
# and its colour class (the legend on the model page is built from this).
STATUSES: dict[str, tuple[str, str]] = {
    "crossed": ("crossed", "The capability threshold is crossed: the higher standard "
                "applies."),
    "cannot_rule_out": ("cannot rule out", "The evidence cannot rule the capability out: "
                        "treated as crossed until it can."),
    "not_assessed": ("not assessed", "No evaluation in the evidence covers it."),
    "ruled_out": ("ruled out", "The evidence rules the capability out."),
}
# Every built-in framework's decisions, least restrictive first (the decision filter),
# read from their packs; what each means comes from the result's own framework.
DECISIONS: tuple[str, ...] = tuple(reversed(known_decisions(builtin_specs())))


def decision_sentence(result: Mapping[str, Any]) -> str:
    """The reader's sentence for a result's decision, as its framework's pack words it
    (`framework.decision_descriptions`), or "" when the pack gives none."""
    decision = result.get("decision")
    return spec_of(result).describe(decision if isinstance(decision, str) else None)


def words(name: str) -> str:
    """`cannot_rule_out` -> `cannot rule out`."""
    return name.replace("_", " ")


def url_part(text: str) -> str:
    """One percent-encoded path segment (a model, rule or evidence id)."""
    return quote(text, safe="")


def timestamp(seconds: float) -> str:
    """Seconds since the epoch as the pages show a time: `2026-12-02 14:30:05` (UTC)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["words"] = words
    env.filters["seg"] = url_part
    env.filters["timestamp"] = timestamp
    env.globals.update(STATUSES=STATUSES, DECISIONS=DECISIONS, urlencode=urlencode,
                       decision_sentence=decision_sentence)
    return env


ENV = _environment()


def html_page(request: Request, template: str, session: Session | None, status: int = 200,
              headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """`template` rendered for `session`'s reader."""
    body = ENV.get_template(template).render(request=request, session=session,
                                             path=request.url.path, **context)
    return HTMLResponse(body, status_code=status, headers=headers)
