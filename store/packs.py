"""Overlay packs kept in the database: drafts awaiting review, and the active stack.

A pack is its files (`pack.yaml`, `rules/*.yaml`, `tests/*.yaml`) as text, stored in
the database rather than on a disk the server could be made to serve, with its version:
the hash of all of those files (`files_version`), so a draft whose test cases changed
after review is another version, and activating the reviewed one is refused. (A result
records another hash of each pack it was made with, of its `pack.yaml` and rules only,
batch.stack.layer_version: test cases play no part in a result, so a change of them
alone must not make stored results look stale.) The active stack is the built-in base pack and the
activated overlays in activation order; both the service and the command line read it
from here, and `materialize` writes a stored pack into a directory of the caller's
(private to it) for the loader.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, inspect, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from store.audit import canonical_json
from store.db import StoreError, connect, reason
from store.service_tables import ActivePack, PackDraft

FILE_NAME = re.compile(r"pack\.yaml|(rules|tests)/[a-z0-9][a-z0-9_.-]*\.yaml")  # fullmatch
MAX_FILES = 200
DRAFT, ACTIVE, BASE = "draft", "active", "base"

DR = PackDraft.__table__  # type: ignore[attr-defined]
AC = ActivePack.__table__  # type: ignore[attr-defined]
_LAYERS = select(AC.c.name, AC.c.version).order_by(AC.c.position)


def files_version(files: Mapping[str, str]) -> str:
    """A pack's version: the sha256 of every one of its own files (`pack.yaml`,
    `rules/*.yaml`, `tests/*.yaml`), each file's name and text (UTF-8, CRLF line endings
    as LF, each length-prefixed) in the order of their names, so a change of any file,
    a test case's or a comment's included, is another version, and the same files are
    the same version however they were uploaded or checked out."""
    digest = hashlib.sha256()
    for name in sorted(files):
        label = name.encode("utf-8")
        text = files[name].replace("\r\n", "\n").encode("utf-8")
        digest.update(b"%d:%s%d:%s" % (len(label), label, len(text), text))
    return "sha256:" + digest.hexdigest()


def read_pack_files(directory: Path) -> dict[str, str]:
    """A pack directory's own files, by their names inside it."""
    names = ["pack.yaml", *(f"{sub}/{p.name}" for sub in ("rules", "tests")
                            for p in sorted((directory / sub).glob("*.yaml")))]
    return {name: (directory / name).read_text(encoding="utf-8") for name in names
            if (directory / name).is_file()}


@dataclass(frozen=True)
class StoredPack:
    """A pack of the stack or a draft: its files and who did what with it."""

    name: str
    version: str
    state: str  # base | active | draft
    files: dict[str, str]
    uploaded_by: str | None = None
    uploaded_at: str | None = None
    activated_by: str | None = None
    activated_at: str | None = None
    position: int | None = None  # place in the active stack (the base is 0)
    directory: Path | None = None  # where an installed base pack's files are


    def summary(self) -> dict[str, Any]:
        """What GET /v1/packs shows of it (no file contents)."""
        return {"name": self.name, "version": self.version, "state": self.state,
                "uploader": self.uploaded_by, "uploaded_at": self.uploaded_at,
                "activated_by": self.activated_by, "activated_at": self.activated_at,
                "position": self.position, "files": sorted(self.files)}


def installed_base(name: str, directory: Path) -> StoredPack:
    """The base pack installed in `directory` (the built-in one: the engine knows where),
    at the bottom of every stack, at the version of its files."""
    files = read_pack_files(directory)
    return StoredPack(name, files_version(files), BASE, files, position=0,
                      directory=directory)


def active(conn: Connection, base: StoredPack) -> list[StoredPack]:
    """The active stack: `base`, then each active overlay in activation order."""
    return [base, *active_overlays(conn)]


def drafts(conn: Connection) -> list[StoredPack]:
    """Every draft, by name."""
    rows = conn.execute(select(DR).order_by(DR.c.name)).mappings().all()
    return [_draft(r) for r in rows]


def draft(conn: Connection, name: str) -> StoredPack | None:
    """The draft called `name`, if there is one."""
    row = conn.execute(select(DR).where(DR.c.name == name)).mappings().first()
    return _draft(row) if row else None


def _draft(row: Any) -> StoredPack:
    return StoredPack(row["name"], row["version"], DRAFT, dict(row["files"]),
                      row["uploaded_by"], row["uploaded_at"])


def save_draft(conn: Connection, name: str, files: Mapping[str, str], person: str,
               stamp: str) -> StoredPack:
    """Store `files` as the draft `name`, at the version of its files (replacing an
    earlier draft of that name)."""
    version = files_version(files)
    conn.execute(delete(DR).where(DR.c.name == name))
    conn.execute(insert(DR), {"name": name, "version": version, "files": dict(files),
                              "uploaded_by": person, "uploaded_at": stamp})
    return StoredPack(name, version, DRAFT, dict(files), person, stamp)


def activate(conn: Connection, pending: StoredPack, person: str, stamp: str) -> StoredPack:
    """Put the draft `pending` in force: in its old place if a version of it is already
    active, else on top of the stack; the draft is then gone."""
    place = conn.execute(select(AC.c.position).where(AC.c.name == pending.name)).scalar()
    values = {"version": pending.version, "files": pending.files,
              "uploaded_by": pending.uploaded_by, "uploaded_at": pending.uploaded_at,
              "activated_by": person, "activated_at": stamp}
    if place is None:
        place = (conn.execute(select(func.max(AC.c.position))).scalar() or 0) + 1
        conn.execute(insert(AC), {"name": pending.name, "position": place, **values})
    else:
        conn.execute(update(AC).where(AC.c.name == pending.name).values(**values))
    conn.execute(delete(DR).where(DR.c.name == pending.name))
    return StoredPack(pending.name, pending.version, ACTIVE, pending.files,
                      pending.uploaded_by, pending.uploaded_at, person, stamp, place)


def materialize(pack: StoredPack, root: Path) -> Path:
    """The directory holding `pack`'s files under `root` (written once, then reused); the
    base pack is its own installed directory. Every file name is checked
    against FILE_NAME, so a stored name can never reach outside the directory."""
    if pack.directory is not None:
        return pack.directory
    # Named by a hash of exactly these files made here, not by the stored version (which
    # only its writer computed), so the directory can never hold other files.
    target = root / f"{pack.name}-{hashlib.sha256(canonical_json(pack.files)).hexdigest()[:32]}"
    if target.is_dir():
        return target
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    for name, text in pack.files.items():
        if not FILE_NAME.fullmatch(name):
            raise ValueError(f"pack {pack.name}: file name {name!r} is not allowed")
        path = staging / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    try:
        os.rename(staging, target)
    except OSError:  # another thread wrote the same version first
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():
            raise
    return target


def active_layers(conn: Connection) -> list[tuple[str, str]]:
    """The active overlays' names and versions, in activation order: what tells whether
    the active stack has changed, without reading its files."""
    return [(row.name, row.version) for row in conn.execute(_LAYERS)]


def active_overlays(conn: Connection) -> list[StoredPack]:
    """The active overlays (the stack without its base), in activation order."""
    rows = conn.execute(select(AC).order_by(AC.c.position)).mappings().all()
    return [StoredPack(r["name"], r["version"], ACTIVE, dict(r["files"]), r["uploaded_by"],
                       r["uploaded_at"], r["activated_by"], r["activated_at"], r["position"])
            for r in rows]


def stored_overlays(url: str) -> list[StoredPack]:
    """The active overlays stored in the database at `url`, in stack order: what a
    command given no `--pack` loads over the built-in pack. None when there is no
    database there yet (a SQLite file that does not exist is not created) or its schema
    predates stored packs. The database is only read (never migrated); StoreError when
    it cannot be."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and (
            not parsed.database or parsed.database == ":memory:"
            or not Path(parsed.database).exists()):
        return []
    engine = connect(url, migrate=False)
    try:
        if not inspect(engine).has_table(AC.name):
            return []
        with engine.connect() as conn:
            return active_overlays(conn)
    except DBAPIError as exc:  # a damaged or foreign table: one line, never a traceback
        raise StoreError(f"its active pack stack cannot be read: {reason(exc)}") from None
    finally:
        engine.dispose()
