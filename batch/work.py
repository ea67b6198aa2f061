"""One unit of batch work, and the function that does it in any worker process.

A `Job` carries a validated model document (as compact JSON bytes, an `Entry`) and what
its reference carried over; it is what crosses to a worker (a pool process or a Dask
worker), so it holds only plain, picklable data, and the worker validates the document
again into the engine's model. `assess_jobs` assesses a chunk of jobs with the pack
compiled once per process (engine.assess.evaluator_for caches it) and returns, per job,
everything the record stores, or the reason the assessment failed.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from engine.assess import (
    Assessment,
    ReferenceInfo,
    assess_document,
    evaluator_for,
    tune_for_throughput,
    vocabulary,
)
from engine.errors import AssessmentError, InputError
from engine.evidence import LoadedDocument
from engine.evidence_schema import ModelDocument, ModelInfo, Vocabulary, validate_document
from engine.lineage import Links
from knowledge_graph.compare import contract_values
from knowledge_graph.provenance import record_of
from knowledge_graph.report import assessment_document
from store.record import NewAssessment, sorted_json


def digest(data: Any) -> str:
    """sha256 of the canonical JSON of `data` (keys sorted)."""
    return hash_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def hash_bytes(data: bytes) -> str:
    """sha256 of `data`, as `sha256:HEX` (how the record names evidence)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def contract_digest(result: dict[str, Any]) -> str:
    """A hash of a result's contract keys (not its conclusions, model or pack): equal for
    two results exactly when no key of the output contract differs between them."""
    return digest(contract_values(result))


def evidence_body(doc: ModelDocument) -> dict[str, Any]:
    """The document as submitted (the fields it gave), as JSON data."""
    return doc.model_dump(mode="json", exclude_unset=True)


def input_hash(body: dict[str, Any], ref: ReferenceInfo | None) -> str:
    """What an assessment's result depends on besides the pack: the evidence (its lists
    in a canonical order, since their order never changes the result) and what its
    reference carried over from the portfolio or the record."""
    canonical = dict(body)
    for key in ("evaluations", "findings", "safeguards"):
        if key in canonical:
            canonical[key] = sorted(canonical[key], key=lambda item: orjson.dumps(
                item, option=orjson.OPT_SORT_KEYS))
    if "deployment" in canonical and "channels" in (canonical["deployment"] or {}):
        canonical["deployment"] = {**canonical["deployment"],
                                   "channels": sorted(canonical["deployment"]["channels"])}
    carried = None if ref is None else [ref.effective_compute_flop, ref.level]
    return digest({"evidence": canonical, "reference": carried})


@dataclass(frozen=True, slots=True)
class Entry(Links):
    """A validated model document kept compact until its turn comes: its references (it
    is the `Links` lineage ordering walks; `carried` is its reference to another model,
    never itself) and the document as canonical JSON bytes. The CLI's batch holds even
    less (`batch.spool.Spooled`: where the bytes are in a temporary file)."""

    compute: float | None = None  # its effective compute, for models that reference it
    body: bytes = b""  # the document as submitted, as JSON with keys sorted
    evidence_hash: str = ""

    @property
    def reference(self) -> str | None:
        """The model it carries a determination over from, if another."""
        return self.carried

    @property
    def links(self) -> Links:
        """Its references, for `engine.lineage` (itself)."""
        return self

    def resolve(self) -> Entry:
        """The entry with its body in memory: itself."""
        return self

    @classmethod
    def of(cls, loaded: LoadedDocument) -> Entry:
        """The compact form of a loaded document."""
        body = orjson.dumps(evidence_body(loaded.document), option=orjson.OPT_SORT_KEYS)
        model = loaded.document.model
        return cls(model.id, model.predecessor, carried_of(model), loaded.file,
                   loaded.where, model.effective_compute_flop, body, hash_bytes(body))


def carried_of(model: ModelInfo) -> str | None:
    """The other model a document carries a determination over from, if any."""
    lca = model.last_comprehensive_assessment
    return lca.model if lca is not None and lca.model != model.id else None


@dataclass(frozen=True)
class Job:
    """A model to assess: its entry and what its reference carries over."""

    entry: Entry
    ref: ReferenceInfo | None
    input_hash: str

    @property
    def model_id(self) -> str:
        return self.entry.model


@dataclass(frozen=True)
class Failed:
    """A job the engine could not assess, and why."""

    job: Job
    reason: str


def assess_jobs(packs: Sequence[str], jobs: Sequence[Job]) -> list[NewAssessment | Failed]:
    """Assess each job with the pack stack `packs` (overlay directories over the
    built-in pack); one entry per job, in order."""
    tune_for_throughput()  # in whatever worker this runs: a pool process or a Dask worker
    evaluator = evaluator_for(packs)
    words = vocabulary(evaluator.pack)
    done: list[NewAssessment | Failed] = []
    for job in jobs:
        try:
            done.append(_assess_one(evaluator, words, job))
        except AssessmentError as exc:
            done.append(Failed(job, str(exc)))
        except Exception as exc:  # one document's failure is that document's alone
            done.append(Failed(job, f"{type(exc).__name__}: {exc}"))
    return done


def _assess_one(evaluator: Any, words: Any, job: Job) -> NewAssessment | Failed:
    """Everything the record stores for one job: assessment, provenance and result. Any
    failure here is the job's alone (`assess_jobs` reports it and goes on)."""
    entry = job.entry
    body, document, errors = read_back(entry, words)
    if document is None:  # validated once already, with the same pack: not expected
        return Failed(job, "; ".join(str(e) for e in errors))
    assessment = assess_document(evaluator, document, job.ref, where=entry.where,
                                 file=entry.file)
    return stored_form(entry, job.input_hash, assessment, body)


def read_back(entry: Entry, words: Vocabulary
              ) -> tuple[dict[str, Any], ModelDocument | None, list[InputError]]:
    """An entry's document as data and validated again into the engine's model (in a
    worker, which is given its bytes), or None and why. Its shape is not checked again
    (`parse_document` would): it is the JSON `Entry.of` wrote of a document already
    read and validated with its whole file, so it is neither deep nor large."""
    body = orjson.loads(entry.body)
    document, errors = validate_document(body, entry.file, entry.where, words)
    return body, document, errors


def stored_form(entry: Entry, input_hash: str, assessment: Assessment,
                body: dict[str, Any] | None = None) -> NewAssessment:
    """What the record stores of one assessment of `entry` (its result, provenance and
    the rows behind them). `body` is the entry's document as data, when the caller has
    it already."""
    return stored_parts(entry, input_hash, assessment, body)[0]


def stored_parts(entry: Entry, input_hash: str, assessment: Assessment,
                 body: dict[str, Any] | None = None) -> tuple[NewAssessment, bytes]:
    """`stored_form`, and the result as the JSON it stores compressed (store.record.
    sorted_json: what `decompress` parses back): the service stores its assessments
    through this, and answers and hashes each result from those bytes rather than
    serialising it again."""
    record = record_of(assessment.derivation)  # what dump, fired_rules and kinds of
    result = assessment_document(assessment)  # its graph give, without building it
    result_json = sorted_json(result)
    return NewAssessment.build(
        model_id=entry.model, evidence_hash=entry.evidence_hash,
        evidence_body=orjson.loads(entry.body) if body is None else body,
        file=_place(entry), input_hash=input_hash, result=result,
        provenance=record.blob, edges=record.fired, kinds=record.kinds,
        contract_hash=contract_digest(result), result_json=result_json,
        evidence_json=entry.body), result_json


def warm(packs: Sequence[str]) -> None:
    """Start a pool worker: leave Ctrl-C to the parent (which stops the pool and says
    what was kept, without a traceback from every worker), and load and compile the pack
    before the first chunk."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Started with SIGINT blocked (batch.executors.LocalPool.submit); ignored from here.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _exit_with_parent()
    evaluator_for(packs)


def _exit_with_parent() -> None:
    """End this worker when the batch that started it dies. A pool worker otherwise
    waits for work for ever after its parent is killed (SIGKILL gives the parent no
    chance to stop it), holding memory and the batch's standard output open."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _place(entry: Entry) -> str:
    return f"{entry.file}: {entry.where}" if entry.where else entry.file
