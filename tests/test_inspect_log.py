"""Reading Inspect eval logs: the built-in reader against what inspect-ai itself read.

The fixtures in tests/inspect_logs/ are real inspect-ai output (tests/make_inspect_logs.py,
offline mockllm runs); manifest.json holds what inspect-ai read back from each when they
were made, so the expected values never come from the reader under test. Variants of
the container (deflate instead of zstd, zstd in several frames, a run with no header yet)
are made here by re-packing a real log's own entries.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard

from importers.inspect_log import LogHeader, inspect_ai_installed, read_log
from importers.problems import ImportRefused

LOGS = Path(__file__).resolve().parent / "inspect_logs"
MANIFEST: dict[str, Any] = json.loads((LOGS / "manifest.json").read_text())
READERS = ["builtin", pytest.param("inspect-ai", marks=pytest.mark.skipif(
    not inspect_ai_installed(), reason="inspect-ai is not installed (pip install "
    "'.[inspect]'); the built-in reader is tested alone"))]


def _as_manifest(header: LogHeader) -> dict[str, Any]:
    return {"status": header.status, "invalidated": header.invalidated,
            "eval_id": header.eval_id, "task": header.task, "model": header.model,
            "created": header.created,
            "scores": [{"name": s.name, "scorer": s.scorer, "reducer": s.reducer,
                        "metrics": dict(s.metrics)} for s in header.scores]}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_reader_reads_what_inspect_wrote(name: str, reader: str) -> None:
    header = read_log(str(LOGS / name), reader=reader)
    assert _as_manifest(header) == MANIFEST[name]
    assert header.file == str(LOGS / name)
    assert header.date == MANIFEST[name]["created"][:10]


@pytest.mark.skipif(not inspect_ai_installed(), reason="inspect-ai is not installed "
                    "(pip install '.[inspect]'): nothing to compare the built-in reader with")
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_both_readers_give_the_same_header(name: str) -> None:
    path = str(LOGS / name)
    assert read_log(path, reader="builtin") == read_log(path, reader="inspect-ai")
    content = (LOGS / name).read_bytes()  # and from bytes, as a service receives a log
    assert read_log(path, content, reader="builtin") == read_log(path, reader="builtin")
    assert read_log(path, content, reader="inspect-ai") == read_log(path, reader="builtin")


def test_the_error_of_a_failed_run_is_kept() -> None:
    header = read_log(str(LOGS / "bio-probe-error.eval"), reader="builtin")
    assert header.status == "error" and header.scores == ()
    assert header.error is not None and "custom_outputs ran out of values" in header.error


def _repack(source: Path, target: Path, drop: tuple[str, ...] = ()) -> None:
    """The entries of a real .eval log written again with deflate, as Inspect wrote
    them before it moved to zstd (`drop`: entries left out)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename not in drop:
                new.writestr(info.filename, _entry(source, info.filename),
                             compress_type=zipfile.ZIP_DEFLATED)


def _raw(source: Path, info: zipfile.ZipInfo) -> bytes:
    """An entry's compressed bytes, read past its local header."""
    data = source.read_bytes()
    start = info.header_offset + 30
    name_length, extra = struct.unpack_from("<2H", data, info.header_offset + 26)
    start += name_length + extra
    return data[start:start + info.compress_size]


def test_a_deflate_log_reads_like_the_zstd_one(tmp_path: Path) -> None:
    target = tmp_path / "bio-probe.eval"
    _repack(LOGS / "bio-probe.eval", target)
    header = read_log(str(target), reader="builtin")
    assert _as_manifest(header) == MANIFEST["bio-probe.eval"]


def _zip_with_header(target: Path, header: bytes, method: int, size: int, crc: int) -> None:
    """A one-entry archive whose header.json is `header` with the given zip fields."""
    with zipfile.ZipFile(target, "w") as archive:
        info = zipfile.ZipInfo("header.json", date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(info, header, compress_type=zipfile.ZIP_STORED)
        entry = archive.getinfo("header.json")
        entry.compress_type, entry.file_size, entry.CRC = method, size, crc
    # ZipFile writes the central directory from the (edited) ZipInfo on close; the local
    # header keeps method 0, which is why the reader trusts the central directory.


def test_zstd_in_several_frames_is_read_whole(tmp_path: Path) -> None:
    raw = _entry(LOGS / "bio-probe.eval", "header.json")
    half = len(raw) // 2
    packed = b"".join(zstandard.ZstdCompressor().compress(part)
                      for part in (raw[:half], raw[half:]))
    target = tmp_path / "framed.eval"
    _zip_with_header(target, packed, 93, len(raw), zlib.crc32(raw))
    header = read_log(str(target), reader="builtin")
    assert _as_manifest(header) == MANIFEST["bio-probe.eval"]


def _entry(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    return zstandard.ZstdDecompressor().stream_reader(
        _raw(path, info), read_across_frames=True).read()


def test_a_run_that_never_finished_reads_as_started(tmp_path: Path) -> None:
    """No header.json yet: Inspect reads the journal's start record, status `started`."""
    target = tmp_path / "unfinished.eval"
    _repack(LOGS / "bio-probe.eval", target, drop=("header.json",))
    header = read_log(str(target), reader="builtin")
    assert (header.status, header.task, header.scores) == ("started", "bio_uplift_probe", ())
    assert header.eval_id == MANIFEST["bio-probe.eval"]["eval_id"]


def _refusal(path: Path, reader: str = "builtin") -> str:
    with pytest.raises(ImportRefused) as caught:
        read_log(str(path), reader=reader)
    [problem] = caught.value.problems
    return str(problem)


@pytest.mark.parametrize("reader", READERS)
def test_files_that_are_not_inspect_logs_are_refused(tmp_path: Path, reader: str) -> None:
    text = tmp_path / "notes.eval"
    text.write_text("not a zip")
    assert _refusal(text, reader).startswith(f"{text}: not an Inspect eval log")
    other_zip = tmp_path / "other.eval"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert _refusal(other_zip, reader).startswith(f"{other_zip}: not an Inspect eval log")
    evidence = tmp_path / "model.json"
    evidence.write_text(json.dumps({"model": {"id": "m"}, "evaluations": []}))
    assert _refusal(evidence, reader).startswith(f"{evidence}: not an Inspect eval log")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert _refusal(broken, reader).startswith(f"{broken}: not an Inspect eval log")


def test_the_built_in_reader_names_what_is_wrong(tmp_path: Path) -> None:
    assert _refusal(tmp_path / "notes.eval").endswith("notes.eval: no such file or directory")
    assert _refusal(tmp_path / "log.txt") == (
        f"{tmp_path / 'log.txt'}: unsupported file type '.txt'; expected an Inspect log "
        "(.eval, .json)")
    evidence = tmp_path / "model.json"
    evidence.write_text(json.dumps({"model": {"id": "m"}}))
    assert _refusal(evidence) == (f"{evidence}: not an Inspect eval log: no `eval` object "
                                  "(the task, model and run)")
    log = json.loads((LOGS / "cyber-range.json").read_text())
    log["results"]["scores"][1]["metrics"]["accuracy"]["value"] = "high"
    (tmp_path / "typed.json").write_text(json.dumps(log))
    assert _refusal(tmp_path / "typed.json") == (
        f"{tmp_path / 'typed.json'}: results.scores[1].metrics.accuracy.value: expected a "
        "number, got str")
    del log["eval"]["task"]
    (tmp_path / "no-task.json").write_text(json.dumps(log))
    assert _refusal(tmp_path / "no-task.json").endswith(": eval.task: field required")


def test_a_damaged_entry_is_refused(tmp_path: Path) -> None:
    raw = _entry(LOGS / "bio-probe.eval", "header.json")
    target = tmp_path / "damaged.eval"
    _zip_with_header(target, zstandard.ZstdCompressor().compress(raw), 93, len(raw), 12345)
    assert _refusal(target) == (f"{target}: not an Inspect eval log: header.json: damaged "
                                "zip entry (size or checksum differs)")
    _zip_with_header(target, b"\x00" * 40, 93, len(raw), 0)
    assert "header.json: cannot decompress" in _refusal(target)
    _zip_with_header(target, raw, 12, len(raw), 0)  # bzip2: never used by Inspect
    assert "not one Inspect uses" in _refusal(target)


def test_bytes_and_streams_read_like_the_file() -> None:
    path = LOGS / "bio-probe.eval"
    expected = read_log(str(path), reader="builtin")
    assert read_log(str(path), path.read_bytes(), reader="builtin") == expected
    assert read_log(str(path), io.BytesIO(path.read_bytes()), reader="builtin") == expected
