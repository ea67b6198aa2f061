"""What if the evidence said something else? Edit one model's document and re-assess.

An edit is `PATH=VALUE` (`--set`) or `PATH` (`--unset`) on the model's raw document data,
before validation: `evaluations[ex-ckpt].score=0.3`, `deployment.channels=[api]`,
`safeguards[asl3-security.audits].status=implemented`,
`model.last_comprehensive_assessment.months_since=2`. List items are addressed by their
`id`; a safeguard id not yet listed is added, as is any item set to a whole mapping
(`findings[rt-9]={threshold: CBRN-3, verdict: crossed}`). The edited data is validated
again with `parse_document`, so a bad value is reported exactly as bad evidence is
(`FILE: evaluations[0].score: expected a number, got 'high'`), and a bad path names the
edit (`FILE: --set evaluations[nope].score: no evaluation with id 'nope'; ids: ...`).

The whole portfolio is assessed before and after, so models that carry over the edited
model's determination change with it. "Before" is the front door's run as it was
(`engine.api.assess`), which also holds each document's raw data: nothing is read twice.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

from engine.api import AssessmentRun, assess_documents
from engine.assess import Assessment, vocabulary
from engine.errors import InputError
from engine.evidence import LoadedDocument, parse_document
from engine.evidence_schema import ModelDocument
from engine.lineage import Lineage, Links
from engine.yamlsafe import load_yaml

SET, UNSET = "--set", "--unset"
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]+)\])?")
_ITEM_KIND = {"evaluations": "evaluation", "findings": "finding", "safeguards": "safeguard"}
_ADDED_BY_ID = ("safeguards",)  # sections where an unknown id adds an entry


class EditRejected(Exception):
    """An edit could not be applied, or its result is not valid evidence; carries every
    problem as located input errors."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class Step:
    """One step of an edit path: a field name, and the id of a list item when bracketed."""

    name: str
    item: str | None = None


@dataclass(frozen=True)
class Edit:
    """One `--set PATH=VALUE` or `--unset PATH`; `value` is plain JSON-ready data."""

    option: str
    path: str
    steps: tuple[Step, ...]
    value: Any = None
    text: str = ""  # VALUE as written

    def __str__(self) -> str:
        return f"{UNSET} {self.path}" if self.option == UNSET else f"{SET} {self.path}={self.text}"


@dataclass
class WhatIf:
    """The portfolio assessed before and after the edits of one model's document."""

    model: str
    file: str
    edits: list[Edit]
    before: dict[str, Assessment]
    after: dict[str, Assessment]
    errors: list[InputError] = field(default_factory=list)  # the untouched input's problems
    after_errors: list[InputError] = field(default_factory=list)  # models lost to the edit


def _plain(value: Any, text: str) -> Any:
    """YAML-parsed data as JSON-ready data (dates as ISO strings); anything else refused."""
    if isinstance(value, dict):
        return {str(k): _plain(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, text) for v in value]
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"unsupported value {text!r}; expected a number, a string, true or "
                     "false, null, a [list] or a {mapping}")


def parse_steps(path: str) -> tuple[Step, ...]:
    """`evaluations[ex-ckpt].score` as steps; a malformed path raises ValueError.

    >>> parse_steps("safeguards[asl3-security.audits].status")
    (Step(name='safeguards', item='asl3-security.audits'), Step(name='status', item=None))
    """
    steps, at = [], 0
    while True:
        found = _STEP.match(path, at)
        if found is None:
            break
        steps.append(Step(found.group(1), found.group(2)))
        at = found.end()
        if at == len(path):
            return tuple(steps)
        if path[at] != ".":
            break
        at += 1
    raise ValueError(f"malformed path at character {at + 1}; expected FIELD, FIELD[ID] "
                     "or FIELD[ID].FIELD, e.g. evaluations[bio-eval].score")


def parse_edit(option: str, text: str) -> Edit:
    """An edit from its command-line text; VALUE is YAML (`[api]`, `0.3`, `ASL-3`).

    >>> parse_edit("--set", "deployment.channels=[api]").value
    ['api']
    >>> parse_edit("--unset", "evaluations[ex-bio]").steps
    (Step(name='evaluations', item='ex-bio'),)
    """
    if option == UNSET:
        return Edit(UNSET, text, parse_steps(text))
    depth, split = 0, -1
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "=" and depth == 0:
            split = index
            break
    split = split if split >= 0 else text.find("=")  # unbalanced brackets: path error
    if split < 0:
        raise ValueError("expected PATH=VALUE, e.g. evaluations[bio-eval].score=0.3")
    path, raw = text[:split].strip(), text[split + 1:]
    steps = parse_steps(path)
    try:
        value = load_yaml(raw)
    except yaml.MarkedYAMLError as exc:
        raise ValueError(f"VALUE {raw!r} is not valid YAML: "
                         f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"VALUE {raw!r} is not valid YAML: "
                         f"{str(exc).splitlines()[0]}") from None
    return Edit(SET, path, steps, _plain(value, raw), raw)


def _field_model(model: type[BaseModel], name: str) -> tuple[bool, type[BaseModel] | None]:
    """(is a list, the model class of the field or of its items, if any)."""
    annotation: Any = model.model_fields[name].annotation
    is_list = False
    while True:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return is_list, annotation
        if get_origin(annotation) is list:
            is_list = True
        args = [a for a in get_args(annotation) if a is not type(None)]
        if not args:
            return is_list, None
        annotation = args[0]


def _apply(data: dict[str, Any], edit: Edit) -> str | None:
    """Apply one edit to document data in place; the problem with its path, if any."""
    model: type[BaseModel] | None = ModelDocument
    container: Any = data
    shown = ""
    for index, step in enumerate(edit.steps):
        last = index == len(edit.steps) - 1
        if model is None or not isinstance(container, dict):
            return f"{shown} is not a mapping; it has no field {step.name!r}"
        if step.name not in model.model_fields:
            fields = sorted(model.model_fields)
            guess = difflib.get_close_matches(step.name, fields, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            where = f" of {shown}" if shown else ""
            return (f"unknown field {step.name!r}{where}{hint}; "
                    f"expected one of {', '.join(fields)}")
        if edit.steps[:index + 1] == (Step("model"), Step("id")):
            return "the model id cannot be changed in a what-if"
        is_list, child_model = _field_model(model, step.name)
        shown = f"{shown}.{step.name}" if shown else step.name
        if step.item is None and is_list and not last:
            return f"{shown} is a list; address one entry by its id: {shown}[ID]"
        if step.item is not None and not (is_list and child_model is not None
                                          and "id" in child_model.model_fields):
            return f"{shown} has no entries with ids; set it whole, e.g. {shown}=[...]"
        if step.item is None:
            if last:
                if edit.option == SET:
                    container[step.name] = copy.deepcopy(edit.value)
                else:
                    container.pop(step.name, None)
                return None
            if not isinstance(container.get(step.name), dict):
                container[step.name] = {}  # absent: created, and validated below
            container, model = container[step.name], child_model
            continue
        items = container.setdefault(step.name, [])
        if not isinstance(items, list):
            return f"{shown} is not a list"
        found = [i for i, item in enumerate(items)
                 if isinstance(item, dict) and item.get("id") == step.item]
        whole = last and edit.option == SET
        if whole and not isinstance(edit.value, dict):
            return (f"set an entry to a mapping, e.g. {shown}[{step.item}]="
                    "{field: value}, or set one of its fields")
        if whole and edit.value.get("id", step.item) != step.item:
            return f"the entry's id {edit.value['id']!r} differs from {step.item!r}"
        if not found and not (whole or (step.name in _ADDED_BY_ID and edit.option == SET)):
            return _no_such_item(data, step.name, step.item)
        if not found:
            items.append({"id": step.item})
            found = [len(items) - 1]
        shown = f"{shown}[{step.item}]"
        if last:
            if edit.option == UNSET:
                del items[found[0]]
            else:
                items[found[0]] = {"id": step.item, **copy.deepcopy(edit.value)}
            return None
        container, model = items[found[0]], child_model
    return None


def _no_such_item(data: dict[str, Any], section: str, item: str) -> str:
    """`no evaluation with id 'x' (did you mean 'y'?); ids: ...`, naming the other section
    when the id is there (evaluations and findings share one namespace)."""
    def ids(name: str) -> list[str]:
        entries = data.get(name)
        return [str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e] \
            if isinstance(entries, list) else []

    known = ids(section)
    kind = _ITEM_KIND.get(section, "entry")
    for other in ("evaluations", "findings"):
        if other != section and item in ids(other):
            other_kind = _ITEM_KIND[other]
            article = "an" if other_kind[0] in "aeiou" else "a"
            return f"no {kind} with id {item!r}; it is {article} {other_kind}: {other}[{item}]"
    guess = difflib.get_close_matches(item, known, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"no {kind} with id {item!r}{hint}; ids: {', '.join(known) or '(none)'}"


def apply_edits(data: object, edits: Sequence[Edit], file: str) -> dict[str, Any]:
    """A deep copy of one model document's raw data with the edits applied in order;
    raises EditRejected with every bad edit (`FILE: --set PATH: problem`)."""
    if not isinstance(data, dict):
        raise EditRejected([InputError(file, "", "the model document is not a mapping")])
    edited = copy.deepcopy(data)
    problems = []
    for edit in edits:
        problem = _apply(edited, edit)
        if problem is not None:
            problems.append(InputError(file, f"{edit.option} {edit.path}", problem))
    if problems:
        raise EditRejected(problems)
    return edited


def choose(docs: Sequence[LoadedDocument], model_id: str | None, file: str) -> LoadedDocument:
    """The document of `model_id`, or the only one; EditRejected names the choices."""
    by_id = {d.document.model.id: d for d in docs}
    known = ", ".join(sorted(by_id)) or "none"
    if model_id is not None and model_id not in by_id:
        guess = difflib.get_close_matches(model_id, sorted(by_id), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise EditRejected([InputError(file, "", f"no model {model_id!r}{hint}; "
                                                 f"models: {known}")])
    if model_id is None and len(by_id) != 1:
        message = ("no model could be loaded" if not by_id else
                   f"holds {len(by_id)} models; choose one with --model ({known})")
        raise EditRejected([InputError(file, "", message)])
    return by_id[model_id] if model_id is not None else next(iter(by_id.values()))


def what_if(run: AssessmentRun, edits: Sequence[Edit], model_id: str | None = None,
            file: str = "") -> WhatIf:
    """Apply `edits` to `model_id`'s document (or the only one's) in the portfolio `run`
    assessed, validate it again and assess the portfolio again with the same pack and
    references. Raises EditRejected for a bad edit or an invalid result (a reference
    cycle the edit closes included); `file` names the input in errors about the whole
    of it."""
    if run.models and not run.documents:
        raise ValueError("what_if needs the run's documents: assess with keep_inputs")
    target = choose(run.documents, model_id, file)
    edited = apply_edits(target.raw, edits, target.file)
    document, problems = parse_document(edited, target.file, target.where,
                                        vocabulary(run.evaluator.pack))
    if document is None:
        raise EditRejected(problems)
    if document.model.id != target.document.model.id:
        where = f"{target.where}.model.id" if target.where else "model.id"
        raise EditRejected([InputError(target.file, where, "the model id cannot be changed "
                                       "in a what-if")])
    replacement = LoadedDocument(document, target.file, target.where, edited)
    docs = [replacement if d is target else d for d in run.documents]
    lineage = Lineage(Links.of(d.document.model, d.file, d.where) for d in docs)
    cycle = [links.error(path, message) for links, path, message in lineage.cycles()
             if links.model == document.model.id]
    if cycle:
        raise EditRejected(cycle)
    after, after_errors = assess_documents(run.evaluator, docs, run.load_errors,
                                           run.references)
    return WhatIf(document.model.id, target.file, list(edits),
                  {a.model: a for a in run.assessments}, {a.model: a for a in after},
                  run.rejected, sorted(set(after_errors) - set(run.rejected)))
