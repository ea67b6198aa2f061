"""What a worker process sends back to the batch's parent: one bytes object per chunk.

Pickling a chunk's `NewAssessment`s made the parent rebuild tens of thousands of small
Python objects per chunk only to write them out again. Instead a worker packs each
result's fields as they will be written: bytes fields (the compressed result and
provenance) raw, the rest as one JSON header; the parent unpacks them into the record's
`NewAssessment` and takes every string it already holds (the model id, the evidence's
place) from its own job rather than from the wire. Any field `NewAssessment` has is
carried, so the record's shape can change without this module changing.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from batch.work import Failed, Job, assess_jobs
from store.record import NewAssessment

_LENGTH = struct.Struct("<I")
_FIELDS = [f.name for f in dataclasses.fields(NewAssessment)]


def assess_packed(packs: Sequence[str], jobs: Sequence[Job]) -> bytes:
    """`batch.work.assess_jobs`, its results packed (what a pool or Dask worker runs)."""
    return pack(assess_jobs(packs, jobs))


def pack(results: Sequence[NewAssessment | Failed]) -> bytes:
    """One chunk's results, in order: a JSON header (per result, its JSON fields and the
    lengths of its bytes fields, or the reason it failed), then every bytes field."""
    header: list[Any] = []
    blobs: list[bytes] = []
    for done in results:
        if isinstance(done, Failed):
            header.append(done.reason)
            continue
        values, lengths = {}, {}
        for name in _FIELDS:
            value = getattr(done, name)
            if isinstance(value, bytes):
                lengths[name] = len(value)
                blobs.append(value)
            else:
                values[name] = value
        header.append([values, lengths])
    head = orjson.dumps(header)
    return b"".join([_LENGTH.pack(len(head)), head, *blobs])


def unpack(data: bytes, jobs: Sequence[Job]) -> list[NewAssessment | Failed]:
    """The results `pack` packed for `jobs` (the chunk as the parent sent it)."""
    (size,) = _LENGTH.unpack_from(data)
    at = _LENGTH.size + size
    header = orjson.loads(data[_LENGTH.size:at])
    view = memoryview(data)
    results: list[NewAssessment | Failed] = []
    for job, item in zip(jobs, header, strict=True):
        if isinstance(item, str):
            results.append(Failed(job, item))
            continue
        values, lengths = item
        for name, length in lengths.items():
            values[name] = bytes(view[at:at + length])
            at += length
        values["model_id"] = job.entry.model  # the parent's own string, not a copy
        results.append(NewAssessment(**values))
    return results
