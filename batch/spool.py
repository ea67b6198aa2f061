"""A portfolio's documents parked on disk while a batch runs, so that its memory does not
grow with the portfolio's size.

`asl batch` validates every document once as it reads the portfolio, then needs each
document again only when its lineage generation comes. `Spool.keep` writes the validated
document's compact JSON to an anonymous temporary file (gone when the process ends, killed
included); `Spool.entries` then gives a `Spooled` per document: its references, where it
came from and where its bytes lie, a few hundred bytes a model against a few kilobytes
held as bytes or tens held as a validated document. `Spooled.resolve` reads the bytes
back into the `Entry` a job carries.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import IO

import orjson

from batch.work import Entry, evidence_body, hash_bytes
from engine.evidence import LoadedDocument
from engine.lineage import Lineage, Links


class Spool:
    """An append-only temporary file of document bodies (in TMPDIR, or `directory`), and
    beside it an index of what a batch needs of each document until its turn.

    `keep` holds nothing in memory: a portfolio file's documents are parsed all at once,
    and small objects kept per document meanwhile pin memory of that parse (Python's
    allocator returns an arena only once every object in it is gone). `entries` builds
    the compact `Spooled` entries once the reading is over. (Measured on 5,000 models in
    one file: the parent's RSS after reading fell from 139 to 133 MiB; most of what
    remains above the entries' own ~630 bytes a model is the parse's freed memory the
    allocator keeps.)"""

    def __init__(self, directory: str | None = None) -> None:
        # Held open for the batch's life (closed by `close` or the context manager).
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="asl-batch-", dir=directory)
        self._index: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="asl-batch-index-", dir=directory)
        self._end = 0
        self._unflushed = False

    def keep(self, loaded: LoadedDocument) -> None:
        """Park a validated document: its body, and its line in the index (the `keep`
        of `engine.evidence.load_evidence`). An OSError (disk full) propagates."""
        body = orjson.dumps(evidence_body(loaded.document), option=orjson.OPT_SORT_KEYS)
        at = self._end
        self._file.write(body)
        self._end += len(body)
        self._unflushed = True
        model = loaded.document.model
        lca = model.last_comprehensive_assessment
        self._index.write(orjson.dumps([
            model.id, model.predecessor, lca.model if lca is not None else None,
            loaded.file, loaded.where, model.effective_compute_flop, at, len(body)]) + b"\n")

    def entries(self) -> list[Spooled]:
        """The entries of every document kept, in the order kept, but those on a cycle of
        references (which the loader rejects, as `Lineage.cycles` finds them)."""
        self._index.flush()
        self._index.seek(0)
        files: dict[str, str] = {}  # one string per file name, shared by its entries
        found = []
        for line in self._index:
            model, predecessor, carried, file, where, compute, at, size = orjson.loads(line)
            found.append(Spooled(model, predecessor, carried, files.setdefault(file, file),
                                 where, compute, at, size, self))
        self._index.seek(0)
        self._index.truncate()
        on_cycle = {links.model for links, _, _ in Lineage(found).cycles()}
        return [_without_self(item) for item in found if item.model not in on_cycle]

    def read(self, at: int, size: int) -> bytes:
        """The `size` bytes parked at offset `at`."""
        if self._unflushed:
            self._file.flush()
            self._unflushed = False
        return os.pread(self._file.fileno(), size, at)

    def close(self) -> None:
        self._file.close()
        self._index.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _without_self(item: Spooled) -> Spooled:
    """The entry with a `last_comprehensive_assessment` naming its own model dropped:
    such a reference carries nothing over (batch.work.carried_of)."""
    if item.carried != item.model:
        return item
    return Spooled(item.model, item.predecessor, None, item.file, item.where, item.compute,
                   item.at, item.size, item.spool)


@dataclass(frozen=True, slots=True, eq=False)
class Spooled(Links):
    """A document parked in a `Spool`: its references and place (it is the `Links` lineage
    ordering walks), its effective compute (for the models that carry it over) and where
    its body lies."""

    compute: float | None = None
    at: int = 0
    size: int = 0
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
        body = self.spool.read(self.at, self.size)
        return Entry(self.model, self.predecessor, self.carried, self.file, self.where,
                     self.compute, body, hash_bytes(body))
