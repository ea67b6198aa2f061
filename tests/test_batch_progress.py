"""`asl batch --progress`, run as a real subprocess: into a log (standard error a pipe)
it writes a line every ASL_PROGRESS_INTERVAL seconds and one at the end; on a terminal
(standard error a pseudo-terminal) it draws a bar at once, naming what it is doing, with
the rate in models per second.

Regressions: `--progress` printed nothing when standard error was not a terminal, and the
bar showed no rate and appeared only once the pack and the portfolio were loaded.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from synth import generate_models, write_portfolio
from test_batch_reliability import ASL, ENV

MODELS = 240
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]")
PERIODIC = re.compile(r"asl batch: assessing ([\d,]+)/([\d,]+) models \((\d+)%\), "
                      r"(?:- models/s, time left unknown|([\d,]+) models/s, "
                      r"ETA \d+:\d\d:\d\d)")
FINAL = re.compile(r"asl batch: done: ([\d,]+)/([\d,]+) models in \d+:\d\d:\d\d, "
                   r"[\d,]+ models/s")
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "portfolio.jsonl"
    write_portfolio(path, generate_models(MODELS, seed=11, lineage=True))
    return path


def asl(*args: str | Path, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ASL, *map(str, args)], cwd=cwd, env={**ENV, **(env or {})},
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def test_progress_into_a_log_is_a_line_every_interval_and_at_the_end(
        portfolio: Path, tmp_path: Path) -> None:
    result = asl("batch", portfolio, "--db", tmp_path / "asl.db", "--jobs", "1",
                 "--progress", cwd=tmp_path, env={"ASL_PROGRESS_INTERVAL": "0.1"})
    assert result.returncode == 0, result.stderr
    assert f"assessed {MODELS}, unchanged 0 (skipped), rejected 0" in result.stdout
    lines = result.stderr.splitlines()
    assert "\x1b" not in result.stderr and "\r" not in result.stderr  # plain lines
    assert all(line.startswith("asl batch: ") for line in lines), lines
    final = FINAL.fullmatch(lines[-1])
    assert final, lines[-1]
    assert final.groups() == (str(MODELS), str(MODELS))
    periodic = [m for m in map(PERIODIC.fullmatch, lines) if m]
    assert periodic, lines
    done = [int(m.group(1).replace(",", "")) for m in periodic]
    assert done == sorted(done) and all(0 <= d <= MODELS for d in done)
    assert {int(m.group(2)) for m in periodic} == {MODELS}
    # Once models have gone through, the line gives their rate and the time left.
    assert any(m.group(4) for m in periodic), lines
    # Lines before assessing began say what the batch was doing then.
    assert all(PERIODIC.fullmatch(line) or FINAL.fullmatch(line)
               or re.fullmatch(r"asl batch: [a-z ]+", line) for line in lines), lines


def test_without_progress_a_log_gets_nothing(portfolio: Path, tmp_path: Path) -> None:
    # The interval matters only where lines are written: a bad one is not read here.
    result = asl("batch", portfolio, "--db", tmp_path / "asl.db", "--jobs", "1",
                 cwd=tmp_path, env={"ASL_PROGRESS_INTERVAL": "soon"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_bad_interval_is_one_line_and_nothing_is_written(portfolio: Path,
                                                           tmp_path: Path) -> None:
    result = asl("batch", portfolio, "--db", tmp_path / "asl.db", "--progress", cwd=tmp_path,
                 env={"ASL_PROGRESS_INTERVAL": "soon"})
    assert result.returncode == 2
    assert result.stderr == ("asl: ASL_PROGRESS_INTERVAL: expected a number of seconds "
                             "above 0, got 'soon'\n")
    assert result.stdout == ""
    assert not (tmp_path / "asl.db").exists()


def run_on_a_terminal(*args: str | Path, cwd: Path) -> tuple[int, str, list[tuple[float, str]]]:
    """Run asl with standard error on a pseudo-terminal (160 columns) and standard output
    to a pipe; its exit status, standard output, and what the terminal received, in
    pieces as they arrived, each with the seconds since the start."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**ENV, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    start = time.monotonic()
    proc = subprocess.Popen([*ASL, *map(str, args)], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    pieces: list[tuple[float, str]] = []
    try:
        while time.monotonic() - start < RUN_TIMEOUT_S:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(main, 65536)
            except OSError:  # the terminal's last writer has gone
                break
            if not data:
                break
            pieces.append((time.monotonic() - start, data.decode("utf-8", "replace")))
        stdout = proc.communicate(timeout=RUN_TIMEOUT_S)[0].decode("utf-8")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    return proc.returncode, stdout, pieces


def test_on_a_terminal_the_bar_is_drawn_at_once_with_a_rate(portfolio: Path,
                                                             tmp_path: Path) -> None:
    status, stdout, pieces = run_on_a_terminal("batch", portfolio, "--db", tmp_path / "asl.db",
                                               "--jobs", "1", cwd=tmp_path)
    assert status == 0
    assert f"assessed {MODELS}, unchanged 0 (skipped), rejected 0" in stdout
    screen = ANSI.sub("", "".join(text for _, text in pieces))
    # The first frame is drawn before the rule pack is loaded, and names that step.
    first = ANSI.sub("", pieces[0][1] + (pieces[1][1] if len(pieces) > 1 else ""))
    assert "starting" in first or "loading the rule pack" in first, first
    assert screen.index("loading the rule pack") < screen.index("reading portfolios") \
        < screen.index("assessing")
    # Once models go through, the bar shows their rate and done/total.
    assert re.search(r"assessing .*\d+/240 +[\d,]+ models/s", screen), screen[-2000:]
    assert "- models/s" in screen  # before the first models are done: no rate yet
