"""Refusing text that is not Unicode: lone surrogates.

JSON (`"\\udcff"`) and YAML (`"\\udcff"` in double quotes) can both spell a UTF-16
surrogate code point on its own. Python keeps it in a `str`, but it is not a character:
such a string cannot be written as UTF-8, so storing, hashing or printing the document
fails far from the input (a batch worker's serialisation used to crash the whole batch).
Validation refuses it instead, at the path of the value (or of the key) that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogates(data: object) -> list[tuple[Sequence[int | str], str]]:
    """(loc, message) for each string of `data` (a key or a value) holding a lone
    surrogate; the message shows it escaped, never raw (it cannot be printed)."""
    return [(loc, message) for loc, message in _walk(data, ())]


def _walk(value: object, loc: tuple[int | str, ...],
          seen: set[int] | None = None) -> Iterator[tuple[tuple[int | str, ...], str]]:
    if seen is None:
        seen = set()
    if isinstance(value, str):
        found = SURROGATE.search(value)
        if found:
            yield loc, _message(found, value)
        return
    if not isinstance(value, dict | list) or id(value) in seen:
        return  # a container aliased twice in YAML is checked once
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if isinstance(key, str) and (found := SURROGATE.search(key)):
            yield (*loc, key), _message(found, key, "key")
            continue
        yield from _walk(child, (*loc, key), seen)


def _message(found: re.Match[str], text: str, what: str = "text") -> str:
    code = ord(found.group())
    return (f"{what} holds a lone surrogate \\u{code:04x} at character {found.start() + 1}, "
            "which is not a Unicode character")
