"""Load and validate evidence: the input contract of `shared/spec/evidence-format.md`.

Evidence is YAML, JSON or JSON Lines holding one model document or a portfolio of them.
Each problem becomes one `InputError(file, path, message)`; a bad document is reported and
skipped, the others are kept. Nothing here knows about rules: the active pack's names
arrive as a `Vocabulary`. Error paths (`str(InputError)` is `FILE: PATH: MESSAGE`):
- a field of a document file: `evaluations[2].score` (no path for the whole document);
- a document of a portfolio file: `models[3].evaluations[2].score`, or `models[3]`;
- a line of a JSON Lines file: `line 4: evaluations[2].score`, or `line 4`;
- an unparsable file: no path; the message says where (`invalid YAML at line 3, column 5:
  ...`, `invalid JSON at column 5: ...` for a JSON line). Standard input is `<stdin>`.
"""

import contextlib
import datetime
import difflib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Generic,
    Self,
    TextIO,
    TypeVar,
    get_args,
    overload,
)

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from engine.errors import InputError, within
from engine.lineage import Lineage, Links
from engine.yamlsafe import StrictLoader, load_data

CHANNELS = ("internal", "api", "consumer", "cloud_platform", "open_weights")
VERDICTS = ("crossed", "cannot_rule_out", "ruled_out")
SAFEGUARD_STATUSES = ("implemented", "partial", "planned", "absent")
ELICITATIONS = ("full", "partial", "none")
PURPOSES = ("rule_out", "rule_in")
ASLS = ("ASL-2", "ASL-3", "ASL-4")
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 32  # nested mappings and lists; a real portfolio needs 5
MAX_VALUES = 2_000_000  # values once aliases are expanded; far above any real portfolio
EXTENSIONS = (".yaml", ".yml", ".json", ".jsonl")
STDIN_NAME = "<stdin>"
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
EMPTY = "empty; expected a model document or a portfolio"


@dataclass(frozen=True)
class Vocabulary:
    """The names the active rule pack defines; evidence naming anything else is refused."""

    capabilities: frozenset[str]
    safeguards: frozenset[str]  # standard ids ("asl3-security") and element ids ("….audits")


class _Refused(Exception):
    """A whole file or line is unusable; carries the message for its InputError."""


def _describe(value: object) -> str:
    """Show a rejected input value briefly, in YAML spelling (`null`, `true`, `'high'`)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, dict | list | tuple):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, datetime.date):
        return f"date {value.isoformat()}"
    if not isinstance(value, str | int | float):
        return f"a {type(value).__name__}"
    text = repr(value[:47] + "..." if isinstance(value, str) and len(value) > 50 else value)
    return text if len(text) <= 52 else text[:47] + "..."  # a long number


def _unknown(kind: str, value: str, choices: Sequence[str], label: str) -> str:
    """`unknown KIND 'VALUE' (did you mean 'X'?); LABEL A, B, C`: the fix and the options."""
    guess = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"unknown {kind} {value!r}{hint}; {label} {', '.join(choices) or '(none)'}"


def _error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user as it is."""
    return PydanticCustomError("evidence", "{message}", {"message": message})


def _one_of(kind: str, choices: tuple[str, ...]) -> AfterValidator:
    """Accept only one of a fixed set of strings defined by the evidence format."""

    def check(value: str) -> str:
        if value not in choices:
            raise _error(_unknown(kind, value, choices, "expected one of"))
        return value

    return AfterValidator(check)


def _known(kind: str, names: Callable[[Vocabulary], frozenset[str]]) -> AfterValidator:
    """Accept only names of the Vocabulary given as validation context (any, without one)."""

    def check(value: str, info: ValidationInfo) -> str:
        vocabulary = (info.context or {}).get("vocabulary")
        if vocabulary is not None and value not in names(vocabulary):
            raise _error(_unknown(kind, value, sorted(names(vocabulary)), "known:"))
        return value

    return AfterValidator(check)


def _iso_date(value: object) -> object:
    """A YAML date or an ISO date string, as `YYYY-MM-DD`; anything else is refused."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise _error(f"expected an ISO date (YYYY-MM-DD), got {_describe(value)}")


def _absent_as(default: object) -> BeforeValidator:
    """An optional field written as `null` (in YAML, a key with nothing after it) means
    the field was not given: it takes its default."""
    return BeforeValidator(lambda value: default if value is None else value)


Number = Annotated[float, Field(allow_inf_nan=False)]
PositiveNumber = Annotated[float, Field(allow_inf_nan=False, gt=0)]
NonNegativeNumber = Annotated[float, Field(allow_inf_nan=False, ge=0)]
ModelId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
EntryId = Annotated[str, Field(min_length=1)]
IsoDate = Annotated[str, BeforeValidator(_iso_date)]
Threshold = Annotated[str, _known("threshold", lambda v: v.capabilities)]


class _Strict(BaseModel):
    """Shared settings: unknown keys refused, no type coercion, immutable once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LastAssessment(_Strict):
    """The latest comprehensively assessed model in this model's line (RSP §3.1)."""

    model: ModelId
    effective_compute_flop: PositiveNumber | None = None
    months_since: NonNegativeNumber
    determination: Annotated[str, _one_of("determination", ASLS)] | None = None


class ModelInfo(_Strict):
    """Who the model is and which earlier models it refers to."""

    id: ModelId
    name: str | None = None
    developer: str | None = None
    effective_compute_flop: PositiveNumber | None = None
    predecessor: ModelId | None = None
    last_comprehensive_assessment: LastAssessment | None = None


class Evaluation(_Strict):
    """A quantitative capability evaluation; `warning_score` is never None once validated."""

    id: EntryId
    threshold: Threshold
    purpose: Annotated[str, _absent_as("rule_out"), _one_of("purpose", PURPOSES)] = "rule_out"
    score: Number
    threshold_score: Number
    warning_score: Number | None = None
    elicitation: Annotated[str, _absent_as("full"), _one_of("elicitation", ELICITATIONS)] = (
        "full")
    name: str | None = None
    source: str | None = None
    date: IsoDate | None = None

    @field_validator("warning_score")
    @classmethod
    def _within_threshold(cls, value: float | None, info: ValidationInfo) -> float | None:
        limit = info.data.get("threshold_score")
        if value is not None and limit is not None and value > limit:
            raise _error(f"warning_score {value!r} is above threshold_score {limit!r}")
        return value

    @model_validator(mode="after")
    def _default_warning(self) -> Self:
        if self.warning_score is None:  # the format's default: no safety margin
            object.__setattr__(self, "warning_score", self.threshold_score)
        return self


class Finding(_Strict):
    """An expert or red-team judgement about one capability."""

    id: EntryId
    threshold: Threshold
    verdict: Annotated[str, _one_of("verdict", VERDICTS)]
    source: str | None = None
    date: IsoDate | None = None


class Deployment(_Strict):
    """How the model is made available; a document without one is not deployed."""

    channels: Annotated[list[Annotated[str, _one_of("channel", CHANNELS)]], _absent_as([])] = []
    fine_tuning_access: Annotated[bool, _absent_as(False)] = False

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        repeated = sorted({channel for channel in value if value.count(channel) > 1})
        if repeated:
            raise _error(f"duplicate channel {repeated[0]!r}")
        return value


class SafeguardEntry(_Strict):
    """The status of one safeguard standard or element of the pack's catalogue."""

    id: Annotated[str, _known("safeguard", lambda v: v.safeguards)]
    status: Annotated[str, _one_of("status", SAFEGUARD_STATUSES)]
    evidence: str | None = None


class ModelDocument(_Strict):
    """Everything known about one model: the unit that is assessed."""

    model: ModelInfo
    evaluations: Annotated[list[Evaluation], _absent_as([])] = []
    findings: Annotated[list[Finding], _absent_as([])] = []
    deployment: Deployment | None = None
    safeguards: Annotated[list[SafeguardEntry], _absent_as([])] = []


@dataclass(frozen=True)
class LoadedDocument:
    """A valid document and where it came from (`where`: "", `models[3]` or `line 4`),
    with the data it was validated from (`raw`: plain data as parsed, aliases shared),
    which a what-if edits rather than reading the input again."""

    document: ModelDocument
    file: str
    where: str
    raw: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Body:
    """Evidence held in memory, such as a request body: its bytes, the format they are
    declared to be in (`json`, `yaml` or `jsonl`, as a file's extension would say), and
    the name errors give it in place of a file name."""

    content: bytes
    format: str
    name: str = "body"


Kept = TypeVar("Kept")


@dataclass
class LoadResult(Generic[Kept]):
    """The documents that passed (as loaded, or in the form the caller chose to keep
    them), in load order, and every problem found, sorted."""

    documents: list[Kept]
    errors: list[InputError]


# The strict YAML reader evidence is parsed with (duplicate keys refused, YAML 1.2
# floats); the same one reads rule packs. Named here for code that reads evidence YAML
# as the loader does.
EvidenceLoader = StrictLoader


def _is_portfolio(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("models"), list)


Sizes = dict[int, tuple[int, int]]  # id of a container -> (values, height)


def _check_shape(data: object, max_depth: int = MAX_DEPTH) -> Sizes:
    """Refuse data nested deeper than `max_depth` or holding more than MAX_VALUES values;
    the size of every container in it.

    Each container is measured once (memoised by identity), so an alias bomb costs no more
    than its text, and a self-referencing alias stops at `max_depth`.
    """
    measured: Sizes = {}

    def measure(value: object, depth: int) -> tuple[int, int]:
        if not isinstance(value, dict | list):
            return 1, 0
        if depth > max_depth:
            raise _Refused(TOO_DEEP)
        known = measured.get(id(value))
        if known is None:
            count, height = 1, 1
            for child in value.values() if isinstance(value, dict) else value:
                child_count, child_height = measure(child, depth + 1)
                count, height = count + child_count, max(height, child_height + 1)
                if count > MAX_VALUES:
                    raise _Refused(f"more than {MAX_VALUES:,} values once aliases are expanded")
            known = measured[id(value)] = (count, height)
        if depth + known[1] - 1 > max_depth:
            raise _Refused(TOO_DEEP)
        return known

    measure(data, 1)
    return measured


def _parse_yaml(text: str) -> object:
    """Plain data from YAML text; never runs code, and a syntax error names its line."""
    try:
        return load_data(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or ""
        if problem.startswith("but "):  # "expected a single document ... but found another"
            problem = f"{exc.context} {problem}"
        raise _Refused(f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:  # a ReaderError: a character YAML does not allow
        raise _Refused(f"invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # the composer recurses once per level of nesting
        raise _Refused(TOO_DEEP) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key (json would silently keep the last)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _json_int(digits: str) -> int | float:
    """A JSON integer; one too long for Python to convert (over 4,300 digits by default)
    becomes an infinite float, which validation then refuses at its own path."""
    limit = sys.get_int_max_str_digits()
    return int(digits) if not limit or len(digits) <= limit else float(digits)


def _parse_json(text: str, where: str) -> object:
    """Plain data from JSON text (a whole file, or the JSON Lines line at `where`)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        at = "" if where else f"line {exc.lineno}, "  # a JSON Lines error is already at a line
        raise _Refused(f"invalid JSON at {at}column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # a duplicate key, an integer too long to convert
        raise _Refused(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise _Refused(TOO_DEEP) from None


def _within(where: str, loc: Sequence[int | str]) -> str:
    """The path of `loc` in the document at `where`: `models[3].evaluations[2].score`."""
    path = ""
    for part in loc:
        if isinstance(part, str) and not part.isprintable():  # a line break in a key
            part = json.dumps(part)
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return within(where, path)


def _model_at(loc: Sequence[int | str]) -> type[BaseModel]:
    """The model class that validates the mapping at `loc` of a document."""
    model: Any = ModelDocument
    for part in loc:
        if isinstance(part, str):  # unwrap `X | None` and `list[X]` down to the model X
            model = model.model_fields[part].annotation
            while not (isinstance(model, type) and issubclass(model, BaseModel)):
                model = next(arg for arg in get_args(model) if arg is not type(None))
    return model


_MESSAGES = {
    "missing": "field required",
    "float_type": "expected a number, got {got}",
    "finite_number": "expected a finite number, got {got}",
    "greater_than": "expected a number greater than {gt:g}, got {got}",
    "greater_than_equal": "expected a number at least {ge:g}, got {got}",
    "string_type": "expected a string, got {got}",
    "string_too_short": "expected a non-empty string",
    "string_pattern_mismatch": "invalid model id {got}; expected 1 to 128 lowercase letters, "
    "digits, '.', '_' or '-', starting with a letter or digit",
    "bool_type": "expected true or false, got {got}",
    "list_type": "expected a list, got {got}",
    "model_type": "expected a mapping, got {got}",
}


def _translate(error: ErrorDetails) -> tuple[Sequence[int | str], str]:
    """A pydantic error as (loc, message), in the evidence format's own words."""
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        fields = sorted(_model_at(loc[:-1]).model_fields)
        return loc, _unknown("field", str(loc[-1]), fields, "expected one of")
    if kind == "invalid_key":
        return loc[:-1], f"field names must be strings, got {_describe(loc[-1])}"
    if kind == "float_type" and type(error["input"]) is int:  # too large for a float
        return loc, f"number out of range: {_describe(error['input'])}"
    if kind not in _MESSAGES:
        return loc, error["msg"]  # our own messages, and any pydantic adds later
    return loc, _MESSAGES[kind].format(got=_describe(error["input"]), **error.get("ctx", {}))


def _duplicate_ids(data: object) -> list[tuple[Sequence[int | str], str]]:
    """(loc, message) for each repeated id; evaluations and findings share one namespace."""
    problems: list[tuple[Sequence[int | str], str]] = []
    for sections in (("evaluations", "findings"), ("safeguards",)):
        first: dict[str, str] = {}
        for section in sections:
            items = data.get(section) if isinstance(data, dict) else None
            for i, item in enumerate(items if isinstance(items, list) else []):
                ident = item.get("id") if isinstance(item, dict) else None
                if not isinstance(ident, str):
                    continue
                if ident in first:
                    message = f"duplicate id {ident!r} (also {first[ident]})"
                    problems.append(((section, i, "id"), message))
                else:
                    first[ident] = f"{section}[{i}]"
    return problems


def _validate(
    data: object, file: str, where: str, vocabulary: Vocabulary
) -> tuple[ModelDocument | None, list[InputError]]:
    """`parse_document` for data whose shape was already checked with its whole file."""
    problems = _duplicate_ids(data)
    document = None
    try:
        document = ModelDocument.model_validate(data, context={"vocabulary": vocabulary})
    except ValidationError as exc:
        problems += [_translate(error) for error in exc.errors()]
    ident = _model_id(data)
    errors = sorted(InputError(file, _within(where, loc), message, ident)
                    for loc, message in problems)
    return (None if errors else document), errors


def _model_id(data: object) -> str | None:
    """The `model.id` of a document's data, if it can be read (a rejected document's
    id lets the portfolio stop the models that reference it)."""
    model = data.get("model") if isinstance(data, dict) else None
    ident = model.get("id") if isinstance(model, dict) else None
    return ident if isinstance(ident, str) else None


def parse_document(
    data: object, file: str, where: str, vocabulary: Vocabulary
) -> tuple[ModelDocument | None, list[InputError]]:
    """Validate one already-parsed model document: it, or None and every problem (sorted).

    `where` places the document (`models[3]`, `line 4`) and prefixes every error path. Any
    data is safe to pass, including aliased or self-referencing structures.
    """
    try:
        _check_shape(data)
    except _Refused as exc:
        return None, [InputError(file, where, str(exc))]
    return _validate(data, file, where, vocabulary)


def _read(file: str, stdin: TextIO | None) -> bytes:
    """The bytes of a file, or of standard input for `-` (read from its bytes where the
    stream has them, so that it is decoded exactly as a file is), refusing more than
    MAX_FILE_BYTES."""
    too_big = f"larger than the {MAX_FILE_BYTES:,}-byte limit (50 MB)"
    try:
        if file == "-":
            stream = stdin or sys.stdin
            read = getattr(stream, "buffer", stream).read(MAX_FILE_BYTES + 1)
            content = read if isinstance(read, bytes) else read.encode("utf-8",
                                                                        "surrogateescape")
        elif os.stat(file).st_size > MAX_FILE_BYTES:
            raise _Refused(too_big)  # refused unread
        else:
            with open(file, "rb") as handle:  # bounded: a pipe or device has no size
                content = handle.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:
            raise _Refused(too_big)
        return content
    except FileNotFoundError:
        raise _Refused("no such file or directory") from None
    except OSError as exc:
        raise _Refused(exc.strerror or str(exc)) from None


def _decode(content: bytes, first: bool = True) -> str:
    """UTF-8 text (a byte-order mark allowed at the start of a file)."""
    try:
        return content.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def _parse_stdin(text: str) -> object:
    """Standard input is read as YAML, which also accepts JSON; but JSON that YAML cannot
    read (indented with tabs, as `jq --tab` writes it) is still JSON, so it is read as
    JSON when YAML refuses it. Otherwise the YAML error stands."""
    try:
        return _parse_yaml(text)
    except _Refused as yaml_error:
        if text.lstrip().startswith(("{", "[")):
            with contextlib.suppress(_Refused):
                return _parse_json(text, "")
        raise yaml_error from None


Source = str | os.PathLike[str] | Body  # a file, a directory, `-` or a body


def _documents_in(
    source: str | Body, stdin: TextIO | None, errors: list[InputError]
) -> list[tuple[str, object]]:
    """(where, data) for each model document in one file (or body); its other problems
    go to errors."""
    name, suffix = _name(source), (f".{source.format}" if isinstance(source, Body)
                                   else ".yaml" if source == "-"
                                   else Path(source).suffix.lower())
    try:
        if isinstance(source, Body) and suffix not in EXTENSIONS:
            raise _Refused(f"unsupported format {source.format!r}; expected json, yaml "
                           "or jsonl")
        if suffix not in EXTENSIONS:
            shown = repr(suffix) if suffix else "(no extension)"
            raise _Refused(f"unsupported file type {shown}; expected {', '.join(EXTENSIONS)}")
        content = _held(source.content) if isinstance(source, Body) else _read(source, stdin)
    except _Refused as exc:
        errors.append(InputError(name, "", str(exc)))
        return []
    chunks = [("", content)]
    if suffix == ".jsonl":  # decoded line by line: one bad line is one rejected document
        lines = enumerate(content.split(b"\n"), start=1)
        chunks = [(f"line {number}", line) for number, line in lines if line.strip()]
    found: list[tuple[str, object]] = []
    for where, chunk in chunks:
        try:
            text = _decode(chunk, first=where in ("", "line 1"))
            if suffix.startswith(".json"):
                data = _parse_json(text, where)
            else:
                data = _parse_stdin(text) if source == "-" else _parse_yaml(text)
            # A portfolio's documents are held to MAX_DEPTH one by one (see
            # `_split_portfolio`), so that one too deep is the only one rejected.
            sizes = _check_shape(data, 4 * MAX_DEPTH if _is_portfolio(data) and not where
                                 else MAX_DEPTH)
        except _Refused as exc:
            errors.append(InputError(name, where, str(exc)))
        else:
            found += _split_portfolio(data, name, where, errors, sizes)
    if not chunks:
        errors.append(InputError(name, "", EMPTY))
    return found


def _name(source: str | Body) -> str:
    """What errors call a source: its file name, `<stdin>`, or a body's name."""
    if isinstance(source, Body):
        return source.name
    return STDIN_NAME if source == "-" else source


def _held(content: bytes) -> bytes:
    """Bytes held in memory, refused over MAX_FILE_BYTES as a file would be."""
    if len(content) > MAX_FILE_BYTES:
        raise _Refused(f"larger than the {MAX_FILE_BYTES:,}-byte limit (50 MB)")
    return content


def _split_portfolio(
    data: object, file: str, where: str, errors: list[InputError], sizes: Sizes
) -> list[tuple[str, object]]:
    """The documents of a file's data: a `models:` portfolio's, or the data itself.
    `sizes` are the file's containers as `_check_shape` measured them."""
    if where:  # a JSON line holds one model document, never a portfolio
        return [(where, data)]
    if data is None:
        errors.append(InputError(file, "", EMPTY))
        return []
    if not isinstance(data, dict) or "models" not in data:
        return [("", data)]
    for key in data:
        if key != "models":
            message = _unknown("field", str(key), ["models"], "expected one of")
            errors.append(InputError(file, _within("", [str(key)]), message))
    models = data["models"]
    if not isinstance(models, list):
        errors.append(InputError(file, "models", f"expected a list, got {_describe(models)}"))
        return []
    documents = []
    for i, document in enumerate(models):
        if sizes.get(id(document), (1, 0))[1] > MAX_DEPTH:
            errors.append(InputError(file, f"models[{i}]", TOO_DEEP, _model_id(document)))
        else:
            documents.append((f"models[{i}]", document))
    return documents


def _files(source: Source, errors: list[InputError]) -> list[str | Body]:
    """The evidence files a command-line argument names: itself, or a directory's files
    (a body is itself)."""
    if isinstance(source, Body):
        return [source]
    path = os.fspath(source)
    if path == "-" or not os.path.isdir(path):
        return [path]
    found = sorted(
        entry.path
        for entry in os.scandir(path)
        # not only files: a broken link is then reported, never skipped in silence
        if not entry.is_dir() and Path(entry.name).suffix.lower() in EXTENSIONS
    )
    if not found:
        errors.append(InputError(path, "", f"no evidence files ({', '.join(EXTENSIONS)})"))
    return list(found)


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
) -> LoadResult[Kept]: ...


def load_evidence(
    paths: Sequence[Source], vocabulary: Vocabulary, stdin: TextIO | None = None, *,
    keep: Callable[[LoadedDocument], Any] | None = None, keep_raw: bool = True,
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
    caller holds on to (a batch keeps compact bytes), so that a large portfolio is never
    held as validated documents all at once; without `keep_raw`, documents do not hold
    their raw data either (about a tenth of the memory of a large portfolio's run).
    """
    errors: list[InputError] = []
    seen: dict[str, Links] = {}  # by model id, in load order
    kept: dict[str, Any] = {}
    for path in paths:
        for source in _files(path, errors):
            name = _name(source)
            for where, data in _documents_in(source, stdin, errors):
                document, problems = _validate(data, name, where, vocabulary)
                errors += problems
                if document is None:
                    continue
                ident = document.model.id
                if ident in seen:
                    message = f"duplicate model id {ident!r} (also {_place(seen[ident], name)})"
                    errors.append(InputError(name, _within(where, ("model", "id")), message,
                                             ident))
                    continue
                item = LoadedDocument(document, name, where, data if keep_raw else None)
                seen[ident] = Links.of(document.model, name, where)
                kept[ident] = item if keep is None else keep(item)
    rejected = set()
    for links, field_path, message in Lineage(seen.values()).cycles():
        rejected.add(links.model)
        errors.append(links.error(field_path, message))
    documents = [item for ident, item in kept.items() if ident not in rejected]
    return LoadResult(documents, sorted(errors))
