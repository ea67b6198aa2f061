"""RFC 8785 (JCS) canonical JSON, byte for byte what the `rfc8785` package writes, but
encoded by the standard library's C encoder rather than a Python walk of every value.

The decision log hashes the canonical JSON of every request's input and whole result,
and the pure-Python encoder cost a stored assessment more CPU than its SQL. For JSON
values (dict, list, tuple, str, int, float, bool, None and their subclasses) the C
encoder, with keys sorted, no spaces, non-ASCII kept and NaN refused, writes what RFC
8785 prescribes except in three places, each handled here:

- numbers: a float is written as Python's `repr`, which round-trips exactly, so each
  float token is parsed back and written by `rfc8785` itself (ECMAScript's form: `1` not
  `1.0`, `1e+21`, `1e-7`, `0.000001`); an integer outside rfc8785's domain
  (|n| > 2**53 - 1) is left to rfc8785, which refuses it;
- key order: code points, which agrees with RFC 8785's UTF-16 order unless a character
  beyond U+FFFF is present, so any such text is left to rfc8785;
- keys that are not strings (which the C encoder would convert): orjson, which refuses
  them, checks first.

Anything else the fast path cannot take (a lone surrogate, an unsupported type, NaN)
falls back to `rfc8785.dumps`, which answers or raises exactly as it always did.
tests/test_jcs.py checks the equality (and the errors) against rfc8785 with hypothesis.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import rfc8785

INT_LIMIT = 2**53 - 1  # rfc8785's integer domain is [-INT_LIMIT, INT_LIMIT]
SAFE_DIGITS = 15  # every integer of at most 15 digits is inside it

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                            allow_nan=False)
_STRING = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")')  # a JSON string token, captured
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_NEEDS_FIX = re.compile(r"\d[.eE]|\d{16}")  # a float, or an integer of 16+ digits
# Outside strings a number token sits between [ : or , and , ] or }: where none of
# these is a float or a long integer (inside a string or not), there is nothing to fix.
_CANDIDATE = re.compile(r"[\[:,]-?(?:\d+\.\d|\d+[eE]|\d{16})")
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")
_SEPARATOR = "\x00"  # never outside a string in the encoder's output


class _Fallback(Exception):
    """The fast path cannot vouch for this value; rfc8785 decides."""


def dumps(data: Any) -> bytes:
    """The RFC 8785 canonical JSON of `data`, exactly as `rfc8785.dumps(data)` (which
    raises for what has none: NaN, an integer beyond 2**53 - 1, a key that is not a
    string, a lone surrogate, an unsupported type)."""
    try:
        return _fast(data)
    except (_Fallback, TypeError, ValueError, OverflowError, RecursionError):
        return rfc8785.dumps(data)


def _fast(data: Any) -> bytes:
    if not isinstance(data, dict | list | tuple):  # a lone scalar: nothing to gain
        raise _Fallback
    orjson.dumps(data)  # TypeError for a key that is not a string (and odd types)
    text = _ENCODER.encode(data)
    if not text.isascii() and _BEYOND_BMP.search(text):
        raise _Fallback
    if _CANDIDATE.search(text):
        parts = _STRING.split(text)  # even places: between strings; odd: string tokens
        between = _SEPARATOR.join(parts[0::2])
        if _NEEDS_FIX.search(between):
            parts[0::2] = _NUMBER.sub(_number, between).split(_SEPARATOR)
            text = "".join(parts)
    return text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a surrogate


def _number(found: re.Match[str]) -> str:
    token = found.group()
    if "." in token or "e" in token or "E" in token:
        return rfc8785.dumps(float(token)).decode("ascii")
    if len(token.lstrip("-")) > SAFE_DIGITS and abs(int(token)) > INT_LIMIT:
        raise _Fallback
    return token
