"""The in-memory form of a rule pack: kinds of fact, rules, and the pack's catalogue.

These are plain frozen dataclasses built by `engine.loader` from YAML. Nothing here
touches durable-rules; `engine.compiler` turns them into rulesets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.framework import FrameworkSpec

# Re-exported: the test operators (engine.operators holds their one table).
from engine.operators import OPERATOR_TEXT as OPERATOR_TEXT
from engine.operators import OPERATORS as OPERATORS

# Where facts of a kind come from.
ORIGIN_EVIDENCE = "evidence"  # extracted from an analyst's model document
ORIGIN_PACK = "pack"  # stated by the pack itself (catalogue entries, defaults)
ORIGIN_DERIVED = "derived"  # concluded by rules
ORIGINS = (ORIGIN_EVIDENCE, ORIGIN_PACK, ORIGIN_DERIVED)
# The evidence kinds a model document is read into (`engine.assess.document_facts`),
# whatever the framework: a pack declaring them is a framework, never an overlay.
EVIDENCE_KINDS = frozenset({"model", "reference", "evaluation", "finding", "channel",
                            "safeguard"})

FIELD_TYPES = ("str", "number", "bool")  # engine.operators' value classes

@dataclass(frozen=True)
class Kind:
    """A kind of fact: its name, where it comes from and the fields it carries."""

    name: str
    origin: str
    fields: dict[str, str]
    description: str = ""


@dataclass(frozen=True)
class Operand:
    """The right-hand side of a test: a constant, another field of the same fact, or a
    field of a fact bound earlier in the rule (`ref: s.capability`)."""

    constant: Any = None
    field: str | None = None
    ref: tuple[str, str] | None = None

    def text(self) -> str:
        """As a message to a pack author shows it (`engine.ruletext`)."""
        from engine.ruletext import operand_text
        return operand_text(self, quoted=True)


@dataclass(frozen=True)
class Test:
    """One test on one field of a matched fact (`score gte warning_score`)."""

    field: str
    op: str
    operand: Operand
    line: int = 0

    def text(self) -> str:
        """As a message to a pack author shows it (`engine.ruletext`)."""
        from engine.ruletext import test_text
        return test_text(self, quoted=True)


@dataclass(frozen=True)
class Condition:
    """A pattern in a rule's `when`: a fact of `kind` that must exist (bound to `name`),
    or, when `negated`, must not exist."""

    kind: str
    name: str
    tests: tuple[Test, ...]
    negated: bool = False
    line: int = 0


@dataclass(frozen=True)
class Conclusion:
    """A fact a rule derives: its kind and each field's constant or `ref` to a matched fact."""

    kind: str
    values: tuple[tuple[str, Operand], ...]
    line: int = 0


@dataclass(frozen=True)
class Rule:
    """One rule of a pack, with everything needed to explain it to a person."""

    id: str
    title: str
    cite: str
    because: str
    conditions: tuple[Condition, ...]
    conclusions: tuple[Conclusion, ...]
    file: str
    line: int
    pack: str  # the declared `name` of the pack it came from
    source: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    replaces: str | None = None  # the id of an earlier pack's rule this one stands in for
    rationale: str | None = None  # why it does (required with `replaces`)

    @property
    def consumes(self) -> frozenset[str]:
        return frozenset(c.kind for c in self.conditions if not c.negated)

    @property
    def negates(self) -> frozenset[str]:
        return frozenset(c.kind for c in self.conditions if c.negated)

    @property
    def produces(self) -> frozenset[str]:
        return frozenset(c.kind for c in self.conclusions)


@dataclass(frozen=True)
class Capability:
    """A capability the pack tracks, of one of the categories the framework's output
    groups capabilities by (`FrameworkSpec.categories`)."""

    name: str
    category: str
    attributes: dict[str, Any]
    pack: str = ""  # the name of the pack that declared it


@dataclass(frozen=True)
class Standard:
    """A safeguard standard of the catalogue and its element ids (empty when undefined).

    An overlay pack may add elements to a standard an earlier pack declared;
    `element_packs` records which pack declared each element, for explanations. A
    `whole` standard has no elements: evidence states it as a whole, and it is one
    safeguard fact (element and standard both its id)."""

    id: str
    attributes: dict[str, Any]
    elements: tuple[str, ...]
    pack: str = ""  # the name of the pack that declared the standard
    element_packs: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    whole: bool = False


@dataclass(frozen=True)
class PackFact:
    """A fact the pack states for every assessment (catalogue entries and defaults)."""

    id: str
    kind: str
    values: dict[str, Any]
    file: str
    line: int
    title: str = ""
    pack: str = ""  # the name of the pack that states it


@dataclass(frozen=True)
class CaseFile:
    """A YAML file of test cases shipped beside a pack's rules."""

    path: str
    cases: tuple[dict[str, Any], ...]
    pack: str = ""  # the name of the pack whose tests/ holds it


@dataclass(frozen=True)
class Pack:
    """A loaded, checked rule pack (or several packs overlaid): everything the compiler
    and the evaluator need, plus its content hash for recording with every result.

    `name` joins the loaded packs' names with `+` (`rsp-2.1+acme-lab`); `layers` lists
    them in load order, the base pack first; `cite_pattern` is the base pack's, and so
    is `spec`, what its results say (engine.framework)."""

    name: str
    title: str
    version: str
    kinds: dict[str, Kind]
    rules: tuple[Rule, ...]
    capabilities: tuple[Capability, ...]
    standards: tuple[Standard, ...]
    facts: tuple[PackFact, ...]
    strata: tuple[tuple[str, ...], ...]
    cite_pattern: str
    spec: FrameworkSpec
    case_files: tuple[CaseFile, ...] = ()
    sources: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()

    @property
    def framework(self) -> str:
        """The framework its results are made under: the base pack's name."""
        return self.layers[0] if self.layers else self.name.split("+", 1)[0]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def stratum_of(self, rule_id: str) -> int:
        for index, members in enumerate(self.strata):
            if rule_id in members:
                return index
        raise KeyError(rule_id)

    def capabilities_of(self, category: str) -> tuple[Capability, ...]:
        """The capabilities of one category, in catalogue order."""
        return tuple(c for c in self.capabilities if c.category == category)

    @property
    def safeguard_ids(self) -> frozenset[str]:
        ids = {s.id for s in self.standards}
        ids.update(e for s in self.standards for e in s.elements)
        return frozenset(ids)

    @property
    def capability_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.capabilities)
