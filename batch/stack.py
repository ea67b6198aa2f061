"""The pack stack a result was made with: each loaded pack's name and version, in load
order, the base pack (the framework) first.

A result's `pack` (`rsp-2.1+acme-lab`, one content hash over everything) says whether
two results came from the same rules; the stack says which packs those were, so a batch
run with another stack than the stored results' can say so, and `asl list` can show (and
later filter by) the framework and overlays. A layer's version is the sha256 of its own
files, `pack.yaml` and `rules/*.yaml` (each with its path inside the pack directory), so
any edit of a pack's files, a comment's included, makes another stack. Test cases
(`tests/`) play no part in a result and are left out: so this is not the pack's own
version (store.packs.files_version, which the service shows and activates by, and
which its tests change), though it hashes the same way, over fewer files.

Results stored before the stack was recorded (schema revision 0001) hold a stack of one
entry: their combined pack name and version (`rsp-2.1+acme-lab`, `sha256:...`). That
entry stands for the same packs as today's stack when the name and version are those of
the pack in use (`same_stack`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from engine.loader import pack_stack
from engine.model import Pack
from store.record import Layer

SHORT = 19  # "sha256:" and 12 hex digits, as every `asl` table shows a version


def stack_of(pack: Pack, overlays: Sequence[str | Path] = ()) -> list[Layer]:
    """The stack of `pack`, loaded from the `--pack` directories `overlays` (over the
    built-in pack unless the first is standalone, as engine.loader.pack_stack decides)."""
    directories = pack_stack(overlays)
    if len(directories) != len(pack.layers):
        raise ValueError(f"pack {pack.name} has {len(pack.layers)} layers, but "
                         f"{len(directories)} pack directories were given")
    return [{"name": name, "version": layer_version(directory)}
            for name, directory in zip(pack.layers, directories, strict=True)]


def layer_version(directory: Path) -> str:
    """The content hash of one pack directory's pack.yaml and rule files (each file's
    path inside the directory and its text, line endings normalised)."""
    digest = hashlib.sha256()
    for file in [directory / "pack.yaml", *sorted((directory / "rules").glob("*.yaml"))]:
        text = file.read_bytes().replace(b"\r\n", b"\n")
        name = file.relative_to(directory).as_posix().encode("utf-8")
        digest.update(b"%d:%s%d:%s" % (len(name), name, len(text), text))
    return "sha256:" + digest.hexdigest()


def legacy_stack(name: str, version: str) -> list[Layer]:
    """The stack recorded for a result stored before stacks were: its combined pack name
    and version as one entry."""
    return [{"name": name, "version": version}]


def same_stack(stored: Sequence[Layer], current: Sequence[Layer], pack: Pack) -> bool:
    """Whether a stored result's stack is `current`, the stack of `pack` (a stored
    entry from before stacks were recorded counts when it names `pack` itself)."""
    return (list(stored) == list(current)
            or list(stored) == legacy_stack(pack.name, pack.version))


def stack_names(stack: Sequence[Layer]) -> str:
    """The packs' names joined as a result's `pack.name` joins them (`rsp-2.1+acme-lab`)."""
    return "+".join(layer["name"] for layer in stack)


def describe_stack(stack: Sequence[Layer], versions: bool = True) -> str:
    """`rsp-2.1 sha256:5820de81e62b + acme-lab sha256:7c34870014c5` (each pack's
    version shortened), or with `versions` False the names alone (`rsp-2.1+acme-lab`)."""
    if not versions:
        return stack_names(stack)
    return " + ".join(f"{layer['name']} {layer['version'][:SHORT]}" for layer in stack)


def describe_stacks(old: Sequence[Sequence[Layer]], new: Sequence[Layer]
                    ) -> tuple[list[str], str]:
    """How to name stacks `old` and the stack `new` in one line: by the packs' names,
    with their versions only for a stack whose names alone would not tell it apart from
    another (the same packs, one of them edited)."""
    names = [stack_names(stack) for stack in [*old, new]]
    shown = [describe_stack(stack, versions=names.count(name) > 1)
             for stack, name in zip([*old, new], names, strict=True)]
    return shown[:-1], shown[-1]
