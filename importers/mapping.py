"""The mapping file: which Inspect task, scorer and metric feed which capability threshold.

An Inspect log says what a model scored on a task; the evidence format needs to know
which threshold that informs, how, and at what scores. The analyst writes that once per
evaluation suite, in YAML (documented in docs/inspect-import.md):

    models:
      mockllm/model: lyra-5-opus        # Inspect model name -> model id in the evidence
    evaluations:
      - task: bio_uplift_probe
        scorer: match                   # optional when the log has one scorer
        metric: accuracy
        threshold: CBRN-3
        purpose: rule_out
        threshold_score: 0.8
        warning_score: 0.6
        elicitation: full
        direction: higher               # or lower: score becomes 1 - value

It is read with the project's one safe YAML loader (data only, never code) and checked
as a rule pack is: every problem is reported, each as `FILE:LINE: FIELD: MESSAGE`.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from engine.evidence_schema import ELICITATIONS, PURPOSES, Vocabulary
from engine.yamlsafe import line_of, load_yaml
from importers.problems import ImportRefused, Problem, refuse

DIRECTIONS = ("higher", "lower")
MAX_MAPPING_BYTES = 5 * 1024 * 1024
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")  # the evidence format's model id
TOP_KEYS = ("models", "evaluations")
REQUIRED = ("task", "metric", "threshold", "threshold_score", "direction")
OPTIONAL = ("scorer", "reducer", "purpose", "warning_score", "elicitation", "id", "name")
ENTRY_KEYS = REQUIRED + OPTIONAL


@dataclass(frozen=True)
class MappingEntry:
    """One evaluation the mapping defines: where its figure comes from in a log, and the
    evidence fields it becomes. `id` prefixes the evaluation ids (`ID-EVALID`)."""

    task: str
    metric: str
    threshold: str
    threshold_score: float
    direction: str
    scorer: str | None
    reducer: str | None
    purpose: str
    warning_score: float | None
    elicitation: str
    id: str
    name: str | None
    line: int  # where the entry begins in the mapping file

    def score_of(self, value: float) -> float:
        """The evidence score for a metric value: higher always means more capable."""
        return value if self.direction == "higher" else 1.0 - value


@dataclass(frozen=True)
class Mapping:
    """A checked mapping file: Inspect model names to model ids, and the evaluations."""

    file: str
    models: dict[str, str]
    evaluations: tuple[MappingEntry, ...]
    models_line: int = 0

    def entries_for(self, task: str) -> list[MappingEntry]:
        """The evaluations that read a task's log, in the file's order."""
        return [entry for entry in self.evaluations if entry.task == task]

    @property
    def tasks(self) -> list[str]:
        """Every task the mapping names, sorted."""
        return sorted({entry.task for entry in self.evaluations})


def load_mapping(path: str, vocabulary: Vocabulary | None = None) -> Mapping:
    """Read and check the mapping file at `path` (see `parse_mapping`)."""
    try:
        with open(path, "rb") as handle:
            content = handle.read(MAX_MAPPING_BYTES + 1)
    except FileNotFoundError:
        raise refuse(path, "", "no such file or directory") from None
    except OSError as exc:
        raise refuse(path, "", exc.strerror or str(exc)) from None
    if len(content) > MAX_MAPPING_BYTES:
        raise refuse(path, "", f"larger than the {MAX_MAPPING_BYTES:,}-byte limit")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse(path, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return parse_mapping(text, path, vocabulary)


def parse_mapping(text: str, file: str, vocabulary: Vocabulary | None = None) -> Mapping:
    """A Mapping from the YAML `text` of `file`, or ImportRefused with every problem.

    With a `vocabulary` (the active pack's names), a threshold the pack does not define
    is refused here, at its line, rather than later in the evidence it would produce.
    """
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise refuse(file, "", f"invalid YAML: {problem}", mark.line + 1 if mark else 0
                     ) from None
    except RecursionError:
        raise refuse(file, "", "invalid YAML: nested too deeply") from None
    check = _Checker(file, vocabulary)
    mapping = check.document(data)
    if check.problems:
        raise ImportRefused(check.problems)
    assert mapping is not None
    return mapping


def _show(value: object) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _unknown(kind: str, value: str, choices: Sequence[str]) -> str:
    guess = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"unknown {kind} {value!r}{hint}; expected one of {', '.join(choices)}"


class _Checker:
    """Collects every problem of one mapping file, each at its line."""

    def __init__(self, file: str, vocabulary: Vocabulary | None) -> None:
        self.file, self.vocabulary = file, vocabulary
        self.problems: list[Problem] = []

    def add(self, node: object, key: str | None, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, line_of(node, key), field, message))

    def keys(self, node: dict[Any, Any], allowed: Sequence[str], at: str) -> None:
        for key in node:
            if key not in allowed:
                self.add(node, str(key), f"{at}{key}", _unknown("field", str(key), allowed))

    def document(self, data: object) -> Mapping | None:
        if not isinstance(data, dict):
            self.add(data, None, "", "expected a mapping with `models` and `evaluations`, "
                     f"got {_show(data)}")
            return None
        self.keys(data, TOP_KEYS, "")
        models = self.models(data)
        entries = self.entries(data)
        return Mapping(self.file, models, tuple(entries), line_of(data, "models"))

    def models(self, data: dict[str, Any]) -> dict[str, str]:
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            got = "nothing" if models is None else _show(models)
            self.add(data, "models" if "models" in data else None, "models",
                     f"expected a mapping of Inspect model names to model ids, got {got}")
            return {}
        found = {}
        for name, ident in models.items():
            at = f"models.{name}"
            if not isinstance(name, str) or not name:
                self.add(models, str(name), at, "expected an Inspect model name")
            elif not isinstance(ident, str) or not MODEL_ID.match(ident):
                self.add(models, name, at, f"invalid model id {_show(ident)}; expected 1 to "
                         "128 lowercase letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
            else:
                found[name] = ident
        return found

    def entries(self, data: dict[str, Any]) -> list[MappingEntry]:
        items = data.get("evaluations")
        if not isinstance(items, list) or not items:
            got = "nothing" if items is None else _show(items)
            self.add(data, "evaluations" if "evaluations" in data else None, "evaluations",
                     f"expected a list of evaluations, got {got}")
            return []
        entries, first = [], {}
        for i, item in enumerate(items):
            at = f"evaluations[{i}]"
            if not isinstance(item, dict):
                self.add(data, "evaluations", at, f"expected a mapping, got {_show(item)}")
                continue
            entry = self.entry(item, at)
            if entry is None:
                continue
            if entry.id in first:
                self.add(item, "id" if "id" in item else "task", f"{at}.id",
                         f"duplicate id {entry.id!r} (also {first[entry.id]}); give each "
                         "evaluation of the same task its own `id`")
            else:
                first[entry.id] = f"{at}, line {entry.line}"
                entries.append(entry)
        return entries

    def entry(self, item: dict[str, Any], at: str) -> MappingEntry | None:
        before = len(self.problems)
        self.keys(item, ENTRY_KEYS, f"{at}.")
        for key in REQUIRED:
            if item.get(key) is None:
                self.add(item, key if key in item else None, f"{at}.{key}", "field required"
                         + (": higher or lower (which way of the metric means more capable)"
                            if key == "direction" else ""))
        text = {key: self.text(item, key, at) for key in
                ("task", "metric", "threshold", "scorer", "reducer", "id", "name")}
        numbers = {key: self.fraction(item, key, at) for key in
                   ("threshold_score", "warning_score")}
        choices = {key: self.choice(item, key, at, options) for key, options in
                   (("direction", DIRECTIONS), ("purpose", PURPOSES),
                    ("elicitation", ELICITATIONS))}
        threshold, warning = numbers["threshold_score"], numbers["warning_score"]
        if threshold is not None and warning is not None and warning > threshold:
            self.add(item, "warning_score", f"{at}.warning_score",
                     f"warning_score {warning!r} is above threshold_score {threshold!r}")
        known = self.vocabulary.capabilities if self.vocabulary else None
        if known is not None and text["threshold"] and text["threshold"] not in known:
            self.add(item, "threshold", f"{at}.threshold",
                     _unknown("threshold", text["threshold"], sorted(known)))
        if len(self.problems) > before:
            return None
        return MappingEntry(
            task=text["task"], metric=text["metric"], threshold=text["threshold"],
            threshold_score=threshold, direction=choices["direction"],
            scorer=text["scorer"], reducer=text["reducer"],
            purpose=choices["purpose"] or "rule_out", warning_score=warning,
            elicitation=choices["elicitation"] or "full", id=text["id"] or text["task"],
            name=text["name"], line=line_of(item))

    def text(self, item: dict[str, Any], key: str, at: str) -> Any:
        value = item.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.add(item, key, f"{at}.{key}", f"expected a non-empty string, got "
                     f"{_show(value)}")
            return None
        return value

    def fraction(self, item: dict[str, Any], key: str, at: str) -> Any:
        value = item.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or not 0 <= value <= 1:
            self.add(item, key, f"{at}.{key}", f"expected a number from 0 to 1 (scores are "
                     f"fractions once direction is applied), got {_show(value)}")
            return None
        return float(value)

    def choice(self, item: dict[str, Any], key: str, at: str, options: Sequence[str]
               ) -> Any:
        value = item.get(key)
        if value is not None and value not in options:
            self.add(item, key, f"{at}.{key}", _unknown(key, str(value), options)
                     if isinstance(value, str) else
                     f"expected one of {', '.join(options)}, got {_show(value)}")
            return None
        return value

