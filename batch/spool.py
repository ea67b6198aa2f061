"""A portfolio's documents parked on disk while a batch runs, so that its memory does not
grow with the portfolio's size.

`asl batch` validates every document once as it reads the portfolio (a line or a
document at a time, `engine.evidence_reading.iter_documents`), then needs each document
again only when its lineage generation comes. `Spool.keep` writes the validated
document's compact JSON to an anonymous temporary file (gone when the process ends,
killed included) and notes, in columns, what the batch needs of it meanwhile: its
references, where it came from, its effective compute and where its bytes lie. The spool
is the portfolio's table of links by model id (`engine.evidence.load_evidence`'s `table`,
`engine.lineage.Lineage`'s `links`): a `Spooled` entry is built when one is asked for, so
what is held per model is its id and a dict entry, two references (shared strings), and
some 30 bytes of numbers, not an object, a float and a string each.
`Spooled.resolve` reads the bytes back into the `Entry` a job carries.
"""

from __future__ import annotations

import math
import os
import tempfile
from array import array
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import IO

import orjson

from batch.work import Entry, evidence_body, hash_bytes
from engine.evidence import LoadedDocument
from engine.lineage import Links

# The compute column's value for a document that states none: the evidence's compute is
# a finite positive number (engine.evidence_schema), never NaN.
NO_COMPUTE = math.nan


def _where_code(where: str) -> int | None:
    """A document's place as one number: `line N` as N, `models[I]` as -1 - I, the whole
    file ("") as 0; None for any other text (kept as text). Only a text the number gives
    back exactly (`_where_text`) is coded."""
    if not where:
        return 0
    for prefix, suffix, code in (("line ", "", lambda n: n), ("models[", "]", lambda n: -1 - n)):
        if where.startswith(prefix) and where.endswith(suffix):
            digits = where[len(prefix):len(where) - len(suffix)]
            if digits.isascii() and digits.isdigit() and str(int(digits)) == digits:
                number = code(int(digits))
                if number and _where_text(number) == where:
                    return number
    return None


def _where_text(code: int) -> str:
    """The place `_where_code` coded as `code`."""
    return f"line {code}" if code > 0 else f"models[{-1 - code}]" if code < 0 else ""


class Spool(MutableMapping[str, "Spooled"]):
    """An append-only temporary file of document bodies (in TMPDIR, or `directory`), and
    the table of the documents kept in it, by model id, in the order kept.

    Each document is a number `n` (its place in the columns below, in `_index` by id); a
    model id named again as another model's reference is one string, not a copy per
    mention (`_shared`, dropped by `done_reading`). Setting an entry is only `keep`'s
    (`load_evidence` sets each kept document's entry to the one `keep` gave: nothing to
    do); deleting one takes a rejected document out of the table."""

    def __init__(self, directory: str | None = None) -> None:
        # Held open for the batch's life (closed by `close` or the context manager).
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="asl-batch-", dir=directory)
        self._unflushed = False
        self._shared: dict[str, str] = {}
        self._index: dict[str, int] = {}  # model id -> n
        self._predecessor: list[str | None] = []
        self._carried: list[str | None] = []
        self._files: list[str] = []  # each file once, in the order met
        self._file_codes: dict[str, int] = {}
        self._file_of = array("I")  # n -> its file's place in _files
        self._where = array("q")  # n -> its place in the file, `_where_code`
        self._where_texts: dict[int, str] = {}  # n -> a place no number gives
        self._compute = array("d")  # n -> its effective compute, or NO_COMPUTE
        self._offsets = array("q", [0])  # n -> where its body starts; its end is n + 1's

    def keep(self, loaded: LoadedDocument) -> Spooled:
        """Park a validated document's body, note it in the table and give its entry (the
        `keep` of `engine.evidence.load_evidence`). An OSError (disk full) propagates."""
        body = orjson.dumps(evidence_body(loaded.document), option=orjson.OPT_SORT_KEYS)
        self._file.write(body)
        self._unflushed = True
        model = loaded.document.model
        lca = model.last_comprehensive_assessment
        # One naming its own model is on a cycle (`a -> a`): the loader rejects it.
        carried = lca.model if lca is not None else None
        share = self._shared.setdefault
        n = len(self._offsets) - 1
        self._offsets.append(self._offsets[n] + len(body))
        self._index[share(model.id, model.id)] = n
        self._predecessor.append(None if model.predecessor is None
                                 else share(model.predecessor, model.predecessor))
        self._carried.append(None if carried is None else share(carried, carried))
        file = self._file_codes.get(loaded.file)
        if file is None:
            file = self._file_codes[loaded.file] = len(self._files)
            self._files.append(loaded.file)
        self._file_of.append(file)
        where = _where_code(loaded.where)
        if where is None:
            self._where_texts[n] = loaded.where
        self._where.append(where or 0)
        compute = model.effective_compute_flop
        self._compute.append(NO_COMPUTE if compute is None else compute)
        return self._entry(model.id, n)

    def done_reading(self) -> None:
        """Drop what `keep` shared strings through (one entry a model): the table keeps
        the strings themselves."""
        self._shared = {}

    def positions(self) -> tuple[dict[str, int], int]:
        """Each model's number (by id; a rejected one is not there) and how many numbers
        there are: an index a batch's outcomes can share (`batch.runner.Outcomes`)."""
        return self._index, len(self._offsets) - 1

    def _entry(self, model: str, n: int) -> Spooled:
        compute: float | None = self._compute[n]
        if math.isnan(compute):
            compute = None
        where = self._where_texts.get(n)
        return Spooled(model, self._predecessor[n], self._carried[n],
                       self._files[self._file_of[n]],
                       _where_text(self._where[n]) if where is None else where,
                       compute, n, self)

    def __getitem__(self, model: str) -> Spooled:
        return self._entry(model, self._index[model])

    def __setitem__(self, model: str, entry: Spooled) -> None:
        if entry.spool is not self or self._index.get(model) != entry.n:
            raise ValueError(f"{model!r}: only Spool.keep adds to a spool")

    def __delitem__(self, model: str) -> None:
        del self._index[model]  # its bytes stay in the file, unread

    def __contains__(self, model: object) -> bool:
        return model in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def read(self, n: int) -> bytes:
        """The bytes of document `n`."""
        if self._unflushed:
            self._file.flush()
            self._unflushed = False
        at = self._offsets[n]
        return os.pread(self._file.fileno(), self._offsets[n + 1] - at, at)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # A mapping compares by identity: two spools are two files.
    __eq__ = object.__eq__  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True, eq=False)
class Spooled(Links):
    """A document parked in a `Spool`, as the spool gives it when asked: its references and
    place (it is the `Links` lineage ordering walks), its effective compute (for the
    models that carry it over) and its number in the spool."""

    compute: float | None = None
    n: int = 0
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
        body = self.spool.read(self.n)
        return Entry(self.model, self.predecessor, self.carried, self.file, self.where,
                     self.compute, body, hash_bytes(body))
