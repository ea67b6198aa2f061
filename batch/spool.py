"""A portfolio's documents parked on disk while a batch runs, so that its memory does not
grow with the portfolio's size.

`asl batch` validates every document once as it reads the portfolio (a line or a
document at a time, `engine.evidence_reading.iter_documents`), then needs each document
again only when its lineage generation comes. `Spool.keep` writes the validated
document's compact JSON to an anonymous temporary file (gone when the process ends,
killed included) and gives the `Spooled` entry the batch holds meanwhile: its references,
where it came from and where its bytes lie, about 250 bytes a model (its id included)
against a few kilobytes held as bytes or tens held as a validated document.
`Spooled.resolve` reads the bytes back into the `Entry` a job carries.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import IO

import orjson

from batch.work import Entry, evidence_body, hash_bytes
from engine.evidence import LoadedDocument
from engine.lineage import Links


class Spool:
    """An append-only temporary file of document bodies (in TMPDIR, or `directory`).

    What it hands out per document is kept small: a model id named again as another
    model's reference is one string, not a copy per mention, and a place (`line 12`)
    met in several files is one string (`_shared`, dropped by `done_reading`)."""

    def __init__(self, directory: str | None = None) -> None:
        # Held open for the batch's life (closed by `close` or the context manager).
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="asl-batch-", dir=directory)
        self._end = 0
        self._unflushed = False
        self._shared: dict[str, str] = {}

    def keep(self, loaded: LoadedDocument) -> Spooled:
        """Park a validated document's body and give its entry (the `keep` of
        `engine.evidence.load_evidence`). An OSError (disk full) propagates."""
        body = orjson.dumps(evidence_body(loaded.document), option=orjson.OPT_SORT_KEYS)
        at = self._end
        self._file.write(body)
        self._end += len(body)
        self._unflushed = True
        model = loaded.document.model
        lca = model.last_comprehensive_assessment
        # One naming its own model is on a cycle (`a -> a`): the loader rejects it.
        carried = lca.model if lca is not None else None
        share = self._shared.setdefault
        return Spooled(share(model.id, model.id),
                       None if model.predecessor is None
                       else share(model.predecessor, model.predecessor),
                       None if carried is None else share(carried, carried),
                       loaded.file, share(loaded.where, loaded.where),
                       model.effective_compute_flop, at << 32 | len(body), self)

    def done_reading(self) -> None:
        """Drop what `keep` shared strings through (one entry a model): the entries
        keep the strings themselves."""
        self._shared = {}

    def read(self, at: int, size: int) -> bytes:
        """The `size` bytes parked at offset `at`."""
        if self._unflushed:
            self._file.flush()
            self._unflushed = False
        return os.pread(self._file.fileno(), size, at)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True, eq=False)
class Spooled(Links):
    """A document parked in a `Spool`: its references and place (it is the `Links` lineage
    ordering walks), its effective compute (for the models that carry it over) and where
    its body lies."""

    compute: float | None = None
    place: int = 0  # where its body lies: offset << 32 | size (one int, not two)
    spool: Spool | None = None

    @property
    def reference(self) -> str | None:
        """The model it carries a determination over from, if another."""
        return self.carried

    @property
    def links(self) -> Links:
        return self

    def resolve(self) -> Entry:
        """The entry with its body read back (and hashed), for a job."""
        assert self.spool is not None
        body = self.spool.read(self.place >> 32, self.place & 0xFFFFFFFF)
        return Entry(self.model, self.predecessor, self.carried, self.file, self.where,
                     self.compute, body, hash_bytes(body))
