"""The stack a draft pack would make once activated: kept apart from batch.impact so
the limited child that diffs and tests a draft (service.packcheck) imports nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def with_draft(stack: Sequence[tuple[str, Path]], name: str, draft: Path) -> list[Path]:
    """The directories of `stack` (each pack's name and directory, the base first) with
    the draft `name` in place of the pack of that name, or on top when none is: the
    stack a draft would make once activated (store.packs.activate)."""
    dirs = [draft if layer == name else directory for layer, directory in stack]
    if name not in [layer for layer, _ in stack]:
        dirs.append(draft)
    return dirs
