"""RFC 8785 (JCS) canonical JSON, byte for byte what the `rfc8785` package writes, but
encoded by the standard library's C encoder (or taken from orjson's text) rather than a
Python walk of every value.

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

Whether any number needs writing again is decided on the text between the string tokens
(split at the quotes when no string holds an escaped one), where a float is the only
thing with a `.`, an `E`, or an `e` not of `true` or `false`: a regular expression
looking for number tokens through the whole text cost more than the encoding.

`from_sorted` takes the compact JSON orjson wrote with keys sorted (what the record
stores a result as, and what `batch.work.Entry` keeps a document as) in place of the
data, so that a document serialised once for storage is not walked again to be hashed:
orjson writes strings as RFC 8785 does (the same escapes, non-ASCII kept) and keys in
code-point order, so only its numbers are looked at, as above. tests/test_jcs.py checks
both against rfc8785 with hypothesis.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import orjson
import rfc8785

INT_LIMIT = 2**53 - 1  # rfc8785's integer domain is [-INT_LIMIT, INT_LIMIT]
SAFE_DIGITS = 15  # every integer of at most 15 digits is inside it

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                            allow_nan=False)
_STRING = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")')  # a JSON string token, captured
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_SEPARATOR = "\x00"  # never outside a string in compact JSON
# A character beyond U+FFFF begins with one of these bytes in UTF-8 (nothing else does).
_BEYOND_BMP_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_ESCAPED_QUOTE = b'\\"'  # a string holding one cannot be found by splitting at quotes
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * (SAFE_DIGITS + 1)  # 16 digits, as _DIGITS_AS_ZERO leaves them


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


def from_sorted(raw: bytes) -> bytes:
    """`dumps(orjson.loads(raw))` for `raw` as `orjson.dumps(data,
    option=orjson.OPT_SORT_KEYS)` writes it, without parsing it: `raw` itself (the same
    object, so a caller can tell that `raw` holds no float) when no number in it needs
    writing again (the common case for a result), else `raw` with each float written as
    rfc8785 writes it. What the fast path cannot vouch for goes the long way, which
    answers or raises as `dumps` does."""
    try:
        return _numbers_fixed(raw)
    except _Fallback:
        return dumps(orjson.loads(raw))


def _fast(data: Any) -> bytes:
    if not isinstance(data, dict | list | tuple):  # a lone scalar: nothing to gain
        raise _Fallback
    orjson.dumps(data)  # TypeError for a key that is not a string (and odd types)
    # UnicodeEncodeError (a ValueError) for a lone surrogate
    return _numbers_fixed(_ENCODER.encode(data).encode("utf-8"))


def _numbers_fixed(raw: bytes) -> bytes:
    """`raw`, compact JSON with keys sorted by code point and strings escaped as RFC
    8785 escapes them, with its numbers written as RFC 8785 writes them; _Fallback when
    a character beyond U+FFFF may put the keys in another order, or an integer is
    outside rfc8785's domain."""
    if any(lead in raw for lead in _BEYOND_BMP_LEADS):
        raise _Fallback
    if _ESCAPED_QUOTE in raw:  # rare: tokenise the strings properly
        parts = _STRING.split(raw.decode("utf-8"))  # odd places: string tokens
        glue = ""
    else:
        between = b"\x00".join(raw.split(b'"')[0::2])
        if (b"." not in between and b"E" not in between
                and between.count(b"e") == between.count(b"true") + between.count(b"false")
                and _LONG_INTEGER not in between.translate(_DIGITS_AS_ZERO)):
            return raw  # no float and no integer rfc8785 may refuse
        parts = raw.decode("utf-8").split('"')  # odd places: what strings hold
        glue = '"'
    parts[0::2] = _NUMBER.sub(_number, _SEPARATOR.join(parts[0::2])).split(_SEPARATOR)
    return glue.join(parts).encode("utf-8")


def _number(found: re.Match[str]) -> str:
    token = found.group()
    if "." in token or "e" in token or "E" in token:
        return _float(token)
    if len(token.lstrip("-")) > SAFE_DIGITS and abs(int(token)) > INT_LIMIT:
        raise _Fallback
    return token


@lru_cache(maxsize=4096)
def _float(token: str) -> str:
    """A float token as rfc8785 writes its number (remembered: a process hashes the
    same scores and computes again and again, and rfc8785 writes a float in Python)."""
    return rfc8785.dumps(float(token)).decode("ascii")
