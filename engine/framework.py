"""What a framework pack says about its results: its headline level, its decisions and
the keys of its output, read from the `framework:` section of its pack.yaml.

The engine knows no policy's vocabulary. Which conclusion is the headline `level` (and
which levels there are, with the ranks rules compare), the order of the decisions (most
restrictive first; the last needs no action), and how each output key is read off the
conclusions all come from the base pack:

    framework:
      level: {kind: asl, field: level, key: asl, label: ASL,
              values: [{name: ASL-2, rank: 2}, {name: ASL-3, rank: 3}]}
      decisions: [pause, restrict_deployment, assessment_required, proceed]
      output:
        - {key: asl, kind: asl, field: level}                      # one fact's field
        - {key: required, kind: required, field: level, by: standard,
           names: [deployment, security]}                          # one fact per name
        - {key: thresholds, kind: status, field: value, by: capability,
           category: threshold, selector: threshold}               # per capability
        - {key: actions, kind: action, field: name, list: true}    # every fact, sorted
      summary: [required, thresholds, decision, actions]           # `asl assess` text
      decision_descriptions:                                        # for readers (UI)
        pause: "Pause: training or deployment waits for the missing safeguards."

Every result also carries `model`, `pack`, `framework` (the base pack's name) and
`level`; `level` repeats the key `level.key` names, when it names one. A base pack
without a `framework:` section reads its results as the built-in `rsp-2.1` does.
`decision_descriptions` gives a reader's sentence for some or all decisions (the web
UI's model page shows it under the decision); it is words for people, not part of what a
result holds, so it does not enter the pack's version. `selector` names the key in
conclusion selectors (`asl why --conclusion
threshold:NAME`, why-not targets); each output kind's own name selects it too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import PackProblem
from engine.yamlsafe import line_of

# Keys every result has, whatever its framework; an output entry may not take them.
NEUTRAL_KEYS = ("model", "pack", "framework", "level", "conclusions")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SECTION = "framework"
SECTION_KEYS = ("level", "decisions", "output", "summary", "decision_descriptions")
# Words for readers only: left out of the section a pack's version hashes.
FOR_READERS = ("decision_descriptions",)


@dataclass(frozen=True)
class Level:
    """One headline level and the rank rules compare it by."""

    name: str
    rank: float


@dataclass(frozen=True)
class Headline:
    """The framework's headline level: the conclusion (`kind`, `field`) that gives it,
    the output key that also holds it (`key`, or None), what tables call it (`label`),
    and its values, lowest first."""

    kind: str
    field: str
    key: str | None
    label: str
    values: tuple[Level, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.values)

    def rank(self, name: str | None) -> float | None:
        """The rank of a level name (None for an unknown or missing one)."""
        return next((level.rank for level in self.values if level.name == name), None)


@dataclass(frozen=True)
class OutputKey:
    """One key of the output and how it is read off the conclusions of `kind`:
    - `field` of the one fact of the kind (neither `by` nor `many`);
    - a mapping, name -> `field` of the one fact whose `by` field is that name, for
      each of `names`, or for each capability of `category`;
    - with `many`, the sorted distinct values of `field` over every fact of the kind."""

    key: str
    kind: str
    field: str
    by: str | None = None
    names: tuple[str, ...] = ()
    category: str | None = None
    many: bool = False
    selector: str | None = None
    label: str = ""
    when_true: str = "true"
    when_false: str = "false"

    @property
    def single(self) -> bool:
        """Whether the key reads exactly one fact (per name, for a mapping)."""
        return not self.many


@dataclass(frozen=True)
class FrameworkSpec:
    """A framework's headline level, decisions (most restrictive first) and output keys
    (in output order); `summary` the keys `asl assess` prints, in order."""

    level: Headline
    decisions: tuple[str, ...]
    keys: tuple[OutputKey, ...]
    summary: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    descriptions: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def describe(self, decision: str | None) -> str:
        """The pack's sentence for a decision, or "" when it gives none."""
        return dict(self.descriptions).get(decision or "", "")

    @property
    def order(self) -> tuple[str, ...]:
        """The contract keys in output order: `level` first (unless another key holds
        it), then the framework's."""
        keys = tuple(k.key for k in self.keys)
        return keys if self.level.key is not None else ("level", *keys)

    @property
    def categories(self) -> tuple[str, ...]:
        """The capability categories the output groups capabilities by."""
        return tuple(k.category for k in self.keys if k.category is not None)

    @property
    def needs_no_action(self) -> str:
        """The decision that asks nothing of anyone: the least restrictive."""
        return self.decisions[-1]

    def key(self, name: str) -> OutputKey | None:
        return next((k for k in self.keys if k.key == name), None)

    def contract_kinds(self) -> dict[str, set[str]]:
        """The kinds (and their fields) the pack must declare and conclude."""
        kinds: dict[str, set[str]] = {self.level.kind: {self.level.field}}
        for k in self.keys:
            kinds.setdefault(k.kind, set()).update({k.field, *([k.by] if k.by else [])})
        return kinds

    def single_valued(self) -> dict[str, tuple[str, ...]]:
        """Kinds the output reads exactly one fact of, and the fields telling those
        facts apart (`status` per `capability`): two rules concluding different values
        for one such fact conflict (engine.validate)."""
        found = {self.level.kind: ()}
        for k in self.keys:
            if k.single:
                found[k.kind] = (k.by,) if k.by else ()
        return found

    def subjects(self) -> dict[str, tuple[str, str | None, str | None, str | None]]:
        """Conclusion selector subjects: name -> (kind, key field, value field,
        capability category). `level`, every key's selector (or key) and every output
        kind's own name."""
        found: dict[str, tuple[str, str | None, str | None, str | None]] = {
            "level": (self.level.kind, None, self.level.field, None)}
        for k in self.keys:
            key_field, value = (k.field, None) if k.many else (k.by, k.field)
            found.setdefault(k.selector or k.key, (k.kind, key_field, value, k.category))
        for k in self.keys:
            key_field, value = (k.field, None) if k.many else (k.by, k.field)
            found.setdefault(k.kind, (k.kind, key_field, value, None))
        return found


def parse_spec(file: str, section: Any) -> tuple[FrameworkSpec | None, list[PackProblem]]:
    """The `framework:` section of a base pack's pack.yaml and every problem in it (the
    spec is None when its structure is wrong; a wrong `decision_descriptions` entry is a
    problem beside a spec that stands)."""
    problems: list[PackProblem] = []

    def problem(where: Any, key: str | None, message: str) -> None:
        problems.append(PackProblem(file, line_of(where, key) if key else line_of(where),
                                    "framework", message))

    if not isinstance(section, dict):
        problem(section, None, "`framework` maps level, decisions, output and summary")
        return None, problems
    for key in section:
        if key not in SECTION_KEYS:
            problem(section, key, f"`framework` has no key {key!r}; expected "
                    + ", ".join(SECTION_KEYS))
    headline = _headline(section.get("level"), section, problem)
    decisions = _names(section.get("decisions"), section, "decisions", problem)
    keys = _keys(section.get("output"), section, problem)
    taken = [k.key for k in keys]
    if headline is not None and headline.key is not None and headline.key not in taken:
        problem(section.get("level"), "key", f"framework.level.key {headline.key!r} is "
                "not an output key")
    summary = section.get("summary", taken)
    if not isinstance(summary, list) or any(s not in taken for s in summary):
        problem(section, "summary", "framework.summary lists output keys")
        summary = []
    if problems or headline is None:
        return None, problems
    # A wrong sentence is refused too, but the spec stands: the rest of the pack is
    # still checked against it, so the sentence's line is the only one printed.
    descriptions = _descriptions(section, decisions, problem)
    hashed = {k: v for k, v in section.items() if k not in FOR_READERS}
    return FrameworkSpec(headline, tuple(decisions), tuple(keys),
                         tuple(str(s) for s in summary), _plain(hashed),
                         descriptions), problems


Report = Any  # the `problem(where, key, message)` callback of parse_spec


def _headline(raw: Any, section: Any, problem: Report) -> Headline | None:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str)
                                            for k in ("kind", "field")):
        problem(raw if raw is not None else section, None if raw is not None else "level",
                "framework.level needs `kind` and `field` (the conclusion giving the "
                "headline level), and `values`")
        return None
    values = raw.get("values")
    levels: list[Level] = []
    if not isinstance(values, list) or not values:
        problem(raw, "values", "framework.level.values lists the levels, lowest first, "
                "each {name, rank}")
    else:
        for entry in values:
            name = entry.get("name") if isinstance(entry, dict) else None
            rank = entry.get("rank") if isinstance(entry, dict) else None
            if not isinstance(name, str) or isinstance(rank, bool) \
                    or not isinstance(rank, int | float):
                problem(entry, None, "each level is {name: TEXT, rank: NUMBER}")
            elif name in [lv.name for lv in levels]:
                problem(entry, None, f"level {name!r} is listed twice")
            else:
                levels.append(Level(name, rank))
    key = raw.get("key")
    return Headline(raw["kind"], raw["field"], str(key) if key is not None else None,
                    str(raw.get("label", "level")), tuple(levels))


def _names(raw: Any, section: Any, what: str, problem: Report) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw) \
            or len(set(raw)) != len(raw):
        problem(section, what, f"framework.{what} lists distinct names, most restrictive "
                "first")
        return []
    return list(raw)


def _descriptions(section: Any, decisions: list[str],
                  problem: Report) -> tuple[tuple[str, str], ...]:
    """`decision_descriptions`: decision -> one non-empty sentence, for listed
    decisions only (any may be left out)."""
    raw = section.get("decision_descriptions")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problem(section, "decision_descriptions", "framework.decision_descriptions maps "
                "a decision to the sentence a reader sees for it")
        return ()
    found: list[tuple[str, str]] = []
    for name, text in raw.items():
        if name not in decisions:
            problem(raw, name, f"framework.decision_descriptions: {name!r} is not one "
                    "of framework.decisions")
        elif not isinstance(text, str) or not text.strip():
            problem(raw, name, f"framework.decision_descriptions.{name} is one sentence "
                    "of text")
        else:
            found.append((name, text.strip()))
    return tuple(found)


OUTPUT_ENTRY = ("key", "kind", "field", "by", "names", "category", "list", "selector",
                "label", "when_true", "when_false")


def _keys(raw: Any, section: Any, problem: Report) -> list[OutputKey]:
    if not isinstance(raw, list) or not raw:
        problem(section, "output", "framework.output lists the output keys in order")
        return []
    keys: list[OutputKey] = []
    for entry in raw:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str)
                                                  for k in ("key", "kind", "field")):
            problem(entry, None, "each output entry needs `key`, `kind` and `field`")
            continue
        unknown = [k for k in entry if k not in OUTPUT_ENTRY]
        name = entry["key"]
        if unknown:
            problem(entry, unknown[0], f"output entry {name!r}: unknown key {unknown[0]!r}; "
                    f"expected {', '.join(OUTPUT_ENTRY)}")
        if name in NEUTRAL_KEYS or name in [k.key for k in keys]:
            problem(entry, "key", f"output key {name!r} is "
                    + ("every result's own" if name in NEUTRAL_KEYS else "listed twice"))
        names = entry.get("names") or []
        by, category, many = entry.get("by"), entry.get("category"), entry.get("list", False)
        if by is not None and bool(names) == (category is not None):
            problem(entry, "by", f"output entry {name!r}: with `by`, give `names` or a "
                    "capability `category`")
        if (names or category is not None) and by is None:
            problem(entry, None, f"output entry {name!r}: `names` and `category` need `by`")
        if not isinstance(many, bool) or (many and by is not None):
            problem(entry, "list", f"output entry {name!r}: `list` is true or false, and "
                    "a list has no `by`")
        keys.append(OutputKey(
            name, entry["kind"], entry["field"], by, tuple(str(n) for n in names),
            None if category is None else str(category), bool(many),
            entry.get("selector"), str(entry.get("label", name.replace("_", " "))),
            str(entry.get("when_true", "true")), str(entry.get("when_false", "false"))))
    return keys


def _plain(value: Any) -> Any:
    """YAML data as plain dicts and lists (for hashing and comparing)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@functools.cache
def builtin_spec(framework: str) -> FrameworkSpec | None:
    """The spec of a built-in framework (read from its pack.yaml alone, without loading
    the pack), or None when there is no such framework or it cannot be read."""
    from engine.packstack import builtin_frameworks, read_pack_yaml

    directory = builtin_frameworks().get(framework)
    doc = read_pack_yaml(directory) if directory is not None else None
    if not isinstance(doc, dict) or SECTION not in doc:
        return None
    spec, _ = parse_spec(str(directory), doc[SECTION])
    return spec


def default_spec() -> FrameworkSpec:
    """The spec of a base pack that states none: the default framework's."""
    from engine.packstack import BUILTIN_PACK

    spec = builtin_spec(BUILTIN_PACK)
    if spec is None:
        raise RuntimeError(f"the built-in framework {BUILTIN_PACK} states no `framework:`")
    return spec


def framework_of(result: Mapping[str, Any]) -> str:
    """The framework a result (new or stored) was made under: its `framework`, or, for
    a result from before every result had one, the first name of its pack."""
    name = result.get("framework")
    if isinstance(name, str):
        return name
    pack = result.get("pack")
    return str(pack.get("name", "")).split("+", 1)[0] if isinstance(pack, dict) else ""


def spec_of(result: Mapping[str, Any]) -> FrameworkSpec:
    """The spec to read a result with: its built-in framework's, else the default."""
    return builtin_spec(framework_of(result)) or default_spec()


def known_levels(specs: Iterable[FrameworkSpec]) -> list[str]:
    """Every level name of these frameworks, in their order, each once."""
    return list(dict.fromkeys(name for spec in specs for name in spec.level.names))


def known_decisions(specs: Iterable[FrameworkSpec]) -> list[str]:
    """Every decision of these frameworks, in their order, each once."""
    return list(dict.fromkeys(name for spec in specs for name in spec.decisions))


def builtin_specs() -> list[FrameworkSpec]:
    """The spec of every built-in framework that states one, in `builtin_frameworks`'
    order: what a filter over stored results of any framework accepts."""
    from engine.packstack import builtin_frameworks

    return [spec for spec in map(builtin_spec, builtin_frameworks()) if spec is not None]


@functools.cache
def builtin_names() -> tuple[tuple[str, str], ...]:
    """(name, framework) for every capability name and safeguard id (standards and their
    elements) the built-in frameworks' catalogues declare, read from their pack.yaml
    files alone: what evidence written for one framework may name."""
    from engine.packstack import builtin_frameworks, read_pack_yaml

    found: list[tuple[str, str]] = []
    for framework, directory in builtin_frameworks().items():
        doc = read_pack_yaml(directory)
        catalogue = doc.get("catalogue") if isinstance(doc, dict) else None
        if not isinstance(catalogue, dict):
            continue
        for entry in catalogue.get("capabilities") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                found.append((entry["name"], framework))
        for entry in catalogue.get("standards") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                found.append((entry["name"], framework))
                found += [(f"{entry['name']}.{element}", framework)
                          for element in entry.get("elements") or []]
    return tuple(found)
