"""Which packs a command loads, in which order: one rule for every command.

A stack is a *base pack* (a framework: the built-in `rsp-2.1` unless said otherwise)
followed by *overlays*, each loaded over the packs before it. Every command that takes
pack directories (`asl assess --pack`, `why`, `why-not`, `what-if`, `batch`, and every
`asl rules` command) turns them into a stack with `pack_stack`, so a pack one command
accepts is read the same way by all of them.

A pack directory is a base pack, used *instead of* the built-in framework rather than
over it, when its pack.yaml
- says `standalone: true`, or
- declares the evidence kinds model documents are read into (`model`, `evaluation`,
  ...; `EVIDENCE_KINDS`), as a framework does and an overlay may not: a copy of
  `rules/rsp-2.1`, renamed or not, is a base pack,
unless it says `standalone: false`. A base pack must be the first pack given (the
loader refuses one further down); the overlays after it go over it, just as they go over
the built-in framework otherwise. A pack.yaml that cannot be read is taken as an overlay:
loading it then reports why.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from engine.errors import PackError, PackProblem
from engine.model import EVIDENCE_KINDS, ORIGIN_EVIDENCE
from engine.yamlsafe import line_of, load_yaml

BUILTIN_PACK = "rsp-2.1"  # the framework used when none is chosen


def builtin_frameworks() -> dict[str, Path]:
    """The built-in framework packs by name: each directory of the installed `rules`
    package that holds a pack.yaml (its name is the directory's)."""
    root = Path(str(importlib.resources.files("rules")))
    return {p.name: p for p in sorted(root.iterdir()) if (p / "pack.yaml").is_file()}


@functools.cache
def is_builtin_framework(name: str | None) -> bool:
    """Whether `name` is a built-in framework's (explanations name the pack of a rule
    only when it is not one of those)."""
    return name is not None and name in builtin_frameworks()


def builtin_pack_dir(framework: str = BUILTIN_PACK) -> Path:
    """A built-in framework pack's directory (default: the built-in `rsp-2.1`)."""
    return Path(str(importlib.resources.files("rules") / framework))


def base_reason(doc: Any) -> str | None:
    """Why the pack.yaml content `doc` makes its pack a base pack (`says standalone:
    true`, `declares the evidence kinds model, reference`), or None for an overlay."""
    if not isinstance(doc, dict):
        return None
    standalone = doc.get("standalone")
    if standalone is True:
        return "it says `standalone: true`"
    if standalone is False:
        return None
    kinds = doc.get("kinds")
    if not isinstance(kinds, dict):
        return None
    evidence = [str(name) for name, spec in kinds.items() if name in EVIDENCE_KINDS
                and isinstance(spec, dict) and spec.get("origin") == ORIGIN_EVIDENCE]
    if evidence:
        return f"it declares the evidence kinds {', '.join(evidence)}"
    return None


def read_pack_yaml(directory: Path) -> Any:
    """The parsed pack.yaml of `directory`, or None when it cannot be read."""
    try:
        return load_yaml((directory / "pack.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None


def pack_stack(packs: Sequence[str | Path] = (), framework: str | None = None) -> list[Path]:
    """The pack directories to load for `packs` (`--pack DIR`, in order): the framework
    (default `rsp-2.1`) and each pack over it, unless the first pack is a base pack
    itself (see the module's docstring); then it stands in the framework's place.

    Naming a `framework` and giving a base pack of another name is refused (PackError),
    as is an unknown framework: each would silently drop one of the two."""
    paths = [Path(p) for p in packs]
    chosen = framework or BUILTIN_PACK
    if paths:
        doc = read_pack_yaml(paths[0])
        reason = base_reason(doc)
        if reason is not None:
            name = str(doc.get("name") or paths[0].name)
            if framework is not None and name != framework:
                raise PackError([PackProblem(
                    str(paths[0] / "pack.yaml"), line_of(doc, "name") or line_of(doc),
                    "framework", f"pack {name!r} is a base pack ({reason}), used in place of "
                    f"a framework, so it cannot be loaded with framework {framework!r}")])
            return paths
    known = builtin_frameworks()
    if chosen not in known:
        raise PackError([PackProblem(str(builtin_pack_dir(chosen)), 0, "pack-missing",
                                     f"no built-in framework {chosen!r}; built in: "
                                     f"{', '.join(known)}")])
    return [known[chosen], *paths]
