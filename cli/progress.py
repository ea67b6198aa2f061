"""Progress of `asl batch` on standard error: a bar on a terminal, lines in a log.

On a terminal, a rich bar is drawn the moment the command starts (naming what it is
doing: loading the pack, reading the portfolios, assessing), with done/total, the rate
in models per second and the time remaining. When standard error is not a terminal (a
log file, CI, a pipe) a bar cannot be drawn: `--progress` then writes a line every few
seconds (`ASL_PROGRESS_INTERVAL`, default 5) and one at the end, each with done/total,
the rate and the time remaining, so a log shows how far a long batch got and how fast.

The rate is that of the last half minute, counted, as rich counts it, from the first
models done (so starting a pool of workers does not read as a slow rate); a batch that
has stalled since shows a rate of 0 and no time left.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

INTERVAL_VAR = "ASL_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 5.0
RATE_WINDOW_S = 30.0  # as rich's speed estimate


class ProgressError(ValueError):
    """A bad `ASL_PROGRESS_INTERVAL`: the message says what it must be."""


def interval_from_environment() -> float:
    """Seconds between progress lines in a log: `ASL_PROGRESS_INTERVAL`, or 5."""
    text = os.environ.get(INTERVAL_VAR)
    if text is None or not text.strip():
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ProgressError(f"{INTERVAL_VAR}: expected a number of seconds above 0, "
                            f"got {text!r}")
    return value


class Quiet:
    """No progress shown."""

    def __enter__(self) -> Quiet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def phase(self, text: str) -> None:
        """What the command is doing now."""

    def set_total(self, total: int) -> None:
        """How many models there are to go through; assessing begins."""

    def advance(self, done: int) -> None:
        """`done` more models went through."""


class RateColumn(ProgressColumn):
    """`812 models/s` once rich has measured a rate, else `- models/s`."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.0f} models/s" if speed is not None else "- models/s",
                    style="progress.data.speed")


class Bar(Quiet):
    """A rich progress bar on a terminal, drawn at once and cleared at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
                                 console=Console(file=stream), transient=True)
        self.task = self.progress.add_task("starting", total=None)

    def __enter__(self) -> Bar:
        self.progress.start()  # draws the first frame now
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()

    def phase(self, text: str) -> None:
        self.progress.update(self.task, description=text, refresh=True)

    def set_total(self, total: int) -> None:
        self.progress.reset(self.task, total=total, completed=0)
        self.progress.refresh()

    def advance(self, done: int) -> None:
        self.progress.advance(self.task, done)


class LogLines(Quiet):
    """A progress line every `interval` seconds, and one at the end, on `stream`."""

    def __init__(self, stream: TextIO, interval: float, prefix: str = "asl batch: ") -> None:
        self.stream = stream
        self.interval = interval
        self.prefix = prefix
        self.what = "starting"
        self.total: int | None = None
        self.done = 0
        self.began: float | None = None  # when assessing began
        self.samples: deque[tuple[float, int]] = deque()  # (when, done) at each advance
        self.measured = False  # models went through twice: a rate can be measured
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ticker = threading.Thread(target=self._tick, name="progress-lines", daemon=True)

    def __enter__(self) -> LogLines:
        self.ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopped.set()
        self.ticker.join()
        if kind is not SystemExit:  # an exit has said why already, as its last line
            self._write(self.final_line(finished=kind is None))

    def phase(self, text: str) -> None:
        with self.lock:
            self.what = text

    def set_total(self, total: int) -> None:
        with self.lock:
            self.total, self.done = total, 0
            self.began = time.monotonic()
            self.samples = deque()
            self.measured = False

    def advance(self, done: int) -> None:
        with self.lock:
            self.done += done
            now = time.monotonic()
            self.measured = bool(self.samples)
            self.samples.append((now, self.done))
            # Keep the last sample from before the window: the rate is measured from it.
            while len(self.samples) > 1 and self.samples[1][0] <= now - RATE_WINDOW_S:
                self.samples.popleft()

    def _tick(self) -> None:
        while not self.stopped.wait(self.interval):
            self._write(self.line())

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _rate(self, now: float) -> float | None:
        """Models per second over about the last half minute (None until it can be
        measured)."""
        if not self.measured:
            return None
        since, done_then = self.samples[0]
        return (self.done - done_then) / (now - since) if now > since else None

    def line(self) -> str:
        """How far the batch is now: done/total, rate, time remaining."""
        with self.lock:
            if self.began is None:
                return f"{self.prefix}{self.what}"
            rate = self._rate(time.monotonic())
            done, total = self.done, self.total
        counts = f"{done:,}/{total:,} models" if total else f"{done:,} models"
        if total:
            counts += f" ({done * 100 // total}%)"
        if rate is None:
            return f"{self.prefix}{self.what} {counts}, - models/s, time left unknown"
        left = f"ETA {_clock((total - done) / rate)}" if total and rate else "time left unknown"
        return f"{self.prefix}{self.what} {counts}, {rate:,.0f} models/s, {left}"

    def final_line(self, finished: bool) -> str:
        """The closing line: what was done, in how long, at what average rate."""
        with self.lock:
            if self.began is None:
                return f"{self.prefix}{'done' if finished else 'stopped'} ({self.what})"
            took = time.monotonic() - self.began
            done, total = self.done, self.total
        rate = f", {done / took:,.0f} models/s" if took > 0 and done else ""
        return (f"{self.prefix}{'done' if finished else 'stopped'}: {done:,}/{total or 0:,} "
                f"models in {_clock(took)}{rate}")


def _clock(seconds: float) -> str:
    """`0:02:05`, as rich shows the time remaining."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def progress_for(show: bool | None, stream: TextIO) -> Quiet:
    """What `--progress` / `--no-progress` (None: neither) shows on `stream`: a bar on a
    terminal (by default only there), lines in a log when asked for (raising
    ProgressError for a bad `ASL_PROGRESS_INTERVAL`), else nothing."""
    terminal = stream.isatty()
    if show is False or (show is None and not terminal):
        return Quiet()
    if terminal:
        return Bar(stream)
    return LogLines(stream, interval_from_environment())
