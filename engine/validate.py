"""Checks a loaded pack passes only if its rules can do what their authors meant.

Loading (engine.loader) refuses a pack that cannot run. `validate_pack` looks at one that
can, for rules that can run but are probably wrong, and reports each as
`file:line: code: message` (a `PackProblem`), like the load stages:

- `contradiction`: a condition's tests on one field can never all hold (`gt 5` and `lt 3`);
- `impossible-value`: no value the field can take passes its tests (`capability where
  name: CBRN-9` when no capability is named so; did you mean 'CBRN-3'?);
- `unknown-value`: a value that never occurs, in an `in` list or a `ne` test (the test
  still holds for something, but the value is probably misspelt);
- `unproduced-kind`: a condition on a kind that no rule concludes, no pack fact states and
  no model document provides;
- `never-fires`: a rule matching a kind only rules that can never fire conclude;
- `conflict`: two rules concluding different values of a single-valued conclusion
  (`decision`, `status` per capability, ...) from conditions that can hold together;
- `citation`: a citation with text glued to the section it cites (`§3.3x`);
- `compile`: a rule durable-rules cannot compile (`compile_problems`, which the loader
  runs, so every command, this one included, refuses such a pack before assessing);
- `untested`, and the case-file checks of `engine.casetest.check_cases` (`case`,
  `case-key`, `case-rule`, `case-model`, `case-kind`, `case-field`, `case-value`,
  `case-output`): rules no case is about, and cases that cannot be run as written.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from itertools import combinations
from typing import Any

from engine.casetest import check_cases
from engine.constraints import (
    EVIDENCE_KINDS,
    Domain,
    Domains,
    by_field,
    field_domains,
    holds,
    is_constant,
    satisfiable,
    suggest,
    values_text,
)
from engine.errors import PackProblem
from engine.model import (
    ORIGIN_PACK,
    Conclusion,
    Condition,
    Operand,
    Pack,
    Rule,
    Test,
)

# What may follow the cited section: nothing, or a separator before more text.
CITE_TAIL = re.compile(r"^($|[;,:] |\s+\(|\s+(and|&)\s|\s+-\s)")
FATAL = ("contradiction", "impossible-value", "never-fires")  # the rule can never fire


def validate_pack(pack: Pack) -> list[PackProblem]:
    """Every problem the checks find in a loaded pack, sorted by file and line."""
    domains = field_domains(pack)
    problems, dead = check_rules(pack, domains)
    problems += check_conflicts(pack, domains, dead)
    problems += check_citations(pack)
    problems += check_cases(pack, domains)
    return sorted(set(problems))


# --- what durable-rules can compile ---------------------------------------------------


def compile_problems(pack: Pack) -> list[PackProblem]:
    """Compile the pack with durable-rules exactly as an assessment will (the same
    ruleset definitions, split into as many rulesets as the matcher's limits need:
    engine.durable_network), keeping nothing: a rule it cannot take, even in a ruleset
    of its own, is one `compile` problem at the rule's line."""
    from engine.compiler import compile_pack
    from engine.durable_adapter import RulesetRefused, check_compiles

    compiled = compile_pack(pack)
    try:
        check_compiles(compiled.compiled)
    except RulesetRefused as exc:
        rule = compiled.rules.get(exc.name or "")
        if rule is None:
            where = pack.sources[0] if pack.sources else pack.name
            return [PackProblem(str(where), 0, "compile", str(exc))]
        return [PackProblem(rule.file, rule.line, "compile", f"rule {rule.id!r}: {exc}")]
    return []


# --- conditions that can never hold ---------------------------------------------------


def check_rules(pack: Pack, everywhere: Domains) -> tuple[list[PackProblem], set[str]]:
    """Tests that contradict each other or the values a field can take (`everywhere`:
    the domains from every rule), and the rules that therefore (or through the kinds they
    match) can never fire; return the problems and the ids of those rules.

    A value only a rule that can never fire concludes never occurs either, so the
    field domains are recomputed from the live rules until the dead ones stay the same."""
    dead: set[str] = set()
    while True:
        domains = field_domains(pack, [r for r in pack.rules if r.id not in dead]) if dead \
            else everywhere
        problems: list[PackProblem] = []
        direct: set[str] = set()
        for rule in pack.rules:
            for cond in rule.conditions:
                found = _condition_problems(pack, rule, cond, domains, everywhere)
                problems += found
                if not cond.negated and any(p.code in FATAL for p in found):
                    direct.add(rule.id)
        live = _live(pack, direct)
        now_dead = {r.id for r in pack.rules} - live
        if now_dead == dead:
            return problems + _unreachable(pack, live), dead
        dead = now_dead


def _condition_problems(pack: Pack, rule: Rule, cond: Condition, domains: Domains,
                        everywhere: Domains) -> list[PackProblem]:
    kind = pack.kinds.get(cond.kind)
    if kind is None:
        return []
    problems: list[PackProblem] = []
    for fname, tests in by_field(cond.tests).items():
        line = tests[0].line or cond.line
        where = f"rule {rule.id!r}: {cond.kind}.{fname}"
        texts = " and ".join(t.text() for t in tests)
        if not satisfiable(tests):
            problems.append(PackProblem(rule.file, line, "contradiction",
                                        f"{where}: `{texts}` can never all hold"))
            continue
        key = (cond.kind, fname)
        problems += _domain_problems(rule, cond, tests, (domains.get(key),
                                     everywhere.get(key)), where, line)
    if kind.origin == ORIGIN_PACK and not problems:
        problems += _pack_fact_problems(pack, rule, cond)
    return problems


def _constants(test: Test) -> list[Any]:
    return list(test.operand.constant) if test.op == "in" else [test.operand.constant]


def _domain_problems(rule: Rule, cond: Condition, tests: list[Test],
                     domain_pair: tuple[Domain, Domain], where: str, line: int
                     ) -> list[PackProblem]:
    """Values the field never takes; and tests no value of the field passes. The pair
    is the field's domain from live rules and from every rule: a value only dead rules
    conclude is not misspelt, but the test still never holds."""
    domain, everywhere = domain_pair
    if domain is None or not domain:
        return []
    problems = []
    unknown = [(t, c) for t in tests if t.op in ("eq", "in", "ne") for c in _constants(t)
               if not any(holds("eq", v, c) for v in domain)]
    possible = satisfiable(tests, domain)
    negation = " (so this `none` always holds)" if cond.negated else ""
    for test, constant in unknown:
        hint = suggest(constant, domain)
        if everywhere and any(holds("eq", v, constant) for v in everywhere):
            problems.append(PackProblem(rule.file, test.line or line, "never-fires",
                                        f"{where} is {constant!r} only in conclusions of "
                                        f"rules that can never fire{negation}"))
        elif test.op in ("eq", "in") and not possible:
            problems.append(PackProblem(rule.file, test.line or line, "impossible-value",
                                        f"{where} is never {constant!r}{negation}{hint}"))
        else:
            problems.append(PackProblem(rule.file, test.line or line, "unknown-value",
                                        f"{where} is never {constant!r}, so `{test.text()}` "
                                        f"cannot be what was meant{hint}"))
    if not possible and not any(p.code in FATAL for p in problems):
        texts = " and ".join(t.text() for t in tests)
        problems.append(PackProblem(rule.file, line, "impossible-value",
                                    f"{where}: no value it takes ({values_text(domain)}) "
                                    f"passes `{texts}`{negation}"))
    return problems


def _pack_fact_problems(pack: Pack, rule: Rule, cond: Condition) -> list[PackProblem]:
    """A condition on a pack kind that no pack fact passes (its constant tests only)."""
    tests = [t for t in cond.tests if is_constant(t)]
    facts = [f for f in pack.facts if f.kind == cond.kind]
    if not tests or not facts:
        return []

    def passes(values: dict[str, Any], test: Test) -> bool:
        value = values.get(test.field)
        if test.op == "exists":
            return bool((value is not None) == test.operand.constant)
        return value is not None and holds(test.op, value, test.operand.constant)

    if any(all(passes(f.values, t) for t in tests) for f in facts):
        return []
    texts = ", ".join(t.text() for t in tests)
    negation = " (so this `none` always holds)" if cond.negated else ""
    return [PackProblem(rule.file, cond.line, "impossible-value",
                        f"rule {rule.id!r}: no {cond.kind} fact of the pack has {texts}"
                        f"{negation}")]


def _given(pack: Pack) -> set[str]:
    """Kinds with facts before any rule fires: evidence, and pack kinds the pack states."""
    return {k for k, spec in pack.kinds.items()
            if (spec.origin == ORIGIN_PACK and any(f.kind == k for f in pack.facts))
            or k in EVIDENCE_KINDS}


def _live(pack: Pack, dead: set[str]) -> set[str]:
    """The rules that can fire: not dead themselves, and matching only kinds that are
    given or concluded by rules that can fire."""
    available = _given(pack)
    live: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in pack.rules:
            if rule.id not in dead and rule.id not in live and rule.consumes <= available:
                live.add(rule.id)
                available |= rule.produces
                changed = True
    return live


def _unreachable(pack: Pack, live: set[str]) -> list[PackProblem]:
    """Conditions on a kind nothing provides: no rule concludes it (`unproduced-kind`),
    or only rules that can never fire do (`never-fires`)."""
    available = _given(pack).union(*(r.produces for r in pack.rules if r.id in live))
    producers: dict[str, list[str]] = {}
    for rule in pack.rules:
        for kind in rule.produces:
            producers.setdefault(kind, []).append(rule.id)
    problems = []
    for rule in pack.rules:
        for cond in rule.conditions:
            if cond.kind not in pack.kinds or cond.kind in available:
                continue
            makers = producers.get(cond.kind)
            if cond.negated and makers:
                continue  # negating a kind only dead rules make: the negation holds
            if makers:
                problems.append(PackProblem(rule.file, cond.line, "never-fires",
                                            f"rule {rule.id!r} can never fire: it matches "
                                            f"{cond.kind!r}, which only rules that can never "
                                            f"fire conclude ({', '.join(sorted(makers))})"))
            else:
                then = ("so this `none` always holds" if cond.negated
                        else "so the rule can never fire")
                problems.append(PackProblem(rule.file, cond.line, "unproduced-kind",
                                            f"rule {rule.id!r}: no rule concludes "
                                            f"{cond.kind!r}, no pack fact states it and no "
                                            f"model document provides it, {then}"))
    return problems


# --- conflicting conclusions ------------------------------------------------------------


def check_conflicts(pack: Pack, domains: Domains, dead: Collection[str] = ()
                    ) -> list[PackProblem]:
    """Pairs of rules concluding different values of a single-valued kind (one the
    output reads exactly one of, per key field: `FrameworkSpec.single_valued`) for the
    same key, one of them a constant and the other a constant or a copied field that can
    hold another value, unless their conditions exclude each other: one negates a kind
    the other matches, or both test one field of a kind with disjoint constants. Rules
    that can never fire (`dead`) conflict with nothing."""
    problems = []
    single = pack.spec.single_valued()
    live = [r for r in pack.rules if r.id not in dead]
    for first, second in combinations(live, 2):
        for c1 in first.conclusions:
            for c2 in second.conclusions:
                clash = _clash((first, c1), (second, c2), domains, single)
                if clash is None or _exclusive(first, second):
                    continue
                fname, v1, v2 = clash
                key = single[c1.kind]
                scope = f" for the same {', '.join(key)}" if key else ""
                problems.append(PackProblem(
                    second.file, second.line, "conflict",
                    f"rules {first.id!r} ({first.file}:{first.line}) and {second.id!r} "
                    f"conclude {c1.kind}.{fname} {v1} and {v2}{scope} from conditions that "
                    "can hold together; make them exclusive (a `none:` of what the other "
                    "matches, or disjoint tests on one field)"))
    return problems


def _concluded(rule: Rule, operand: Operand, domains: Domains) -> frozenset[Any] | None:
    """The values a conclusion field can take: its constant, or the values of the field
    it copies that pass the rule's constant tests on it (None when unknown)."""
    if operand.ref is None:
        return frozenset([operand.constant])
    name, fname = operand.ref
    cond = next((c for c in rule.conditions if not c.negated and c.name == name), None)
    domain = domains.get((cond.kind, fname)) if cond else None
    if cond is None or domain is None:
        return None
    tests = [t for t in cond.tests if t.field == fname and is_constant(t) and t.op != "exists"]
    return frozenset(v for v in domain if all(holds(t.op, v, t.operand.constant)
                                              for t in tests))


def _clash(one: tuple[Rule, Conclusion], other: tuple[Rule, Conclusion], domains: Domains,
           single: dict[str, tuple[str, ...]]) -> tuple[str, str, str] | None:
    """The first value field the two conclusions can disagree on, with each side's
    value(s) as text, when they conclude the same single-valued kind for the same key."""
    (r1, c1), (r2, c2) = one, other
    if c1.kind != c2.kind or c1.kind not in single:
        return None
    v1, v2 = dict(c1.values), dict(c2.values)
    for key in single[c1.kind]:
        if key in v1 and key in v2:
            a, b = _concluded(r1, v1[key], domains), _concluded(r2, v2[key], domains)
            if a is not None and b is not None and not a & b:
                return None  # never the same key
    for fname in sorted(v1.keys() & v2.keys()):
        if fname in single[c1.kind]:
            continue
        a, b = _concluded(r1, v1[fname], domains), _concluded(r2, v2[fname], domains)
        if not a or not b or not (len(a) == 1 or len(b) == 1):
            continue  # unknown, or both copied: claim nothing
        if len(a | b) > 1:
            return fname, _one_of(a), _one_of(b)
    return None


def _one_of(values: frozenset[Any]) -> str:
    shown = sorted(values, key=repr)
    return repr(shown[0]) if len(shown) == 1 else f"one of ({values_text(values)})"


def _exclusive(first: Rule, second: Rule) -> bool:
    if first.consumes & second.negates or second.consumes & first.negates:
        return True
    for a in (c for c in first.conditions if not c.negated):
        for b in (c for c in second.conditions if not c.negated and c.kind == a.kind):
            tests_b = by_field(b.tests)
            for fname, tests in by_field(a.tests).items():
                if fname in tests_b and not satisfiable(tests + tests_b[fname]):
                    return True
    return False


# --- citations --------------------------------------------------------------------------


def check_citations(pack: Pack) -> list[PackProblem]:
    """A citation matching the pack's pattern only with more text glued on (`§3.3x`)."""
    problems = []
    for rule in pack.rules:
        found = re.match(pack.cite_pattern, rule.cite)
        if found and not CITE_TAIL.match(rule.cite[found.end():]):
            problems.append(PackProblem(rule.file, rule.line, "citation",
                                        f"rule {rule.id!r}: citation {rule.cite!r} runs on "
                                        f"after {found.group(0)!r}; separate further text "
                                        "with '; ' or ' ('"))
    return problems
