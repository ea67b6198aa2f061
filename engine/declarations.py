"""What the loaded packs' pack.yaml files declare: kinds of fact, the catalogue
(capabilities and safeguard standards) and pack facts, merged in load order.

The first pack is the base; each overlay after it may add kinds, capabilities and
standards with new names, add elements to a standard an earlier pack declared (an
`asl3-security` entry giving only `name` and `elements`), and state more pack facts.
It may not redeclare a kind or a capability, change an existing standard's level or
rank, add evidence kinds, or state a fact already stated. Standard facts are built only
once every pack is read, so a standard an overlay gives its first elements becomes
`defined`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import PackProblem
from engine.facts_id import fact_id
from engine.model import (
    FIELD_TYPES,
    ORIGIN_DERIVED,
    ORIGIN_EVIDENCE,
    ORIGINS,
    Capability,
    Kind,
    PackFact,
    Standard,
)
from engine.yamlsafe import line_of

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Every fact carries these for the engine itself; a kind may not declare them.
RESERVED_FIELDS = {"id", "kind", "sid"}
ELEMENT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
EXTENSION_KEYS = {"name", "elements"}  # all an overlay may say about an existing standard
# `whole: true`: a standard with no elements, stated in evidence as a whole.
_NOT_VALUES = ("title", "cite")  # catalogue keys that describe an entry but are not fields


@dataclass
class _StandardDraft:
    """A standard while packs are still being read: elements may yet be added."""

    name: str
    attributes: dict[str, Any]
    pack: str
    file: str
    line: int
    title: str
    element_packs: dict[str, str] = field(default_factory=dict)  # full element id -> pack
    whole: bool = False


@dataclass
class Catalogue:
    """The merged catalogue: what a `Pack` carries, and the facts the pack states."""

    capabilities: list[Capability]
    standards: list[Standard]
    facts: list[PackFact]


class Declarations:
    """Reads each pack.yaml's `kinds`, `catalogue` and `facts`, in load order; a
    capability's category must be one of `categories` (the base pack's output groups)."""

    def __init__(self, categories: tuple[str, ...] = ()) -> None:
        self.categories = categories
        self.kinds: dict[str, Kind] = {}
        self._kind_at: dict[str, tuple[str, str, int]] = {}  # kind -> pack, file, line
        self._capabilities: dict[str, tuple[Capability, PackFact]] = {}
        self._standards: dict[str, _StandardDraft] = {}
        self._facts: list[PackFact] = []

    def read(self, file: str, pack: str, doc: dict[str, Any]) -> list[PackProblem]:
        """Add what the pack.yaml `doc` of pack `pack` declares; report every problem."""
        kinds = doc.get("kinds") or {}
        if not isinstance(kinds, dict):
            return [PackProblem(file, line_of(doc, "kinds"), "structure",
                                "`kinds` maps each kind's name to its origin and fields")]
        problems: list[PackProblem] = []
        for name, spec in kinds.items():
            problems += self._kind(file, pack, kinds, str(name), spec)
        catalogue = doc.get("catalogue") or {}
        if not isinstance(catalogue, dict):
            return [*problems, PackProblem(file, line_of(doc, "catalogue"), "catalogue",
                                           "`catalogue` maps `capabilities` and `standards` "
                                           "to lists")]
        for key, read in (("capabilities", self._capability), ("standards", self._standard)):
            entries = catalogue.get(key) or []
            if not isinstance(entries, list):
                problems.append(PackProblem(file, line_of(catalogue, key), "catalogue",
                                            f"`catalogue.{key}` must be a list"))
                continue
            for entry in entries:
                problems += read(file, pack, entry)
        facts = doc.get("facts") or []
        if not isinstance(facts, list):
            return [*problems, PackProblem(file, line_of(doc, "facts"), "structure",
                                           "`facts` must be a list")]
        for entry in facts:
            if not isinstance(entry, dict) or "kind" not in entry:
                problems.append(PackProblem(file, line_of(entry), "structure",
                                            "a pack fact needs a kind"))
                continue
            values = {k: v for k, v in entry.items() if k not in ("kind", "title")}
            kind = str(entry["kind"])
            self._facts.append(PackFact(fact_id(kind, values, prefix="pack:"), kind, values,
                                        file, line_of(entry), str(entry.get("title", "")),
                                        pack))
        return problems

    def _kind(self, file: str, pack: str, kinds: dict[str, Any], name: str, spec: Any
              ) -> list[PackProblem]:
        line = line_of(kinds, name)
        if not NAME.match(name):
            return [PackProblem(file, line, "kind-name",
                                f"kind name {name!r} must match {NAME.pattern}")]
        if not isinstance(spec, dict):
            return [PackProblem(file, line, "structure", f"kind {name!r} must be a mapping")]
        if name in self.kinds:
            first_pack, first_file, first_line = self._kind_at[name]
            return [PackProblem(file, line, "kind-redeclared", f"kind {name!r} is already "
                                f"declared by pack {first_pack!r} ({first_file}:{first_line});"
                                " a pack may add kinds, not change them")]
        origin = spec.get("origin", ORIGIN_DERIVED)
        if origin not in ORIGINS:
            return [PackProblem(file, line, "kind-origin", f"kind {name!r}: origin must be "
                                f"one of {', '.join(ORIGINS)}")]
        if origin == ORIGIN_EVIDENCE and any(p != pack for p, _, _ in self._kind_at.values()):
            return [PackProblem(file, line, "kind-origin", f"kind {name!r}: an overlay cannot "
                                "add evidence kinds (the evidence format fixes them); use "
                                "origin pack or derived")]
        fields = spec.get("fields") or {}
        problems = [PackProblem(file, line, "reserved-field",
                                f"kind {name!r}: field name {f!r} is reserved")
                    for f in fields if f in RESERVED_FIELDS]
        # durable-rules reads `$...` keys as operators and the engine uses `__...` keys
        # itself, so field names are plain identifiers.
        problems += [PackProblem(file, line, "field-name",
                                 f"kind {name!r}: field name {f!r} must match {NAME.pattern}")
                     for f in fields if f not in RESERVED_FIELDS and not NAME.match(str(f))]
        problems += [PackProblem(file, line, "field-type", f"kind {name!r} field {f!r}: type "
                                 f"must be one of {', '.join(FIELD_TYPES)}, got {t!r}")
                     for f, t in fields.items() if t not in FIELD_TYPES]
        self.kinds[name] = Kind(name, origin, {str(k): str(v) for k, v in fields.items()},
                                str(spec.get("description", "")))
        self._kind_at[name] = (pack, file, line)
        return problems

    def _capability(self, file: str, pack: str, entry: Any) -> list[PackProblem]:
        line = line_of(entry)
        if not isinstance(entry, dict) or "name" not in entry or "category" not in entry:
            return [PackProblem(file, line, "catalogue",
                                "a capability needs a name and a category")]
        name, category = str(entry["name"]), str(entry["category"])
        if name in self._capabilities:
            first = self._capabilities[name][1]
            return [PackProblem(file, line, "duplicate-capability", f"capability {name!r} is "
                                f"already declared at {first.file}:{first.line}")]
        if category not in self.categories:
            return [PackProblem(file, line, "catalogue", f"capability {name!r}: category "
                                f"must be one of {', '.join(self.categories)}, "
                                f"got {category!r}")]
        attrs = {k: v for k, v in entry.items() if k not in _NOT_VALUES}
        fact = PackFact(fact_id("capability", attrs, prefix="pack:"), "capability", attrs,
                        file, line, str(entry.get("title", name)), pack)
        self._capabilities[name] = (Capability(name, category, attrs, pack), fact)
        return []

    def _standard(self, file: str, pack: str, entry: Any) -> list[PackProblem]:
        line = line_of(entry)
        if not isinstance(entry, dict) or "name" not in entry:
            return [PackProblem(file, line, "catalogue", "a standard needs a name")]
        name = str(entry["name"])
        elements = entry.get("elements") or []
        if not isinstance(elements, list):
            return [PackProblem(file, line, "catalogue",
                                f"standard {name!r}: `elements` must be a list")]
        whole = entry.get("whole", False)
        if not isinstance(whole, bool) or (whole and elements):
            return [PackProblem(file, line, "catalogue", f"standard {name!r}: `whole` is "
                                "true or false, and a whole standard has no elements")]
        draft = self._standards.get(name)
        if draft is None:
            attrs = {k: v for k, v in entry.items()
                     if k not in ("elements", "whole", *_NOT_VALUES)}
            draft = _StandardDraft(name, attrs, pack, file, line, str(entry.get("title", name)),
                                   whole=whole)
            self._standards[name] = draft
        elif draft.pack == pack:
            return [PackProblem(file, line, "duplicate-standard", f"standard {name!r} is "
                                f"already declared at {draft.file}:{draft.line}")]
        elif draft.whole:
            return [PackProblem(file, line, "standard-extension", f"standard {name!r} is "
                                f"stated whole by pack {draft.pack!r} ({draft.file}:"
                                f"{draft.line}); it takes no elements")]
        elif set(entry) - EXTENSION_KEYS:
            extra = ", ".join(sorted(set(entry) - EXTENSION_KEYS))
            return [PackProblem(file, line, "standard-extension", f"standard {name!r} is "
                                f"declared by pack {draft.pack!r} ({draft.file}:{draft.line}); "
                                f"an overlay may only add `elements` to it, not {extra}")]
        problems = []
        for element in elements:
            full = f"{name}.{element}"
            if not isinstance(element, str) or not ELEMENT.match(element):
                problems.append(PackProblem(file, line, "catalogue", f"standard {name!r}: "
                                            f"element {element!r} must match {ELEMENT.pattern}"))
            elif full in draft.element_packs:
                problems.append(PackProblem(file, line, "duplicate-element", f"element {full!r}"
                                            f" is already declared by pack "
                                            f"{draft.element_packs[full]!r}"))
            else:
                draft.element_packs[full] = pack
        return problems

    def build(self) -> tuple[Catalogue, list[PackProblem]]:
        """The merged catalogue, once every pack is read; a fact stated twice is refused."""
        standards = []
        facts = [fact for _, fact in self._capabilities.values()]
        for draft in self._standards.values():
            attrs = {**draft.attributes, "defined": bool(draft.element_packs) or draft.whole}
            standards.append(Standard(draft.name, attrs, tuple(draft.element_packs), draft.pack,
                                      dict(draft.element_packs), draft.whole))
            facts.append(PackFact(fact_id("standard", attrs, prefix="pack:"), "standard", attrs,
                                  draft.file, draft.line, draft.title, draft.pack))
        facts += self._facts
        seen: dict[str, PackFact] = {}
        problems = []
        for fact in facts:
            if fact.id in seen:
                first = seen[fact.id]
                problems.append(PackProblem(fact.file, fact.line, "duplicate-fact",
                                            f"pack fact {fact.id} is already stated at "
                                            f"{first.file}:{first.line}"))
            seen.setdefault(fact.id, fact)
        capabilities = [capability for capability, _ in self._capabilities.values()]
        return Catalogue(capabilities, standards, facts), problems
