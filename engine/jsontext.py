"""JSON text as asl writes it, wherever it is written: the command line's `--format
json`, the service's explanations (byte for byte what `asl why --format json` prints)
and `asl batch --output`. Keys sorted, non-ASCII kept, indented two spaces (or, with
`indent=None`, on one line, as JSON Lines are).

The indented form is what `json.dumps(data, indent=2, sort_keys=True,
ensure_ascii=False)` writes; the standard library writes it with its pure-Python encoder
(its C encoder does not indent), which cost the service more CPU per stored assessment
than its SQL. So orjson writes the same layout, and where the two could differ the
standard library decides:

- a value json refuses (NaN or an infinity, a type it cannot encode) or converts (a key
  that is not a string): the standard library's C encoder checks first (orjson would
  write null or refuse), and any such value goes to `json.dumps`, which answers or raises
  as it always did;
- floats: orjson writes the shortest round-trip digits as Python's `repr` does, but
  spells differently the floats `repr` gives an exponent (`1e-7` for `1e-07`,
  `0.00001` for `1e-05`, `1e16` for `1e+16`); when the checked text has such a float,
  each such number token outside strings is written again by `repr`;
- integers beyond 64 bits, lone surrogates: orjson refuses them, and `json.dumps` takes
  them.

`encode_parsed` is the same text, as UTF-8, for data that is parsed JSON (what
`orjson.loads` returns, such as results read back from the record): nothing in it is
refused or converted by json, so the standard library's check, which encodes the whole
value a second time, is left out, and whether a float may be spelled otherwise is
looked for in orjson's own text.

tests/test_jsontext.py checks the equality with hypothesis.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_INDENTED = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
# What orjson would write but json would not take as it is: refused, for the long way.
_PASSTHROUGH = (orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_SUBCLASS)
# What json refuses (NaN, infinities, unknown types) or converts (keys that are not
# strings): the C encoder raises for the first, orjson for the second.
_CHECK = json.JSONEncoder(allow_nan=False, check_circular=False, ensure_ascii=False)
# A float orjson may spell differently from repr (with an exponent, or below 1e-4 in
# full), outside strings: in the indented text a string never spans lines and always
# ends in a quote, so a number token that ends its line (before any comma), after a
# space (of ": " or of the indentation), is a value, never text inside a string.
_RESPELL = re.compile(r"(?m)(?<= )-?(?:\d+(?:\.\d+)?[eE][-+]?\d+|0\.0000\d*)(?=,?$)")


class _Fallback(Exception):
    """The fast path cannot vouch for this value; the standard library decides."""


def dumps(data: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None
          ) -> str:
    """`data` as JSON text: keys sorted, non-ASCII kept, indented (or one line).

    >>> print(dumps({"b": 1, "a": ["é"]}, indent=None))
    {"a": ["é"], "b": 1}
    """
    if indent == 2 and default is None and isinstance(data, dict | list):
        try:
            return _indented(data)
        except (_Fallback, TypeError, ValueError, OverflowError, RecursionError):
            pass
    return json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False,
                      default=default)


def _indented(data: dict[str, Any] | list[Any]) -> str:
    """What `json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)` writes,
    through orjson; raises for what must go to the standard library."""
    compact = _CHECK.encode(data)  # ValueError: NaN, infinities; TypeError: unknown types
    text = orjson.dumps(data, option=_INDENTED).decode()  # TypeError: non-str key, ...
    return _RESPELL.sub(_repr, text) if _exponent(compact) else text


def encode_parsed(data: Any, floats: bool = True) -> bytes:
    """`dumps(data).encode()` for `data` made of what `orjson.loads` returns (dicts with
    text keys, lists, text, integers, finite floats, booleans and None, as JSON read
    back from the record is), written by orjson alone: such data holds nothing json
    refuses or converts. A float orjson may spell otherwise than `repr` (orjson writes
    `1e-7` and `0.00001` where repr writes `1e-07` and `1e-05`) has an exponent or
    `0.0000` in orjson's text too; then each number token is written by repr, as in
    `dumps`. `floats=False`: the caller knows `data` holds no float (say, from
    store.jcs.from_sorted of its JSON), so the text is not searched for one. A lone
    scalar, and anything orjson refuses (an integer beyond 64 bits, another type), goes
    to `dumps`."""
    if not isinstance(data, dict | list):  # a lone scalar, as in `dumps`
        return dumps(data).encode()
    try:
        raw = orjson.dumps(data, option=_INDENTED | _PASSTHROUGH)
    except TypeError:
        return dumps(data).encode()
    if not floats:
        return raw
    text = raw.decode()
    if "0.0000" in text or _exponent(text):
        return _RESPELL.sub(_repr, text).encode()
    return raw


def _exponent(compact: str) -> bool:
    """Whether the standard library's text (which spells every float as `repr`), or
    orjson's, may hold a float with an exponent (`1e-05`, `1e+16`). Looked for with
    str.find, since a regular expression scanning the whole text cost more than the
    encoding saved; text in a string that looks like one only sends it the longer way."""
    for mark in ("e-", "e+"):
        found = compact.find(mark)
        while found != -1:
            if compact[found - 1:found].isdigit() and compact[found + 2:found + 3].isdigit():
                return True
            found = compact.find(mark, found + 2)
    return False


def _repr(found: re.Match[str]) -> str:
    return repr(float(found.group()))
