"""How an import refuses its input: one problem per line, naming the file and the field.

An import is all or nothing: any problem with a log, the mapping or the document the
evaluations go into refuses the whole import, so that no evidence document is ever
written from part of what the analyst asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One refused piece of input: `FILE:LINE: FIELD: MESSAGE` (the line where known,
    as in the mapping file; a log's problems name the field inside the log)."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else \
            f"{where}: {self.message}"


class ImportRefused(Exception):
    """Raised when an import cannot be done; carries every problem found, sorted."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


def refuse(file: str, field: str, message: str, line: int = 0) -> ImportRefused:
    """An ImportRefused carrying a single problem."""
    return ImportRefused([Problem(file, line, field, message)])
