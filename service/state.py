"""What one worker process holds while it serves: the database, the record, the rate
limiter, a private working directory, the active pack stack loaded once per version of
it, and each other built-in framework's pack (`?framework=`) loaded once.

Each request checks the active stack against the database (the overlays' names and
versions, one small query; their files are read only when that changed), so an
activation in one worker is in force in every worker from their next request.

The working directory (mode 0700, removed at shutdown) is where stored packs are written
out for the loader and where uploads are validated; nothing in it is ever served.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from sqlalchemy.engine import Engine

from batch.runner import pack_fingerprint
from batch.stack import layer_version
from engine.evaluator import Evaluator
from engine.loader import BUILTIN_PACK, builtin_pack_dir, load_pack
from engine.model import Pack
from engine.packstack import builtin_frameworks
from service.auth import RateLimiter
from service.config import ServiceConfig
from store import packs
from store.db import connect
from store.group_commit import GroupCommit
from store.record import Layer, Store

WORK_SLOTS = 2  # assessments one worker process computes at once (writes wait outside)
# SQLite connections a worker keeps open: one for each thread that may use one at once
# (anyio's default of 40 request threads, the work slots' threads, the batch runner).
SQLITE_POOL = 48


class UnknownFramework(ValueError):
    """A framework name that is not a built-in framework's; the message names those."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no built-in framework {name!r}; built in: "
                         f"{', '.join(builtin_frameworks())}")


@dataclass(frozen=True)
class LoadedStack:
    """The active stack as stored, its directories, the pack loaded from them and
    compiled (one evaluator per stack and process: the engine adapter serialises its
    use between threads), and the hash of each pack's rules a result records."""

    packs: tuple[packs.StoredPack, ...]
    dirs: tuple[Path, ...]
    pack: Pack
    evaluator: Evaluator
    rule_versions: tuple[str, ...]  # batch.stack.layer_version of each of `dirs`

    @classmethod
    def load(cls, stored: tuple[packs.StoredPack, ...], dirs: tuple[Path, ...]
             ) -> LoadedStack:
        """The packs `stored`, whose files are in `dirs`, loaded and compiled."""
        pack = load_pack(dirs)
        return cls(stored, dirs, pack, Evaluator(pack), tuple(layer_version(d) for d in dirs))

    @property
    def stack(self) -> list[Layer]:
        """Each pack's name and the hash of its pack.yaml and rules, the base first, as
        a stored result records it and as `asl batch` computes it (batch.stack.stack_of),
        so both skip the same unchanged models: not the pack's own version, which its
        test cases change too."""
        return [{"name": p.name, "version": v}
                for p, v in zip(self.packs, self.rule_versions, strict=True)]

    def layer_dir(self, layer: str) -> Path | None:
        """The directory of the stacked pack called `layer`."""
        for stored, directory in zip(self.packs, self.dirs, strict=True):
            if stored.name == layer:
                return directory
        return None


@dataclass
class ServiceState:
    """Per-process state, on `app.state.asl`."""

    config: ServiceConfig
    engine: Engine
    workdir: Path
    limiter: RateLimiter | None
    base: packs.StoredPack
    _loaded: LoadedStack | None = None
    _frameworks: dict[str, LoadedStack] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _store: Store | None = None
    _slots: anyio.CapacityLimiter | None = None
    # The writes of this process's request threads, committed in groups (one per
    # process, as the engine is).
    commits: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.commits = GroupCommit(self.engine)

    @classmethod
    def open(cls, config: ServiceConfig) -> ServiceState:
        """Connect (checking the schema) and make the private working directory."""
        engine = connect(config.db_url, sqlite_pool=SQLITE_POOL)
        workdir = Path(tempfile.mkdtemp(prefix="asl-serve-"))
        limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        base = builtin_pack_dir()
        return cls(config, engine, workdir, limiter, packs.installed_base(BUILTIN_PACK, base))

    def close(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def store(self) -> Store:
        """The record (one per process: it holds only the engine and its statements)."""
        if self._store is None:
            self._store = Store(self.engine)
        return self._store

    def work_slots(self) -> anyio.CapacityLimiter:
        """The limit on assessments this process runs at once (WORK_SLOTS; created in
        the event loop, on first use). Under the GIL more threads add no speed, only
        switching; requests beyond it wait their turn, in order. A stored assessment's
        write and answer come after its slot is given back (store.group_commit)."""
        if self._slots is None:
            self._slots = anyio.CapacityLimiter(WORK_SLOTS)
        return self._slots

    def active_packs(self) -> list[packs.StoredPack]:
        """The active stack as stored now: the base pack, then the overlays."""
        with self.engine.connect() as conn:
            return packs.active(conn, self.base)

    def loaded_stack(self) -> LoadedStack:
        """The active stack, loaded; read and loaded again only when it has changed
        (the stored overlays' names and versions are compared on every call)."""
        with self.engine.connect() as conn:
            layers = packs.active_layers(conn)
        loaded = self._loaded
        if loaded is not None and _layers(loaded.packs[1:]) == layers:
            return loaded
        stored = tuple(self.active_packs())
        with self._lock:
            loaded = self._loaded
            if loaded is None or _layers(loaded.packs) != _layers(stored):
                dirs = tuple(packs.materialize(p, self.workdir / "packs") for p in stored)
                loaded = LoadedStack.load(stored, dirs)
                pack = loaded.pack
                self.store.ensure_pack(pack.version, pack.name, *pack_fingerprint(pack))
                self._loaded = loaded
            return loaded

    def framework_stack(self, framework: str | None) -> LoadedStack:
        """The stack to assess with under `framework` (a built-in framework's name, as
        `asl assess --framework` takes it): the active stack when none is named or when
        it is the active stack's base (the activated overlays go over that base only);
        otherwise that framework's built-in pack alone, loaded once per process.
        UnknownFramework for any other name."""
        if framework is None or framework == self.base.name:
            return self.loaded_stack()
        known = builtin_frameworks()
        if framework not in known:
            raise UnknownFramework(framework)
        with self._lock:
            loaded = self._frameworks.get(framework)
            if loaded is None:
                directory = known[framework]
                base = packs.installed_base(framework, directory)
                loaded = LoadedStack.load((base,), (directory,))
                pack = loaded.pack
                self.store.ensure_pack(pack.version, pack.name, *pack_fingerprint(pack))
                self._frameworks[framework] = loaded
            return loaded


def _layers(stack: tuple[packs.StoredPack, ...]) -> list[tuple[str, str]]:
    return [(p.name, p.version) for p in stack]
