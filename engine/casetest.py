"""Run a pack's YAML test cases the way `opa test` runs policy tests, and check them the
way `asl rules validate` checks rules.

`run_tests`: each case passes or fails, a failure shows what was expected against what
was derived, and coverage counts the rules that fired in no case. Pass or fail is
decided by `engine.cases.run_case`, so `asl rules test` and the test suite agree; a
failed case is then assessed once more to show the difference.

`check_cases`: cases that cannot be run as written (unknown keys, rules, kinds, fields
and values, evidence the model document format refuses), and rules no case is about.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.assess import assess_document, vocabulary
from engine.cases import CASE_KEYS, CaseResult, _matches, _patterns, run_case
from engine.constraints import Domains, holds, suggest
from engine.errors import AssessmentError, PackProblem
from engine.evaluator import Evaluator, Fact
from engine.evidence import parse_document
from engine.facts_id import render_value
from engine.framework import NEUTRAL_KEYS
from engine.model import Pack, Rule
from engine.yamlsafe import line_of, load_yaml


def output_keys(pack: Pack) -> frozenset[str]:
    """The keys a case's `output:` may name: every result's own and the framework's."""
    return frozenset({*NEUTRAL_KEYS, *(k.key for k in pack.spec.keys)}) - {"conclusions"}


@dataclass
class FileCoverage:
    """The rules of one rule file and those of them that fired in some case."""

    file: str
    rules: list[str]
    fired: set[str] = field(default_factory=set)

    @property
    def missed(self) -> list[str]:
        return [r for r in self.rules if r not in self.fired]


@dataclass
class CaseRun:
    """Every case's result (with the diff of a failure) and rule coverage per file."""

    results: list[CaseResult]
    diffs: dict[int, list[str]]  # index into results -> diff lines
    coverage: list[FileCoverage]

    @property
    def failed(self) -> int:
        return sum(not r.passed for r in self.results)

    @property
    def covered(self) -> int:
        return sum(len(c.rules) - len(c.missed) for c in self.coverage)

    @property
    def total(self) -> int:
        return sum(len(c.rules) for c in self.coverage)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.total if self.total else 100.0

    def to_json(self, name: Callable[[str], str] = str) -> dict[str, Any]:
        """What `asl rules test --format json` prints (and the service answers), each
        file shown as `name` gives it."""
        return {
            "cases": [{"file": name(r.file), "name": r.name, "passed": r.passed,
                       "failures": r.failures, "diff": self.diffs.get(i, []),
                       "fired": sorted(r.fired)} for i, r in enumerate(self.results)],
            "coverage": {"covered": self.covered, "total": self.total,
                         "percent": round(self.percent, 1),
                         "files": [{"file": name(c.file), "rules": c.rules,
                                    "missed": c.missed} for c in self.coverage]},
        }


def run_tests(evaluator: Evaluator, packs: Collection[str] | None = None) -> CaseRun:
    """Run the cases of the packs named in `packs` (default: every loaded pack) and
    measure how many of those packs' rules fired in some case."""
    pack = evaluator.pack
    results: list[CaseResult] = []
    diffs: dict[int, list[str]] = {}
    for case_file in pack.case_files:
        if packs is not None and case_file.pack not in packs:
            continue
        for case in case_file.cases:
            result = run_case(evaluator, case, case_file.path)
            if not result.passed:
                diffs[len(results)] = case_diff(evaluator, case, result)
            results.append(result)
    fired = set().union(*(r.fired for r in results)) if results else set()
    return CaseRun(results, diffs, coverage_by_file(
        [r for r in pack.rules if packs is None or r.pack in packs], fired))


def coverage_by_file(rules: list[Rule], fired: set[str]) -> list[FileCoverage]:
    """The rules grouped by the file that defines them, in load order."""
    files: dict[str, FileCoverage] = {}
    for rule in rules:
        entry = files.setdefault(rule.file, FileCoverage(rule.file, []))
        entry.rules.append(rule.id)
        if rule.id in fired:
            entry.fired.add(rule.id)
    return list(files.values())


def flow(values: dict[str, Any]) -> str:
    """`{capability: CBRN-3, value: crossed}`: a fact's values as YAML flow text."""
    return "{" + ", ".join(f"{k}: {render_value(v)}" for k, v in sorted(values.items())) + "}"


def case_diff(evaluator: Evaluator, case: dict[str, Any], result: CaseResult) -> list[str]:
    """What the failed case expected (`-`) against what the pack derived (`+`). When
    the case cannot even be assessed, its failure messages are all there is to show."""
    doc, errors = parse_document(case.get("model"), result.file,
                                 f"case {result.name!r}.model", vocabulary(evaluator.pack))
    try:
        if doc is None or errors:
            raise ValueError
        assessment = assess_document(evaluator, doc)
        expect = _patterns(case.get("expect", []), "expect")
        absent = _patterns(case.get("absent", []), "absent")
    except (ValueError, AssessmentError, AttributeError, TypeError):
        return list(result.failures)
    facts = list(assessment.derivation.facts.values())
    lines: list[str] = []
    for kind, wanted in expect:
        if any(_matches(f, kind, wanted) for f in facts):
            continue
        lines.append(f"- {kind} {flow(wanted)}")
        closest = _closest([f for f in facts if f.kind == kind], wanted)
        lines += [f"+ {kind} {flow(f.values)}" for f in closest] or [f"+ no {kind} at all"]
    for kind, wanted in absent:
        for fact in facts:
            if _matches(fact, kind, wanted):
                lines += [f"- no {kind} {flow(wanted)}", f"+ {kind} {flow(fact.values)}"]
    for key, value in (case.get("output") or {}).items():
        lines += _output_diff(f"output.{key}", value, assessment.output.get(key))
    lines += [f for f in result.failures if f.startswith("rule ") or f.startswith("unknown")]
    return lines or list(result.failures)


def _closest(facts: list[Fact], wanted: dict[str, Any], most: int = 3) -> list[Fact]:
    """The derived facts of the wanted kind sharing the most wanted values."""
    if not facts:
        return []
    score = {f.id: sum(f.values.get(k) == v for k, v in wanted.items()) for f in facts}
    best = max(score.values())
    return sorted((f for f in facts if score[f.id] == best), key=lambda f: f.id)[:most]


def _output_diff(key: str, expected: Any, actual: Any) -> list[str]:
    """One `-`/`+` pair per differing leaf of a contract key."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for sub in sorted(expected.keys() | actual.keys()):
            if expected.get(sub) != actual.get(sub):
                lines += _output_diff(f"{key}.{sub}", expected.get(sub), actual.get(sub))
        return lines
    if expected == actual:
        return []
    return [f"- {key}: {show_value(expected)}", f"+ {key}: {show_value(actual)}"]


def show_value(value: Any) -> str:
    """A value as the CLI prints it: lists in brackets, booleans lower-case, no value
    as `(none)`."""
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return "(none)" if value is None else render_value(value)


# --- test cases --------------------------------------------------------------------------


def check_cases(pack: Pack, domains: Domains) -> list[PackProblem]:
    """Every case can be run as written, and every rule in force has a case about it."""
    problems: list[PackProblem] = []
    tested: set[str] = set()
    rule_ids = {r.id for r in pack.rules}
    for case_file in pack.case_files:
        found, listed = _file_problems(pack, domains, case_file.path, list(case_file.cases),
                                       rule_ids)
        doc = _reread(case_file.path) if found else None
        if doc is not None:  # the loaded cases carry no line numbers: the file has them
            found, _ = _file_problems(pack, domains, case_file.path,
                                      doc.get("cases") if isinstance(doc, dict) else doc,
                                      rule_ids, line_of(doc))
        problems += found
        tested |= listed
    problems += [PackProblem(r.file, r.line, "untested",
                             f"rule {r.id!r} has no test case: list it under `rules:` of a "
                             "case in the pack's tests/ (`asl rules new` scaffolds one)")
                 for r in pack.rules if r.id not in tested]
    return problems


def _file_problems(pack: Pack, domains: Domains, file: str, cases: Any, rule_ids: set[str],
                   line: int = 0) -> tuple[list[PackProblem], set[str]]:
    """The problems of one case file's cases, and the rules they list."""
    if cases is None:
        return [], set()
    if not isinstance(cases, list):
        return [PackProblem(file, line, "case", "expected `cases:`, a list of cases")], set()
    problems: list[PackProblem] = []
    tested: set[str] = set()
    for case in cases:
        found, listed = _case_problems(pack, domains, file, case, rule_ids)
        problems += found
        tested |= listed
    return problems, tested


def _reread(path: str) -> Any:
    """The case file again, with line numbers (the loader has already parsed it)."""
    try:
        return load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None


def _case_problems(pack: Pack, domains: Domains, file: str, case: Any, rule_ids: set[str]
                   ) -> tuple[list[PackProblem], set[str]]:
    line = line_of(case)
    if not isinstance(case, dict):
        return [PackProblem(file, line, "case", "each case is a mapping with name, rules, "
                            "model and expect")], set()
    name = case.get("name")
    label = f"case {name!r}" if name else "a case"
    problems = [PackProblem(file, line_of(case, k), "case-key",
                            f"{label}: unknown key {k!r}{suggest(k, CASE_KEYS)}")
                for k in case if k not in CASE_KEYS]
    if not name:
        problems.append(PackProblem(file, line, "case", "a case needs a `name`"))
    listed = case.get("rules") or []
    if not isinstance(listed, list):
        problems.append(PackProblem(file, line_of(case, "rules"), "case",
                                    f"{label}: `rules` is a list of rule ids"))
        listed = []
    for rule_id in listed:
        if rule_id not in rule_ids:
            problems.append(PackProblem(file, line_of(case, "rules"), "case-rule",
                                        f"{label} lists rule {rule_id!r}, which is not in "
                                        f"force{suggest(rule_id, rule_ids)}"))
    if "model" not in case:
        problems.append(PackProblem(file, line, "case", f"{label} needs a `model`"))
    else:
        _, errors = parse_document(case["model"], file, f"{label}.model", vocabulary(pack))
        problems += [PackProblem(file, line_of(case, "model"), "case-model",
                                 f"{e.path}: {e.message}" if e.path else e.message)
                     for e in errors]
    for key in ("expect", "absent"):
        problems += _pattern_problems(pack, domains, file, case, key, label)
    output = case.get("output") or {}
    if isinstance(output, dict):
        known = output_keys(pack)
        problems += [PackProblem(file, line_of(case, "output"), "case-output",
                                 f"{label}: the output has no key {k!r}"
                                 f"{suggest(k, known)}")
                     for k in output if k not in known]
    return problems, {str(r) for r in listed}


def _pattern_problems(pack: Pack, domains: Domains, file: str, case: dict[str, Any],
                      key: str, label: str) -> list[PackProblem]:
    """`expect:`/`absent:` entries naming a kind, field or value that cannot occur."""
    entries = case.get(key)
    line = line_of(case, key)
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [PackProblem(file, line, "case", f"{label}: `{key}` is a list of "
                            "{KIND: {FIELD: VALUE}}")]
    problems = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1 \
                or not isinstance(next(iter(entry.values())) or {}, dict):
            problems.append(PackProblem(file, line_of(entry) or line, "case",
                                        f"{label}: each `{key}` entry is one "
                                        "{KIND: {FIELD: VALUE}}"))
            continue
        (kind, values), = entry.items()
        where = line_of(entry) or line
        spec = pack.kinds.get(kind)
        if spec is None:
            problems.append(PackProblem(file, where, "case-kind", f"{label}: {key} names "
                                        f"unknown kind {kind!r}{suggest(kind, pack.kinds)}"))
            continue
        for fname, value in (values or {}).items():
            if fname not in spec.fields and fname != "id":
                problems.append(PackProblem(file, where, "case-field",
                                            f"{label}: kind {kind!r} has no field {fname!r}"
                                            f"{suggest(fname, spec.fields)}"))
                continue
            domain = domains.get((kind, fname))
            if domain and not isinstance(value, list | dict) and not any(
                    holds("eq", v, value) for v in domain):
                problems.append(PackProblem(file, where, "case-value",
                                            f"{label}: {key} {kind}.{fname} {value!r}, a "
                                            f"value it never takes{suggest(value, domain)}"))
    return problems
