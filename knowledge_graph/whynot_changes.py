"""The answer first for `asl why-not`: the few smallest changes of evidence that would
make the target hold, each one verified by running it as a what-if.

The candidates come from the why-not report itself (`knowledge_graph.whynot.why_not`):
every test on an evidence value that decided the outcome, either one that held in a
rule deriving a conclusion that stands in the way (`status is planned (!= implemented);
it would need == implemented`) or one that failed in a rule that would have concluded
something else or the target (`score is 0.66, needs < warning_score 0.6`). Each gives
one edit of the evidence document (`safeguards[asl3-security.audits].status=implemented`,
`evaluations[ex-bio].score=0.59`). Single edits are tried first, then pairs, then
triples, each as `engine.whatif.what_if` runs it (the whole portfolio assessed again);
a set is kept when the target then holds and no smaller kept set is part of it. Nothing
is proposed that was not checked, and nothing here knows the policy: the tests are the
rules' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from engine.api import AssessmentRun
from engine.assess import Assessment
from engine.diagnose import FAILED_TEST, satisfies
from engine.errors import AssessmentError
from engine.facts_id import render_value
from engine.whatif import SET, Edit, EditRejected, parse_steps, what_if
from knowledge_graph.whynot_target import Target

MAX_CHANGES = 3  # answers given at most
MAX_SIZE = 3  # edits in one answer at most
MAX_TRIES = 64  # what-ifs run at most

# the fact kinds that are evidence items, and the document section listing them by id
SECTIONS = {"evaluation": "evaluations", "finding": "findings", "safeguard": "safeguards"}


@dataclass(frozen=True)
class Change:
    """One edit of an evidence value: `path` (as `asl what-if --set` takes it), the
    value it has now and the value proposed."""

    path: str
    now: Any
    value: Any

    def edit(self) -> Edit:
        return Edit(SET, self.path, parse_steps(self.path), self.value, self.text())

    def text(self) -> str:
        """The VALUE of `--set PATH=VALUE`."""
        return render_value(self.value)


def target_holds(assessment: Assessment, target: Target) -> bool:
    """Whether an assessment concludes the wanted fact (or, for an `=absent` target,
    does not)."""
    want = target.want
    present = any(satisfies(want, f, assessment.pack.kinds)
                  for f in assessment.derivation.of_kind(want.kind))
    return not present if target.absent else present


def smallest_changes(run: AssessmentRun, model: str, file: str, target: Target,
                     report: dict[str, Any]) -> list[list[Change]]:
    """Up to MAX_CHANGES sets of changes, smallest first, each making `target` hold for
    `model` when applied to its document in `run` (checked by a what-if)."""
    chosen = run.assessment(model)
    if chosen is None or report["holds"]:
        return []
    candidates = _candidates(chosen, report)
    found: list[list[Change]] = []
    tries = 0
    for size in range(1, MAX_SIZE + 1):
        for group in combinations(candidates, size):
            if len(found) >= MAX_CHANGES or tries >= MAX_TRIES:
                return found
            paths = {c.path for c in group}
            if len(paths) < size or any(paths >= {c.path for c in f} for f in found):
                continue
            tries += 1
            if _works(run, model, file, target, list(group)):
                found.append(list(group))
    return found


def _works(run: AssessmentRun, model: str, file: str, target: Target,
           group: list[Change]) -> bool:
    """Whether the target holds once `group` is applied (a change the evidence format
    refuses, or one that stops the model being assessed, does not)."""
    try:
        result = what_if(run, [c.edit() for c in group], model, file)
    except (EditRejected, AssessmentError):
        return False
    after = result.after.get(model)
    return after is not None and target_holds(after, target)


def _candidates(assessment: Assessment, report: dict[str, Any]) -> list[Change]:
    """Each edit the report's decisive tests on evidence values suggest, once, in the
    order the report gives them."""
    seen: dict[tuple[str, str], Change] = {}
    for fact_id, outcome, held in _outcomes(report):
        change = _change(assessment, fact_id, outcome, held)
        if change is not None:
            seen.setdefault((change.path, repr(change.value)), change)
    return list(seen.values())


def _outcomes(report: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(evidence fact, test outcome, whether it held) for every test the report shows."""
    for entry in report["standing"]:
        for fact in entry["evidence"]:
            for reader in fact["read_by"]:
                for outcome in reader["held"]:
                    yield fact["id"], outcome, True
            for rule in fact["alternatives"]:
                yield from _failures(rule)
    for rule in report["rules"]:
        yield from _failures(rule)


def _failures(rule: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """The failed tests of a diagnosed rule's partial matches, and of the rules below."""
    for partial in rule["partial_matches"]:
        for failure in partial["failures"]:
            if failure["reason"] == FAILED_TEST and failure["fact"] is not None:
                yield failure["fact"], failure, False
    for below in rule["below"]:
        for sub in below["rules"]:
            yield from _failures(sub)


def _change(assessment: Assessment, fact_id: str, outcome: dict[str, Any],
            held: bool) -> Change | None:
    """The edit that turns `outcome` around (a held test failing, a failed one passing),
    or None when the fact is not an evidence item or no one value does it."""
    fact = assessment.derivation.facts.get(fact_id)
    if fact is None or fact.kind not in SECTIONS:
        return None
    value = _turned(outcome["op"], outcome["actual"], outcome["required"], held)
    if value is None or value == outcome["actual"]:
        return None
    label = fact.info.get("display_id", fact.values.get("id", ""))
    path = f"{SECTIONS[fact.kind]}[{label}].{outcome['field']}"
    return Change(path, outcome["actual"], value)


def _turned(op: str, actual: Any, required: Any, held: bool) -> Any:
    """The value nearest `required` that makes a test with `op` come out the other way:
    `status != implemented` held -> `implemented`; `score < 0.6` failed -> `0.59`.

    >>> _turned("ne", "planned", "implemented", True)
    'implemented'
    >>> _turned("lt", 0.66, 0.6, False), _turned("gte", 0.66, 0.6, True)
    (0.59, 0.59)
    >>> _turned("gt", 3, 5, False), _turned("eq", "partial", "implemented", True) is None
    (6, True)
    """
    if op in ("eq", "ne"):
        if (op == "eq") == held or isinstance(required, list | dict):
            return None
        return required
    numbers = (actual, required)
    if op not in ("lt", "lte", "gt", "gte") or not all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        return None
    # a held test must fail, a failed one pass: what the value must become
    below = (op in ("lt", "lte")) != held
    strict = (op in ("lt", "gt")) != held  # beyond `required` rather than equal to it
    if not strict:
        return required
    places = max(_places(actual), _places(required))
    if places == 0 and isinstance(actual, int) and isinstance(required, int):
        return required - 1 if below else required + 1
    step = 10.0 ** -max(places, 2)
    return round(required - step if below else required + step, max(places, 2))


def _places(number: float) -> int:
    """Decimal places of a number as written: 0.66 -> 2, 3 -> 0."""
    text = repr(number)
    return len(text.partition(".")[2]) if "." in text and "e" not in text else 0
