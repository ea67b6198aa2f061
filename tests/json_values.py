"""Hypothesis strategies for JSON-like values with every kind of string, number and key,
shared by the tests that hold a fast encoder to the reference it must equal byte for
byte (tests/test_jsontext.py: json.dumps; tests/test_jcs.py: rfc8785), and how such a
test records what an encoder did."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Every character, surrogates included (a lone one has no UTF-8 form).
EVERY_CHARACTER = st.text(st.characters(codec=None, categories=None), max_size=12)


def scalars(numbers: st.SearchStrategy[Any], text: st.SearchStrategy[str]
            ) -> st.SearchStrategy[Any]:
    """None, booleans, `numbers` and `text`."""
    return st.one_of(st.none(), st.booleans(), numbers, text)


def json_values(numbers: st.SearchStrategy[Any], text: st.SearchStrategy[str],
                keys: list[str]) -> st.SearchStrategy[Any]:
    """Nested lists, tuples and dicts (up to 30 leaves) of None, booleans, `numbers` and
    `text`, with keys drawn from `text` and `keys`."""
    dict_keys = st.one_of(text, st.sampled_from(keys))
    return st.recursive(
        scalars(numbers, text),
        lambda inner: st.one_of(st.lists(inner, max_size=5), st.tuples(inner, inner),
                                st.dictionaries(dict_keys, inner, max_size=5)),
        max_leaves=30)


def outcome(encode: Any, value: Any) -> tuple[str, Any]:
    """What `encode(value)` gave, or the type of error it raised."""
    try:
        return "ok", encode(value)
    except (ValueError, TypeError, RecursionError) as exc:
        return "error", type(exc)
