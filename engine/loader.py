"""Load rule packs from YAML and check them, stage by stage, before anything runs.

A pack directory holds `pack.yaml` (kinds of fact, the catalogue, pack facts), rule files
under `rules/` and test cases under `tests/`. Loading is a list of named stages
(`STAGES`); each stage reports every problem it finds as `file:line: code: message`, and
loading stops after the first stage that found any. Files are read with a safe YAML
loader only: a rule file is data and can never run code.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import PackError, PackProblem
from engine.facts_id import fact_id
from engine.model import (
    FIELD_TYPES,
    OPERATORS,
    ORIGIN_DERIVED,
    ORIGIN_PACK,
    ORIGINS,
    Capability,
    CaseFile,
    Conclusion,
    Condition,
    Kind,
    Operand,
    Pack,
    PackFact,
    Rule,
    Standard,
    Test,
)
from engine.strata import stratify
from engine.yamlsafe import LineDict, line_of, load_yaml

BUILTIN_PACK = "rsp-2.1"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
RULE_KEYS = {"id", "title", "cite", "because", "when", "then", "replaces", "rationale"}
# Kinds every pack must conclude: the assessment output is read from them.
CONTRACT_KINDS = {
    "asl": {"level"},
    "required": {"standard", "level"},
    "comprehensive": {"required"},
    "status": {"capability", "value"},
    "missing_safeguard": {"safeguard"},
    "decision": {"value"},
    "action": {"name"},
}
MAX_PACK_FILE_BYTES = 5 * 1024 * 1024
# Every fact carries these for the engine itself; a kind may not declare them.
RESERVED_FIELDS = {"id", "kind", "sid"}


def builtin_pack_dir() -> Path:
    """The built-in pack's directory, found inside the installed `rules` package."""
    return Path(str(importlib.resources.files("rules") / BUILTIN_PACK))


@dataclass
class Draft:
    """What the stages build up: raw documents first, then the parsed pieces."""

    dirs: list[Path]
    docs: dict[str, Any] = field(default_factory=dict)  # file -> parsed YAML
    pack_files: list[str] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    case_files: list[str] = field(default_factory=list)
    name: str = ""
    title: str = ""
    cite_pattern: str = r"^RSP v2\.1 §\d+(\.\d+)*"
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


# --- stage: read ---------------------------------------------------------------------


def stage_read(d: Draft) -> list[PackProblem]:
    """Find the pack's files and parse each as YAML (safely)."""
    problems: list[PackProblem] = []
    for directory in d.dirs:
        pack_file = directory / "pack.yaml"
        if not directory.is_dir():
            problems.append(_problem(str(directory), 0, "pack-missing", "not a directory"))
            continue
        if not pack_file.is_file():
            problems.append(_problem(str(pack_file), 0, "pack-missing", "no pack.yaml here"))
            continue
        d.pack_files.append(str(pack_file))
        d.rule_files.extend(str(p) for p in sorted((directory / "rules").glob("*.yaml")))
        d.case_files.extend(str(p) for p in sorted((directory / "tests").glob("*.yaml")))
    for file in [*d.pack_files, *d.rule_files, *d.case_files]:
        path = Path(file)
        if path.stat().st_size > MAX_PACK_FILE_BYTES:
            problems.append(_problem(file, 0, "too-large", "file over 5 MB"))
            continue
        try:
            d.docs[file] = load_yaml(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark else 0
            problems.append(_problem(file, line, "yaml", f"invalid YAML: {exc.problem}"))
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
            problems.append(_problem(file, 0, "yaml", f"invalid YAML: {exc}"))
    return problems


# --- stage: declarations (pack.yaml) --------------------------------------------------


def stage_declarations(d: Draft) -> list[PackProblem]:
    """Read kinds, catalogue and pack facts from each pack.yaml (later packs extend)."""
    problems: list[PackProblem] = []
    for file in d.pack_files:
        doc = d.docs.get(file)
        if not isinstance(doc, dict):
            problems.append(_problem(file, 1, "structure", "pack.yaml must be a mapping"))
            continue
        pack_name = str(doc.get("name") or Path(file).parent.name)
        d.name = f"{d.name}+{pack_name}" if d.name else pack_name
        d.title = d.title or str(doc.get("title", pack_name))
        if "cite_pattern" in doc:
            d.cite_pattern = str(doc["cite_pattern"])
        for name, spec in (doc.get("kinds") or {}).items():
            problems.extend(_read_kind(d, file, doc, str(name), spec))
        catalogue = doc.get("catalogue") or {}
        for entry in catalogue.get("capabilities") or []:
            problems.extend(_read_capability(d, file, entry))
        for entry in catalogue.get("standards") or []:
            problems.extend(_read_standard(d, file, entry))
        for entry in doc.get("facts") or []:
            problems.extend(_read_fact(d, file, entry))
    for file in d.rule_files:
        doc = d.docs.get(file)
        rules = doc.get("rules") if isinstance(doc, dict) else doc
        if not isinstance(rules, list):
            problems.append(_problem(file, line_of(doc), "structure", "expected a list of rules"))
            continue
        pack_name = Path(file).parent.parent.name
        for raw in rules:
            if not isinstance(raw, LineDict):
                problems.append(_problem(file, 0, "structure", "each rule must be a mapping"))
                continue
            d.raw_rules.append((file, raw, pack_name))
    return problems


def _read_kind(d: Draft, file: str, doc: Any, name: str, spec: Any) -> list[PackProblem]:
    line = line_of(doc.get("kinds"), name)
    if not NAME.match(name):
        return [_problem(file, line, "kind-name", f"kind name {name!r} must match {NAME.pattern}")]
    if not isinstance(spec, dict):
        return [_problem(file, line, "structure", f"kind {name!r} must be a mapping")]
    origin = spec.get("origin", ORIGIN_DERIVED)
    if origin not in ORIGINS:
        return [_problem(file, line, "kind-origin", f"kind {name!r}: origin must be one of "
                         f"{', '.join(ORIGINS)}")]
    fields = spec.get("fields") or {}
    problems = [
        _problem(file, line, "reserved-field", f"kind {name!r}: field name {f!r} is reserved")
        for f in fields if f in RESERVED_FIELDS
    ]
    problems += [
        _problem(file, line, "field-type", f"kind {name!r} field {f!r}: type must be one of "
                 f"{', '.join(FIELD_TYPES)}, got {t!r}")
        for f, t in fields.items() if t not in FIELD_TYPES
    ]
    existing = d.kinds.get(name)
    if existing is not None:
        fields = {**existing.fields, **fields}
    d.kinds[name] = Kind(name, origin, {str(k): str(v) for k, v in fields.items()},
                         str(spec.get("description", "")))
    return problems


def _read_capability(d: Draft, file: str, entry: Any) -> list[PackProblem]:
    if not isinstance(entry, dict) or "name" not in entry or "category" not in entry:
        return [_problem(file, line_of(entry), "catalogue",
                         "a capability needs a name and a category")]
    attrs = {k: v for k, v in entry.items() if k not in ("title", "cite")}
    d.capabilities.append(Capability(str(entry["name"]), str(entry["category"]), attrs))
    d.facts.append(PackFact(fact_id("capability", attrs, prefix="pack:"), "capability", attrs,
                            file, line_of(entry), str(entry.get("title", entry["name"]))))
    return []


def _read_standard(d: Draft, file: str, entry: Any) -> list[PackProblem]:
    if not isinstance(entry, dict) or "name" not in entry:
        return [_problem(file, line_of(entry), "catalogue", "a standard needs a name")]
    elements = tuple(f"{entry['name']}.{e}" for e in entry.get("elements") or [])
    attrs = {k: v for k, v in entry.items() if k not in ("elements", "title", "cite")}
    attrs["defined"] = bool(elements)
    d.standards.append(Standard(str(entry["name"]), attrs, elements))
    d.facts.append(PackFact(fact_id("standard", attrs, prefix="pack:"), "standard", attrs,
                            file, line_of(entry), str(entry.get("title", entry["name"]))))
    return []


def _read_fact(d: Draft, file: str, entry: Any) -> list[PackProblem]:
    if not isinstance(entry, dict) or "kind" not in entry:
        return [_problem(file, line_of(entry), "structure", "a pack fact needs a kind")]
    values = {k: v for k, v in entry.items() if k not in ("kind", "title")}
    kind = str(entry["kind"])
    d.facts.append(PackFact(fact_id(kind, values, prefix="pack:"), kind, values, file,
                            line_of(entry), str(entry.get("title", ""))))
    return []


# --- stage: rule structure ------------------------------------------------------------


def stage_structure(d: Draft) -> list[PackProblem]:
    """Every rule has an id, title, citation, `because`, conditions and conclusions, in
    the shapes the format allows; each is parsed into a `Rule`."""
    problems: list[PackProblem] = []
    for file, raw, pack_name in d.raw_rules:
        line = raw.line
        local: list[PackProblem] = []
        for key in raw:
            if key not in RULE_KEYS:
                local.append(_problem(file, line_of(raw, key), "unknown-key",
                                      f"unknown rule key {key!r}; expected one of "
                                      f"{', '.join(sorted(RULE_KEYS))}"))
        for key in ("id", "title", "cite", "because"):
            if not isinstance(raw.get(key), str) or not raw.get(key, "").strip():
                local.append(_problem(file, line, "missing-" + key,
                                      f"rule {raw.get('id', '?')!r} needs a non-empty {key}"))
        rule_id = raw.get("id")
        if isinstance(rule_id, str) and not RULE_ID.match(rule_id):
            local.append(_problem(file, line, "rule-id", f"rule id {rule_id!r} must match "
                                  f"{RULE_ID.pattern}"))
        if raw.get("replaces") is not None and not raw.get("rationale"):
            local.append(_problem(file, line, "missing-rationale",
                                  f"rule {rule_id!r} replaces {raw['replaces']!r} and needs a "
                                  "rationale"))
        conditions, cond_problems = _parse_when(file, raw)
        conclusions, then_problems = _parse_then(file, raw)
        local += cond_problems + then_problems
        problems += local
        if not local:
            d.rules.append(Rule(
                id=rule_id, title=raw["title"].strip(), cite=raw["cite"].strip(),
                because=raw["because"].strip(), conditions=tuple(conditions),
                conclusions=tuple(conclusions), file=file, line=line, pack=pack_name,
                source=_plain(raw), replaces=raw.get("replaces"), rationale=raw.get("rationale"),
            ))
    return problems


def _parse_when(file: str, raw: LineDict) -> tuple[list[Condition], list[PackProblem]]:
    when = raw.get("when")
    line = line_of(raw, "when")
    if not isinstance(when, list) or not when:
        return [], [_problem(file, line or raw.line, "missing-when",
                             f"rule {raw.get('id')!r} needs a non-empty list `when`")]
    conditions: list[Condition] = []
    problems: list[PackProblem] = []
    for item in when:
        item_line = line_of(item) or line
        if not isinstance(item, dict) or ("match" in item) == ("none" in item):
            problems.append(_problem(file, item_line, "condition",
                                     "each condition is a mapping with `match: KIND` or "
                                     "`none: KIND`"))
            continue
        extra = set(item) - {"match", "none", "as", "where"}
        if extra:
            problems.append(_problem(file, item_line, "condition",
                                     f"unknown condition key(s) {', '.join(sorted(extra))}; "
                                     "expected match/none, as, where"))
            continue
        negated = "none" in item
        kind = str(item["none"] if negated else item["match"])
        name = str(item.get("as", kind))
        tests, test_problems = _parse_where(file, item_line, item.get("where") or {})
        problems += test_problems
        conditions.append(Condition(kind, name, tuple(tests), negated, item_line))
    if conditions and all(c.negated for c in conditions):
        problems.append(_problem(file, line, "condition",
                                 f"rule {raw.get('id')!r} needs at least one `match` condition"))
    return conditions, problems


def _parse_where(file: str, line: int, where: Any) -> tuple[list[Test], list[PackProblem]]:
    if not isinstance(where, dict):
        return [], [_problem(file, line, "condition", "`where` must map fields to tests")]
    tests: list[Test] = []
    problems: list[PackProblem] = []
    for fname, spec in where.items():
        test_line = line_of(where, fname) or line
        ops: dict[str, Any]
        if isinstance(spec, list):
            ops = {"in": spec}
        elif isinstance(spec, dict) and not ({"ref", "field"} & set(spec)):
            ops = dict(spec)
        else:
            ops = {"eq": spec}
        for op, value in ops.items():
            if op not in OPERATORS:
                problems.append(_problem(file, test_line, "operator",
                                         f"unknown operator {op!r} on field {fname!r}; "
                                         f"expected one of {', '.join(OPERATORS)}"))
                continue
            if op == "in" and not (isinstance(value, list) and value and all(
                    isinstance(v, str | int | float | bool) for v in value)):
                problems.append(_problem(file, test_line, "operator",
                                         f"`in` on {fname!r} needs a non-empty list of constants"))
                continue
            if op == "exists" and not isinstance(value, bool):
                problems.append(_problem(file, test_line, "operator",
                                         f"`exists` on {fname!r} takes true or false"))
                continue
            operand, problem = _operand(file, test_line, value, allow_field=True)
            if problem:
                problems.append(problem)
                continue
            tests.append(Test(str(fname), op, operand, test_line))
    return tests, problems


def _operand(file: str, line: int, value: Any, allow_field: bool
             ) -> tuple[Operand, PackProblem | None]:
    if isinstance(value, dict):
        if set(value) == {"ref"} and isinstance(value["ref"], str) and value["ref"].count(".") == 1:
            name, fname = value["ref"].split(".")
            return Operand(ref=(name, fname)), None
        if allow_field and set(value) == {"field"} and isinstance(value["field"], str):
            return Operand(field=value["field"]), None
        return Operand(), _problem(file, line, "operand",
                                   f"expected a constant, {{ref: NAME.FIELD}} or {{field: NAME}}, "
                                   f"got {_plain(value)!r}")
    if value is None or not isinstance(value, str | int | float | bool | list):
        return Operand(), _problem(file, line, "operand", f"unsupported value {value!r}")
    return Operand(constant=value), None


def _parse_then(file: str, raw: LineDict) -> tuple[list[Conclusion], list[PackProblem]]:
    then = raw.get("then")
    line = line_of(raw, "then") or raw.line
    if not isinstance(then, dict) or not then:
        return [], [_problem(file, line, "missing-then",
                             f"rule {raw.get('id')!r} needs `then: {{KIND: {{FIELD: VALUE}}}}`")]
    conclusions: list[Conclusion] = []
    problems: list[PackProblem] = []
    for kind, values in then.items():
        kline = line_of(then, kind) or line
        if not isinstance(values, dict):
            problems.append(_problem(file, kline, "conclusion",
                                     f"conclusion {kind!r} must map fields to values"))
            continue
        pairs: list[tuple[str, Operand]] = []
        for fname, value in values.items():
            operand, problem = _operand(file, kline, value, allow_field=False)
            if problem:
                problems.append(problem)
            else:
                pairs.append((str(fname), operand))
        conclusions.append(Conclusion(str(kind), tuple(sorted(pairs)), kline))
    return conclusions, problems


# --- stage: duplicate ids -------------------------------------------------------------


def stage_duplicates(d: Draft) -> list[PackProblem]:
    """Rule ids are unique across all loaded packs, unless a rule `replaces` another."""
    seen: dict[str, Rule] = {}
    problems: list[PackProblem] = []
    for rule in d.rules:
        if rule.id in seen:
            first = seen[rule.id]
            problems.append(_problem(rule.file, rule.line, "duplicate-id",
                                     f"rule id {rule.id!r} is already used at "
                                     f"{first.file}:{first.line}"))
        seen[rule.id] = rule
    ids = {r.id for r in d.rules}
    for rule in d.rules:
        if rule.replaces is not None and rule.replaces not in ids:
            problems.append(_problem(rule.file, rule.line, "replaces-unknown",
                                     f"rule {rule.id!r} replaces unknown rule {rule.replaces!r}"))
    replaced = {r.replaces for r in d.rules if r.replaces}
    d.rules = [r for r in d.rules if r.id not in replaced]
    return problems


# --- stage: kinds and fields ----------------------------------------------------------


def stage_kinds_and_fields(d: Draft) -> list[PackProblem]:
    """Every kind a rule names is declared, every field belongs to its kind, every `ref`
    names a fact bound earlier, and every `because` placeholder can be filled."""
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
            if not cond.negated:
                if cond.name in bound:
                    problems.append(_problem(rule.file, cond.line, "duplicate-binding",
                                             f"rule {rule.id!r}: name {cond.name!r} is bound "
                                             "twice; add `as:`"))
                bound[cond.name] = kind
        for concl in rule.conclusions:
            for _, operand in concl.values:
                problems += _check_operand(rule, concl.line, operand, bound, None)
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
    for kind_name, fields in CONTRACT_KINDS.items():
        kind = d.kinds.get(kind_name)
        if kind is None or not fields <= set(kind.fields) or kind_name not in produced:
            problems.append(_problem(first_pack, 1, "contract-kind",
                                     f"the pack must declare and conclude kind {kind_name!r} "
                                     f"with fields {', '.join(sorted(fields))}"))
    return problems


# --- stage: citations -----------------------------------------------------------------


def stage_citations(d: Draft) -> list[PackProblem]:
    """Every rule cites the policy section it encodes, in the pack's citation form."""
    pattern = re.compile(d.cite_pattern)
    return [_problem(r.file, r.line, "citation", f"rule {r.id!r}: citation {r.cite!r} does not "
                     f"match {d.cite_pattern!r}") for r in d.rules if not pattern.match(r.cite)]


# --- stage: negation cycles and strata -------------------------------------------------


def stage_strata(d: Draft) -> list[PackProblem]:
    """Order the rules into strata; a kind that depends on its own absence is refused."""
    strata, cycles = stratify(d.rules)
    problems = []
    for path, rule in cycles:
        problems.append(_problem(rule.file, rule.line, "negation-cycle",
                                 f"negation cycle: {' -> '.join(path)} (rule {rule.id!r} "
                                 "negates a kind that depends on its own conclusion)"))
    d.strata = strata
    return problems


STAGES: tuple[tuple[str, Stage], ...] = (
    ("read", stage_read),
    ("declarations", stage_declarations),
    ("structure", stage_structure),
    ("duplicate-ids", stage_duplicates),
    ("kinds-and-fields", stage_kinds_and_fields),
    ("conclusions", stage_conclusions),
    ("citations", stage_citations),
    ("strata", stage_strata),
)


def load_pack(dirs: Sequence[str | Path] | None = None) -> Pack:
    """Load and check the packs in `dirs` (default: the built-in pack), later ones
    overlaying earlier ones. Raises `PackError` with every problem of the failing stage."""
    paths = [Path(p) for p in dirs] if dirs else [builtin_pack_dir()]
    draft = Draft(dirs=paths)
    for _name, stage in STAGES:
        problems = stage(draft)
        if problems:
            raise PackError(problems)
    cases = tuple(CaseFile(f, tuple(_plain(c) for c in _cases(draft.docs.get(f))))
                  for f in draft.case_files)
    return Pack(
        name=draft.name, title=draft.title, version=_content_hash(draft), kinds=draft.kinds,
        rules=tuple(draft.rules), capabilities=tuple(draft.capabilities),
        standards=tuple(draft.standards), facts=tuple(draft.facts), strata=draft.strata,
        cite_pattern=draft.cite_pattern, case_files=cases,
        sources=tuple(draft.pack_files + draft.rule_files),
    )


def _cases(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return list(doc.get("cases") or [])
    return list(doc or [])


def _content_hash(d: Draft) -> str:
    """A hash of what the packs say (not of file names or formatting), so a result can be
    tied to the exact rules that produced it."""
    content = {
        "kinds": {k: [v.origin, v.fields] for k, v in sorted(d.kinds.items())},
        "facts": sorted([f.id for f in d.facts]),
        "rules": sorted((r.id, json.dumps(r.source, sort_keys=True, default=str))
                        for r in d.rules),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    return "sha256:" + digest.hexdigest()


def _plain(value: Any) -> Any:
    """Strip line information so values compare, hash and print as plain data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
