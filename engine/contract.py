"""The output contract's keys as flat values, and the one way two results are compared.

`contract_values` flattens a result (the engine's output, or a stored one) to dotted
keys in the order assessment-output.md lists them: `asl`, `required.security`,
`thresholds.CBRN-3`, ..., `missing_safeguards`, `decision`, `actions` (lists stay
whole). `contract_changes` lists the keys whose values differ between two results; every
command that compares results (what-if, `asl rules diff --portfolio`, `asl diff`, a
batch's summary) calls it, so they agree on what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.assess import OUTPUT_GROUPS

CONTRACT_ORDER = ("asl", "required", "comprehensive_assessment_required",
                  *OUTPUT_GROUPS.values(), "missing_safeguards", "decision", "actions")
NOT_COMPARED = ("model", "pack", "conclusions")  # who and with what, not what was found


def contract_values(result: dict[str, Any]) -> dict[str, Any]:
    """The contract keys of a result, flattened to `required.security`,
    `thresholds.CBRN-3` ... (lists stay lists), in the order the output contract gives
    them (keys it does not list come last, sorted).

    >>> contract_values({"model": "m", "decision": "pause",
    ...                  "required": {"security": "ASL-3", "deployment": "ASL-2"}})
    {'required.deployment': 'ASL-2', 'required.security': 'ASL-3', 'decision': 'pause'}
    """
    known = [key for key in CONTRACT_ORDER if key in result]
    rest = sorted(key for key in result if key not in CONTRACT_ORDER and key not in NOT_COMPARED)
    flat: dict[str, Any] = {}
    for key in [*known, *rest]:
        value = result[key]
        if isinstance(value, dict):
            flat.update((f"{key}.{name}", value[name]) for name in sorted(value))
        else:
            flat[key] = list(value) if isinstance(value, list) else value
    return flat


@dataclass(frozen=True)
class KeyChange:
    """A contract key whose value differs: dotted (`required.security`), with its value
    in the older and the newer result (None where a result lacks the key)."""

    key: str
    old: Any
    new: Any

    @property
    def is_list(self) -> bool:
        """Whether both values are lists (`actions`, `missing_safeguards`)."""
        return isinstance(self.old, list) and isinstance(self.new, list)

    @property
    def added(self) -> list[Any]:
        """The items only the newer list has, sorted (none unless `is_list`)."""
        return sorted(set(self.new) - set(self.old)) if self.is_list else []

    @property
    def removed(self) -> list[Any]:
        """The items only the older list has, sorted (none unless `is_list`)."""
        return sorted(set(self.old) - set(self.new)) if self.is_list else []


def contract_changes(old: dict[str, Any], new: dict[str, Any]) -> list[KeyChange]:
    """Every contract key whose value differs between two results, in contract order
    (`contract_values`): scalars and mappings key by key, lists whole.

    >>> [(c.key, c.old, c.new, c.added) for c in contract_changes(
    ...     {"asl": "ASL-3", "actions": ["a", "b"]}, {"asl": "ASL-2", "actions": ["b", "c"]})]
    [('asl', 'ASL-3', 'ASL-2', []), ('actions', ['a', 'b'], ['b', 'c'], ['c'])]
    """
    before, after = contract_values(old), contract_values(new)
    return [KeyChange(key, before.get(key), after.get(key))
            for key in _union(after, before) if before.get(key) != after.get(key)]


def value_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`score 0.41 -> 0.63`: each field of two versions of an evidence item that differs,
    by field name.

    >>> value_changes({"score": 0.41, "id": "e"}, {"score": 0.63, "id": "e"})
    ['score 0.41 -> 0.63']
    """
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(_union(old, new))
            if old.get(k) != new.get(k)]


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """The keys of `first` in order, then those only `second` has."""
    keys = dict.fromkeys(first)
    keys.update(dict.fromkeys(second))
    return list(keys)
