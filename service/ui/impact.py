"""A draft pack's portfolio impact on the draft's review page: which stored models would
get another headline level or decision under the active stack with the draft than under
the active stack as it is.

The stored evidence of the newest assessment of each stored model of the active
framework (at most `IMPACT_MODELS`, by model id) goes, as a JSON Lines portfolio, to the
same limited child as the draft's diff and tests (service.packcheck, task `impact`),
which runs `engine.packdiff.portfolio_changes`: what `asl rules diff --portfolio`
prints. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.packcheck import DraftRunStopped, Layer, run_draft
from service.state import ServiceState
from store.browse import Filters, latest_page

IMPACT_MODELS = 200  # stored models assessed twice in the child, at most (seconds each 100)


@dataclass
class Impact:
    """What the page shows: the models whose headline changes (each with every contract
    key that changes), the models whose other keys only change, how many are unchanged,
    how many stored models were checked out of how many, and evidence either side
    rejected."""

    headline: list[tuple[str, list[tuple[str, str, str]]]] = field(default_factory=list)
    other: list[tuple[str, list[tuple[str, str, str]]]] = field(default_factory=list)
    unchanged: int = 0
    checked: int = 0
    stored: int = 0
    rejected: list[str] = field(default_factory=list)
    stopped: str | None = None


def _text(value: Any) -> str:
    """A contract value in a table cell: text as it is, a list joined, none as a dash."""
    if value is None or value == []:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def headline_keys(state: ServiceState) -> set[str]:
    """The contract keys that are the headline: level, decision, and the framework's own
    name for its level (rsp-2.1: `asl`)."""
    key = state.loaded_stack().pack.spec.level.key
    return {"level", "decision", *([key] if key else [])}


def portfolio(state: ServiceState) -> tuple[bytes, int, int]:
    """The stored evidence of the newest assessment of each stored model of the active
    framework (the first IMPACT_MODELS by model id) as JSON Lines; how many lines, and
    how many such models are stored."""
    framework = state.loaded_stack().pack.framework
    rows, stored = latest_page(state.engine, Filters(framework=framework), IMPACT_MODELS, 0)
    bodies = state.store.evidence({row.evidence_hash for row in rows})
    lines = [orjson.dumps(bodies[row.evidence_hash]) for row in rows
             if row.evidence_hash in bodies]
    return b"\n".join(lines) + (b"\n" if lines else b""), len(lines), stored


def draft_impact(state: ServiceState, name: str, files: dict[str, str],
                 layers: Sequence[Layer]) -> Impact:
    """The draft's impact on the stored models (see the module docstring)."""
    body, checked, stored = portfolio(state)
    impact = Impact(checked=checked, stored=stored)
    if not checked:
        return impact
    try:
        found = run_draft("impact", name, files, layers, state.workdir, portfolio=body)
    except DraftRunStopped as exc:
        impact.stopped = str(exc)
        return impact
    headline = headline_keys(state)
    for model, changes in sorted(found["models"].items()):
        target = impact.headline if headline & {c["key"] for c in changes} else impact.other
        target.append((model, [(c["key"], _text(c["old"]), _text(c["new"]))
                               for c in changes]))
    impact.unchanged = found["unchanged"]
    impact.rejected = [*found["rejected_old"], *found["rejected_new"]]
    return impact
