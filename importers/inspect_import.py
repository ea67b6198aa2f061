"""Inspect eval logs + a mapping -> `evaluations` entries -> an evidence document.

The whole import is one function, `import_inspect`, over values any caller can supply
(the command line reads files; a service passes uploaded bytes to `read_log` and the
mapping's text to `parse_mapping`). It refuses the import, all of it, naming the file
and the field, when a log did not finish successfully, was invalidated, has no model,
task, scorer or metric the mapping asks for, gives a score outside [0, 1], or disagrees
with another log about the same evaluation (unless `latest`, which keeps the newest).

Each evaluation it produces keeps its figure traceable: `id` is the mapping entry's id
(the task, unless the mapping says otherwise) and the log's eval id, `source` names the
log file and the eval id, `date` is the day the log was created (UTC).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import InputError
from engine.evidence import load_evidence, parse_document
from engine.evidence_schema import Vocabulary
from engine.rule_syntax import plain
from engine.yamlsafe import load_yaml
from importers.inspect_log import LogHeader, LogScore
from importers.mapping import Mapping, MappingEntry
from importers.problems import ImportRefused, Problem, refuse


@dataclass(frozen=True)
class Imported:
    """One evaluation read from one log: the model it is evidence about, and the entry."""

    model: str  # model id in the evidence
    entry: MappingEntry
    log: LogHeader
    score: float
    evaluation: dict[str, Any]  # the `evaluations` entry, in the evidence format's order


def evaluations_from(logs: Sequence[LogHeader], mapping: Mapping, latest: bool = False
                     ) -> list[Imported]:
    """Every evaluation the logs give under the mapping, one per model and mapping entry,
    ordered by model id and then as the mapping lists them; ImportRefused otherwise."""
    problems: list[Problem] = []
    found: list[Imported] = []
    for log in logs:
        try:
            found += _from_log(log, mapping)
        except ImportRefused as exc:
            problems += exc.problems
    chosen = _one_per_evaluation(found, latest, problems)
    if problems:
        raise ImportRefused(problems)
    order = {entry.id: i for i, entry in enumerate(mapping.evaluations)}
    return sorted(chosen, key=lambda item: (item.model, order[item.entry.id]))


def _from_log(log: LogHeader, mapping: Mapping) -> list[Imported]:
    """The evaluations one log gives, or ImportRefused with each problem it has."""
    where = log.file
    if log.status != "success":
        why = f" ({log.error})" if log.error else ""
        raise refuse(where, "status", f"the run's status is {log.status!r}, not 'success'"
                     f"{why}; only a finished, successful run is evidence")
    if log.invalidated:
        raise refuse(where, "invalidated", "the log's samples were invalidated after the "
                     "run; import a valid run")
    problems = []
    if not log.eval_id:
        problems.append(Problem(where, 0, "eval.eval_id",
                                "field required: the log has no eval id to trace it by"))
    model = mapping.models.get(log.model)
    if model is None:
        problems.append(Problem(where, 0, "eval.model", f"model {log.model!r} is not named "
                                f"in {mapping.file} (models: {', '.join(mapping.models)})"))
    entries = mapping.entries_for(log.task)
    if not entries:
        problems.append(Problem(where, 0, "eval.task", f"task {log.task!r} is not in "
                                f"{mapping.file} (tasks: {', '.join(mapping.tasks)})"))
    imported = []
    for entry in entries:
        try:
            index, score, metric = _metric(log, entry, mapping.file)
        except ImportRefused as exc:
            problems += exc.problems
            continue
        value = entry.score_of(metric)
        if entry.direction == "lower":
            value = round(value, 15)  # 1 - 0.7 is 0.30000000000000004 in binary
        if not 0 <= value <= 1:
            after = "" if entry.direction == "higher" else f" (1 - {metric!r} = {value!r})"
            problems.append(Problem(
                where, 0, f"results.scores[{index}].metrics.{entry.metric}.value",
                f"score {metric!r}{after} is outside [0, 1]; {mapping.file}:{entry.line} "
                f"maps it to {entry.threshold}, whose scores are fractions"))
            continue
        if model is not None and log.eval_id:
            imported.append(Imported(model, entry, log, value,
                                     _evaluation(entry, log, score, value)))
    if problems:
        raise ImportRefused(problems)
    return imported


def _metric(log: LogHeader, entry: MappingEntry, mapping_file: str
            ) -> tuple[int, LogScore, float]:
    """(index in results.scores, the score, the metric's value) that an entry reads."""
    at = f"{mapping_file}:{entry.line}"
    names = list(dict.fromkeys(score.name for score in log.scores))
    if not names:
        raise refuse(log.file, "results.scores", f"the log has no scores (read by {at})")
    if entry.scorer is None and len(names) > 1:
        raise refuse(log.file, "results.scores", f"the log has several scorers "
                     f"({', '.join(names)}); say which one in `scorer` at {at}")
    name = entry.scorer or names[0]
    candidates = [(i, s) for i, s in enumerate(log.scores) if s.name == name]
    if not candidates:
        raise refuse(log.file, "results.scores", f"no scorer {name!r} (asked for at {at}); "
                     f"the log's scorers: {', '.join(names)}")
    if entry.reducer is not None:
        reducers = [str(s.reducer) for _, s in candidates]
        candidates = [(i, s) for i, s in candidates if s.reducer == entry.reducer]
        if not candidates:
            raise refuse(log.file, "results.scores", f"scorer {name!r} has no reducer "
                         f"{entry.reducer!r} (asked for at {at}); it has {', '.join(reducers)}")
    if len(candidates) > 1:
        reducers = ", ".join(str(s.reducer) for _, s in candidates)
        raise refuse(log.file, "results.scores", f"scorer {name!r} is reduced several ways "
                     f"({reducers}); say which one in `reducer` at {at}")
    index, score = candidates[0]
    metrics = dict(score.metrics)
    if entry.metric not in metrics:
        raise refuse(log.file, f"results.scores[{index}].metrics", f"scorer {name!r} has no "
                     f"metric {entry.metric!r} (asked for at {at}); it has "
                     f"{', '.join(metrics) or 'none'}")
    value = metrics[entry.metric]
    if not math.isfinite(value):
        raise refuse(log.file, f"results.scores[{index}].metrics.{entry.metric}.value",
                     f"the metric is {value!r}, not a number Inspect could compute")
    return index, score, value


def _evaluation(entry: MappingEntry, log: LogHeader, score: LogScore, value: float
                ) -> dict[str, Any]:
    """The evidence format's `evaluations` entry, fields in the format's order."""
    read = f"{score.name} {entry.metric}"
    read = read if entry.direction == "higher" else f"1 - {read}"
    evaluation: dict[str, Any] = {
        "id": f"{entry.id}-{log.eval_id}",
        "threshold": entry.threshold,
        "purpose": entry.purpose,
        "score": value,
        "threshold_score": entry.threshold_score,
    }
    if entry.warning_score is not None:
        evaluation["warning_score"] = entry.warning_score
    evaluation.update({
        "elicitation": entry.elicitation,
        "name": entry.name or f"{log.task} ({read})",
        "source": f"{log.file} (Inspect eval_id {log.eval_id})",
        "date": datetime.date.fromisoformat(log.date),
    })
    return evaluation


def _one_per_evaluation(found: list[Imported], latest: bool, problems: list[Problem]
                        ) -> list[Imported]:
    """One log's figure per (model, mapping entry). Logs that agree (the same run read
    twice, or runs with equal scores) leave the newest; logs that disagree are refused,
    unless `latest`, which keeps the newest, as long as one is newest."""
    groups: dict[tuple[str, str], list[Imported]] = {}
    for item in found:
        groups.setdefault((item.model, item.entry.id), []).append(item)
    chosen = []
    for (model, entry_id), items in groups.items():
        items.sort(key=lambda item: (item.log.created, item.log.eval_id))
        newest = items[-1]
        differ = [item for item in items if item.score != newest.score]
        if differ and not latest:
            first = items[0]
            for item in items[1:]:
                if item.score != first.score:
                    problems.append(Problem(
                        item.log.file, 0, "results", f"evaluation {entry_id!r} of {model} "
                        f"scores {item.score!r} here but {first.score!r} in {first.log.file}; "
                        "pass --latest to keep the newest log's figure"))
            continue
        tied = [item for item in differ if item.log.created == newest.log.created]
        if tied:
            problems.append(Problem(
                newest.log.file, 0, "eval.created", f"evaluation {entry_id!r} of {model} "
                f"scores {newest.score!r} here but {tied[0].score!r} in {tied[0].log.file}, "
                f"created at the same time ({newest.log.created}): neither is the latest"))
            continue
        chosen.append(newest)
    return chosen


def new_document(imported: Sequence[Imported]) -> dict[str, Any]:
    """An evidence document holding the imported evaluations: a model document, or a
    portfolio (`models:`, by model id) when the logs are about several models."""
    documents: dict[str, dict[str, Any]] = {}
    for item in imported:
        document = documents.setdefault(item.model, {"model": {"id": item.model},
                                                     "evaluations": []})
        document["evaluations"].append(item.evaluation)
    if len(documents) == 1:
        return next(iter(documents.values()))
    return {"models": [documents[model] for model in sorted(documents)]}


def merge_into(document: dict[str, Any], file: str, imported: Sequence[Imported]
               ) -> dict[str, Any]:
    """The model document `document` (read from `file`) with the imported evaluations
    added: an entry with the same id is replaced where it stands, the others are added
    at the end. Everything else in the document is kept as it is."""
    model = document.get("model", {}).get("id") if isinstance(document, dict) else None
    problems = [Problem(item.log.file, 0, "eval.model", f"{item.log.model!r} is "
                        f"{item.model} in the mapping, but {file} is about {model}")
                for item in imported if item.model != model]
    if problems:
        raise ImportRefused(problems)
    merged = dict(document)
    evaluations = list(merged.get("evaluations") or [])
    position = {entry.get("id"): i for i, entry in enumerate(evaluations)
                if isinstance(entry, dict)}
    for item in imported:
        ident = item.evaluation["id"]
        if ident in position:
            evaluations[position[ident]] = item.evaluation
        else:
            position[ident] = len(evaluations)
            evaluations.append(item.evaluation)
    merged["evaluations"] = evaluations
    if "model" in merged and "evaluations" in document:
        return merged
    # a document without evaluations gets them right after `model`, as the format shows
    return {key: merged[key] for key in ["model", "evaluations",
                                         *[k for k in merged if k not in
                                           ("model", "evaluations")]]}


def read_into(file: str, vocabulary: Vocabulary) -> dict[str, Any]:
    """The model document at `file` as plain data, after checking it is valid evidence
    and one model document (not a portfolio): the document an import adds to."""
    loaded = load_evidence([file], vocabulary)
    if loaded.errors:
        raise ImportRefused(_problems(loaded.errors))
    if len(loaded.documents) != 1 or loaded.documents[0].where:
        raise refuse(file, "", "--into needs one model document, not a portfolio")
    with open(file, "rb") as handle:
        text = handle.read().decode("utf-8-sig")
    if Path(file).suffix.lower() == ".json":
        return json.loads(text)
    return plain(load_yaml(text))


def check_output(data: dict[str, Any], file: str, vocabulary: Vocabulary) -> None:
    """Refuse the import if what it would write is not valid evidence for the pack (it
    is checked exactly as `asl assess` would check it)."""
    documents = data.get("models", [data])
    problems: list[Problem] = []
    for i, document in enumerate(documents):
        where = f"models[{i}]" if "models" in data else ""
        problems += _problems(parse_document(document, file, where, vocabulary)[1])
    if problems:
        raise ImportRefused(problems)


def _problems(errors: Sequence[InputError]) -> list[Problem]:
    return [Problem(error.file, 0, error.path, error.message) for error in errors]


def import_inspect(logs: Sequence[LogHeader], mapping: Mapping, vocabulary: Vocabulary, *,
                   latest: bool = False, into: dict[str, Any] | None = None,
                   into_file: str = "", output_file: str = "<output>") -> dict[str, Any]:
    """The evidence document an import produces: the logs' evaluations under the mapping,
    in a new document or added to `into` (the model document read from `into_file`),
    checked as valid evidence for the pack's `vocabulary` (errors name `output_file`).
    Raises ImportRefused, with every problem, when anything is wrong; then nothing
    should be written."""
    imported = evaluations_from(logs, mapping, latest)
    data = new_document(imported) if into is None else merge_into(into, into_file, imported)
    check_output(data, output_file, vocabulary)
    return data


FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def dump_document(data: dict[str, Any], fmt: str) -> str:
    """An evidence document as YAML (keys in the order they were built) or JSON."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=_iso) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _iso(value: object) -> str:
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
