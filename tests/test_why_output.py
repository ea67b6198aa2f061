"""What `asl why` needs and writes: only svg and png need Graphviz's `dot` program, and
without it they fail cleanly (one line, exit 2, nothing written); `-o FILE` appears
whole or not at all. Run as real processes with `dot` taken off PATH, so the result is
the same on a machine with Graphviz (CI installs it) and on one without."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import DATA, REPO

from cli.main import main
from cli.output import write_file
from knowledge_graph.export import DRAWN_FORMATS, GRAPH_FORMATS

CASE = str(DATA / "rnd-agent-security-gap.yaml")
NO_DOT_PATH = os.pathsep.join(
    d for d in os.environ.get("PATH", "").split(os.pathsep)
    if d and shutil.which("dot", path=d) is None)


def asl(*args: str, stdout: int | object = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    """`asl ARGS` in a real process whose PATH has no `dot` on it."""
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        stdout=stdout, stderr=subprocess.PIPE, cwd=REPO, check=False,
        env={**os.environ, "PATH": NO_DOT_PATH, "PYTHONPATH": str(REPO)})


def test_the_stripped_path_really_has_no_dot() -> None:
    assert shutil.which("dot", path=NO_DOT_PATH) is None
    assert set(DRAWN_FORMATS) == {"svg", "png"}


def _one_clean_line(completed: subprocess.CompletedProcess[bytes]) -> None:
    assert completed.returncode == 2
    lines = completed.stderr.decode().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert lines[0].startswith("asl: Graphviz's dot program is not installed")
    assert "apt-get install graphviz" in lines[0]


@pytest.mark.parametrize("fmt", DRAWN_FORMATS)
def test_drawn_format_without_dot_creates_no_output_file(fmt: str, tmp_path: Path) -> None:
    target = tmp_path / f"why.{fmt}"
    completed = asl("why", CASE, "--conclusion", "decision", "--format", fmt, "-o", str(target))
    _one_clean_line(completed)
    assert completed.stdout == b""
    assert list(tmp_path.iterdir()) == []  # no file, and no temporary left behind


def test_drawn_format_without_dot_keeps_an_existing_output_file(tmp_path: Path) -> None:
    target = tmp_path / "why.png"
    target.write_bytes(b"the earlier drawing")
    _one_clean_line(asl("why", CASE, "--format", "png", "-o", str(target)))
    assert target.read_bytes() == b"the earlier drawing"
    assert list(tmp_path.iterdir()) == [target]


def test_svg_without_dot_writes_nothing_to_redirected_stdout(tmp_path: Path) -> None:
    """`asl why ... --format svg > why.svg`: the shell has created why.svg; asl writes
    nothing into it."""
    target = tmp_path / "why.svg"
    with target.open("wb") as redirected:
        completed = asl("why", CASE, "--conclusion", "decision", "--format", "svg",
                        stdout=redirected)
    _one_clean_line(completed)
    assert target.read_bytes() == b""


def test_a_real_process_writes_dot_without_dot(tmp_path: Path) -> None:
    target = tmp_path / "why.dot"
    completed = asl("why", CASE, "--conclusion", "decision", "--format", "dot",
                    "-o", str(target))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"" and completed.stderr == b""
    assert target.read_text().startswith("digraph provenance {")
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("fmt", sorted({"text", "json", *GRAPH_FORMATS} - set(DRAWN_FORMATS)))
def test_other_formats_need_no_dot(fmt: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every format but svg and png, in-process (the graphviz package looks `dot` up on
    PATH when it runs it) with the same stripped PATH."""
    monkeypatch.setenv("PATH", NO_DOT_PATH)
    target = tmp_path / f"why.{fmt}"
    result = CliRunner().invoke(main, ["why", CASE, "--conclusion", "decision", "--format",
                                       fmt, "-o", str(target)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert target.read_bytes()
    assert list(tmp_path.iterdir()) == [target]


def test_write_file_replaces_whole_and_keeps_mode_and_links(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_file(str(target), b"first")
    assert target.read_bytes() == b"first"
    target.chmod(0o600)
    link = tmp_path / "link.txt"
    link.symlink_to(target.name)
    write_file(str(link), b"second, longer")
    assert link.is_symlink() and target.read_bytes() == b"second, longer"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "out.txt"]


def test_write_file_writes_a_device_directly() -> None:
    write_file(os.devnull, b"nothing to replace")  # not a regular file: no temporary


def test_write_file_into_a_missing_folder_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_file(str(tmp_path / "missing" / "out.txt"), b"x")
    assert list(tmp_path.iterdir()) == []
