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

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from engine.compiler import CompiledPack, compile_pack, gate_fact
from engine.durable_adapter import ActivationOverflow, DurableRuleset, Session, Sessions
from engine.errors import AssessmentError
from engine.facts_id import render_value
from engine.firing_plan import Because, Plan, firing_function
from engine.loader import PLACEHOLDER
from engine.model import ORIGIN_DERIVED, ORIGIN_PACK, Pack, Rule
from engine.operators import BOOL, CLASS_TYPES, NUMBER, STR, mistyped


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


@dataclass(slots=True)
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
    stratum: int = 0
    _template: Because | None = field(default=None, repr=False, compare=False)

    @property
    def because(self) -> str:
        if self._because is None:
            self._because = (self._template.fill(self.bound) if self._template is not None
                             else fill_because(self.rule.because, self.bound))
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
    and (`trace`) the firings in the order they happened, after the given and pack
    facts (`asserted`, sorted by id). `events` is that trace as trace events, made
    when first read: the evaluator itself makes none."""

    facts: dict[str, Fact]
    firings: dict[str, Firing]
    trace: list[Firing] = field(default_factory=list, repr=False)
    asserted: list[Fact] = field(default_factory=list, repr=False)
    _by_kind: dict[str, list[Fact]] | None = field(default=None, repr=False)
    _events: list[Event] | None = field(default=None, init=False, repr=False, compare=False)
    _sorted: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def of_kind(self, kind: str) -> list[Fact]:
        """The facts of one kind, sorted by id (each kind sorted when first asked for)."""
        by_kind = self._by_kind
        if by_kind is None:
            by_kind = self._by_kind = {}
            for fact in self.facts.values():
                found = by_kind.get(fact.kind)
                if found is None:
                    by_kind[fact.kind] = [fact]
                else:
                    found.append(fact)
        found = by_kind.get(kind)
        if found is None:
            return []
        if kind not in self._sorted:
            found.sort(key=_by_id)
            self._sorted.add(kind)
        return found

    @property
    def events(self) -> list[Event]:
        """The trace as events, in the order it happened: each given and pack fact
        asserted (by id), then per firing the rule fired and each conclusion it
        supports (`new` the first time the conclusion appears)."""
        if self._events is None:
            events: list[Event] = [FactAsserted(fact) for fact in self.asserted]
            stood = {fact.id for fact in self.asserted}
            facts = self.facts
            for firing in self.trace:
                events.append(RuleFired(firing, firing.stratum))
                for fid in firing.conclusions:
                    events.append(ConclusionDerived(facts[fid], firing, fid not in stood))
                    stood.add(fid)
            self._events = events
        return self._events


# (Python type, field type) pairs whose values need no closer look (floats: finite ones).
_PLAIN = frozenset({(str, STR), (bool, BOOL), (int, NUMBER)})


_by_id = attrgetter("id")  # sort key of facts

@dataclass(frozen=True)
class Budget:
    """The most work one assessment may do: rule firings, derived facts and seconds
    (wall time). A real pack stays far below the defaults (the built-in one fires about
    50 rules per model in a few milliseconds); a pack whose joins grow as a product of
    evidence lists can reach millions, and is stopped past them with an error naming
    the rule. `ASL_BUDGET` (`firings=N,facts=N,seconds=S`, any of them) changes them for
    a process (`engine.assess.default_budget`)."""

    firings: int = 20_000
    facts: int = 20_000
    seconds: float = 30.0


class Evaluator:
    """A pack compiled once into durable-rules, ready to evaluate many fact sets."""

    # Each derived fact's text as the matcher reads it, by id (an id names a derived
    # fact's kind and values), and each all-string given fact's: kept across assessments,
    # both cleared when either is this large. Small enough that a batch worker's memory
    # stops growing within a few thousand models (given facts add about 1.3 new keys a
    # model on a varied portfolio: at 100,000 a 100,000-model batch's workers grew 20%
    # past a 20,000-model batch's), large enough for the facts many documents share.
    TEXTS_KEPT = 8_192

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
        self._pack_map = {fact.id: fact for fact in self.pack_facts}
        # Pack facts are the same in every assessment: they are asserted once into each
        # session and stay there; every rule that reads only them waits for a gate.
        self._ruleset = DurableRuleset(
            self.compiled.compiled,
            [f.wire(self._shape[f.kind]) for f in sorted(self.pack_facts, key=lambda f: f.id)
             if f.kind in self.compiled.consumed])
        compiled = self.compiled
        self._plans = {name: Plan(rule, compiled.stratum[rule.id], compiled.bindings[name])
                       for name, rule in compiled.rules.items()}
        for plan in self._plans.values():
            plan.fire = firing_function(plan, Firing, Fact, ORIGIN_DERIVED)
        self._texts: dict[str, str] = {}
        self._given_texts: dict[tuple[Any, ...], str] = {}
        # Each gate's stratum, id and text for the matcher, in stratum order.
        gates = [(level, gate_fact(level)) for level in compiled.gates]
        self._gate_texts = [(level, gate["id"], self._ruleset.prepare(gate))
                            for level, gate in gates]
        self._gate_ids = [gate["id"] for _, gate in gates]
        # Each kind's fields whose values `_check_types` checks.
        self._typed = {name: {f: t for f, t in kind.fields.items() if t in CLASS_TYPES}
                       for name, kind in pack.kinds.items()}

    @property
    def ruleset(self) -> DurableRuleset:
        """The pack as registered in durable-rules: what `evaluate` opens sessions on."""
        return self._ruleset

    def evaluate(self, given: Iterable[Fact], listeners: Iterable[Listener] = (), *,
                 budget: Budget | None = None) -> Derivation:
        """Derive every conclusion the pack supports from `given` plus the pack's facts,
        within `budget` (by default `Budget()`); the listeners are given the trace's
        events once it is complete."""
        facts: dict[str, Fact] = dict(self._pack_map)
        if len(self._texts) > self.TEXTS_KEPT or len(self._given_texts) > self.TEXTS_KEPT:
            self._texts.clear()
            self._given_texts.clear()
        sent: list[tuple[str, str]] = []  # (id, text) of each given fact some rule reads
        admit = self._admit
        for fact in given:
            if fact.id in facts:
                raise AssessmentError(f"two input facts share the id {fact.id!r}")
            facts[fact.id] = fact
            text = admit(fact)
            if text:
                sent.append((fact.id, text))
        asserted = sorted(facts.values(), key=_by_id)
        run = _Run(facts, budget or Budget(), len(facts))
        sent.sort()  # by id: ids are distinct
        ids = [fact_id for fact_id, _ in sent]
        texts = [text for _, text in sent]
        gates = self._gate_texts
        first = 0
        if gates and gates[0][0] == 0:
            first = 1
            ids.append(gates[0][1])
            texts.append(gates[0][2])
        with self._ruleset.session() as session:
            self._fixpoint(session, texts, ids, run)
            for _, gate_id, gate_text in gates[first:]:
                self._fixpoint(session, [gate_text], [gate_id], run)
            session.retract_all(first=self._gate_ids)
        derivation = Derivation(facts, run.firings, run.trace, asserted)
        for listener in listeners:
            for event in derivation.events:
                listener(event)
        return derivation

    def _admit(self, fact: Fact) -> str:
        """Check a given fact's types (`_check_types`) and return its text for the
        matcher, or "" when no rule reads its kind. A fact whose values are all strings
        (a safeguard, a channel: the same in many documents) is checked and prepared
        once and its text kept, by its id, kind and values (so a kept text also says
        the fact passed); any other is checked and prepared each time (a number or a
        bool is kept out of the key: `1`, `1.0` and `True` are equal keys)."""
        values = fact.values
        key: tuple[Any, ...] | None = None
        for value in values.values():
            if value.__class__ is not str:
                break
        else:
            key = (fact.id, fact.kind, *values.items())
            text = self._given_texts.get(key)
            if text is not None:
                return text
        self._check_types(fact)
        kind = fact.kind
        text = (self._ruleset.prepare(fact.wire(self._shape[kind]))
                if kind in self.compiled.consumed else "")
        if key is not None:
            self._given_texts[key] = text
        return text

    def _check_types(self, fact: Fact) -> None:
        """A given fact's values must have their fields' types: durable-rules would compare
        a `true` in a number field equal to `1` (pack facts and conclusions are checked
        when the pack loads). Values plainly of their type pass at once; any other is
        judged by `mistyped`."""
        typed = self._typed.get(fact.kind)
        if typed is None:
            return
        for name, value in fact.values.items():
            ftype = typed.get(name)
            if ftype is None or value is None:
                continue
            cls = value.__class__
            if (cls, ftype) in _PLAIN or (cls is float and ftype == NUMBER
                                          and value - value == 0):
                continue
            wrong = mistyped(fact.values, self.pack.kinds[fact.kind].fields)
            if wrong is not None:
                raise AssessmentError(f"fact {fact.id}: {fact.kind}.{wrong[0]} is a "
                                      f"{typed[wrong[0]]}, not {wrong[1]!r}")
            return

    def _fixpoint(self, session: Session | Sessions, texts: list[str], ids: list[str],
                  run: _Run) -> None:
        """Assert the facts whose texts are `texts` (their ids `ids`), then every new
        conclusion some rule reads, until the rules derive nothing new."""
        consumed, shape, prepare = self.compiled.consumed, self._shape, session.prepare
        kept = self._texts
        budget = run.budget
        while texts:
            try:
                activations = session.assert_prepared(
                    texts, ids, budget.firings - len(run.trace), run.deadline)
            except ActivationOverflow as exc:
                raise self._over_budget(run, exc.activations) from None
            new: list[Fact] = []
            self._fire(activations, run, new)
            if time.perf_counter() > run.deadline:
                raise self._over_budget(run, activations)
            new.sort(key=_by_id)
            texts, ids = [], []
            for fact in new:
                if fact.kind in consumed:
                    text = kept.get(fact.id)
                    if text is None:
                        text = kept[fact.id] = prepare(fact.wire(shape[fact.kind]))
                    texts.append(text)
                    ids.append(fact.id)

    def _over_budget(self, run: _Run, activations: list[tuple[str, Any]]) -> AssessmentError:
        """The error that stops an assessment past its budget, naming the rule that fired
        most in the batch that crossed it."""
        counts = Counter(name for name, _ in activations)
        name = counts.most_common(1)[0][0] if counts else None
        rule = self._plans[name].rule.id if name in self._plans else "(unknown)"
        budget = run.budget
        over = (f"more than {budget.seconds:g} seconds"
                if time.perf_counter() > run.deadline
                else f"more than {budget.firings:,} rule firings")
        return AssessmentError(f"the assessment was stopped after {over} (the budget per "
                               f"assessment; ASL_BUDGET raises it): the rule fires once per "
                               f"combination of its matches", rule)

    def _fire(self, activations: list[tuple[str, dict[str, dict[str, Any]]]], run: _Run,
              new: list[Fact]) -> None:
        """Turn a batch of activations into firings and their conclusions, in order; add
        the new facts to `new`. Everything about a rule that does not depend on the
        facts it matched was worked out once (`engine.firing_plan`)."""
        facts, firings, trace, plans = run.facts, run.firings, run.trace, self._plans
        most = run.given + run.budget.facts  # facts in all, past which the budget stops
        for name, bindings in activations:
            plan = plans.get(name)
            if plan is None:
                raise AssessmentError(f"the matcher fired an unknown rule {name!r}")
            try:
                firing = plan.fire(bindings, facts, new)
            except AssessmentError as exc:
                if exc.rule is not None:
                    raise
                raise AssessmentError(str(exc), plan.rule.id) from exc
            except Exception as exc:  # any failure inside a rule's action is the rule's
                raise AssessmentError(f"{type(exc).__name__}: {exc}", plan.rule.id) from exc
            firings[firing.id] = firing
            trace.append(firing)
            if len(facts) > most:
                raise AssessmentError(f"the assessment was stopped after deriving more than "
                                      f"{run.budget.facts:,} facts (the budget per assessment;"
                                      f" ASL_BUDGET raises it): the rule derives one per "
                                      f"combination of its matches", plan.rule.id)


class _Run:
    """One evaluation's state: its facts, firings (by id and in order) and budget."""

    __slots__ = ("budget", "deadline", "facts", "firings", "given", "trace")

    def __init__(self, facts: dict[str, Fact], budget: Budget, given: int) -> None:
        self.facts = facts
        self.firings: dict[str, Firing] = {}
        self.trace: list[Firing] = []
        self.budget = budget
        self.given = given
        self.deadline = time.perf_counter() + budget.seconds


def fill_because(template: str, bound: dict[str, Fact]) -> str:
    """The rule's `because` sentence with each `{name.field}` replaced by the value the
    firing matched."""

    def value(match: Any) -> str:
        name, _, fname = match.group(1).partition(".")
        fact = bound[name]
        raw = fact.info.get("display_id", fact.id) if fname == "id" else fact.values.get(fname)
        return "(unset)" if raw is None else render_value(raw)

    return PLACEHOLDER.sub(value, template)
