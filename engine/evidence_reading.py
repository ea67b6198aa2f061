"""Reading evidence: files, directories, standard input and bodies held in memory, in
YAML, JSON or JSON Lines, within limits of size and nesting depth.

Each source yields (where, data) for every model document it holds, where `where` is
"" (the whole file), `models[3]` (a document of a portfolio) or `line 4` (a JSON Lines
line). A source that cannot be read, or a line or document that cannot be parsed, is
one `InputError`; the message says where (`invalid YAML at line 3, column 5: ...`,
`invalid JSON at column 5: ...` for a JSON line). Standard input is `<stdin>`.
Validating each document is `engine.evidence_schema`'s.
"""

import contextlib
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import yaml

from engine.errors import InputError
from engine.evidence_schema import describe, model_id, path_in, unknown_name
from engine.yamlsafe import StrictLoader, load_data

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 32  # nested mappings and lists; a real portfolio needs 5
MAX_VALUES = 2_000_000  # values once aliases are expanded; far above any real portfolio
EXTENSIONS = (".yaml", ".yml", ".json", ".jsonl")
STDIN_NAME = "<stdin>"
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
EMPTY = "empty; expected a model document or a portfolio"
TOO_BIG = f"larger than the {MAX_FILE_BYTES:,}-byte limit (50 MB)"


class Refused(Exception):
    """A whole file or line is unusable; carries the message for its InputError."""


@dataclass(frozen=True)
class Body:
    """Evidence held in memory, such as a request body: its bytes, the format they are
    declared to be in (`json`, `yaml` or `jsonl`, as a file's extension would say), and
    the name errors give it in place of a file name."""

    content: bytes
    format: str
    name: str = "body"


# The strict YAML reader evidence is parsed with (duplicate keys refused, YAML 1.2
# floats); the same one reads rule packs. Named here for code that reads evidence YAML
# as the loader does.
EvidenceLoader = StrictLoader


def _is_portfolio(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("models"), list)


Sizes = dict[int, tuple[int, int]]  # id of a container -> (values, height)


def check_shape(data: object, max_depth: int = MAX_DEPTH) -> Sizes:
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
            raise Refused(TOO_DEEP)
        known = measured.get(id(value))
        if known is None:
            count, height = 1, 1
            for child in value.values() if isinstance(value, dict) else value:
                child_count, child_height = measure(child, depth + 1)
                count, height = count + child_count, max(height, child_height + 1)
                if count > MAX_VALUES:
                    raise Refused(f"more than {MAX_VALUES:,} values once aliases are expanded")
            known = measured[id(value)] = (count, height)
        if depth + known[1] - 1 > max_depth:
            raise Refused(TOO_DEEP)
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
        raise Refused(f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:  # a ReaderError: a character YAML does not allow
        raise Refused(f"invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # the composer recurses once per level of nesting
        raise Refused(TOO_DEEP) from None


class DuplicateKey(ValueError):
    """A JSON object repeats a key (json would silently keep the last value)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


_REPEATED = object()  # what `_marking_keys` puts in place of a repeated key's value


def _marking_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with each repeated key's value replaced by `_REPEATED`."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        result[key] = _REPEATED if key in result else value
    return result


def _repeated_at(node: object, path: str = "") -> str | None:
    """The path (`evaluations[2].score`, as validation names fields) of the first
    repeated key in data read with `_marking_keys`, in document order."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if value is _REPEATED:
                return here
            found = _repeated_at(value, here)
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found = _repeated_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _duplicate_key_path(text: str) -> str | None:
    """Where in `text` (JSON that has a repeated key) the first repeated key is: json's
    object hook is not told where it is, so the text is read again keeping the
    repetition, and the data searched for it."""
    try:
        return _repeated_at(json.loads(text, object_pairs_hook=_marking_keys,
                                       parse_int=_json_int))
    except (ValueError, RecursionError):
        return None


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
        raise Refused(f"invalid JSON at {at}column {exc.colno}: {exc.msg}") from None
    except DuplicateKey as exc:
        path = _duplicate_key_path(text)
        raise Refused(f"invalid JSON{f' at {path}' if path else ''}: {exc}") from None
    except ValueError as exc:  # an integer too long to convert
        raise Refused(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise Refused(TOO_DEEP) from None


@contextlib.contextmanager
def _refusing_os_errors() -> Iterator[None]:
    """An OSError while a file is opened or read, as the `Refused` its InputError
    carries: one wording for every way a file is read."""
    try:
        yield
    except FileNotFoundError:
        raise Refused("no such file or directory") from None
    except OSError as exc:
        raise Refused(exc.strerror or str(exc)) from None


def _open(file: str) -> BinaryIO:
    """`file` open to read its bytes, refused unread when it is over MAX_FILE_BYTES (a
    pipe or device has no size: what is read of it is bounded by the reader)."""
    if os.stat(file).st_size > MAX_FILE_BYTES:
        raise Refused(TOO_BIG)
    return open(file, "rb")


def _read(file: str, stdin: TextIO | None) -> bytes:
    """The bytes of a file, or of standard input for `-` (read from its bytes where the
    stream has them, so that it is decoded exactly as a file is), refusing more than
    MAX_FILE_BYTES."""
    with _refusing_os_errors():
        if file == "-":
            stream = stdin or sys.stdin
            read = getattr(stream, "buffer", stream).read(MAX_FILE_BYTES + 1)
            content = read if isinstance(read, bytes) else read.encode("utf-8",
                                                                        "surrogateescape")
        else:
            with _open(file) as handle:
                content = handle.read(MAX_FILE_BYTES + 1)
    return _held(content)


def _decode(content: bytes, first: bool = True) -> str:
    """UTF-8 text (a byte-order mark allowed at the start of a file)."""
    try:
        return content.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def _parse_stdin(text: str) -> object:
    """Standard input is read as YAML, which also accepts JSON; but JSON that YAML cannot
    read (indented with tabs, as `jq --tab` writes it) is still JSON, so it is read as
    JSON when YAML refuses it. Otherwise the YAML error stands."""
    try:
        return _parse_yaml(text)
    except Refused as yaml_error:
        if text.lstrip().startswith(("{", "[")):
            with contextlib.suppress(Refused):
                return _parse_json(text, "")
        raise yaml_error from None


Source = str | os.PathLike[str] | Body  # a file, a directory, `-` or a body


def documents_in(
    source: str | Body, stdin: TextIO | None, errors: list[InputError]
) -> list[tuple[str, object]]:
    """(where, data) for each model document in one file (or body); its other problems
    go to errors. (`iter_documents`, all at once.)"""
    return list(iter_documents(source, stdin, errors))


def iter_documents(
    source: str | Body, stdin: TextIO | None, errors: list[InputError]
) -> Iterator[tuple[str, object]]:
    """(where, data) for each model document in one file (or body), one at a time; its
    other problems go to errors as they are met.

    A JSON Lines file is read a line at a time, so that reading a portfolio holds one
    line and one parsed document, not the file's bytes and every document parsed from
    them (a 10,000-line file is some 30 MB of bytes and ten times that parsed). A YAML
    or JSON file is one document or one `models:` list, parsed whole."""
    name, suffix = source_name(source), (f".{source.format}" if isinstance(source, Body)
                                   else ".yaml" if source == "-"
                                   else Path(source).suffix.lower())
    try:
        if isinstance(source, Body) and suffix not in EXTENSIONS:
            raise Refused(f"unsupported format {source.format!r}; expected json, yaml "
                           "or jsonl")
        if suffix not in EXTENSIONS:
            shown = repr(suffix) if suffix else "(no extension)"
            raise Refused(f"unsupported file type {shown}; expected {', '.join(EXTENSIONS)}")
        if suffix == ".jsonl" and not isinstance(source, Body) and _regular(source):
            chunks: Iterable[tuple[str, bytes]] = _file_lines(source)
        else:
            content = (_held(source.content) if isinstance(source, Body)
                       else _read(source, stdin))
            chunks = [("", content)]
            if suffix == ".jsonl":  # decoded line by line: one bad line is one document
                chunks = ((f"line {number}", line)
                          for number, line in enumerate(content.split(b"\n"), start=1)
                          if line.strip())
    except Refused as exc:
        errors.append(InputError(name, "", str(exc)))
        return
    empty = True
    try:
        for where, chunk in chunks:
            empty = False
            try:
                text = _decode(chunk, first=where in ("", "line 1"))
                if suffix.startswith(".json"):
                    data = _parse_json(text, where)
                else:
                    data = _parse_stdin(text) if source == "-" else _parse_yaml(text)
                del text
                # A portfolio's documents are held to MAX_DEPTH one by one (see
                # `_split_portfolio`), so that one too deep is the only one rejected.
                sizes = check_shape(data, 4 * MAX_DEPTH if _is_portfolio(data) and not where
                                     else MAX_DEPTH)
            except Refused as exc:
                errors.append(InputError(name, where, str(exc)))
            else:
                yield from _split_portfolio(data, name, where, errors, sizes)
                del data, sizes
    except Refused as exc:  # a file read a line at a time that could not be read on
        errors.append(InputError(name, "", str(exc)))
        return
    if empty:
        errors.append(InputError(name, "", EMPTY))


def _regular(file: str) -> bool:
    """Whether `file` is a regular file (read as it is, a line at a time); anything else
    (a pipe, a device, a missing file) is read whole by `_read`, bounded, and refused
    there if it cannot be."""
    try:
        return stat.S_ISREG(os.stat(file).st_mode)
    except OSError:
        return False


def _file_lines(file: str) -> Iterator[tuple[str, bytes]]:
    """(`line N`, bytes) for each line of a JSON Lines file that is not blank, read a line
    at a time (split on newlines only, as the whole file's bytes would be). A file over
    MAX_FILE_BYTES is refused unread (as `_read` does); one that grows past it while read,
    or fails to read part way, is refused where it stops (`Refused`)."""
    with _refusing_os_errors(), _open(file) as handle:
        read = 0
        for number, line in enumerate(handle, start=1):
            read += len(line)
            if read > MAX_FILE_BYTES:
                raise Refused(TOO_BIG)
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.strip():
                yield f"line {number}", line


def source_name(source: str | Body) -> str:
    """What errors call a source: its file name, `<stdin>`, or a body's name."""
    if isinstance(source, Body):
        return source.name
    return STDIN_NAME if source == "-" else source


def _held(content: bytes) -> bytes:
    """Bytes held in memory (a body, or what was read of a file or standard input),
    refused over MAX_FILE_BYTES."""
    if len(content) > MAX_FILE_BYTES:
        raise Refused(TOO_BIG)
    return content


def _split_portfolio(
    data: object, file: str, where: str, errors: list[InputError], sizes: Sizes
) -> list[tuple[str, object]]:
    """The documents of a file's data: a `models:` portfolio's, or the data itself.
    `sizes` are the file's containers as `check_shape` measured them."""
    if where:  # a JSON line holds one model document, never a portfolio
        return [(where, data)]
    if data is None:
        errors.append(InputError(file, "", EMPTY))
        return []
    if not isinstance(data, dict) or "models" not in data:
        return [("", data)]
    for key in data:
        if key != "models":
            message = unknown_name("field", str(key), ["models"], "expected one of")
            errors.append(InputError(file, path_in("", [str(key)]), message))
    models = data["models"]
    if not isinstance(models, list):
        errors.append(InputError(file, "models", f"expected a list, got {describe(models)}"))
        return []
    documents = []
    for i, document in enumerate(models):
        if sizes.get(id(document), (1, 0))[1] > MAX_DEPTH:
            errors.append(InputError(file, f"models[{i}]", TOO_DEEP, model_id(document)))
        else:
            documents.append((f"models[{i}]", document))
    return documents


def evidence_files(source: Source, errors: list[InputError]) -> list[str | Body]:
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
