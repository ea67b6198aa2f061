"""Where batch work runs: in this process, in a local process pool, or on Dask.

Each executor takes the jobs of one lineage generation (jobs that do not depend on each
other), cuts them into chunks, and yields each chunk's results as soon as it finishes,
in whatever order chunks finish, so the caller can commit them at once. At most a few
chunks per worker are in flight, which keeps memory flat however many jobs there are.
Every worker compiles the pack once (engine.assess.evaluator_for caches it per process).
A pool or Dask worker sends a chunk's results back as one bytes object (batch.wire),
unpacked here against the chunk that was sent.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from batch.wire import assess_packed, unpack
from batch.work import Failed, Job, assess_jobs, warm
from store.record import NewAssessment

Results = list[NewAssessment | Failed]
CHUNK = 64  # jobs per chunk: big enough to amortise a round trip, small enough to commit often
INLINE_CHUNK = 8  # in this process there is no round trip: commit more often
IN_FLIGHT_PER_WORKER = 3


class Executor(Protocol):
    """Runs chunks of jobs and yields their results as chunks finish."""

    def run(self, jobs: Sequence[Job]) -> Iterator[Results]: ...

    def close(self) -> None: ...


def chunks(jobs: Sequence[Job], size: int) -> Iterator[list[Job]]:
    """`jobs` in consecutive chunks of at most `size`."""
    for start in range(0, len(jobs), size):
        yield list(jobs[start:start + size])


def _bounded(submit: Callable[[list[Job]], Any], jobs: Sequence[Job], limit: int,
             size: int, done: Callable[[set[Any]], tuple[set[Any], set[Any]]],
             result: Callable[[Any], bytes]) -> Iterator[Results]:
    """Submit chunks keeping at most `limit` in flight; yield results as chunks finish
    (each chunk's packed results unpacked against the chunk)."""
    pending: dict[Any, list[Job]] = {}
    for chunk in chunks(jobs, size):
        if len(pending) >= limit:
            finished, _ = done(set(pending))
            for future in finished:
                yield unpack(result(future), pending.pop(future))
        pending[submit(chunk)] = chunk
    while pending:
        finished, _ = done(set(pending))
        for future in finished:
            yield unpack(result(future), pending.pop(future))


class InProcess:
    """Assess in this process (`--jobs 1`): no start-up cost, one core."""

    def __init__(self, packs: Sequence[str], size: int = INLINE_CHUNK) -> None:
        self.packs = tuple(packs)
        self.size = size

    def run(self, jobs: Sequence[Job]) -> Iterator[Results]:
        for chunk in chunks(jobs, self.size):
            yield assess_jobs(self.packs, chunk)

    def close(self) -> None:
        pass


class LocalPool:
    """A pool of `workers` processes on this machine (the default for `--jobs N`).
    Workers are spawned fresh, not forked: the engine's C state and threads must not be
    copied into a child."""

    def __init__(self, packs: Sequence[str], workers: int, size: int = CHUNK) -> None:
        self.packs = tuple(packs)
        self.workers = workers
        self.size = size
        self.pool = ProcessPoolExecutor(max_workers=workers,
                                        mp_context=multiprocessing.get_context("spawn"),
                                        initializer=warm, initargs=(self.packs,))

    def run(self, jobs: Sequence[Job]) -> Iterator[Results]:
        def finished(pending: set[Future[bytes]]
                     ) -> tuple[set[Future[bytes]], set[Future[bytes]]]:
            done, rest = wait(pending, return_when=FIRST_COMPLETED)
            return set(done), set(rest)

        yield from _bounded(lambda chunk: self.submit(assess_packed, self.packs, chunk),
                            jobs, self.workers * IN_FLIGHT_PER_WORKER, self.size, finished,
                            lambda future: future.result())

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        """`function(*args)` in a worker. The pool spawns a worker when one is wanted,
        inside submit; SIGINT is blocked meanwhile, so that the worker starts with it
        blocked (the mask survives fork and exec) until `warm` ignores it: a Ctrl-C to
        the process group while a worker still imports no longer kills it with a
        traceback. A Ctrl-C meanwhile reaches this process once submit returns."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self.pool.submit(function, *args)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The same chunks on a Dask distributed cluster: the one at `scheduler`, or a
    LocalCluster of `workers` single-threaded worker processes started for this batch.
    Workers must be able to import asl and read the `--pack` directories."""

    def __init__(self, packs: Sequence[str], workers: int, scheduler: str | None = None,
                 size: int = CHUNK) -> None:
        from dask.distributed import Client, LocalCluster

        self.packs = tuple(packs)
        self.size = size
        self.cluster = None
        if scheduler is None:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler, timeout="30s")
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)

    def run(self, jobs: Sequence[Job]) -> Iterator[Results]:
        from dask.distributed import wait as dask_wait

        def finished(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            done = dask_wait(list(pending), return_when="FIRST_COMPLETED")
            return set(done.done), set(done.not_done)

        yield from _bounded(
            lambda chunk: self.client.submit(assess_packed, self.packs, chunk, pure=False),
            jobs, self.workers * IN_FLIGHT_PER_WORKER, self.size, finished,
            lambda future: future.result())

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
