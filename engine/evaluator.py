"""Run a compiled pack over one set of facts, stratum by stratum, and record why.

The evaluator is where durable-rules' traps are closed:
- one durable session per assessment, deleted afterwards. The given facts go in, then
  (until nothing new appears) the conclusions rules derive; only then is the next
  stratum's gate opened (see `engine.compiler`). Negation therefore only sees finished
  kinds, and the set of conclusions does not depend on the order facts arrive in;
- a conclusion reached twice is asserted once and keeps every firing as a support;
- a conclusion whose value cannot be built fails the assessment naming the rule.
Every step is reported to the listeners as a trace event; provenance, coverage and
explanations are built from those events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.compiler import CompiledPack, compile_pack, gate_fact
from engine.durable_adapter import DurableRuleset, Session
from engine.errors import AssessmentError
from engine.facts_id import fact_id, render_value
from engine.loader import PLACEHOLDER
from engine.model import ORIGIN_DERIVED, ORIGIN_PACK, Conclusion, Pack, Rule
from engine.operators import mistyped


@dataclass
class Fact:
    """A fact in an assessment: its identity, kind and values, where it came from, and
    display details (source, title, file) that explanations show but rules never read."""

    id: str
    kind: str
    values: dict[str, Any]
    origin: str
    info: dict[str, Any] = field(default_factory=dict)

    def wire(self, fields: Iterable[str]) -> dict[str, Any]:
        """The fact as the matcher is given it: declared fields only, unset ones
        omitted (the adapter adds what its matcher needs besides)."""
        data = {f: self.values[f] for f in fields if self.values.get(f) is not None}
        data["id"] = self.id
        data["kind"] = self.kind
        return data


@dataclass
class Firing:
    """One rule firing: the facts it matched (by the rule's own names) and the
    conclusions it supports. `because` is the rule's sentence filled with the matched
    values, built only when someone reads it."""

    id: str
    rule: Rule
    matched: tuple[tuple[str, str], ...]
    bound: dict[str, Fact] = field(repr=False)
    conclusions: list[str] = field(default_factory=list)
    _because: str | None = field(default=None, repr=False)

    @property
    def because(self) -> str:
        if self._because is None:
            self._because = fill_because(self.rule.because, self.bound)
        return self._because


@dataclass(frozen=True)
class FactAsserted:
    """A fact from the evidence or the pack entered the assessment."""

    fact: Fact


@dataclass(frozen=True)
class RuleFired:
    """A rule's conditions were all met by these facts."""

    firing: Firing
    stratum: int


@dataclass(frozen=True)
class ConclusionDerived:
    """A firing supports a conclusion; `new` is False when the conclusion already stood."""

    fact: Fact
    firing: Firing
    new: bool


Event = FactAsserted | RuleFired | ConclusionDerived
Listener = Callable[[Event], None]


@dataclass
class Derivation:
    """Everything one evaluation produced: every fact (given and derived), every firing,
    and the trace in the order it happened."""

    facts: dict[str, Fact]
    firings: dict[str, Firing]
    events: list[Event]
    _by_kind: dict[str, list[Fact]] | None = field(default=None, repr=False)

    def of_kind(self, kind: str) -> list[Fact]:
        """The facts of one kind, sorted by id."""
        if self._by_kind is None:
            self._by_kind = {}
            for fact in sorted(self.facts.values(), key=lambda f: f.id):
                self._by_kind.setdefault(fact.kind, []).append(fact)
        return self._by_kind.get(kind, [])


class Evaluator:
    """A pack compiled once into durable-rules, ready to evaluate many fact sets."""

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        self.compiled: CompiledPack = compile_pack(pack)
        # Each kind's fields, as its facts are given to the matcher.
        self._shape = {name: tuple(sorted(k.fields)) for name, k in pack.kinds.items()}
        self.pack_facts = tuple(
            Fact(pf.id, pf.kind, dict(pf.values), ORIGIN_PACK,
                 {"title": pf.title, "file": pf.file, "line": pf.line,
                  "pack": pf.pack or pack.name})
            for pf in pack.facts
        )
        self._pack_ids = frozenset(f.id for f in self.pack_facts)
        # Pack facts are the same in every assessment: they are asserted once into each
        # session and stay there; every rule that reads only them waits for a gate.
        self._ruleset = DurableRuleset(
            self.compiled.compiled,
            [f.wire(self._shape[f.kind]) for f in sorted(self.pack_facts, key=lambda f: f.id)
             if f.kind in self.compiled.consumed])

    @property
    def ruleset(self) -> DurableRuleset:
        """The pack as registered in durable-rules: what `evaluate` opens sessions on."""
        return self._ruleset

    def evaluate(self, given: Iterable[Fact], listeners: Iterable[Listener] = ()) -> Derivation:
        """Derive every conclusion the pack supports from `given` plus the pack's facts."""
        events: list[Event] = []
        emit_to = [events.append, *listeners]

        def emit(event: Event) -> None:
            for listener in emit_to:
                listener(event)

        facts: dict[str, Fact] = {fact.id: fact for fact in self.pack_facts}
        for fact in given:
            if fact.id in facts:
                raise AssessmentError(f"two input facts share the id {fact.id!r}")
            self._check_types(fact)
            facts[fact.id] = fact
        for fact in sorted(facts.values(), key=lambda f: f.id):
            emit(FactAsserted(fact))
        firings: dict[str, Firing] = {}
        gates = list(self.compiled.gates)
        first_gate = gates.pop(0) if gates and gates[0] == 0 else None
        given_ids = facts.keys() - self._pack_ids
        with self._ruleset.session() as session:
            self._fixpoint(session, sorted((facts[i] for i in given_ids), key=lambda f: f.id),
                           facts, firings, emit, first_gate)
            for level in gates:
                self._fixpoint(session, [], facts, firings, emit, level)
            session.retract_all(first=[gate_fact(level)["id"] for level in self.compiled.gates])
        return Derivation(facts, firings, events)

    def _check_types(self, fact: Fact) -> None:
        """A given fact's values must have their fields' types: durable-rules would compare
        a `true` in a number field equal to `1` (pack facts and conclusions are checked
        when the pack loads)."""
        kind = self.pack.kinds.get(fact.kind)
        if kind is None:
            return
        wrong = mistyped(fact.values, kind.fields)
        if wrong is not None:
            raise AssessmentError(f"fact {fact.id}: {fact.kind}.{wrong[0]} is a "
                                  f"{kind.fields[wrong[0]]}, not {wrong[1]!r}")

    def _fixpoint(self, session: Session, batch: list[Fact], facts: dict[str, Fact],
                  firings: dict[str, Firing], emit: Listener, gate: int | None) -> None:
        """Assert `batch` (and the gate, if any), then every new conclusion some rule
        reads, until the rules derive nothing new."""
        wires = [f.wire(self._shape[f.kind]) for f in batch if f.kind in self.compiled.consumed]
        if gate is not None:
            wires.append(gate_fact(gate))
        while wires:
            new: list[Fact] = []
            for name, bindings in session.assert_facts(wires):
                new.extend(self._fire(name, bindings, facts, firings, emit))
            new.sort(key=lambda f: f.id)
            wires = [f.wire(self._shape[f.kind]) for f in new if f.kind in self.compiled.consumed]

    def _fire(self, name: str, bindings: dict[str, dict[str, Any]],
              facts: dict[str, Fact], firings: dict[str, Firing], emit: Listener) -> list[Fact]:
        """Turn one activation into a firing and its conclusions; return the new facts."""
        compiled = self.compiled
        rule = compiled.rules.get(name)
        if rule is None:
            raise AssessmentError(f"the matcher fired an unknown rule {name!r}")
        try:
            aliases = compiled.bindings[name]
            bound = {aliases[alias]: facts[data["id"]] for alias, data in bindings.items()
                     if alias in aliases}
            matched = tuple(sorted((n, f.id) for n, f in bound.items()))
            firing = Firing(f"firing:{rule.id}[{'|'.join(i for _, i in matched)}]", rule,
                            matched, bound)
            derived = [(kind, values, fact_id(kind, values))
                       for kind, values in (self._conclude(c, bound) for c in rule.conclusions)]
        except AssessmentError as exc:
            if exc.rule is not None:
                raise
            raise AssessmentError(str(exc), rule.id) from exc
        except Exception as exc:  # any failure inside a rule's action is the rule's failure
            raise AssessmentError(f"{type(exc).__name__}: {exc}", rule.id) from exc
        firings[firing.id] = firing
        emit(RuleFired(firing, compiled.stratum[rule.id]))
        new_facts = []
        for kind, values, fid in derived:
            existing = facts.get(fid)
            fact = existing or Fact(fid, kind, values, ORIGIN_DERIVED)
            if existing is None:
                facts[fid] = fact
                new_facts.append(fact)
            firing.conclusions.append(fid)
            emit(ConclusionDerived(fact, firing, existing is None))
        return new_facts

    @staticmethod
    def _conclude(conclusion: Conclusion, bound: dict[str, Fact]) -> tuple[str, dict[str, Any]]:
        values: dict[str, Any] = {}
        for fname, operand in conclusion.values:
            if operand.ref is None:
                values[fname] = operand.constant
                continue
            name, source_field = operand.ref
            value = bound[name].id if source_field == "id" else bound[name].values.get(
                source_field)
            if value is None:
                raise AssessmentError(f"conclusion {conclusion.kind}.{fname} refers to "
                                      f"{name}.{source_field}, which {bound[name].id} lacks")
            values[fname] = value
        return conclusion.kind, values


def fill_because(template: str, bound: dict[str, Fact]) -> str:
    """The rule's `because` sentence with each `{name.field}` replaced by the value the
    firing matched."""

    def value(match: Any) -> str:
        name, _, fname = match.group(1).partition(".")
        fact = bound[name]
        raw = fact.info.get("display_id", fact.id) if fname == "id" else fact.values.get(fname)
        return "(unset)" if raw is None else render_value(raw)

    return PLACEHOLDER.sub(value, template)
