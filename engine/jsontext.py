"""JSON text as asl writes it, wherever it is written: the command line's `--format
json`, the service's explanations (byte for byte what `asl why --format json` prints)
and `asl batch --output`. Keys sorted, non-ASCII kept, indented two spaces (or, with
`indent=None`, on one line, as JSON Lines are)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def dumps(data: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None
          ) -> str:
    """`data` as JSON text: keys sorted, non-ASCII kept, indented (or one line).

    >>> print(dumps({"b": 1, "a": ["é"]}, indent=None))
    {"a": ["é"], "b": 1}
    """
    return json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False,
                      default=default)
