"""The one place that talks to durable-rules, and (with `engine.durable_network`, which
counts what its definitions need) the only one that knows its syntax.

It spells the compiler's neutral rules (`engine.compiler`) as durable-rules ruleset
definitions (`$and`, `$neq`, `$ex`, `$or`, `$m`, `NAME$not` patterns), adds the catch-all
sink rule durable-rules needs, and compiles a pack as one ruleset, or, when one ruleset
cannot hold it (`engine.durable_network` has the measured limits), as several whose
sessions every assessment drives together (`Sessions`). It owns a `durable.engine.Host`
(rulesets registered as data, no global `durable.lang` state) and drives the C matcher
directly: assert a batch of facts into a session, then take the rule activations one by
one. Everything durable-rules does quietly is made loud here: a refused or duplicate
fact raises `AssessmentError`; a session's state is deleted in a `finally`, so sessions
never pile up in C memory; and the host's background dispatch thread, which
durable-rules needs alive, is kept from taking our activations while a session is in
use.

Two defects of durable-rules 2.0.28's C matcher (`reduceExpressionSequence`) decide how
each pattern's tests are ordered (`pattern_definition`):
- when the last comparison against an earlier-bound fact is false, the matcher scans
  past the end of the expression list for its terminator (reads beyond the buffer and
  can crash); a trailing cross-fact comparison that is always true keeps it in bounds
  (same-fact comparisons are alpha tests, outside that list): every fact carries
  `ANCHOR_FIELD = 0`, and the anchor compares it with the first bound fact's;
- a `$or` ends the `$and` early, skipping every comparison after it; so `in` tests
  (compiled to `$or`) come last.
The set-guards come out as durable can check them: `Exists` as `$ex` (without it, when
the field is unset durable answers a same-fact comparison as another rule's constant
test on the same field and operator: `score >= threshold_score` fires like `score >=
0.9`), and `BoundIsSet` as a comparison with the earlier fact's `__unset_FIELD` flag
(0 or 1), which facts of that kind carry (durable rejects the batch when a join reads
a field the earlier fact lacks).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, TypeVar

import durable_rules_engine
import orjson
from durable import engine as durable_engine

from engine.compiler import (
    BoundField,
    BoundIsSet,
    Compare,
    CompiledRule,
    Const,
    Exists,
    FieldOf,
    NeutralTest,
    OneOf,
    Pattern,
)
from engine.durable_network import TooLarge, plan
from engine.errors import AssessmentError

# One lock for the whole process: the C engine is shared by every host.
_ENGINE_LOCK = threading.RLock()
_RULESET_NAMES = itertools.count()
_SESSION_IDS = itertools.count()

MAX_IDLE_SESSIONS = 4
# durable-rules keeps a little C memory per assessment run in a session, even after
# every fact is retracted (~0.5 KB); replacing a session now and then keeps memory flat.
MAX_SESSION_USES = 1000
SINK_RULE = "__sink"
# Accepts any fact and never fires: durable-rules refuses a fact no rule matches, and a
# refused fact in a batch stalls the rest.
SINK_DEFINITION = {"all": [{"any_fact": {"$ex": {"kind": 1}}},
                           {"never": {"kind": "__never__"}}]}
ANCHOR_FIELD = "__n"  # on every fact, 0: see the module docstring
UNSET_PREFIX = "__unset_"  # `__unset_FIELD`: 1 when the fact leaves FIELD unset, else 0
# durable-rules' spelling of the operator table's comparisons (`eq`, `in` and `exists`
# are written as patterns of their own). Within one class of values durable compares
# as the table says; the loader keeps every test within one class.
OPERATORS = {"ne": "$neq", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
OPEN_RULE = "__open"
OPEN_DEFINITION = {"all": [{"session": {"kind": OPEN_RULE}}]}
Activation = tuple[str, dict[str, dict[str, Any]]]  # durable rule name, binding -> fact


def rule_definition(rule: CompiledRule) -> dict[str, Any]:
    """A compiled rule as a durable-rules rule: an `all` of its patterns, each a named
    `$and` (a negated one named `NAME$not`)."""
    patterns: list[dict[str, Any]] = []
    first: str | None = None  # the first bound pattern's alias: the anchor's target
    for pattern in rule.patterns:
        name = f"{pattern.alias}$not" if pattern.negated else pattern.alias
        patterns.append({name: pattern_definition(pattern, first)})
        if not pattern.negated:
            first = first or pattern.alias
    return {"all": patterns}


def pattern_definition(pattern: Pattern, first: str | None) -> dict[str, Any]:
    """One pattern as durable-rules' `$and`: the kind, then tests on the fact alone,
    then comparisons with earlier-bound facts and the anchor after them, then the `$or`s
    (see the module docstring for why in that order)."""
    constants: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    for test in pattern.tests:
        if isinstance(test, OneOf):
            choices.append(_spell(test))
        elif isinstance(test, BoundIsSet) or (isinstance(test, Compare)
                                              and isinstance(test.operand, BoundField)):
            references.append(_spell(test))
        else:
            constants.append(_spell(test))
    if references and first is not None:
        references.append({"$gte": {ANCHOR_FIELD: {first: ANCHOR_FIELD}}})
    return {"$and": [{"kind": pattern.kind}, *constants, *references, *choices]}


def _spell(test: NeutralTest) -> dict[str, Any]:
    """One neutral test in durable-rules' syntax."""
    if isinstance(test, Exists):
        return {"$ex" if test.present else "$nex": {test.field: 1}}
    if isinstance(test, OneOf):
        return {"$or": [{test.field: value} for value in test.values]}
    if isinstance(test, BoundIsSet):
        return {ANCHOR_FIELD: {test.alias: UNSET_PREFIX + test.field}}
    operand = test.operand
    spelled: Any = ({"$m": operand.field} if isinstance(operand, FieldOf)
                    else {operand.alias: operand.field} if isinstance(operand, BoundField)
                    else operand.value if isinstance(operand, Const) else None)
    if test.op == "eq":
        return {test.field: spelled}
    return {OPERATORS[test.op]: {test.field: spelled}}


def ruleset_definition(rules: dict[str, CompiledRule]) -> dict[str, Any]:
    """Every compiled rule by name, and the sink rule: a whole durable-rules ruleset."""
    return {SINK_RULE: SINK_DEFINITION, **{name: rule_definition(rule)
                                           for name, rule in rules.items()}}


class RulesetRefused(AssessmentError):
    """durable-rules could not compile a rule even in a ruleset of its own; `name` is
    the compiled rule's name (`engine.compiler`), for the caller to locate."""

    def __init__(self, message: str, name: str | None) -> None:
        self.name = name
        super().__init__(message)


# What durable-rules' refusals mean (src/rules/rules.h; engine.durable_network).
REFUSALS = {
    106: "more distinct tests than durable-rules takes after one test",
    107: "more `exists: false` or `in` tests than durable-rules takes after one test",
    108: "more conditions with the same kind and tests than durable-rules takes",
    113: "more than 32 comparisons in one condition",
}
_ERROR_CODE = re.compile(r"error code: (\d+)")
Built = TypeVar("Built")


def compile_rulesets(rules: dict[str, CompiledRule],
                     create: Callable[[dict[str, Any]], Built]) -> list[tuple[list[str], Built]]:
    """Compile the rules as the rulesets `engine.durable_network.plan` splits them into
    (one, for every pack that fits in one), each made by `create(definition)`; the rule
    names of each and what `create` made of it. A ruleset durable-rules refuses anyway
    is halved until it is taken; a single rule it refuses raises `RulesetRefused`."""
    definitions = {name: rule_definition(rule) for name, rule in rules.items()}
    try:
        pending = plan(definitions, {SINK_RULE: SINK_DEFINITION, OPEN_RULE: OPEN_DEFINITION})
    except TooLarge as exc:
        raise RulesetRefused(f"durable-rules cannot compile it, even alone: {exc}",
                             exc.name) from exc
    built: list[tuple[list[str], Built]] = []
    while pending:
        names = pending.pop(0)
        try:
            built.append((names, create(ruleset_definition({n: rules[n] for n in names}))))
        except Exception as exc:  # durable raises bare Exception with an error code
            if len(names) > 1:
                half = len(names) // 2
                pending[:0] = [names[:half], names[half:]]
                continue
            code = _ERROR_CODE.search(str(exc))
            meaning = REFUSALS.get(int(code.group(1))) if code else None
            raise RulesetRefused(f"durable-rules cannot compile it, even alone: {exc}"
                                 + (f" ({meaning})" if meaning else ""),
                                 names[0] if names else None) from exc
    return built


_CHECKS = itertools.count()


def check_compiles(rules: dict[str, CompiledRule]) -> int:
    """Compile the rules exactly as `DurableRuleset` does (the same definitions, split
    the same way), then delete what was made: raises `RulesetRefused` for a rule
    durable-rules cannot take. The number of rulesets the rules need."""

    def create(definition: dict[str, Any]) -> None:
        spelled = json.dumps({**definition, OPEN_RULE: OPEN_DEFINITION}, ensure_ascii=False)
        with _ENGINE_LOCK:
            handle = durable_rules_engine.create_ruleset(f"check{next(_CHECKS)}", spelled)
            durable_rules_engine.delete_ruleset(handle)

    return len(compile_rulesets(rules, create))


def flagged_fields(rules: dict[str, CompiledRule]) -> dict[str, tuple[str, ...]]:
    """The fields whose `__unset_` flag the facts of each kind must carry: those some
    rule's `BoundIsSet` guard reads."""
    flagged: dict[str, set[str]] = {}
    for rule in rules.values():
        kinds = {p.alias: p.kind for p in rule.patterns if not p.negated}
        for pattern in rule.patterns:
            for test in pattern.tests:
                if isinstance(test, BoundIsSet):
                    flagged.setdefault(kinds[test.alias], set()).add(test.field)
    return {kind: tuple(sorted(fields)) for kind, fields in sorted(flagged.items())}


class _PackHost(durable_engine.Host):
    """A host whose actions are never run by durable-rules itself: the adapter takes
    each activation as data. An action reached through the host means an activation
    escaped us, which is recorded and reported."""

    def __init__(self) -> None:
        self.escaped: list[str] = []
        super().__init__()

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        def escaped(_closure: Any) -> None:
            self.escaped.append(action_name)

        return escaped


def _guarded(method: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with _ENGINE_LOCK:
            return method()

    return run


class RulesetHandle:
    """A registered ruleset that sessions can be opened on."""

    def __init__(self, host: _PackHost, name: str, base: list[dict[str, Any]],
                 flagged: dict[str, tuple[str, ...]]) -> None:
        self._host = host
        self.name = name
        self._base = base
        self.flagged = flagged
        ruleset = host.get_ruleset(name)
        self._handle = ruleset._handle
        # The host's timer thread calls these; make them wait for any session in use.
        ruleset.dispatch = _guarded(ruleset.dispatch)  # type: ignore[method-assign]
        ruleset.dispatch_timers = _guarded(ruleset.dispatch_timers)  # type: ignore[method-assign]
        self._idle: list[Session] = []

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session with an empty working memory, for one assessment.

        Creating a durable session costs more than an assessment (it allocates index
        tables for every pattern of every rule), so a session the caller has emptied with
        `retract_all` goes back to a small pool (until it has served MAX_SESSION_USES
        assessments); any other session is deleted, however the caller leaves. Each
        session is opened by firing the `__open` rule once (durable leaves a new session's
        action context uninitialised until an action has run, and deleting a session in
        that state frees a garbage pointer), then given the base facts, which stay for
        every assessment run in it."""
        with _ENGINE_LOCK:
            session = self._idle.pop() if self._idle else self._open()
            try:
                yield session
            finally:
                session.uses += 1
                if (session.empty and session.uses < MAX_SESSION_USES
                        and len(self._idle) < MAX_IDLE_SESSIONS):
                    self._idle.append(session)
                else:
                    durable_rules_engine.delete_state(self._handle, session.sid)
        if self._host.escaped:
            escaped = ", ".join(self._host.escaped)
            self._host.escaped.clear()
            raise AssessmentError(f"durable-rules ran activations outside the adapter: {escaped}")

    def _open(self) -> Session:
        session = Session(self, f"s{next(_SESSION_IDS)}")
        try:
            opened = session.assert_facts([{"id": OPEN_RULE, "kind": OPEN_RULE}])
            if [name for name, _ in opened] != [OPEN_RULE]:
                raise AssessmentError(f"durable-rules did not open session {session.sid}")
            fired = session.assert_facts([dict(f) for f in self._base])
            if fired:
                raise AssessmentError(f"rule {fired[0][0]} fires on the permanent facts alone")
        except BaseException:
            durable_rules_engine.delete_state(self._handle, session.sid)
            raise
        session.forget()
        return session

    def close(self) -> None:
        """Delete the pooled sessions (the host itself lives as long as the process)."""
        with _ENGINE_LOCK:
            while self._idle:
                durable_rules_engine.delete_state(self._handle, self._idle.pop().sid)


class Session:
    """One assessment's working memory in one ruleset. It remembers what was asserted
    so that `retract_all` can leave it empty for the next assessment."""

    def __init__(self, ruleset: RulesetHandle, sid: str) -> None:
        self._ruleset = ruleset
        self._handle = ruleset._handle
        self.sid = sid
        self._asserted: list[str] = []
        self._permanent: list[str] = []  # the ids of the opening fact and the base
        self._flagged = ruleset.flagged
        self.empty = True
        self.uses = 0

    def forget(self) -> None:
        """Treat what is asserted now as the session's permanent base."""
        self._permanent.extend(self._asserted)
        self._asserted = []
        self.empty = True

    def prepare(self, fact: dict[str, Any]) -> str:
        """The JSON text of one fact (a dict this call changes) as this session's
        ruleset reads it, lacking only the session id: `assert_prepared` takes it. A
        fact's text is the same in every session of the ruleset, so a caller may keep it
        and assert it again in another assessment."""
        return prepare_fact(fact, self._flagged)

    def assert_facts(self, facts: list[dict[str, Any]]) -> list[Activation]:
        """Assert a batch and return every activation it caused, in the order durable
        produced them. Raises `AssessmentError` if any fact is refused or repeated.
        Each fact (a dict this call may change) gets the session id, the anchor and
        the `__unset_` flags its kind needs."""
        if not facts:
            return []
        texts = [self.prepare(fact) for fact in facts]
        for fact in facts:
            fact["sid"] = self.sid
        return self.assert_prepared(texts, [str(f["id"]) for f in facts])

    def assert_prepared(self, texts: list[str], ids: list[str], limit: int | None = None,
                        deadline: float | None = None) -> list[Activation]:
        """`assert_facts` for facts already `prepare`d (`ids`: theirs, in the same
        order). At most `limit` activations are taken, and none after `deadline` (a
        `time.perf_counter()` value): past either, the session's pending work is
        abandoned and `ActivationOverflow` raised with the activations taken so far."""
        if not texts:
            return []
        self.empty = False
        self._asserted.extend(ids)
        tail = f',"sid":"{self.sid}"}}'
        try:
            code, state_handle = durable_rules_engine.assert_facts(
                self._handle, f"[{(tail + ',').join(texts)}{tail}]")
        except Exception as exc:  # durable raises bare Exception with an error code
            raise AssessmentError(f"durable-rules rejected a batch: {exc}") from exc
        if code == 1:
            raise AssessmentError(f"durable-rules refused a fact no rule matches in "
                                  f"{self._ruleset.name}: {_listed(ids)}")
        if code == 2:
            raise AssessmentError(_seen_twice(self._ruleset.name,
                                                    [*self._permanent, *self._asserted], ids))
        return self._drain(state_handle, limit, deadline)

    def retract_all(self, first: Sequence[str] = ()) -> None:
        """Retract every fact asserted since the session was opened, the ids in `first`
        before the rest (retracting can satisfy a negation, so whatever keeps negating
        rules closed must go first). Any activation this causes means the session is
        not safely reusable, so it is then left to be deleted."""
        early = set(first)
        ordered = [[i for i in self._asserted if i in early],
                   [i for i in self._asserted if i not in early]]
        for ids in ordered:
            if not ids:
                continue
            try:
                code, state_handle = durable_rules_engine.retract_facts(
                    self._handle,
                    orjson.dumps([{"id": i, "sid": self.sid} for i in ids]).decode())
            except Exception as exc:
                raise AssessmentError(f"durable-rules could not retract facts: {exc}") from exc
            if code != 0 or self._drain(state_handle):
                return
        self._asserted = []
        self.empty = True

    def _drain(self, state_handle: int, limit: int | None = None,
               deadline: float | None = None) -> list[Activation]:
        """Take every pending activation of the batch, in durable's order. Each action's
        message is kept as text until the batch is drained and then parsed all at once
        (durable gives one rule's activation per action)."""
        handle = self._handle
        messages: list[str] = []
        try:
            started = durable_rules_engine.start_action_for_state(handle, state_handle)
            if not started:
                return []
            message = started[1]
            complete = durable_rules_engine.complete_and_start_action
            if limit is None:
                while message:
                    messages.append(message)
                    message = complete(handle, state_handle)
            else:
                taken = 0
                while message:
                    messages.append(message)
                    taken += 1
                    if taken > limit or (deadline is not None and not taken % 256
                                         and time.perf_counter() > deadline):
                        durable_rules_engine.abandon_action(handle, state_handle)
                        raise ActivationOverflow(_activations(messages))
                    message = complete(handle, state_handle)
        except ActivationOverflow:
            raise
        except Exception as exc:
            raise AssessmentError(f"durable-rules failed while firing rules: {exc}") from exc
        return _activations(messages)


def _activations(messages: list[str]) -> list[Activation]:
    """The activations in durable's action messages (`{rule: {alias: fact}}` each),
    in order; the sink rule's (it never fires) are never the caller's business."""
    activations: list[Activation] = []
    for fired in orjson.loads(f"[{','.join(messages)}]"):
        for name, bindings in fired.items():
            if name != SINK_RULE:
                activations.append((name, bindings))
    return activations


def prepare_fact(fact: dict[str, Any], flagged: dict[str, tuple[str, ...]]) -> str:
    """`Session.prepare`, for a ruleset whose kinds carry the `__unset_` flags of
    `flagged` (`flagged_fields`)."""
    for name in flagged.get(fact["kind"], ()):
        fact[UNSET_PREFIX + name] = 0 if fact.get(name) is not None else 1
    fact[ANCHOR_FIELD] = 0
    fact.pop("sid", None)
    return encode([fact])[1:-2]  # `[{...}]` -> `{...` : the sid and `}` come last


class ActivationOverflow(AssessmentError):
    """More activations came out of one batch than the caller's budget allows (or they
    took past its deadline); `activations` are those taken before stopping. The session
    is left unusable (it is deleted, never pooled)."""

    def __init__(self, activations: list[Activation]) -> None:
        super().__init__("too many rule activations")
        self.activations = activations


def fnv1a_32(text: str) -> int:
    """The 32-bit FNV-1a hash of a fact id, by which durable-rules knows a fact: two
    ids with one hash are one fact to it.

    >>> hex(fnv1a_32("a"))
    '0xe40c292c'
    """
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def _seen_twice(ruleset: str, asserted: Sequence[str], ids: Sequence[str]) -> str:
    """Why durable-rules refused a batch as holding a fact it already had: a repeated
    id, or (named as such) two different ids with one 32-bit hash."""
    seen: dict[int, str] = {}
    for fact_id in asserted:  # `ids` are the last of these
        other = seen.setdefault(fnv1a_32(fact_id), fact_id)
        if other != fact_id:
            return (f"fact ids {other!r} and {fact_id!r} share the 32-bit hash "
                    f"{fnv1a_32(fact_id):#010x} by which durable-rules identifies facts in "
                    f"{ruleset}: one would be lost, so the assessment stops")
    return f"durable-rules saw a fact twice in {ruleset}: {_listed(ids)}"


# durable-rules' JSON reader misreads a number with an exponent but no decimal point
# (`1e-7`, `1e26`: the process crashes or the fact is lost); orjson writes exactly those.
_BARE_EXPONENT = re.compile(rb'(?<!\\)":(-?[0-9]+)([eE])')


def encode(facts: list[dict[str, Any]]) -> str:
    """Facts as JSON durable-rules reads and compares correctly: every number is sent as
    a float (durable's equality join finds `1` and `1.0`, or `0.0` and `-0.0`, unequal),
    and every exponent number gets a decimal point."""
    exponent = False
    for fact in facts:
        for key, value in fact.items():
            kind = type(value)
            if kind is int:
                value = fact[key] = float(value)
                kind = float
            if kind is float:
                if not value:
                    fact[key] = 0.0  # not -0.0
                elif not 1e-4 <= abs(value) < 1e16:
                    exponent = True  # orjson writes these with an exponent
    data = orjson.dumps(facts)
    if exponent:
        data = _BARE_EXPONENT.sub(rb'":\1.0\2', data)
    return data.decode()


def _listed(ids: Sequence[str]) -> str:
    return ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")


class Sessions:
    """One assessment's working memory in a pack split across rulesets: a session of
    each, every one given every fact (a fact no rule of a ruleset reads only meets its
    sink), prepared alike (each ruleset flags the fields any rule of the pack reads).
    Asserting gives the activations of every ruleset, in ruleset order; the set of
    conclusions does not depend on that order."""

    def __init__(self, sessions: list[Session]) -> None:
        self._sessions = sessions

    @property
    def empty(self) -> bool:
        return all(session.empty for session in self._sessions)

    def prepare(self, fact: dict[str, Any]) -> str:
        """As `Session.prepare`: the same text for every ruleset of the pack."""
        return self._sessions[0].prepare(fact)

    def assert_facts(self, facts: list[dict[str, Any]]) -> list[Activation]:
        """As `Session.assert_facts`, in every ruleset."""
        activations: list[Activation] = []
        for session in self._sessions:
            activations += session.assert_facts([dict(f) for f in facts])
        return activations

    def assert_prepared(self, texts: list[str], ids: list[str], limit: int | None = None,
                        deadline: float | None = None) -> list[Activation]:
        """As `Session.assert_prepared`, in every ruleset, `limit` counting them all."""
        activations: list[Activation] = []
        for session in self._sessions:
            left = None if limit is None else limit - len(activations)
            try:
                activations += session.assert_prepared(texts, ids, left, deadline)
            except ActivationOverflow as exc:
                raise ActivationOverflow(activations + exc.activations) from None
        return activations

    def retract_all(self, first: Sequence[str] = ()) -> None:
        """As `Session.retract_all`, in every ruleset."""
        for session in self._sessions:
            session.retract_all(first)


class DurableRuleset:
    """Compiled rules (by name) registered in a host of their own, ready to open
    sessions on; `base` facts are asserted into every session and stay there. A pack
    one durable ruleset cannot hold is registered as several (`compile_rulesets`), and
    a session then spans them (`Sessions`)."""

    def __init__(self, rules: dict[str, CompiledRule],
                 base: Sequence[dict[str, Any]] = ()) -> None:
        self._host = _PackHost()
        flagged = flagged_fields(rules)  # the whole pack's, in every ruleset
        self._parts = [RulesetHandle(self._host, name, [dict(f) for f in base], flagged)
                       for _, name in compile_rulesets(rules, self._register)]
        self._ruleset = self._parts[0]

    @classmethod
    def spelled(cls, definition: dict[str, Any]) -> DurableRuleset:
        """A ruleset from rules already in durable-rules' syntax, without the sink: for
        tests of what durable-rules itself does with a definition."""
        ruleset = cls.__new__(cls)
        ruleset._host = _PackHost()
        try:
            name = ruleset._register(definition)
        except Exception as exc:
            raise AssessmentError(f"durable-rules could not compile the pack: {exc}") from exc
        ruleset._parts = [RulesetHandle(ruleset._host, name, [], {})]
        ruleset._ruleset = ruleset._parts[0]
        return ruleset

    def prepare(self, fact: dict[str, Any]) -> str:
        """As `Session.prepare`, before any session is opened: the text is the same in
        every session of this pack."""
        return prepare_fact(fact, self._parts[0].flagged)

    @property
    def rulesets(self) -> int:
        """How many durable rulesets the pack was compiled into."""
        return len(self._parts)

    def _register(self, definition: dict[str, Any]) -> str:
        """Register one ruleset in the host; its name. durable-rules' own exception
        (with its error code) goes to the caller."""
        name = f"asl{next(_RULESET_NAMES)}"
        definition = {**definition, OPEN_RULE: OPEN_DEFINITION}
        bodies = {rule: dict(body, run=rule) for rule, body in definition.items()}
        self._host.register_rulesets(json.loads(json.dumps({name: bodies})))
        return name

    def close(self) -> None:
        """Delete the sessions kept for reuse."""
        for ruleset in self._parts:
            ruleset.close()

    def session(self) -> AbstractContextManager[Session | Sessions]:
        """A fresh session (spanning every ruleset of a split pack), deleted however the
        caller leaves it."""
        if len(self._parts) == 1:
            return self._ruleset.session()
        return self._sessions()

    @contextmanager
    def _sessions(self) -> Iterator[Sessions]:
        with ExitStack() as stack:
            yield Sessions([stack.enter_context(ruleset.session())
                            for ruleset in self._parts])
