"""Read what an import needs from an Inspect eval log: its header, nothing else.

Inspect (`inspect-ai`) writes two log formats:

- `.json`: one JSON object, the whole `EvalLog` (`version`, `status`, `eval`, `plan`,
  `results`, `stats`, `error`, `invalidated`, ..., `samples`, `reductions`).
- `.eval`: a zip archive of JSON entries. `header.json` is the `EvalLog` without its
  samples, written when the run ends; `_journal/start.json` (`version`, `eval`, `plan`)
  is written when it starts, so a log without `header.json` is a run that never
  finished (Inspect itself then reads its status as `started`). `samples/*.json`,
  `summaries.json` and `reductions.json` hold per-sample data, which an import does not
  need. Current Inspect compresses every entry with zstd (zip method 93, possibly as
  several zstd frames); older logs used deflate. Python's zipfile (before 3.14) cannot
  decompress zstd, so the entry is located with zipfile and decompressed here with
  `zstandard`.

Two readers give the same `LogHeader`: the built-in one (stdlib `zipfile` and `json`,
plus `zstandard`), and inspect-ai's own `read_eval_log(header_only=True)` when the
optional extra `asl[inspect]` is installed (`reader="auto"` prefers it). The built-in
reader checks the type of every field it uses and names the field when one is wrong.
Nothing here judges a log (status, invalidation, ranges): `inspect_import` does that, on
the `LogHeader`, identically for both readers.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

from importers.problems import ImportRefused, Problem, refuse

HEADER = "header.json"
JOURNAL_START = "_journal/start.json"
EXTENSIONS = (".eval", ".json")
READERS = ("auto", "builtin", "inspect-ai")
MAX_ENTRY_BYTES = 64 * 1024 * 1024  # a header is kilobytes; its samples are elsewhere
MAX_JSON_LOG_BYTES = 1024 * 1024 * 1024  # a .json log is read whole
NOT_A_LOG = "not an Inspect eval log"
_ZIP_STORED, _ZIP_DEFLATED, _ZIP_ZSTANDARD = 0, 8, 93
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


@dataclass(frozen=True)
class LogScore:
    """One scorer's results: `name` as Inspect shows it, the scorer, the epoch reducer
    (None for one epoch or the default) and each metric's value."""

    name: str
    scorer: str
    reducer: str | None
    metrics: tuple[tuple[str, float], ...]  # (metric name, value), in the log's order


@dataclass(frozen=True)
class LogHeader:
    """What an import reads from one log (`file` is the name it was given under)."""

    file: str
    status: str  # started | success | cancelled | error
    invalidated: bool
    eval_id: str
    task: str
    model: str
    created: str  # ISO 8601, in UTC, as Inspect normalises it
    scores: tuple[LogScore, ...]
    error: str | None  # the first line of the error that ended a failed run

    @property
    def date(self) -> str:
        """The day the log was created (UTC), as the evidence format's `date`."""
        return self.created[:10]


def utc_iso(value: str) -> str:
    """An ISO 8601 time in UTC, as Inspect normalises `eval.created` (a time without an
    offset is taken as UTC); ValueError when it is not one."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat()


def read_log(file: str, content: bytes | IO[bytes] | None = None, reader: str = "auto"
             ) -> LogHeader:
    """The header of the Inspect log `file` (`.eval` or `.json`), read from `content`
    (bytes or a seekable binary stream) or, when None, from the file itself.

    `reader`: `builtin`, `inspect-ai` (needs the `asl[inspect]` extra) or `auto` (inspect-ai
    when it is installed). Raises ImportRefused naming the file when it cannot be read as
    an Inspect log.
    """
    suffix = Path(file).suffix.lower()
    if suffix not in EXTENSIONS:
        shown = repr(suffix) if suffix else "(no extension)"
        raise refuse(file, "", f"unsupported file type {shown}; expected an Inspect log "
                     f"({', '.join(EXTENSIONS)})")
    if reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(READERS)}, not {reader!r}")
    use_inspect = reader == "inspect-ai" or (reader == "auto" and inspect_ai_installed())
    if reader == "inspect-ai" and not inspect_ai_installed():
        raise refuse(file, "", "inspect-ai is not installed (pip install 'asl[inspect]')")
    try:
        stream = _open(file, content)
    except FileNotFoundError:
        raise refuse(file, "", "no such file or directory") from None
    except OSError as exc:
        raise refuse(file, "", exc.strerror or str(exc)) from None
    with stream:
        if use_inspect:
            return _read_with_inspect(file, stream, suffix)
        return _read_eval(file, stream) if suffix == ".eval" else _read_json(file, stream)


def read_logs(logs: Sequence[str | tuple[str, bytes | IO[bytes] | None]],
              reader: str = "auto") -> list[LogHeader]:
    """Every log's header, in order: each log a file name, or (name, content) as
    `read_log` takes them. ImportRefused with the problems of every unreadable log."""
    headers, problems = [], []
    for log in logs:
        file, content = (log, None) if isinstance(log, str) else log
        if content is None and os.path.isdir(file):
            problems.append(Problem(file, 0, "", "a directory; name its logs "
                                    f"({os.path.join(file, '*.eval')})"))
            continue
        try:
            headers.append(read_log(file, content, reader))
        except ImportRefused as exc:
            problems += exc.problems
    if problems:
        raise ImportRefused(problems)
    return headers


def inspect_ai_installed() -> bool:
    """Whether the optional inspect-ai package can be imported here."""
    return importlib.util.find_spec("inspect_ai") is not None


def _open(file: str, content: bytes | IO[bytes] | None) -> IO[bytes]:
    if content is None:
        return open(file, "rb")  # closed by the caller's `with`
    if isinstance(content, bytes | bytearray | memoryview):
        return io.BytesIO(content)
    return content


# --- the built-in reader ---------------------------------------------------------------


def _read_eval(file: str, stream: IO[bytes]) -> LogHeader:
    """The header of a `.eval` log: `header.json`, or `_journal/start.json` (a run that
    never finished) when there is no header."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        raise refuse(file, "", f"{NOT_A_LOG}: not a zip archive") from None
    with archive:
        names = set(archive.namelist())
        if HEADER in names:
            data, entry = _entry_json(file, archive, HEADER), HEADER
        elif JOURNAL_START in names:
            data, entry = _entry_json(file, archive, JOURNAL_START), JOURNAL_START
            if isinstance(data, dict):
                data = {"eval": data.get("eval")}  # no status: Inspect reads `started`
        else:
            raise refuse(file, "", f"{NOT_A_LOG}: the archive has neither {HEADER} nor "
                         f"{JOURNAL_START}")
    return _header(file, f"{entry}: ", data)


def _entry_json(file: str, archive: zipfile.ZipFile, name: str) -> Any:
    """One entry of a `.eval` archive, decompressed (stored, deflate or zstd) and parsed."""
    info = archive.getinfo(name)  # the last entry of that name, as Inspect reads it
    where = f"{NOT_A_LOG}: {name}"
    if info.file_size > MAX_ENTRY_BYTES:
        raise refuse(file, "", f"{where} is {info.file_size:,} bytes; a log header is "
                     f"never over {MAX_ENTRY_BYTES:,}")
    if info.flag_bits & 0x1:
        raise refuse(file, "", f"{where} is encrypted")
    stream = archive.fp
    assert stream is not None
    stream.seek(info.header_offset)
    fixed = stream.read(_LOCAL_HEADER.size)
    if len(fixed) != _LOCAL_HEADER.size or fixed[:4] != b"PK\x03\x04":
        raise refuse(file, "", f"{where}: damaged zip entry")
    name_length, extra_length = _LOCAL_HEADER.unpack(fixed)[-2:]
    stream.seek(name_length + extra_length, io.SEEK_CUR)
    packed = stream.read(info.compress_size)
    try:
        raw = _decompress(packed, info.compress_type, info.file_size)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise refuse(file, "", f"{where}: cannot decompress: {exc}") from None
    if len(raw) != info.file_size or zlib.crc32(raw) != info.CRC:
        raise refuse(file, "", f"{where}: damaged zip entry (size or checksum differs)")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise refuse(file, "", f"{where}: invalid JSON: {exc}") from None


def _decompress(packed: bytes, method: int, size: int) -> bytes:
    """An entry's bytes, never more than `size` + 1 of them (a lying size is caught by
    the caller's checks, not by running out of memory)."""
    if method == _ZIP_STORED:
        return packed[: size + 1]
    if method == _ZIP_DEFLATED:
        return zlib.decompressobj(-15).decompress(packed, size + 1)
    if method == _ZIP_ZSTANDARD:
        reader = zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True)
        with reader:
            return reader.read(size + 1)
    raise zstandard.ZstdError(f"zip compression method {method} is not one Inspect uses")


def _read_json(file: str, stream: IO[bytes]) -> LogHeader:
    """The header fields of a `.json` log, read whole (samples included)."""
    content = stream.read(MAX_JSON_LOG_BYTES + 1)
    if len(content) > MAX_JSON_LOG_BYTES:
        raise refuse(file, "", f"larger than the {MAX_JSON_LOG_BYTES:,} bytes a .json log "
                     "is read whole; convert it with `inspect log convert --to eval`")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise refuse(file, "", f"{NOT_A_LOG}: invalid JSON at line {exc.lineno}, column "
                     f"{exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise refuse(file, "", f"{NOT_A_LOG}: {exc}") from None
    return _header(file, "", data)


class _Fields:
    """Typed access to a log's fields that names the field when one is wrong."""

    def __init__(self, file: str, prefix: str) -> None:
        self.file, self.prefix = file, prefix

    def wrong(self, path: str, expected: str, value: object) -> ImportRefused:
        shown = "null" if value is None else type(value).__name__
        return refuse(self.file, f"{self.prefix}{path}", f"expected {expected}, got {shown}")

    def get(self, data: Mapping[str, Any], path: str, kind: type | tuple[type, ...],
            expected: str, default: Any = ...) -> Any:
        key = path.rsplit(".", 1)[-1]
        if key not in data or (data[key] is None and default is not ...):
            if default is ...:
                raise refuse(self.file, f"{self.prefix}{path}", "field required")
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.wrong(path, expected, value)
        return value


def _header(file: str, prefix: str, data: object) -> LogHeader:
    """A LogHeader from a parsed header object; refuses a field of the wrong type."""
    fields = _Fields(file, prefix)
    if not isinstance(data, dict) or not isinstance(data.get("eval"), dict):
        raise refuse(file, "", f"{NOT_A_LOG}: no `eval` object (the task, model and run)")
    spec = data["eval"]
    status = fields.get(data, "status", str, "a string", "started")
    created = fields.get(spec, "eval.created", str, "an ISO date and time")
    try:
        created = utc_iso(created)
    except ValueError:
        raise fields.wrong("eval.created", "an ISO date and time", created) from None
    results = fields.get(data, "results", dict, "an object", {})
    error = fields.get(data, "error", dict, "an object", None)
    message = None if error is None else fields.get(error, "error.message", str, "a string")
    return LogHeader(
        file=file, status=status,
        invalidated=fields.get(data, "invalidated", bool, "true or false", False),
        eval_id=fields.get(spec, "eval.eval_id", str, "a string", ""),
        task=fields.get(spec, "eval.task", str, "a string"),
        model=fields.get(spec, "eval.model", str, "a string"),
        created=created, scores=_scores(fields, results),
        error=_first_line(message))


def _scores(fields: _Fields, results: dict[str, Any]) -> tuple[LogScore, ...]:
    """Every scorer's metrics; a version 1 log's single `scorer` and `metrics` are read
    as one score, as Inspect reads them."""
    if "scorer" in results:
        single = fields.get(results, "results.scorer", dict, "an object")
        metrics = results.get("metrics") or single.get("metrics") or {}
        results = {"scores": [{**single, "scorer": single.get("name"), "metrics": metrics}]}
    found = []
    for i, score in enumerate(fields.get(results, "results.scores", list, "a list", [])):
        at = f"results.scores[{i}]"
        if not isinstance(score, dict):
            raise fields.wrong(at, "an object", score)
        metrics = []
        for key, metric in fields.get(score, f"{at}.metrics", dict, "an object", {}).items():
            if not isinstance(metric, dict):
                raise fields.wrong(f"{at}.metrics.{key}", "an object", metric)
            value = fields.get(metric, f"{at}.metrics.{key}.value", (int, float), "a number")
            metrics.append((key, float(value)))
        found.append(LogScore(
            name=fields.get(score, f"{at}.name", str, "a string"),
            scorer=fields.get(score, f"{at}.scorer", str, "a string"),
            reducer=fields.get(score, f"{at}.reducer", str, "a string", None),
            metrics=tuple(metrics)))
    return tuple(found)


def _first_line(message: str | None) -> str | None:
    if message is None:
        return None
    lines = message.strip().splitlines()
    return lines[0] if lines else ""


# --- inspect-ai's own reader -----------------------------------------------------------


def _read_with_inspect(file: str, stream: IO[bytes], suffix: str) -> LogHeader:
    """The same LogHeader, read by inspect-ai (`read_eval_log(header_only=True)`).

    It runs its own event loop: call it from a worker thread in an async server.
    """
    from inspect_ai.log import read_eval_log

    try:
        log = read_eval_log(stream, header_only=True, format=suffix[1:])  # type: ignore[arg-type]
    except Exception as exc:  # anything inspect-ai cannot read is not a log to us
        detail = _first_line(str(exc)) or type(exc).__name__
        raise refuse(file, "", f"{NOT_A_LOG}: inspect-ai cannot read it: {detail}") from None
    scores = tuple(
        LogScore(name=score.name, scorer=score.scorer, reducer=score.reducer,
                 metrics=tuple((key, float(metric.value))
                               for key, metric in score.metrics.items()))
        for score in (log.results.scores if log.results else []))
    return LogHeader(
        file=file, status=log.status, invalidated=log.invalidated,
        eval_id=log.eval.eval_id, task=log.eval.task, model=log.eval.model,
        created=utc_iso(log.eval.created), scores=scores,
        error=_first_line(log.error.message) if log.error else None)

