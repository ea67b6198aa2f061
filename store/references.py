"""What stored models carry over to the models that reference them.

A model whose `last_comprehensive_assessment` names a model outside its own portfolio
takes that model's compute and determination from the record: the ASL of its newest
stored assessment, and the effective compute its stored evidence gives. `asl batch` and
the service's `POST /v1/assess` both look references up here, so a model assessed either
way carries over the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.assess import ReferenceInfo
from store.record import Store, Summary


def stored_references(store: Store, models: Iterable[str],
                      newest: Mapping[str, Summary] | None = None) -> dict[str, ReferenceInfo]:
    """For each of `models` that has a stored assessment: the headline level of its
    newest one and the compute its evidence states (None when it states none).
    `newest`: those newest assessments, when the caller has read them already."""
    wanted = set(models)
    latest = (store.latest(wanted) if newest is None
              else {m: s for m, s in newest.items() if m in wanted})
    bodies = store.evidence(s.evidence_hash for s in latest.values())
    return {model: ReferenceInfo(
                bodies.get(s.evidence_hash, {}).get("model", {}).get("effective_compute_flop"),
                s.level)
            for model, s in latest.items()}
