"""A JSON Lines file is read a line at a time; what it yields must be exactly what its
bytes held in memory (a `Body`) yield: the same documents at the same lines, the same
errors, a byte-order mark allowed on line 1 only, carriage returns and blank lines as
before."""

from pathlib import Path

from engine.errors import InputError
from engine.evidence_reading import MAX_FILE_BYTES, Body, iter_documents

LINES = [
    b'\xef\xbb\xbf{"model": {"id": "a"}}',  # a byte-order mark on line 1 is allowed
    b"",
    b'{"model": {"id": "b"}}\r',
    b"   ",
    b'\xef\xbb\xbf{"model": {"id": "c"}}',  # not on a later line
    b'{"model": ',
    b"[1, 2]",
    b'{"model": {"id": "caf\xe9"}}',
    b'{"model": {"id": "d", "x": 1, "x": 2}}',
    b'{"model": {"id": "e"}}',
]


def both(tmp_path: Path, content: bytes) -> tuple[list[object], list[object]]:
    """(documents, errors) from the file read a line at a time and from the same bytes
    as a body (read whole), errors with the body's name made the file's."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    found = []
    for source in (str(path), Body(content, "jsonl", str(path))):
        errors: list[InputError] = []
        documents = list(iter_documents(source, None, errors))
        found.append((documents, sorted(errors)))
    return found[0], found[1]


def test_a_json_lines_file_streamed_reads_as_its_bytes_do(tmp_path: Path) -> None:
    for ending in (b"", b"\n"):
        streamed, whole = both(tmp_path, b"\n".join(LINES) + ending)
        assert streamed == whole
        documents, errors = streamed
        assert [where for where, _ in documents] == ["line 1", "line 3", "line 7", "line 10"]
        assert [e.path for e in errors] == ["line 5", "line 6", "line 8", "line 9"]


def test_a_blank_json_lines_file_is_empty_either_way(tmp_path: Path) -> None:
    streamed, whole = both(tmp_path, b"\n  \n\n")
    assert streamed == whole
    assert [str(e) for e in streamed[1]] == [
        f"{tmp_path / 'p.jsonl'}: empty; expected a model document or a portfolio"]


def test_a_file_over_the_size_limit_is_refused_alike_however_it_is_read(
        tmp_path: Path) -> None:
    """A JSON Lines file (read a line at a time) and a YAML file (read whole) over the
    limit are refused unread, in the same words; so are bytes held in memory."""
    found = []
    for name in ("huge.jsonl", "huge.yaml"):
        with open(tmp_path / name, "wb") as handle:
            handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk and no reading
        errors: list[InputError] = []
        assert list(iter_documents(str(tmp_path / name), None, errors)) == []
        found.append([(e.path, e.message) for e in errors])
    errors = []
    assert list(iter_documents(Body(bytes(MAX_FILE_BYTES + 1), "jsonl"), None, errors)) == []
    found.append([(e.path, e.message) for e in errors])
    assert found == [[("", "larger than the 52,428,800-byte limit (50 MB)")]] * 3
