"""Errors the engine raises, each naming where the problem is so a user can fix it.

Input errors point into an evidence file (`FILE: evaluations[2].score: ...`); pack errors
point at a rule file and line (`FILE:LINE: code: ...`); assessment errors name the rule
whose firing failed. None of them is meant to be shown with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class InputError:
    """One rejected piece of evidence: the file, the path inside it and what was expected.

    `model` is the id of the model document the problem rejects, when that id could
    still be read; it is not part of what the error says or how errors compare, but it
    lets a portfolio refuse the models that reference a rejected one (`engine.lineage`).
    """

    file: str
    path: str
    message: str
    model: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.path:
            return f"{self.file}: {self.path}: {self.message}"
        return f"{self.file}: {self.message}"


def within(where: str, path: str) -> str:
    """The path `path` inside the document at `where` (`""`, `models[3]` or `line 4`):
    `models[3].evaluations[2].score`, `line 4: evaluations[2].score`.

    >>> within("models[3]", "model.id"), within("line 4", "model.id"), within("", "model.id")
    ('models[3].model.id', 'line 4: model.id', 'model.id')
    """
    if not where or not path:
        return where or path
    return f"{where}{'.' if where.endswith(']') else ': '}{path}"


class InputRejected(Exception):
    """Raised when evidence cannot be used at all; carries every problem found."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True, order=True)
class PackProblem:
    """One problem found while loading a rule pack, located by file and line."""

    file: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code}: {self.message}"


class PackError(Exception):
    """Raised when a rule pack fails a load stage; carries every problem that stage found."""

    def __init__(self, problems: list[PackProblem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AssessmentError(Exception):
    """An assessment could not be completed faithfully (a rule failed or a fact was lost).

    It names the rule involved: the engine never returns a result that silently lacks a
    conclusion.
    """

    def __init__(self, message: str, rule: str | None = None) -> None:
        self.rule = rule
        super().__init__(f"rule {rule}: {message}" if rule else message)
