"""Shared paths and loaders for the test suite (no fixtures with hidden state)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.api import assess
from engine.assess import Assessment

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data"  # the suite's own cases (data/README.md)
GOLDEN = Path(__file__).resolve().parent / "golden"


def expected_outcomes() -> dict[str, Any]:
    """The contract keys each case of tests/data must reach, by file stem."""
    return json.loads((DATA / "expected.json").read_text())


def assess_paths(*paths: str | Path) -> list[Assessment]:
    """Assess evidence files with the built-in pack through the engine's front door; fail
    the test on any rejection."""
    run = assess([str(p) for p in paths])
    assert run.rejected == []
    return run.assessments


def activate_overlay(url: str, pack_dir: Path, author: str = "author",
                     admin: str = "admin") -> str:
    """The database at `url` with the overlay pack in `pack_dir` uploaded as a draft by
    `author` and activated by `admin`, as the service stores it; returns `url`."""
    from store import audit, packs
    from store.db import connect

    engine = connect(url)
    try:
        with engine.begin() as conn:
            draft = packs.save_draft(conn, pack_dir.name, packs.read_pack_files(pack_dir),
                                     author, audit.rfc3339_now())
            packs.activate(conn, draft, admin, audit.rfc3339_now())
    finally:
        engine.dispose()
    return url
