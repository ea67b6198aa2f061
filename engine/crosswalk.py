"""Crosswalks between frameworks: data that says which capability of one framework
answers to which of another, and the translation of an evidence document by it.

A crosswalk is a YAML file (the built-in ones in `rules/crosswalks/`, a lab's own given
with `asl crosswalk --crosswalk FILE`):

    crosswalk: rsp-2.1--openai-pf-2
    frameworks: [rsp-2.1, openai-pf-2]
    rows:
      - {rsp-2.1: CBRN-3, openai-pf-2: Bio/Chem High, match: partial, why: ...}
      - {openai-pf-2: Cyber Critical, match: none, why: no counterpart}
    evaluations:                       # how an evaluation carried into each is written
      openai-pf-2: {drop: [warning_score, purpose]}
      rsp-2.1: {set: {purpose: rule_out}, copy: {warning_score: threshold_score}}

It is checked like a pack (`file:line: crosswalk: message`, every problem at once): two
built-in frameworks, each row naming capabilities of their catalogues (each at most
once), `match` one of exact, partial, none (none: a name with no counterpart), and a
`why`. Translating carries each evaluation and finding whose capability has a row over
under the other name, unchanged but for the `evaluations` rewriting; a rule-in test
below its threshold score (it rules nothing out in any framework), everything without
a counterpart and every safeguard (standards differ) are left out, each with why.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import PackError, PackProblem
from engine.framework import builtin_names
from engine.packstack import builtin_frameworks
from engine.yamlsafe import line_of, load_yaml

MATCHES = ("exact", "partial", "none")
KEYS = ("crosswalk", "frameworks", "rows", "evaluations")
REWRITES = ("drop", "set", "copy")
CARRIED = ("evaluations", "findings")  # the document's lists that name a capability


@dataclass(frozen=True)
class Row:
    """One row: a capability name per framework (one side only for `match: none`)."""

    names: dict[str, str]
    match: str
    why: str
    line: int


@dataclass(frozen=True)
class Crosswalk:
    """A checked crosswalk between two frameworks."""

    name: str
    file: str
    frameworks: tuple[str, str]
    rows: tuple[Row, ...]
    rewrites: dict[str, dict[str, Any]] = field(default_factory=dict)

    def joins(self, source: str, target: str) -> bool:
        return {source, target} == set(self.frameworks) and source != target

    def row_for(self, framework: str, name: str) -> Row | None:
        return next((r for r in self.rows if r.names.get(framework) == name), None)


def builtin_crosswalks() -> list[Path]:
    """The crosswalk files shipped beside the built-in packs."""
    directory = next(iter(builtin_frameworks().values()), Path(".")).parent / "crosswalks"
    return sorted(directory.glob("*.yaml")) if directory.is_dir() else []


def find_crosswalk(source: str, target: str, extra: str | Path | None = None) -> Crosswalk:
    """The crosswalk joining `source` and `target`: `extra` when given (it must join
    them), else the built-in one. PackError when there is none or it has problems."""
    if extra is not None:
        walk = load_crosswalk(extra)
        if not walk.joins(source, target):
            raise PackError([PackProblem(str(extra), 1, "crosswalk", f"crosswalk "
                                         f"{walk.name!r} joins {' and '.join(walk.frameworks)}"
                                         f", not {source} and {target}")])
        return walk
    for path in builtin_crosswalks():
        walk = load_crosswalk(path)
        if walk.joins(source, target):
            return walk
    raise PackError([PackProblem(str(source), 0, "crosswalk", f"no crosswalk between "
                                 f"{source} and {target}; give one with --crosswalk FILE")])


def load_crosswalk(path: str | Path) -> Crosswalk:
    """Read and check a crosswalk file; PackError with every problem."""
    file = str(path)
    try:
        doc = load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError([PackProblem(file, 0, "crosswalk", f"cannot read: {exc}")]) from exc
    except yaml.YAMLError as exc:
        raise PackError([PackProblem(file, 0, "crosswalk", f"not YAML: {exc}")]) from exc
    problems: list[PackProblem] = []

    def problem(where: Any, key: str | None, message: str) -> None:
        problems.append(PackProblem(file, (line_of(where, key) if key else line_of(where))
                                    or 1, "crosswalk", message))

    if not isinstance(doc, dict):
        raise PackError([PackProblem(file, 1, "crosswalk", "a crosswalk maps "
                                     + ", ".join(KEYS))])
    for key in doc:
        if key not in KEYS:
            problem(doc, key, f"unknown key {key!r}; expected {', '.join(KEYS)}")
    frameworks = doc.get("frameworks")
    known = builtin_frameworks()
    if not (isinstance(frameworks, list) and len(frameworks) == 2
            and all(isinstance(f, str) for f in frameworks) and frameworks[0] != frameworks[1]):
        problem(doc, "frameworks", "`frameworks` lists the two frameworks it joins")
        raise PackError(problems)
    for name in frameworks:
        if name not in known:
            problem(doc, "frameworks", f"{name!r} is not a built-in framework; built in: "
                    f"{', '.join(known)}")
    names = {fw: {n for n, f in builtin_names() if f == fw} for fw in frameworks}
    rows = _rows(doc.get("rows"), doc, frameworks, names, problem)
    rewrites = _rewrites(doc.get("evaluations") or {}, doc, frameworks, problem)
    if problems:
        raise PackError(problems)
    return Crosswalk(str(doc.get("crosswalk") or Path(path).stem), file,
                     (frameworks[0], frameworks[1]), tuple(rows), rewrites)


def _rows(raw: Any, doc: Any, frameworks: list[str], names: dict[str, set[str]],
          problem: Any) -> list[Row]:
    if not isinstance(raw, list) or not raw:
        problem(doc, "rows", "`rows` lists the rows, each {FRAMEWORK: NAME, ..., match, why}")
        return []
    rows: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            problem(entry, None, "each row maps framework names, match and why")
            continue
        for key in entry:
            if key not in (*frameworks, "match", "why"):
                problem(entry, key, f"row: unknown key {key!r}; expected "
                        f"{', '.join(frameworks)}, match, why")
        match, why = entry.get("match"), entry.get("why")
        given = {fw: entry[fw] for fw in frameworks if fw in entry}
        if match not in MATCHES:
            problem(entry, "match" if "match" in entry else None,
                    f"row: `match` is one of {', '.join(MATCHES)}")
        if not isinstance(why, str) or not why.strip():
            problem(entry, "why" if "why" in entry else None, "row: `why` says how the "
                    "names differ")
        if len(given) != (1 if match == "none" else 2):
            problem(entry, None, "row: name both frameworks' capabilities (one only with "
                    "`match: none`)")
        for fw, name in given.items():
            if not isinstance(name, str) or name not in names[fw]:
                problem(entry, fw, f"row: {name!r} is not a capability of {fw}")
            elif (fw, name) in seen:
                problem(entry, fw, f"row: {name!r} of {fw} is already in the row at line "
                        f"{seen[fw, name]}")
            else:
                seen[fw, name] = line_of(entry) or 0
        rows.append(Row({fw: str(n) for fw, n in given.items()}, str(match), str(why),
                        line_of(entry) or 0))
    return rows


def _rewrites(raw: Any, doc: Any, frameworks: list[str], problem: Any
              ) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or any(k not in frameworks for k in raw):
        problem(doc, "evaluations", "`evaluations` maps a framework to {drop, set, copy}")
        return {}
    for fw, spec in raw.items():
        if not isinstance(spec, dict) or any(k not in REWRITES for k in spec):
            problem(raw, fw, f"evaluations.{fw}: only {', '.join(REWRITES)}")
    return {str(fw): dict(spec) for fw, spec in raw.items() if isinstance(spec, dict)}


@dataclass
class Translation:
    """A document translated into another framework: the new document, each item
    carried over (`translated`) and each left out (`left_out`), with why."""

    document: dict[str, Any]
    translated: list[dict[str, Any]]
    left_out: list[dict[str, Any]]


def translate(raw: Mapping[str, Any], walk: Crosswalk, source: str, target: str
              ) -> Translation:
    """`raw` (an evidence document written for `source`) as a document for `target`."""
    doc: dict[str, Any] = {k: copy.deepcopy(v) for k, v in raw.items()
                           if k not in (*CARRIED, "safeguards")}
    translated: list[dict[str, Any]] = []
    left_out: list[dict[str, Any]] = []
    rewrite = walk.rewrites.get(target, {})
    for key in CARRIED:
        carried = []
        for item in raw.get(key) or []:
            kind = key[:-1]
            name = item.get("threshold")
            row = walk.row_for(source, name)
            entry = {"evidence": item.get("id"), "kind": kind, "from": name}
            if row is None or target not in row.names:
                left_out.append({**entry, "reason": f"{name!r} has no counterpart in "
                                 f"{target}" + (f" ({row.why})" if row is not None else "")})
                continue
            if kind == "evaluation" and item.get("purpose") == "rule_in" \
                    and _below(item.get("score"), item.get("threshold_score")):
                left_out.append({**entry, "reason": "a rule-in test below its threshold "
                                 "score rules nothing out in either framework"})
                continue
            new = dict(copy.deepcopy(item), threshold=row.names[target])
            if kind == "evaluation":
                new = _rewritten(new, rewrite)
            origin = f"{kind} {item.get('id')} ({source} {name})"
            note = (f"translated from {origin} by crosswalk {walk.name} row {name} -> "
                    f"{row.names[target]} ({row.match})")
            new["source"] = f"{note}; {item['source']}" if item.get("source") else note
            carried.append(new)
            translated.append({"evidence": item.get("id"), "kind": kind, "from": name,
                               "to": row.names[target], "match": row.match, "why": row.why,
                               "row": row.line})
        if carried:
            doc[key] = carried
    for item in raw.get("safeguards") or []:
        left_out.append({"evidence": item.get("id"), "kind": "safeguard",
                         "from": item.get("id"), "reason": "safeguards are never "
                         "translated: the frameworks' standards differ"})
    return Translation(doc, translated, left_out)


def _below(score: Any, threshold: Any) -> bool:
    return isinstance(score, int | float) and isinstance(threshold, int | float) \
        and score < threshold


def _rewritten(item: dict[str, Any], rewrite: Mapping[str, Any]) -> dict[str, Any]:
    """An evaluation as the target framework's crosswalk entry writes it."""
    for name in rewrite.get("drop") or []:
        item.pop(name, None)
    item.update(rewrite.get("set") or {})
    for name, source in (rewrite.get("copy") or {}).items():
        if source in item:
            item[name] = item[source]
    return item


def capability_status(result: Mapping[str, Any], name: str) -> str | None:
    """The status a result gives capability `name`, in whichever of its groups."""
    for value in result.values():
        if isinstance(value, dict) and name in value and isinstance(value[name], str):
            return str(value[name])
    return None


def disagreements(walk: Crosswalk, source: str, target: str, before: Mapping[str, Any],
                  after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows whose two capabilities have different statuses in the two assessments."""
    found = []
    for row in walk.rows:
        if source not in row.names or target not in row.names:
            continue
        a, b = row.names[source], row.names[target]
        sa, sb = capability_status(before, a), capability_status(after, b)
        if sa is not None and sb is not None and sa != sb:
            found.append({"from": a, "to": b, "from_status": sa, "to_status": sb,
                          "match": row.match, "why": row.why})
    return found
