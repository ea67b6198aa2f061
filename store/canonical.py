"""What a decision-log entry's `input_sha256` is of, for every request that takes
evidence, from the service or the command line: the canonical evidence JSON
(service.md), so that a JSON, a YAML and a JSON Lines body of the same document or
portfolio give the same hash.

One document is itself; a portfolio, whatever form it came in (a YAML or JSON
`models:` list, or JSON Lines), is `{"models": [DOCUMENT, ...]}` in input order, the
form evidence-format.md gives it. Values are JSON values: a YAML date is the text it
stands for (`2026-09-21`), as a JSON body writes it. `store.audit.sha256_of` then hashes
the RFC 8785 form, so key order and number spelling do not matter either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from engine.api import AssessmentRun


def json_value(value: Any) -> Any:
    """`value` (parsed JSON or YAML) as plain JSON data: dates and times as ISO text,
    mapping keys as text, and the numbers JSON cannot write (YAML's `.inf`, `.nan`) as
    their YAML text, so that any parsed document has a canonical form to hash."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def evidence_input(documents: Sequence[Any], single: bool) -> Any:
    """The canonical evidence of a request body: its one document when it held a single
    document (`single`), else the portfolio `{"models": [...]}` of its documents."""
    if single and len(documents) == 1:
        return json_value(documents[0])
    return {"models": [json_value(d) for d in documents]}


def run_input(run: AssessmentRun) -> Any:
    """The canonical evidence of what a run assessed: its accepted documents as
    validated (the fields each gave, as JSON data), one or a portfolio as it came in.
    The run must have kept its inputs."""
    return evidence_input([d.document.model_dump(mode="json", exclude_unset=True)
                           for d in run.documents], run.single)
