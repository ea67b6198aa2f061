"""Load rule packs from YAML and check them, stage by stage, before anything runs.

A pack directory holds `pack.yaml` (its name, kinds of fact, the catalogue, pack facts),
rule files under `rules/` and test cases under `tests/`. Packs are loaded as a stack: a
base pack (a framework: the built-in `rsp-2.1`, or a base pack given first; which packs
those are is decided once, in `engine.packstack`) and then each overlay in order. An
overlay may add kinds, rules, capabilities, standards and standard elements, and replace
an earlier pack's rule by id (`replaces:` with a `rationale:`); every rule remembers the
declared name of the pack it came from.

Loading is a list of named stages (`STAGES`): reading, declarations and rule structure
here, the checks over what they built in `engine.pack_checks`. Each stage reports every
problem it finds as `file:line: code: message`, and loading stops after the first stage
that found any.
Files are read with the strict, safe YAML reader of `engine.yamlsafe` only: a rule file
is data and can never run code, and a key given twice is refused (`duplicate-key`).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

# Re-exported: names of the rule format that other modules read from the loader.
from engine.declarations import NAME as NAME
from engine.declarations import RESERVED_FIELDS as RESERVED_FIELDS
from engine.declarations import Declarations
from engine.errors import PackError, PackProblem
from engine.framework import SECTION, default_spec, parse_spec
from engine.model import (
    CaseFile,
    Pack,
)
from engine.pack_checks import (
    DEFAULT_CITE_PATTERN,
    Draft,
    Stage,
    _problem,
    stage_citations,
    stage_conclusions,
    stage_duplicates,
    stage_kinds_and_fields,
    stage_strata,
)
from engine.pack_checks import PLACEHOLDER as PLACEHOLDER

# Re-exported: the stacking rule, for the commands and tests that import it from here.
from engine.packstack import BUILTIN_PACK as BUILTIN_PACK
from engine.packstack import base_reason
from engine.packstack import builtin_pack_dir as builtin_pack_dir
from engine.packstack import pack_stack as pack_stack
from engine.rule_syntax import RULE_ID as RULE_ID
from engine.rule_syntax import RULE_KEYS as RULE_KEYS
from engine.rule_syntax import parse_rule, plain
from engine.yamlsafe import DuplicateKeyError, LineDict, line_of, load_yaml

PACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MAX_PACK_FILE_BYTES = 5 * 1024 * 1024


# --- stage: read ---------------------------------------------------------------------


def stage_read(d: Draft) -> list[PackProblem]:
    """Find the packs' files and parse each as YAML (safely)."""
    problems: list[PackProblem] = []
    for index, directory in enumerate(d.dirs):
        pack_file = directory / "pack.yaml"
        if not directory.is_dir():
            problems.append(_problem(str(directory), 0, "pack-missing", "not a directory"))
            continue
        if not pack_file.is_file():
            problems.append(_problem(str(pack_file), 0, "pack-missing", "no pack.yaml here"))
            continue
        rule_files = [str(p) for p in sorted((directory / "rules").glob("*.yaml"))]
        case_files = [str(p) for p in sorted((directory / "tests").glob("*.yaml"))]
        d.pack_files.append(str(pack_file))
        d.rule_files.extend(rule_files)
        d.case_files.extend(case_files)
        d.layer_of.update(dict.fromkeys([str(pack_file), *rule_files, *case_files], index))
    for file in [*d.pack_files, *d.rule_files, *d.case_files]:
        path = Path(file)
        if path.stat().st_size > MAX_PACK_FILE_BYTES:
            problems.append(_problem(file, 0, "too-large", "file over 5 MB"))
            continue
        try:
            d.docs[file] = load_yaml(path.read_text(encoding="utf-8"))
        except DuplicateKeyError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 0
            problems.append(_problem(file, line, "duplicate-key",
                                     f"key {exc.key!r} is given twice in one mapping (first "
                                     f"at line {exc.first_line}); YAML would silently keep "
                                     "only the last"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark else 0
            problems.append(_problem(file, line, "yaml", f"invalid YAML: {exc.problem}"))
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
            problems.append(_problem(file, 0, "yaml", f"invalid YAML: {exc}"))
    return problems


# --- stage: declarations (pack.yaml) --------------------------------------------------


def stage_declarations(d: Draft) -> list[PackProblem]:
    """Read each pack.yaml in load order: its name (unique in the stack), kinds,
    catalogue and pack facts; later packs add to earlier ones, never change them."""
    problems: list[PackProblem] = []
    names = [_dir_name(d, file) for file in d.pack_files]
    declarations = Declarations()
    for position, file in enumerate(d.pack_files):
        doc = d.docs.get(file)
        if not isinstance(doc, dict):
            problems.append(_problem(file, 1, "structure", "pack.yaml must be a mapping"))
            continue
        layer_problems, names[position] = _read_layer(d, file, doc, position, names[:position])
        problems += layer_problems
        problems += _read_spec(d, file, doc, position)
        declarations.categories = d.spec.categories if d.spec is not None else ()
        if position == 0 or base_reason(doc) is None:  # a base pack further down is refused
            problems += declarations.read(file, names[position], doc)
    d.layers = names
    merged, merge_problems = declarations.build()
    problems += merge_problems
    d.kinds = declarations.kinds
    d.capabilities, d.standards, d.facts = merged.capabilities, merged.standards, merged.facts
    for file in d.rule_files:
        doc = d.docs.get(file)
        rules = doc.get("rules") if isinstance(doc, dict) else doc
        if not isinstance(rules, list):
            problems.append(_problem(file, line_of(doc), "structure", "expected a list of rules"))
            continue
        pack_name = names[d.layer_of[file]]  # every directory has a pack.yaml by now
        for raw in rules:
            if not isinstance(raw, LineDict):
                problems.append(_problem(file, 0, "structure", "each rule must be a mapping"))
                continue
            d.raw_rules.append((file, raw, pack_name))
    return problems


def _read_layer(d: Draft, file: str, doc: dict[str, Any], position: int,
                earlier: list[str]) -> tuple[list[PackProblem], str]:
    """The pack's declared name (its directory's name if it declares none), title,
    citation pattern and `standalone` flag; return its problems and its name."""
    problems = []
    name = str(doc.get("name") or _dir_name(d, file))
    if not PACK_NAME.match(name):
        problems.append(_problem(file, line_of(doc, "name"), "pack-name",
                                 f"pack name {name!r} must match {PACK_NAME.pattern}"))
    if name in earlier:
        problems.append(_problem(file, line_of(doc, "name"), "pack-name",
                                 f"a pack named {name!r} is already loaded "
                                 f"({d.pack_files[earlier.index(name)]}); give this pack "
                                 "its own `name`"))
    standalone = doc.get("standalone", False)
    reason = base_reason(doc)
    if not isinstance(standalone, bool):
        problems.append(_problem(file, line_of(doc, "standalone"), "standalone",
                                 "`standalone` takes true or false"))
    elif reason is not None and position > 0:
        where = line_of(doc, "standalone" if "standalone" in doc else "kinds")
        problems.append(_problem(file, where, "standalone",
                                 f"pack {name!r} is a base pack ({reason}), loaded in place "
                                 "of the built-in framework, so it must be the first pack "
                                 "given"))
    d.name = f"{d.name}+{name}" if d.name else name
    d.title = d.title or str(doc.get("title", name))
    pattern = str(doc.get("cite_pattern", d.cite_pattern if position else DEFAULT_CITE_PATTERN))
    try:
        with warnings.catch_warnings():  # a pack's odd-but-valid regex is not our warning
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as exc:
        problems.append(_problem(file, line_of(doc, "cite_pattern"), "cite-pattern",
                                 f"cite_pattern is not a regular expression: {exc}"))
        pattern = re.escape(pattern)
    if position == 0:
        d.cite_pattern = pattern
    d.cite_patterns[name] = pattern
    return problems, name


def _read_spec(d: Draft, file: str, doc: dict[str, Any], position: int
               ) -> list[PackProblem]:
    """The base pack's `framework:` section (or the default framework's, when it has
    none); an overlay may not have one: its results are its framework's."""
    if position > 0:
        if SECTION in doc and base_reason(doc) is None:  # a base pack: refused as such
            return [_problem(file, line_of(doc, SECTION), "framework", "only a base pack "
                             "says what its results hold (`framework:`); an overlay's "
                             "results are its framework's")]
        return []
    if SECTION not in doc:
        d.spec = default_spec()
        return []
    d.spec, problems = parse_spec(file, doc[SECTION])
    return problems


def _dir_name(d: Draft, file: str) -> str:
    """The name of a pack that declares none: its directory's."""
    return d.dirs[d.layer_of[file]].name


# --- stage: rule structure ------------------------------------------------------------


def stage_structure(d: Draft) -> list[PackProblem]:
    """Every rule has an id, title, citation, `because`, conditions and conclusions, in
    the shapes the format allows; each is parsed into a `Rule` (`engine.rule_syntax`)."""
    problems: list[PackProblem] = []
    for file, raw, pack_name in d.raw_rules:
        rule, rule_problems = parse_rule(file, raw, pack_name)
        problems += rule_problems
        if rule is not None:
            d.rules.append(rule)
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


def load_overlaid(overlays: Sequence[str | Path] = ()) -> Pack:
    """The packs `overlays` loaded as a stack: over the built-in framework, or over the
    first of them when it is a base pack (see `engine.packstack`)."""
    return load_pack(pack_stack(overlays))


def load_pack(dirs: Sequence[str | Path] | None = None) -> Pack:
    """Load and check exactly the packs in `dirs` (default: the built-in pack), the first
    as the base and each later one as an overlay on those before it. Raises `PackError`
    with every problem of the failing stage."""
    paths = [Path(p) for p in dirs] if dirs else [builtin_pack_dir()]
    draft = Draft(dirs=paths)
    for _name, stage in STAGES:
        problems = stage(draft)
        if problems:
            raise PackError(problems)
    cases = tuple(CaseFile(f, tuple(plain(c) for c in _cases(draft.docs.get(f))),
                           draft.layers[draft.layer_of[f]] if draft.layers else "")
                  for f in draft.case_files)
    pack = Pack(
        name=draft.name, title=draft.title, version=_content_hash(draft), kinds=draft.kinds,
        rules=tuple(draft.rules), capabilities=tuple(draft.capabilities),
        standards=tuple(draft.standards), facts=tuple(draft.facts), strata=draft.strata,
        cite_pattern=draft.cite_pattern, spec=draft.spec or default_spec(), case_files=cases,
        sources=tuple(draft.pack_files + draft.rule_files), layers=tuple(draft.layers),
    )
    from engine.validate import compile_problems  # it imports this module

    problems = compile_problems(pack)  # what durable-rules cannot compile, located
    if problems:
        raise PackError(problems)
    return pack


def _cases(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return list(doc.get("cases") or [])
    return list(doc or [])


def _content_hash(d: Draft) -> str:
    """A hash of what every loaded pack says (not of file names or formatting), so a
    result can be tied to the exact rules that produced it: the packs in load order,
    kinds, pack facts, each standard's elements, and every rule in force (with its pack,
    and the rationale of a replacement); and what its results hold (`framework:`), when
    that is not the default framework's (so packs from before `framework:` existed, and
    the default framework itself, keep their versions)."""
    content: dict[str, Any] = {
        "packs": d.layers,
        "kinds": {k: [v.origin, v.fields] for k, v in sorted(d.kinds.items())},
        "facts": sorted([f.id for f in d.facts]),
        "elements": sorted(e for s in d.standards for e in s.elements),
        "rules": sorted((r.id, r.pack, json.dumps(r.source, sort_keys=True, default=str))
                        for r in d.rules),
    }
    if d.spec is not None and d.spec != default_spec():
        content["framework"] = d.spec.source
    whole = sorted(s.id for s in d.standards if s.whole)
    if whole:
        content["whole"] = whole
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    return "sha256:" + digest.hexdigest()
