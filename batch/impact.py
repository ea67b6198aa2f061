"""A draft pack's impact on the stored record: which stored models would get another
value of a contract key under the active stack with the draft than under the active
stack as it is, over every stored model of the stack's framework.

This is the one implementation: `asl impact --draft` runs it in its own process, and
the web UI's draft page runs it in service.packcheck's limited child, in the
background; so both give the same answer for the same database and draft.

Only the models that could change are assessed again, found as `asl batch --reassess`
finds them (batch.runner.reachable): against each stack, a model whose newest
result was made with another pack version is a candidate when that version's kinds,
catalogue or pack facts differ, when a rule that fired for it changed or went, or when a
changed or added rule needs only kinds of fact its assessment had. The candidates are
those found against either stack (so a model whose stored result predates the active
stack is not missed), then every model that carries a determination over from one
(engine.lineage.Lineage.downstream). Every other model's result is the same under both
stacks, so it is counted unchanged without being assessed.

The candidates are assessed with both stacks in lineage order, CHUNK at a time: a
reference to another candidate takes that candidate's level under the same stack, any
other reference the stored one (store.references, as the batch and the service do).
Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from batch.runner import pack_fingerprint, reachable
from engine.api import Body, ReferenceInfo, assess
from engine.contract import KeyChange
from engine.evaluator import Evaluator
from engine.lineage import Lineage, Links
from engine.model import Pack
from engine.packdiff import tally_changes
from store.record import Store, Summary
from store.references import stored_references

CHUNK = 500  # candidates assessed (with each stack) at a time
READ = 2000  # stored evidence documents read at a time to find references
FINDING = "finding the models that could change"
ASSESSING = "assessing them with both stacks"

# phase, done, total: told as the work goes on (done of total candidates when assessing)
Progress = Callable[[str, int, int], None]


@dataclass
class StoredImpact:
    """What the draft changes: per model, each contract key whose value changes (active
    stack -> with the draft); how many stored models there are, how many could change
    and were assessed again, how many of those are unchanged; models only one side
    assessed, and evidence either side rejected (one line each)."""

    stored: int = 0
    reassessed: int = 0
    models: dict[str, list[KeyChange]] = field(default_factory=dict)
    unchanged: int = 0
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    rejected_old: list[str] = field(default_factory=list)
    rejected_new: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data, models sorted, as `asl impact --draft --format json` prints it."""
        found = asdict(self)
        found["models"] = {m: found["models"][m] for m in sorted(found["models"])}
        return found


def _field(body: Any, *path: str) -> str | None:
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body if isinstance(body, str) else None


def _links(store: Store, latest: Sequence[Summary]) -> Iterator[Links]:
    """The references of each stored model's newest evidence, READ documents at a time."""
    for start in range(0, len(latest), READ):
        part = latest[start:start + READ]
        bodies = store.evidence(s.evidence_hash for s in part)
        for summary in part:
            body = bodies.get(summary.evidence_hash, {})
            yield Links(summary.model_id, _field(body, "model", "predecessor"),
                        _field(body, "model", "last_comprehensive_assessment", "model"))


def candidates(store: Store, before: Pack, after: Pack, latest: Sequence[Summary]
               ) -> list[str]:
    """The models of `latest` either stack could give another result than the stored
    one, and those carrying a determination over from them, in lineage order."""
    found = reachable(store, {pack.version: pack_fingerprint(pack) for pack in (before, after)},
                      latest)
    if not found:
        return []
    lineage = Lineage(_links(store, latest))
    wanted = lineage.downstream(found)
    return [m for generation in lineage.generations() for m in generation if m in wanted]


class _Side:
    """One stack's assessments of the candidates: the level each concluded, for the
    candidates after it that reference it, and what it rejected."""

    def __init__(self, store: Store, evaluator: Evaluator) -> None:
        self.store = store
        self.evaluator = evaluator
        self.known: dict[str, ReferenceInfo] = {}
        self.rejected: list[str] = []

    def references(self, models: Collection[str]) -> Mapping[str, ReferenceInfo]:
        found = {m: self.known[m] for m in models if m in self.known}
        rest = [m for m in models if m not in found]
        if rest:
            found.update(stored_references(self.store, rest))
        return found

    def assess(self, content: bytes, bodies: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        run = assess([Body(content, "jsonl", "stored")], evaluator=self.evaluator,
                     references=self.references, keep_inputs=False)
        self.rejected += [str(e) for e in run.rejected]
        outputs = {a.model: a.output for a in run.assessments}
        for model, output in outputs.items():
            compute = bodies[model].get("model", {}).get("effective_compute_flop")
            self.known[model] = ReferenceInfo(compute, output["level"])
        return outputs


def draft_impact(store: Store, before: Evaluator, after: Evaluator, framework: str,
                 progress: Progress | None = None) -> StoredImpact:
    """The impact over every stored model of `framework` (newest assessment of each) of
    going from the stack `before` (the active one) to `after` (with the draft): see the
    module docstring."""
    tell = progress or (lambda _phase, _done, _total: None)
    tell(FINDING, 0, 0)
    latest = list(store.all_latest(framework=framework))
    chosen = candidates(store, before.pack, after.pack, latest)
    summaries = {s.model_id: s for s in latest}
    impact = StoredImpact(stored=len(latest), reassessed=len(chosen))
    old, new = _Side(store, before), _Side(store, after)
    tell(ASSESSING, 0, len(chosen))
    for start in range(0, len(chosen), CHUNK):
        part = chosen[start:start + CHUNK]
        stored = store.evidence(summaries[m].evidence_hash for m in part)
        bodies = {m: stored[summaries[m].evidence_hash] for m in part
                  if summaries[m].evidence_hash in stored}
        content = b"".join(orjson.dumps(body) + b"\n" for body in bodies.values())
        outputs = old.assess(content, bodies), new.assess(content, bodies)
        tally_changes(impact, *outputs)
        tell(ASSESSING, start + len(part), len(chosen))
    impact.unchanged += impact.stored - impact.reassessed
    impact.only_old.sort()
    impact.only_new.sort()
    impact.rejected_old, impact.rejected_new = old.rejected, new.rejected
    return impact

