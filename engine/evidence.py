"""Load and validate evidence: the input contract of `docs/evidence-format.md`.

Evidence is YAML, JSON or JSON Lines holding one model document or a portfolio of them.
Each problem becomes one `InputError(file, path, message)`; a bad document is reported and
skipped, the others are kept. Nothing here knows about rules: the active pack's names
arrive as a `Vocabulary`. Error paths (`str(InputError)` is `FILE: PATH: MESSAGE`):
- a field of a document file: `evaluations[2].score` (no path for the whole document);
- a document of a portfolio file: `models[3].evaluations[2].score`, or `models[3]`;
- a line of a JSON Lines file: `line 4: evaluations[2].score`, or `line 4`;
- an unparsable file: no path; the message says where (`invalid YAML at line 3, column 5:
  ...`, `invalid JSON at column 5: ...` for a JSON line). Standard input is `<stdin>`.

This module checks documents as one portfolio (a repeated model id, reference cycles);
reading sources is `engine.evidence_reading`'s, the document model and its messages
`engine.evidence_schema`'s.
"""

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TextIO, TypeVar, overload

from engine.errors import InputError
from engine.evidence_reading import (
    Refused,
    Source,
    check_shape,
    evidence_files,
    iter_documents,
    source_name,
)
from engine.evidence_schema import ModelDocument, Vocabulary, path_in, validate_document
from engine.lineage import Lineage, Links


@dataclass(frozen=True)
class LoadedDocument:
    """A valid document and where it came from (`where`: "", `models[3]` or `line 4`),
    with the data it was validated from (`raw`: plain data as parsed, aliases shared),
    which a what-if edits rather than reading the input again."""

    document: ModelDocument
    file: str
    where: str
    raw: object = field(default=None, compare=False, repr=False)


Kept = TypeVar("Kept")


@dataclass
class LoadResult(Generic[Kept]):
    """The documents that passed (as loaded, or in the form the caller chose to keep
    them), in load order, and every problem found, sorted."""

    documents: list[Kept]
    errors: list[InputError]


def parse_document(
    data: object, file: str, where: str, vocabulary: Vocabulary
) -> tuple[ModelDocument | None, list[InputError]]:
    """Validate one already-parsed model document: it, or None and every problem (sorted).

    `where` places the document (`models[3]`, `line 4`) and prefixes every error path. Any
    data is safe to pass, including aliased or self-referencing structures.
    """
    try:
        check_shape(data)
    except Refused as exc:
        return None, [InputError(file, where, str(exc))]
    return validate_document(data, file, where, vocabulary)


def _place(item: Links, file: str) -> str:
    """Where an earlier document is, as seen from `file`: `models[0]`, `b.json: models[1]`."""
    if item.file == file and item.where:
        return item.where
    return f"{item.file}: {item.where}" if item.where else item.file


@overload
def load_evidence(
    paths: Sequence[Source], vocabulary: Vocabulary, stdin: TextIO | None = None, *,
    keep_raw: bool = True,
) -> LoadResult[LoadedDocument]: ...


@overload
def load_evidence(
    paths: Sequence[Source], vocabulary: Vocabulary, stdin: TextIO | None = None, *,
    keep: Callable[[LoadedDocument], Kept], keep_raw: bool = True,
    table: MutableMapping[str, Links] | None = None,
) -> LoadResult[Kept]: ...


def load_evidence(
    paths: Sequence[Source], vocabulary: Vocabulary, stdin: TextIO | None = None, *,
    keep: Callable[[LoadedDocument], Any] | None = None, keep_raw: bool = True,
    table: MutableMapping[str, Links] | None = None,
) -> LoadResult[Any]:
    """Load and validate every document the paths name, then check them as one portfolio.

    A path is a `.yaml`/`.yml`/`.json`/`.jsonl` file, a directory (its files of those kinds,
    sorted, not recursive), `-`: standard input, read as YAML, or a `Body` held in memory.
    Each document is validated on its own; a bad one is reported and skipped. Across all
    of them, a repeated model id rejects the later documents, and every model on a cycle
    of `predecessor` or `last_comprehensive_assessment.model` references is rejected
    (`engine.lineage`). References to models not loaded are fine. An error rejecting a
    document whose `model.id` can be read names that model (`InputError.model`), so that
    assessing the portfolio can stop the models referencing it.

    `keep` turns each valid document, as soon as it is validated, into the form the
    caller holds on to (a batch keeps where it parked the bytes), so that a large portfolio is never
    held as validated documents all at once; without `keep_raw`, documents do not hold
    their raw data either (about a tenth of the memory of a large portfolio's run).

    `table` is where the documents' links are held by model id while loading, when `keep`
    gives a document's links and puts them there itself (a batch's spool, which holds
    them as columns: nothing is then held per document here); the rejected are taken
    out of it at the end, and it, not `documents` (then empty), holds what passed.
    """
    errors: list[InputError] = []
    seen: MutableMapping[str, Links] = {} if table is None else table  # in load order
    kept: dict[str, Any] = {}
    for path in paths:
        for source in evidence_files(path, errors):
            name = source_name(source)
            for where, data in iter_documents(source, stdin, errors):
                document, problems = validate_document(data, name, where, vocabulary)
                errors += problems
                if document is None:
                    continue
                ident = document.model.id
                if ident in seen:
                    message = f"duplicate model id {ident!r} (also {_place(seen[ident], name)})"
                    errors.append(InputError(name, path_in(where, ("model", "id")), message,
                                             ident))
                    continue
                item = LoadedDocument(document, name, where, data if keep_raw else None)
                value = item if keep is None else keep(item)
                if isinstance(value, Links):
                    # A kept form that is the document's links itself (a batch's spooled
                    # entry) stands for them: one object a model, not two, and one dict.
                    seen[ident] = value
                else:
                    seen[ident] = Links.of(document.model, name, where)
                    kept[ident] = value
    rejected = set()
    for links, field_path, message in Lineage(seen).cycles():
        rejected.add(links.model)
        errors.append(links.error(field_path, message))
    if table is not None:
        for ident in rejected:
            del table[ident]
        return LoadResult([], sorted(errors))
    # Kept forms that are the links themselves were not put in `kept` (it is then empty).
    documents = [item for ident, item in (kept if len(kept) == len(seen) else seen).items()
                 if ident not in rejected]
    return LoadResult(documents, sorted(errors))
