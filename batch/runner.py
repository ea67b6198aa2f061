"""A batch run: every model of a portfolio, in lineage order, committed as it arrives.

Models are taken in lineage generations (`engine.lineage`): a model is assessed only
after the models it references, whose determination and compute it may carry over,
whether that model is in this portfolio or already in the record; a model referencing a
portfolio model that could not be assessed is not assessed either. A model whose input
(evidence and what it
carries over) and pack version match its newest stored assessment is skipped unless
forced; so a batch killed at any moment, by SIGKILL included, resumes by being run again.
So is a model whose newest result was made with another stack of packs (batch.stack),
and the report counts those, by the stack they had, for the summary to say so.

A result has changed when any key of the output contract differs from the model's
previous result (knowledge_graph.compare.contract_values; not its conclusions). Workers
hash the contract keys of every result, so finding the changed ones reads no stored
result; `contract_changes` reads the few a summary lists.

`reassess` re-runs, after a rule change, the stored models whose results could depend on
the rules that changed, and whatever carries over from them.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import orjson

from batch.executors import Executor
from batch.spool import Spool, Spooled
from batch.stack import same_stack, stack_of
from batch.work import Entry, Failed, Job, contract_digest, digest, input_hash
from engine.assess import ReferenceInfo
from engine.errors import InputError
from engine.evidence import LoadedDocument, parse_document
from engine.evidence_schema import Vocabulary
from engine.lineage import Gate, Lineage
from engine.model import Pack
from knowledge_graph.compare import contract_values, value_changes
from store.record import Layer, NewAssessment, Store, Summary
from store.references import stored_references

Progress = Callable[[int], None]
WINDOW = 2048  # jobs prepared at a time, so memory does not grow with a generation's size


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where one portfolio model ended up: its assessment (new or unchanged) and, when a
    previous assessment existed, that one's id, headline level and decision, and
    whether any contract key differs from it."""

    model: str
    assessment_id: int
    level: str
    decision: str
    actions: tuple[str, ...]
    skipped: bool
    before: tuple[str, str] | None  # (level, decision) of the previous assessment
    before_id: int | None = None  # the previous assessment
    changed: bool = False  # a contract key differs from the previous assessment


class Outcomes(Mapping[str, Outcome]):
    """The outcome of each model, by model id, held compactly: a hundred thousand
    `Outcome` objects with their ids would hold some 20 MB for the whole of a batch (and
    the summary reads them only at the end), so each is kept as a few numbers in arrays
    (about 21 bytes: two ids, one code for its level, decision, actions and previous
    headline together, among the few distinct combinations seen, and its flags). An
    `Outcome` is built again when asked for.

    Where a model's numbers are is `index` (model id -> place) when given, for `size`
    models: a batch's spool numbers its documents already (`batch.spool.Spool.positions`),
    so no dict is held here; otherwise a dict of its own, growing as models are
    recorded."""

    def __init__(self, index: Mapping[str, int] | None = None, size: int = 0) -> None:
        self._own: dict[str, int] | None = {} if index is None else None
        self._index: Mapping[str, int] = self._own if self._own is not None else index or {}
        self._ids = array("q", bytes(8 * size))  # assessment_id
        self._before_ids = array("q", bytes(8 * size))  # before_id, or -1
        self._codes = array("I", bytes(4 * size))  # (level, decision, actions, before)
        self._flags = bytearray(size)  # 1: skipped, 2: changed, 4: recorded
        self._count = 0
        self._values: list[Any] = []
        self._value_codes: dict[Any, int] = {}

    def _code(self, value: Any) -> int:
        code = self._value_codes.get(value)
        if code is None:
            code = self._value_codes[value] = len(self._values)
            self._values.append(value)
        return code

    def __setitem__(self, model: str, outcome: Outcome) -> None:
        """Record (or replace) the outcome of `model`."""
        code = self._code((outcome.level, outcome.decision, outcome.actions, outcome.before))
        flags = outcome.skipped | outcome.changed << 1 | 4
        before_id = -1 if outcome.before_id is None else outcome.before_id
        at = self._index.get(model)
        if at is None and self._own is not None:
            at = self._own[model] = len(self._ids)
            self._ids.append(0)
            self._before_ids.append(0)
            self._codes.append(0)
            self._flags.append(0)
        if at is None:
            raise KeyError(model)
        self._count += not self._flags[at] & 4
        self._ids[at] = outcome.assessment_id
        self._before_ids[at] = before_id
        self._codes[at] = code
        self._flags[at] = flags

    def _at(self, model: object) -> int | None:
        """Where the numbers of `model`'s outcome are, if one is recorded."""
        at = self._index.get(model)  # type: ignore[call-overload]
        return at if at is not None and self._flags[at] & 4 else None

    def __getitem__(self, model: str) -> Outcome:
        at = self._at(model)
        if at is None:
            raise KeyError(model)
        level, decision, actions, before = self._values[self._codes[at]]
        before_id = self._before_ids[at]
        flags = self._flags[at]
        return Outcome(model, self._ids[at], level, decision, actions, bool(flags & 1),
                       before, None if before_id < 0 else before_id, bool(flags & 2))

    def __contains__(self, model: object) -> bool:
        return self._at(model) is not None

    def __iter__(self) -> Iterator[str]:
        """The models with an outcome (as recorded, or in the shared index's order)."""
        flags = self._flags
        return (m for m, at in self._index.items() if flags[at] & 4)

    def __len__(self) -> int:
        return self._count

    def skipped(self) -> int:
        """How many were skipped as unchanged."""
        return sum(flags & 5 == 5 for flags in self._flags)

    def changed(self) -> list[str]:
        """The models whose result changed (in the order of `__iter__`)."""
        return [m for m, at in self._index.items() if self._flags[at] & 6 == 6]


@dataclass
class BatchReport:
    """What a batch did: an outcome per model it kept, every rejection, and how many of
    the models it assessed had last been assessed with another pack stack (by that
    stack, as a tuple of (name, version) pairs)."""

    batch_id: int
    pack_version: str
    stack: list[Layer] = field(default_factory=list)
    outcomes: Outcomes = field(default_factory=Outcomes)
    rejected: list[InputError] = field(default_factory=list)
    other_stacks: Counter[tuple[tuple[str, str], ...]] = field(default_factory=Counter)

    @property
    def assessed(self) -> int:
        return len(self.outcomes) - self.skipped

    @property
    def skipped(self) -> int:
        return self.outcomes.skipped()

    _shared: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def changed(self) -> list[Outcome]:
        """Models with a contract key that differs from their previous assessment."""
        return [self.outcomes[m] for m in sorted(self.outcomes.changed())]

    def _same(self, value: Any) -> Any:
        """One shared copy of an equal level, decision or list of actions: a hundred
        thousand outcomes then hold a few dozen distinct ones, not a copy each."""
        return self._shared.setdefault(value, value)

    def _before(self, before: Summary | None) -> tuple[str, str] | None:
        return None if before is None else self._same((before.level, before.decision))

    def skipped_outcome(self, model: str, summary: Summary) -> Outcome:
        """The outcome of a model skipped as unchanged since `summary`."""
        return Outcome(model, summary.id, self._same(summary.level),
                       self._same(summary.decision), self._same(tuple(summary.actions)),
                       True, self._before(summary), summary.id)

    def new_outcome(self, done: NewAssessment, assessment_id: int, before: Summary | None,
                    changed: bool) -> Outcome:
        """The outcome of a model assessed now (as `assessment_id`)."""
        result = done.contract
        return Outcome(done.model_id, assessment_id, self._same(result["level"]),
                       self._same(result["decision"]), self._same(tuple(result["actions"])),
                       False, self._before(before), None if before is None else before.id,
                       changed)


def pack_fingerprint(pack: Pack) -> tuple[dict[str, Any], str]:
    """Per rule, a hash of the rule and the kinds it needs to fire; and one hash of
    everything else the pack states (kinds, facts, catalogue). Re-assessment compares
    these between the pack a result was made with and the current one."""
    rules = {rule.id: {"hash": digest([rule.pack, rule.source]),
                       "consumes": sorted(rule.consumes)} for rule in pack.rules}
    base = digest(json.loads(json.dumps({
        "kinds": {k: asdict(v) for k, v in pack.kinds.items()},
        "facts": sorted([[f.id, f.kind, f.values] for f in pack.facts], key=str),
        "capabilities": [[c.name, c.category, c.attributes] for c in pack.capabilities],
        "standards": [[s.id, s.attributes, list(s.elements)] for s in pack.standards],
    }, default=str, sort_keys=True)))
    return rules, base


class Batch:
    """Runs portfolios into a store with one executor and one pack, the built-in pack
    with the `--pack` directories `overlays` (what the pack was loaded from, for its
    stack). `progress` is told of every model done, `total` of how many there are."""

    def __init__(self, store: Store, pack: Pack, executor: Executor,
                 progress: Progress | None = None, overlays: Sequence[str | Path] = (),
                 total: Progress | None = None) -> None:
        self.store = store
        self.pack = pack
        self.executor = executor
        self.progress = progress or (lambda _n: None)
        self.total = total or (lambda _n: None)
        self.stack = stack_of(pack, overlays)
        self.rules, self.base = pack_fingerprint(pack)
        store.ensure_pack(pack.version, pack.name, self.rules, self.base)

    def run(self, entries: Sequence[Entry] | Spool, inputs: Sequence[str],
            force: bool = False, rejected: Iterable[InputError] = (),
            must_run: set[str] | None = None) -> BatchReport:
        """Assess `entries` (documents already validated; or the spool they were parked
        in) in lineage order; `rejected` are the input's own problems, kept in the
        report. With `must_run` (re-assessment), exactly those models are re-run, and any
        other only if what it carries over changed. What is held per model meanwhile is
        its entry (a spool holds no document, and no object a model: its columns), the
        lineage's order and its outcome: the documents, their previous assessments and
        their results are read a window at a time."""
        self.total(len(entries))
        batch_id = self.store.start_batch(self.pack.version, inputs)
        outcomes = Outcomes(*entries.positions()) if isinstance(entries, Spool) else Outcomes()
        report = BatchReport(batch_id, self.pack.version, self.stack, outcomes,
                             rejected=list(rejected))
        gate = Gate(entries, report.rejected)  # an entry is its own Links
        by_id = cast(Mapping[str, Entry | Spooled], gate.lineage.links)
        stored_refs = self._stored_references(gate.outside())
        for generation in gate.generations():
            for start in range(0, len(generation), WINDOW):
                window = generation[start:start + WINDOW]
                previous = self.store.latest(window)
                jobs = []
                for model in window:
                    job = self._job(by_id[model], by_id, report, stored_refs, previous,
                                    force, must_run, gate)
                    if job is not None:
                        jobs.append(job)
                self._execute(jobs, report, previous, gate)
        self.store.finish_batch(batch_id, report.assessed, report.skipped,
                                len(report.rejected))
        return report

    def _job(self, item: Entry | Spooled, by_id: Mapping[str, Entry | Spooled],
             report: BatchReport, stored_refs: dict[str, ReferenceInfo],
             previous: dict[str, Summary], force: bool, must_run: set[str] | None,
             gate: Gate) -> Job | None:
        """The job for one model, or None when it is rejected or skipped as unchanged
        (either is recorded in the report)."""
        model = item.model
        problem = gate.stop(model)
        if problem is not None:
            report.rejected.append(problem)
            self.progress(1)
            return None
        ref = item.reference
        if ref is None:
            ref_info = None
        elif ref in by_id:
            ref_info = ReferenceInfo(by_id[ref].compute, report.outcomes[ref].level)
        else:
            ref_info = stored_refs.get(ref)
        entry = item.resolve()
        job = Job(entry, ref_info, input_hash(orjson.loads(entry.body), ref_info))
        last = previous.get(model)
        if must_run is not None:
            unchanged = (model not in must_run and last is not None
                         and last.input_hash == job.input_hash)
        else:
            unchanged = (not force and last is not None and last.input_hash == job.input_hash
                         and last.pack_version == self.pack.version
                         and same_stack(last.pack_stack, self.stack, self.pack))
        if unchanged and last is not None:
            report.outcomes[model] = report.skipped_outcome(model, last)
            self.progress(1)
            return None
        return job

    def _execute(self, jobs: list[Job], report: BatchReport,
                 previous: dict[str, Summary], gate: Gate) -> None:
        """Run one window's jobs, committing results as they arrive: a worker's chunk
        in one transaction, so a batch stopped at any moment keeps whole results only."""
        if not jobs:
            return
        for results in self.executor.run(jobs):
            stored = [done for done in results if not isinstance(done, Failed)]
            # Based on what this run read before assessing: an assessment a concurrent
            # batch stored first on the same grounds is skipped (and counted so).
            saved = self.store.save_chunk(
                stored, self.pack.name, self.pack.version, self.stack, report.batch_id,
                based_on={d.model_id: previous[d.model_id].id for d in stored
                          if d.model_id in previous})
            befores = {done.model_id: previous[done.model_id] for done in stored
                       if done.model_id in previous}
            hashes = self._contract_hashes(befores.values())
            for done, (aid, new) in zip(stored, saved, strict=True):
                before = befores.get(done.model_id)
                report.outcomes[done.model_id] = replace(report.new_outcome(
                    done, aid, before, before is not None
                    and hashes[before.id] != done.contract_hash), skipped=not new)
                if before is not None and not same_stack(before.pack_stack, self.stack,
                                                         self.pack):
                    report.other_stacks[tuple((layer["name"], layer["version"])
                                              for layer in before.pack_stack)] += 1
            for done in results:
                if isinstance(done, Failed):
                    failure = InputError(done.job.entry.file, done.job.entry.where,
                                         f"assessment failed: {done.reason}", done.model_id)
                    report.rejected.append(failure)
                    gate.failed(failure)
            self.progress(len(results))

    def _contract_hashes(self, summaries: Iterable[Summary]) -> dict[int, str]:
        """The contract hash of each of these assessments: stored with it, or (for one
        stored before contract hashes were) computed from its stored result."""
        hashes = {s.id: s.contract_hash for s in summaries}
        missing = [aid for aid, value in hashes.items() if value is None]
        for aid, result in self.store.results(missing).items():
            hashes[aid] = contract_digest(result)
        return {aid: value for aid, value in hashes.items() if value is not None}

    def _stored_references(self, models: Iterable[str]) -> dict[str, ReferenceInfo]:
        """What stored models referenced from outside the portfolio carry over (the one
        lookup the service's assessments use too)."""
        return stored_references(self.store, models)

    def reassess(self, vocabulary: Vocabulary, force: bool = False) -> BatchReport:
        """Re-run the stored models whose newest result could depend on rules that
        differ from this pack's (or every stored model made with another pack version,
        with `force`), then whatever carries over from a model whose ASL changed."""
        latest = {s.model_id: s for s in self.store.all_latest()}
        stale = [s for s in latest.values() if s.pack_version != self.pack.version]
        affected = ({s.model_id for s in stale} if force
                    else reachable(self.store, {self.pack.version: (self.rules, self.base)},
                                   stale))
        bodies = self.store.evidence(s.evidence_hash for s in latest.values())
        docs: dict[str, Entry] = {}
        report_rejected: list[InputError] = []
        for model, summary in latest.items():
            body = bodies[summary.evidence_hash]
            doc, errors = parse_document(body, f"stored:{model}", "", vocabulary)
            if doc is None:
                if model in affected:
                    report_rejected.extend(errors)
                continue
            docs[model] = Entry.of(LoadedDocument(doc, f"stored:{model}", ""))
        # Everything downstream of an affected model may carry over a changed result.
        wanted = Lineage(entry.links for entry in docs.values()).downstream(affected)
        chosen = [docs[m] for m in sorted(wanted) if m in docs]
        # Unaffected descendants are skipped again if what they carry over is unchanged.
        return self.run(chosen, ["--reassess"], force=False, rejected=report_rejected,
                        must_run=affected)


def reachable(store: Store, packs: Mapping[str, tuple[dict[str, dict[str, Any]], Any]],
              latest: Iterable[Summary]) -> set[str]:
    """Models of `latest` (newest results) that one of `packs` (each pack version with its
    fingerprint, `pack_fingerprint`'s rules and base) could change, against a result made
    with another version: everything, where not only rules changed; or a changed or
    removed rule fired for it; or a changed or added rule needs only kinds of fact its
    assessment had. What the record holds of each stored version (its fingerprint, the
    rules that fired, the kinds present) is read once, however many packs are compared
    with it. `asl batch --reassess`'s prefilter (one pack), and a draft's impact's
    (batch.impact: the active stack and the stack with the draft)."""
    affected: set[str] = set()
    by_version: dict[str, list[Summary]] = {}
    for summary in latest:
        by_version.setdefault(summary.pack_version, []).append(summary)
    for version, summaries in by_version.items():
        against = [fingerprint for other, fingerprint in packs.items() if other != version]
        if not against:
            continue
        old = store.pack(version)
        if old is None or any(old.base != base for _, base in against):
            affected.update(s.model_id for s in summaries)
            continue
        # per pack: the rules whose firing matters, and the kinds each new rule needs
        tests: list[tuple[set[str], list[set[str]]]] = []
        for rules, _ in against:
            changed = {r for r in rules.keys() & old.rules.keys()
                       if old.rules[r]["hash"] != rules[r]["hash"]}
            gone = changed | (old.rules.keys() - rules.keys())
            new = [set(rules[r]["consumes"])
                   for r in changed | (rules.keys() - old.rules.keys())]
            tests.append((gone, new))
        ids = [s.id for s in summaries]
        fired = store.fired_rules(ids)
        present = store.kinds_present(ids)
        for summary in summaries:
            kinds = present.get(summary.id, set())
            if any(fired[summary.id] & gone or any(needs <= kinds for needs in new)
                   for gone, new in tests):
                affected.add(summary.model_id)
    return affected


def contract_changes(store: Store, outcomes: Sequence[Outcome],
                     leave_out: Iterable[str] = ()) -> dict[str, list[str]]:
    """For each changed outcome, every contract key that differs from its previous
    assessment, as `key old -> new` (knowledge_graph.compare.value_changes), but for the
    keys `leave_out`."""
    pairs = [(o.model, o.before_id, o.assessment_id) for o in outcomes
             if o.before_id is not None]
    results = store.results([aid for _, old, new in pairs for aid in (old, new)])
    skip = set(leave_out)

    def keys(assessment_id: int) -> dict[str, Any]:
        return {k: v for k, v in contract_values(results[assessment_id]).items()
                if k not in skip}

    return {model: value_changes(keys(old), keys(new)) for model, old, new in pairs}
