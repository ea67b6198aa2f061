"""Process tuning for programs that run assessments, kept apart from the engine so that
a command can apply it before knowing whether it will assess at all (`asl why MODEL`
answers from the record and never loads the evaluator)."""

from __future__ import annotations

import gc

GC_FIRST_THRESHOLD = 50_000


def tune_for_throughput() -> None:
    """Make this process's cyclic garbage collector run less often. An assessment
    allocates tens of thousands of short-lived, acyclic objects; at Python's default
    threshold (700) the collector runs over a hundred times per assessment and keeps
    re-examining everything alive (a whole portfolio's documents and results), which
    cost about a fifth of the time of `asl assess` on 2,000 models. For a process
    that runs assessments (the CLI, batch workers, benchmarks), not for the engine to
    impose on a host application."""
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_THRESHOLD, second, third)
