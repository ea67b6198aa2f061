"""Plain-text tables, as `asl list`, `asl history` and `asl tokens list` print them."""

from __future__ import annotations


def table(rows: list[list[str]], header: list[str]) -> str:
    """`rows` under `header`, each column as wide as its widest cell, two spaces apart,
    without trailing blanks.

    >>> print(table([["a", "1"], ["bcd", "22"]], ["x", "y"]))
    x    y
    a    1
    bcd  22
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)
