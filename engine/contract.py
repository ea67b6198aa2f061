"""The output contract's keys as flat values, and the one way two results are compared.

`contract_values` flattens a result (the engine's output, or a stored one) to dotted
keys in the order its framework's output lists them (`engine.framework`; for rsp-2.1:
`asl`, `required.security`, `thresholds.NAME`, ..., `missing_safeguards`, `decision`,
`actions`; lists stay whole). `contract_changes` lists the keys whose values differ
between two results; every command that compares results (what-if, `asl rules diff
--portfolio`, `asl diff`, a batch's summary) calls it, so they agree on what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.framework import FrameworkSpec, spec_of

# Who and with what, not what was found.
NOT_COMPARED = ("model", "pack", "framework", "conclusions")


def contract_values(result: dict[str, Any], spec: FrameworkSpec | None = None
                    ) -> dict[str, Any]:
    """The contract keys of a result, flattened to `required.security`,
    `statuses.NAME` ... (lists stay lists), in the order its framework's output gives
    them (`spec`, by default its built-in framework's; keys it does not list come last,
    sorted). `level` is left out when another key holds it (rsp-2.1's `asl`).

    >>> contract_values({"model": "m", "decision": "d1", "level": "l2",
    ...                  "required": {"security": "l2", "deployment": "l1"}})
    {'required.deployment': 'l1', 'required.security': 'l2', 'decision': 'd1'}
    """
    spec = spec or spec_of(result)
    order = spec.order
    skip = {*NOT_COMPARED, *(["level"] if spec.level.key is not None else [])}
    known = [key for key in order if key in result]
    rest = sorted(key for key in result if key not in order and key not in skip)
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


def contract_changes(old: dict[str, Any], new: dict[str, Any],
                     spec: FrameworkSpec | None = None) -> list[KeyChange]:
    """Every contract key whose value differs between two results, in contract order
    (`contract_values`, with `spec` or the newer result's framework's): scalars and
    mappings key by key, lists whole.

    >>> [(c.key, c.old, c.new, c.added) for c in contract_changes(
    ...     {"decision": "d1", "actions": ["a", "b"]}, {"decision": "d2", "actions": ["b", "c"]})]
    [('decision', 'd1', 'd2', []), ('actions', ['a', 'b'], ['b', 'c'], ['c'])]
    """
    spec = spec or spec_of(new)
    before, after = contract_values(old, spec), contract_values(new, spec)
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
