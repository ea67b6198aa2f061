"""How many rules one durable-rules ruleset can hold, and how to split a pack that needs
more than one: a companion of `engine.durable_adapter` (it reads the adapter's ruleset
definitions; it never calls durable-rules).

durable-rules 2.0.28 compiles each rule's conditions into an alpha network: every test
of a condition's `$and` is a node, shared by every condition that starts with the same
tests in the same order. Each node has fixed-size tables (src/rules/rete.c, rules.h),
and these are the limits a pack meets, measured here with generated rulesets:

- each node lists the conditions that *end* at it in a table of 256 entries, read up to
  the first empty one: a 257th is refused with "error code: 108", or (when the memory
  after the table happens to be zero) written past its end; 300 always fail. Conditions
  with the same kind and the same constant tests end at the same node, so 300 rules each
  matching `status where value: crossed` (or one stratum of 300 rules behind its gate)
  do not compile, whatever their size. Kept here to 255, so the table always ends;
- the distinct tests that *follow* a node go in a hash table of 512 entries probed until
  an empty one: the 513th makes `create_ruleset` loop for ever (the "no answer in 60 s"
  of 600 rules each testing another value of one field), and a full table would make a
  lookup of a fact no entry matches loop too. This must never reach durable-rules: kept
  to 511;
- `$nex` tests and `$or` joins after one node: a table of 128 (error code 107), kept
  to 127;
- at most 4,096 rules per ruleset (error code 106), and 32 comparisons in one
  condition (error code 113: one rule's own shape, which no split helps).

Rule count, JSON size and the number of conditions do not matter in themselves. The
model below counts the first three per node, over-counting where it cannot tell (a test
against another fact's field, whose node durable-rules never shares, counts as new every
time), so a ruleset it accepts never hangs. `plan` puts rules into as few rulesets as
keep every count within its limit, in the pack's order; each ruleset is compiled
separately and the evaluator's session spans them all (`engine.durable_adapter`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BETA_LIMIT = 255  # conditions ending at one node (a table of 256; error 108 beyond)
HASH_LIMIT = 511  # distinct tests following one node (a table of 512; a hang beyond)
LIST_LIMIT = 127  # `$nex` tests and `$or` joins following one node (128; error 107)
RULE_LIMIT = 4000  # rules per ruleset (durable-rules' MAX_ACTIONS is 4,096)
NOT_SHARED = itertools.count()

Node = tuple[str, ...]  # the path of test spellings from the root
Load = tuple[Node, str, str]  # (node, table: "hash" | "list" | "beta", key)


def _spelling(test: Mapping[str, Any]) -> tuple[str, str]:
    """(table, key) of one test as a child of the node before it."""
    (name, operand), = test.items()
    inner = operand if name.startswith("$") and isinstance(operand, dict) else {name: operand}
    value = next(iter(inner.values()), None) if len(inner) == 1 else inner
    key = json.dumps(test, sort_keys=True, ensure_ascii=False)
    if isinstance(value, dict):  # against another fact's field, or an expression
        key += f"#{next(NOT_SHARED)}"
    return ("list" if name == "$nex" else "hash"), key


def _walk(node: Node, test: Any, loads: list[Load]) -> Node:
    """The node a test (or `$and` / `$or` of tests) ends at, from `node`."""
    if not isinstance(test, dict) or not test:
        return node
    if len(test) > 1:  # several tests in one object: durable reads them in turn
        for name, operand in test.items():
            node = _walk(node, {name: operand}, loads)
        return node
    (name, operand), = test.items()
    if name == "$and" and isinstance(operand, list):
        for item in operand:
            node = _walk(node, item, loads)
        return node
    if name == "$or" and isinstance(operand, list):
        joined = (*node, f"$or#{next(NOT_SHARED)}")  # a fresh node every time
        for item in operand:
            end = _walk(node, item, loads)
            loads.append((end, "list", joined[-1]))
        return joined
    table, key = _spelling(test)
    loads.append((node, table, key))
    return (*node, key)


def rule_load(definition: Mapping[str, Any]) -> list[Load]:
    """What one durable rule definition (`{"all": [{alias: condition}, ...]}`) adds to
    the network: each test under the node before it, each condition's end."""
    loads: list[Load] = []
    for pattern in definition.get("all") or definition.get("any") or []:
        for condition in pattern.values():
            end = _walk((), condition, loads)
            loads.append((end, "beta", f"#{next(NOT_SHARED)}"))
    return loads


LIMITS = {"hash": HASH_LIMIT, "list": LIST_LIMIT, "beta": BETA_LIMIT}
WHAT = {"hash": f"more than {HASH_LIMIT} distinct tests after one test (an `in` list "
                "that long, say): durable-rules would never finish compiling it",
        "list": f"more than {LIST_LIMIT} `exists: false` or `in` tests after one test",
        "beta": f"more than {BETA_LIMIT} conditions with the same kind and tests"}


class TooLarge(Exception):
    """A rule that no ruleset can hold, even one of its own: `name`, and why."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        super().__init__(why)


@dataclass
class Network:
    """The counted children of each node of one ruleset."""

    tables: dict[tuple[Node, str], set[str]] = field(default_factory=dict)
    rules: int = 0

    def fits(self, loads: Iterable[Load]) -> bool:
        """Whether adding one rule's loads keeps every table within its limit."""
        return self.rules + 1 <= RULE_LIMIT and self.overflow(loads) is None

    def overflow(self, loads: Iterable[Load]) -> str | None:
        """The first table (`hash`, `list`, `beta`) adding the loads would overfill."""
        added: dict[tuple[Node, str], set[str]] = {}
        for node, table, key in loads:
            have = self.tables.get((node, table), set())
            if key not in have:
                added.setdefault((node, table), set()).add(key)
        return next((where[1] for where, keys in added.items()
                     if len(self.tables.get(where, ())) + len(keys) > LIMITS[where[1]]),
                    None)

    def add(self, loads: Iterable[Load], rules: int = 1) -> None:
        for node, table, key in loads:
            self.tables.setdefault((node, table), set()).add(key)
        self.rules += rules


def plan(definitions: Mapping[str, Mapping[str, Any]],
         always: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The rule names of each ruleset to compile, in the order given: each rule goes
    into the first ruleset it fits (every ruleset also holds the `always` rules). A rule
    that would overfill even a ruleset of its own raises `TooLarge` (durable-rules
    would refuse it, or never answer)."""
    base = [load for d in always.values() for load in rule_load(d)]
    rulesets: list[tuple[Network, list[str]]] = []
    for name, definition in definitions.items():
        loads = rule_load(definition)
        for network, names in rulesets:
            if network.fits(loads):
                network.add(loads)
                names.append(name)
                break
        else:
            network = Network()
            network.add(base, rules=0)
            overflow = network.overflow(loads)
            if overflow is not None:
                raise TooLarge(name, WHAT[overflow])
            network.add(loads)
            rulesets.append((network, [name]))
    return [names for _, names in rulesets] or [[]]
