"""The checks a loaded pack passes before it is compiled, one stage each: unique rule ids
and sound replacements, declared kinds and fields with operands of the right type,
conclusions of declared derived kinds, citations in the pack's form, and strata without
negation cycles. `Draft` is what the stages of `engine.loader` build up and these read;
a problem is reported as `file:line: code: message`, every one a stage finds."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Re-exported: names of the rule format that other modules read from the loader.
from engine.errors import PackProblem
from engine.framework import FrameworkSpec
from engine.model import (
    ORIGIN_DERIVED,
    ORIGIN_PACK,
    Capability,
    Kind,
    Operand,
    PackFact,
    Rule,
    Standard,
)
from engine.strata import stratify
from engine.typecheck import conclusion_problems, pack_fact_problems, test_problems
from engine.yamlsafe import LineDict

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DEFAULT_CITE_PATTERN = r"^RSP v2\.1 §\d+(\.\d+)*"



@dataclass
class Draft:
    """What the stages build up: raw documents first, then the parsed pieces."""

    dirs: list[Path]
    docs: dict[str, Any] = field(default_factory=dict)  # file -> parsed YAML
    pack_files: list[str] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    case_files: list[str] = field(default_factory=list)
    layer_of: dict[str, int] = field(default_factory=dict)  # file -> index into dirs
    layers: list[str] = field(default_factory=list)  # declared pack names, in load order
    cite_patterns: dict[str, str] = field(default_factory=dict)  # pack name -> pattern
    name: str = ""
    title: str = ""
    cite_pattern: str = DEFAULT_CITE_PATTERN
    spec: FrameworkSpec | None = None  # the base pack's `framework:` (engine.framework)
    kinds: dict[str, Kind] = field(default_factory=dict)
    capabilities: list[Capability] = field(default_factory=list)
    standards: list[Standard] = field(default_factory=list)
    facts: list[PackFact] = field(default_factory=list)
    raw_rules: list[tuple[str, LineDict, str]] = field(default_factory=list)  # file, rule, pack
    rules: list[Rule] = field(default_factory=list)
    strata: tuple[tuple[str, ...], ...] = ()


Stage = Callable[[Draft], list[PackProblem]]


def _problem(file: str, line: int, code: str, message: str) -> PackProblem:
    return PackProblem(file, line, code, message)



# --- stage: duplicate ids and replacements ----------------------------------------------


def stage_duplicates(d: Draft) -> list[PackProblem]:
    """Rule ids are unique across the loaded packs, except that a rule may replace a rule
    of an earlier pack (`replaces: ID`), keeping its id or taking a new one. Replacing a
    rule no earlier pack defines, or a rule already replaced, is refused."""
    active: dict[str, Rule] = {}
    replaced: dict[str, Rule] = {}  # replaced id -> the rule that replaced it
    problems: list[PackProblem] = []
    for layer in d.layers:
        rules = [r for r in d.rules if r.pack == layer]
        earlier = set(active)
        for rule in rules:
            target = rule.replaces
            if target is None:
                continue
            if target in replaced:
                by = replaced[target]
                problems.append(_problem(rule.file, rule.line, "replaced-twice",
                                         f"rule {rule.id!r} replaces {target!r}, which rule "
                                         f"{by.id!r} already replaces ({by.file}:{by.line})"))
            elif target not in earlier:
                problems.append(_problem(rule.file, rule.line, "replaces-unknown",
                                         f"rule {rule.id!r} replaces {target!r}, which no "
                                         f"earlier pack defines{_suggest(target, earlier)}"))
            else:
                replaced[target] = rule
                del active[target]
        for rule in rules:
            if rule.id in active:
                first = active[rule.id]
                hint = "" if first.pack == layer else (
                    f"; to replace it, add `replaces: {rule.id}` and a `rationale`")
                problems.append(_problem(rule.file, rule.line, "duplicate-id",
                                         f"rule id {rule.id!r} is already used at "
                                         f"{first.file}:{first.line}{hint}"))
            else:
                active[rule.id] = rule
    d.rules = list(active.values())
    return problems


# --- stage: kinds and fields ----------------------------------------------------------


def stage_kinds_and_fields(d: Draft) -> list[PackProblem]:
    """Every kind a rule names is declared, every field belongs to its kind, every `ref`
    names a fact bound earlier, every `because` placeholder can be filled, and every
    value compared or stated has the type its field declares (`engine.typecheck`)."""
    problems: list[PackProblem] = []
    for fact in d.facts:
        kind = d.kinds.get(fact.kind)
        if kind is None:
            problems.append(_problem(fact.file, fact.line, "unknown-kind",
                                     f"pack fact of undeclared kind {fact.kind!r}"))
        elif kind.origin != ORIGIN_PACK:
            problems.append(_problem(fact.file, fact.line, "kind-origin",
                                     f"pack facts must be of a kind with origin pack; "
                                     f"{fact.kind!r} is {kind.origin}"))
        else:
            problems += [_problem(fact.file, fact.line, "unknown-field",
                                  f"kind {fact.kind!r} has no field {f!r}")
                         for f in fact.values if f not in kind.fields]
            problems += pack_fact_problems(fact, kind)
    for rule in d.rules:
        bound: dict[str, Kind] = {}
        for cond in rule.conditions:
            kind = d.kinds.get(cond.kind)
            if kind is None:
                problems.append(_problem(rule.file, cond.line, "unknown-kind",
                                         f"rule {rule.id!r}: unknown kind {cond.kind!r}"
                                         f"{_suggest(cond.kind, d.kinds)}"))
                continue
            for test in cond.tests:
                problems += _check_field(rule, test.line, kind, test.field)
                problems += _check_operand(rule, test.line, test.operand, bound, kind)
                problems += test_problems(rule, kind, test, bound)
            if not cond.negated:
                if cond.name in bound:
                    problems.append(_problem(rule.file, cond.line, "duplicate-binding",
                                             f"rule {rule.id!r}: name {cond.name!r} is bound "
                                             "twice; add `as:`"))
                bound[cond.name] = kind
        for concl in rule.conclusions:
            for _, operand in concl.values:
                problems += _check_operand(rule, concl.line, operand, bound, None)
            if concl.kind in d.kinds:
                problems += conclusion_problems(rule, d.kinds[concl.kind], concl, bound)
        for placeholder in PLACEHOLDER.findall(rule.because):
            name, _, fname = placeholder.partition(".")
            if name not in bound or (fname != "id" and fname not in bound[name].fields):
                problems.append(_problem(rule.file, rule.line, "because-placeholder",
                                         f"rule {rule.id!r}: `because` placeholder "
                                         f"{{{placeholder}}} names no bound fact field"))
    return problems


def _check_field(rule: Rule, line: int, kind: Kind, fname: str) -> list[PackProblem]:
    if fname == "id" or fname in kind.fields:
        return []
    return [_problem(rule.file, line, "unknown-field", f"rule {rule.id!r}: kind {kind.name!r} "
                     f"has no field {fname!r}{_suggest(fname, kind.fields)}")]


def _check_operand(rule: Rule, line: int, operand: Operand, bound: dict[str, Kind],
                   kind: Kind | None) -> list[PackProblem]:
    if operand.field is not None and kind is not None:
        return _check_field(rule, line, kind, operand.field)
    if operand.ref is not None:
        name, fname = operand.ref
        if name not in bound:
            return [_problem(rule.file, line, "unbound-ref", f"rule {rule.id!r}: ref "
                             f"{name}.{fname} names no fact matched before it"
                             f"{_suggest(name, bound)}")]
        return _check_field(rule, line, bound[name], fname)
    return []


def _suggest(word: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- stage: conclusions ---------------------------------------------------------------


def stage_conclusions(d: Draft) -> list[PackProblem]:
    """Rules conclude only declared, derived kinds with their declared fields, and the
    pack concludes every kind the assessment output is read from."""
    problems: list[PackProblem] = []
    for rule in d.rules:
        for concl in rule.conclusions:
            kind = d.kinds.get(concl.kind)
            if kind is None:
                problems.append(_problem(rule.file, concl.line, "undeclared-conclusion",
                                         f"rule {rule.id!r} concludes undeclared kind "
                                         f"{concl.kind!r}{_suggest(concl.kind, d.kinds)}"))
                continue
            if kind.origin != ORIGIN_DERIVED:
                problems.append(_problem(rule.file, concl.line, "conclusion-origin",
                                         f"rule {rule.id!r} concludes {concl.kind!r}, a kind of "
                                         f"origin {kind.origin}; rules may only derive kinds"))
            for fname, _ in concl.values:
                problems += _check_field(rule, concl.line, kind, fname)
            missing = set(kind.fields) - {f for f, _ in concl.values}
            if missing:
                problems.append(_problem(rule.file, concl.line, "conclusion-fields",
                                         f"rule {rule.id!r}: conclusion {concl.kind!r} lacks "
                                         f"field(s) {', '.join(sorted(missing))}"))
    produced = {k for r in d.rules for k in r.produces}
    first_pack = d.pack_files[0] if d.pack_files else "pack.yaml"
    contract_kinds = d.spec.contract_kinds() if d.spec is not None else {}
    for kind_name, fields in contract_kinds.items():
        kind = d.kinds.get(kind_name)
        if kind is None or not fields <= set(kind.fields) or kind_name not in produced:
            problems.append(_problem(first_pack, 1, "contract-kind",
                                     f"the pack must declare and conclude kind {kind_name!r} "
                                     f"with fields {', '.join(sorted(fields))}"))
    return problems


# --- stage: citations -----------------------------------------------------------------


def stage_citations(d: Draft) -> list[PackProblem]:
    """Every rule cites the policy section it encodes, in its own pack's citation form
    (an overlay without a `cite_pattern` uses the base pack's)."""
    problems = []
    for rule in d.rules:
        pattern = d.cite_patterns.get(rule.pack, d.cite_pattern)
        if not re.match(pattern, rule.cite):
            problems.append(_problem(rule.file, rule.line, "citation", f"rule {rule.id!r}: "
                                     f"citation {rule.cite!r} does not match {pattern!r}"))
    return problems


# --- stage: negation cycles and strata -------------------------------------------------


def stage_strata(d: Draft) -> list[PackProblem]:
    """Order the rules into strata; a kind that depends on its own absence is refused.
    (What the matcher can take is checked by compiling it: engine.validate.)"""
    strata, cycles = stratify(d.rules)
    problems = []
    for path, rule in cycles:
        problems.append(_problem(rule.file, rule.line, "negation-cycle",
                                 f"negation cycle: {' -> '.join(path)} (rule {rule.id!r} "
                                 "negates a kind that depends on its own conclusion)"))
    d.strata = strata
    return problems
