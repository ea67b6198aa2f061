"""One unit of batch work, and the function that does it in any worker process.

A `Job` carries a validated model document and what its reference carried over; it is
what crosses to a worker (a pool process or a Dask worker), so it holds only plain,
picklable data. `assess_jobs` assesses a chunk of jobs with the pack compiled once per
process (engine.assess.evaluator_for caches it) and returns, per job, everything the
record stores, or the reason the assessment failed.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from engine.assess import ReferenceInfo, assess_document, evaluator_for, tune_for_throughput
from engine.errors import AssessmentError
from engine.evidence import ModelDocument
from knowledge_graph.provenance import dump, edge_rows, kinds
from knowledge_graph.report import assessment_document, provenance
from store.record import NewAssessment


def digest(data: Any) -> str:
    """sha256 of the canonical JSON of `data` (keys sorted)."""
    return "sha256:" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
    carried = None if ref is None else [ref.effective_compute_flop, ref.asl]
    return digest({"evidence": canonical, "reference": carried})


@dataclass(frozen=True)
class Job:
    """A model to assess: its document, where it came from, and its reference's data."""

    document: ModelDocument
    body: dict[str, Any]
    file: str
    where: str
    ref: ReferenceInfo | None
    evidence_hash: str
    input_hash: str

    @property
    def model_id(self) -> str:
        return self.document.model.id


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
    done: list[NewAssessment | Failed] = []
    for job in jobs:
        try:
            assessment = assess_document(evaluator, job.document, job.ref, where=job.where,
                                         file=job.file)
        except AssessmentError as exc:
            done.append(Failed(job, str(exc)))
            continue
        graph = provenance(assessment)
        done.append(NewAssessment.build(
            model_id=job.model_id, evidence_hash=job.evidence_hash, evidence_body=job.body,
            file=_place(job), input_hash=job.input_hash,
            result=assessment_document(assessment, graph), provenance=dump(graph),
            edges=edge_rows(graph), kinds=kinds(graph)))
    return done


def warm(packs: Sequence[str]) -> None:
    """Start a pool worker: leave Ctrl-C to the parent (which stops the pool and says
    what was kept, without a traceback from every worker), and load and compile the pack
    before the first chunk."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    evaluator_for(packs)


def _place(job: Job) -> str:
    return f"{job.file}: {job.where}" if job.where else job.file
