"""What changed between two versions of a rule pack, and what that does to a portfolio.

`diff_packs` compares two loaded packs: rules added, removed and changed (each changed
part shown as its lines before and after), kinds, and catalogue entries (capabilities,
standards, standard elements and other pack facts). `portfolio_changes` assesses the same
evidence with both packs and lists, per model, each contract key whose value changes.
Everything is returned as plain data, sorted, so the CLI only renders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from engine.api import assess
from engine.casetest import show_value
from engine.contract import KeyChange, contract_changes
from engine.evaluator import Evaluator
from engine.model import Kind, Pack
from engine.ruletext import rule_parts

RULE_PARTS = ("title", "cite", "because", "when", "then", "replaces", "rationale", "pack")


@dataclass(frozen=True)
class Change:
    """One changed part (of a rule, kind or catalogue entry): its lines before and after."""

    part: str
    before: list[str]
    after: list[str]


@dataclass(frozen=True)
class EntryChange:
    """A rule, kind or catalogue entry present in both packs but not the same."""

    name: str
    changes: list[Change]
    where: str = ""  # file:line in the new pack, for rules


@dataclass
class PackDiff:
    """The differences between an old and a new pack (names are `kind name`)."""

    old: str
    new: str
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    rules_changed: list[EntryChange] = field(default_factory=list)
    kinds_added: list[str] = field(default_factory=list)
    kinds_removed: list[str] = field(default_factory=list)
    kinds_changed: list[EntryChange] = field(default_factory=list)
    catalogue_added: list[str] = field(default_factory=list)
    catalogue_removed: list[str] = field(default_factory=list)
    catalogue_changed: list[EntryChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(v for k, v in asdict(self).items() if k not in ("old", "new"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[Change]:
    """Each part whose lines differ, with only the lines that differ."""
    changes = []
    for part in sorted(before.keys() | after.keys(), key=_part_order):
        old, new = before.get(part, []), after.get(part, [])
        if old != new:
            changes.append(Change(part, [x for x in old if x not in new] or old,
                                  [x for x in new if x not in old] or new))
    return changes


def _part_order(part: str) -> tuple[int, str]:
    return (RULE_PARTS.index(part) if part in RULE_PARTS else len(RULE_PARTS), part)


def _values_lines(values: dict[str, Any]) -> dict[str, list[str]]:
    return {k: [show_value(v)] for k, v in values.items()}


def _compare(old: dict[str, dict[str, list[str]]], new: dict[str, dict[str, list[str]]]
             ) -> tuple[list[str], list[str], list[EntryChange]]:
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    changed = [EntryChange(name, _changes(old[name], new[name]))
               for name in sorted(old.keys() & new.keys()) if old[name] != new[name]]
    return added, removed, changed


def _kind_lines(kind: Kind) -> dict[str, list[str]]:
    return {"origin": [kind.origin], **{f"field {f}": [t] for f, t in kind.fields.items()}}


def catalogue(pack: Pack) -> dict[str, dict[str, list[str]]]:
    """The pack's catalogue and facts as named entries: `capability CBRN-3`, `standard
    asl3-security`, `element asl3-security.audits`, `implication(...)` (other pack facts)."""
    entries: dict[str, dict[str, list[str]]] = {}
    for cap in pack.capabilities:
        entries[f"capability {cap.name}"] = _values_lines(cap.attributes)
    for std in pack.standards:
        entries[f"standard {std.id}"] = _values_lines(
            {k: v for k, v in std.attributes.items() if k != "defined"})
        for element in std.elements:
            entries[f"element {element}"] = {}
    for fact in pack.facts:
        if fact.kind not in ("capability", "standard"):
            entries[f"fact {fact.id.removeprefix('pack:')}"] = {}
    return entries


def diff_packs(old: Pack, new: Pack) -> PackDiff:
    """Everything that differs between `old` and `new`."""
    diff = PackDiff(f"{old.name} {old.version[:19]}", f"{new.name} {new.version[:19]}")
    old_rules = {r.id: r for r in old.rules}
    new_rules = {r.id: r for r in new.rules}
    diff.rules_added, diff.rules_removed, changed = _compare(
        {i: rule_parts(r) for i, r in old_rules.items()},
        {i: rule_parts(r) for i, r in new_rules.items()})
    diff.rules_changed = [EntryChange(c.name, c.changes,
                                      f"{new_rules[c.name].file}:{new_rules[c.name].line}")
                          for c in changed]
    diff.kinds_added, diff.kinds_removed, diff.kinds_changed = _compare(
        {k: _kind_lines(v) for k, v in old.kinds.items()},
        {k: _kind_lines(v) for k, v in new.kinds.items()})
    diff.catalogue_added, diff.catalogue_removed, diff.catalogue_changed = _compare(
        catalogue(old), catalogue(new))
    return diff


# --- a portfolio assessed with both packs ------------------------------------------------


@dataclass
class PortfolioChanges:
    """Per model, the contract keys that change; models assessed by only one pack; and
    evidence either pack rejected (one line each)."""

    models: dict[str, list[KeyChange]] = field(default_factory=dict)
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    rejected_old: list[str] = field(default_factory=list)
    rejected_new: list[str] = field(default_factory=list)
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def portfolio_changes(old: Evaluator, new: Evaluator, paths: Sequence[str]
                      ) -> PortfolioChanges:
    """Assess the evidence in `paths` with both packs and compare model by model."""
    sides = []
    for evaluator in (old, new):
        run = assess(paths, evaluator=evaluator)
        sides.append(({a.model: a.output for a in run.assessments},
                      [str(e) for e in run.rejected]))
    (before, rejected_old), (after, rejected_new) = sides
    result = PortfolioChanges(rejected_old=rejected_old, rejected_new=rejected_new)
    tally_changes(result, before, after)
    return result


class ChangeTally(Protocol):
    """What `tally_changes` adds to: `PortfolioChanges`, and a draft's stored impact
    (batch.impact), which adds to it a chunk of models at a time."""

    models: dict[str, list[KeyChange]]
    only_old: list[str]
    only_new: list[str]
    unchanged: int


def tally_changes(into: ChangeTally, before: dict[str, dict[str, Any]],
                  after: dict[str, dict[str, Any]]) -> None:
    """Add to `into` the comparison of two sets of results (model -> its contract
    output): models only one side has, and per model present on both the contract keys
    whose value changes (sorted by key), or one more unchanged model."""
    into.only_old += sorted(before.keys() - after.keys())
    into.only_new += sorted(after.keys() - before.keys())
    for model in sorted(before.keys() & after.keys()):
        changes = sorted(contract_changes(before[model], after[model]), key=lambda c: c.key)
        if changes:
            into.models[model] = changes
        else:
            into.unchanged += 1
