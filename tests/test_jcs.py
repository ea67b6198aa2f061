"""store.jcs writes exactly what the rfc8785 package writes (the decision log's hashes
must not change), and raises where it raises: checked with hypothesis over JSON values
with every kind of string and number, and with values that have no canonical form."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_values import EVERY_CHARACTER, json_values, outcome, scalars

from batch.work import Entry
from engine.api import Body, assess
from knowledge_graph.report import assessment_document
from store import jcs

REPO = Path(__file__).resolve().parents[1]
EXAMPLES, DATA = REPO / "examples", REPO / "tests" / "data"
# Every character, surrogates included (a lone one has no UTF-8 form).
ANY_TEXT = EVERY_CHARACTER
NUMBERS = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.integers(),  # also beyond the domain, where both refuse
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e-5, max_value=1e-5),
    st.floats(allow_nan=False, allow_infinity=False, min_value=1e15, max_value=1e23),
    st.sampled_from([0.0, -0.0, 1.0, 0.1, 1e21, 1e-7, 1e-6, 5e-324, 1.7976931348623157e308,
                     2**53 + 0.0, 123456789012345680.0, 0.000001234]),
)
SCALARS = scalars(NUMBERS, ANY_TEXT)
VALUES = json_values(NUMBERS, ANY_TEXT, ["a", "é", "\U0001f600", "\ue000", "ab", "B"])


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(VALUES)
def test_same_bytes_or_same_error_as_rfc8785(value: Any) -> None:
    assert outcome(jcs.dumps, value) == outcome(rfc8785.dumps, value)


@given(st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none(), st.floats()),
                       SCALARS, min_size=1, max_size=3))
def test_keys_that_are_not_strings_are_refused_as_rfc8785_refuses_them(value: Any) -> None:
    assert outcome(jcs.dumps, value) == outcome(rfc8785.dumps, value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_is_written_as_ecmascript_writes_it(number: float) -> None:
    assert jcs.dumps([number, {"x": number}]) == rfc8785.dumps([number, {"x": number}])
    assert float(jcs.dumps(number)) == number or math.isclose(number, 0)


def test_real_results_and_their_inputs() -> None:
    """What the service hashes: whole results, conclusions included, and their input
    (the bundled examples and the test cases, every framework's)."""
    files = sorted([*EXAMPLES.glob("*.yaml"), *DATA.glob("**/*.yaml")])
    run = assess([Body(path.read_bytes(), "yaml", str(path)) for path in files])
    assert len(run.assessments) >= 10
    for assessment in run.assessments:
        document = assessment_document(assessment)
        assert jcs.dumps(document) == rfc8785.dumps(document)
    for loaded in run.documents:
        body = orjson.loads(Entry.of(loaded).body)
        assert jcs.dumps(body) == rfc8785.dumps(body)


def _sorted_json(value: Any) -> bytes | None:
    """orjson's compact text of `value` with keys sorted, as the record stores JSON
    (store.record.sorted_json); None for what orjson refuses."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(VALUES, st.lists(st.sampled_from(
    ['a"b', 'x\\\\"', "\U0001f600", "1.5", "e", 'tru"e', "é"]), max_size=3)))
def test_from_sorted_is_the_canonical_form_of_what_the_text_parses_to(value: Any) -> None:
    """Whatever orjson wrote (floats, long integers, escaped quotes, text beyond U+FFFF),
    `from_sorted` of it is rfc8785's form of the data it parses back to, or the same
    error."""
    raw = _sorted_json(value)
    if raw is not None:
        assert outcome(jcs.from_sorted, raw) == outcome(rfc8785.dumps, orjson.loads(raw))


def test_from_sorted_keeps_text_without_floats_and_writes_floats_again() -> None:
    plain = b'{"a":[1,-2,true,false,null],"b":"1.5e+27, true","c":{"d":"x"}}'
    assert jcs.from_sorted(plain) is plain  # nothing to write again: the same bytes
    floats = orjson.dumps({"b": [1.0, -0.0, 1e21, 1e-7, 1.72e27, 0.5], "a": "2.0"},
                          option=orjson.OPT_SORT_KEYS)
    assert jcs.from_sorted(floats) == b'{"a":"2.0","b":[1,0,1e+21,1e-7,1.72e+27,0.5]}'
    with_exponent = b'{"a":1e-7,"t":true}'  # a float with no point
    assert jcs.from_sorted(with_exponent) == rfc8785.dumps(orjson.loads(with_exponent))
    for beyond in (b"[9007199254740992]", b'{"a":[-12345678901234567]}'):
        assert outcome(jcs.from_sorted, beyond) == outcome(rfc8785.dumps,
                                                           orjson.loads(beyond))
        assert outcome(jcs.from_sorted, beyond)[0] == "error"
    assert jcs.from_sorted(b"[9007199254740991]") == b"[9007199254740991]"


def test_real_results_and_inputs_from_their_stored_json() -> None:
    """What the service hashes from the record's JSON: results and the documents."""
    files = sorted([*EXAMPLES.glob("*.yaml"), *DATA.glob("**/*.yaml")])
    run = assess([Body(path.read_bytes(), "yaml", str(path)) for path in files])
    for assessment in run.assessments:
        raw = orjson.dumps(assessment_document(assessment), option=orjson.OPT_SORT_KEYS)
        assert jcs.from_sorted(raw) == rfc8785.dumps(orjson.loads(raw))
    for loaded in run.documents:
        body = Entry.of(loaded).body
        assert jcs.from_sorted(body) == rfc8785.dumps(orjson.loads(body))
