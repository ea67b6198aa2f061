"""engine.jsontext writes exactly what `json.dumps(indent=2, sort_keys=True,
ensure_ascii=False)` writes (the CLI's `--format json`, and the service's answers that
must equal it byte for byte), and raises where it raises: checked with hypothesis over
JSON values with every kind of string, number and key, strings that look like numbers
included, and on real assessment documents."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_values import EVERY_CHARACTER, json_values, outcome, scalars

from engine.api import Body, assess
from engine.jsontext import dumps, encode_parsed
from knowledge_graph.report import assessment_document

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Every character, surrogates included, and text that looks like a float with exponent.
ANY_TEXT = st.one_of(
    EVERY_CHARACTER,
    st.sampled_from(['1e-07', '": 1e-07', '1e+16,', ' 0.00001', 'x": 2e-05\n']))
NUMBERS = st.one_of(
    st.integers(),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e-3, max_value=1e-3),
    st.floats(allow_nan=False, allow_infinity=False, min_value=1e14, max_value=1e23),
    st.sampled_from([0.0, -0.0, 1.0, 0.1, 1e16, 1e-4, 1e-5, 5e-324, 2**53 + 0.0,
                     1.7976931348623157e308, 0.000001234]),
)
SCALARS = scalars(NUMBERS, ANY_TEXT)
VALUES = json_values(NUMBERS, ANY_TEXT, ["a", "é", "\U0001f600", "\ue000", "B"])


def stdlib(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(VALUES)
def test_same_text_or_same_error_as_the_standard_library(value: Any) -> None:
    assert outcome(dumps, value) == outcome(stdlib, value)


@given(st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none(), st.floats()),
                       SCALARS, min_size=1, max_size=3))
def test_keys_that_are_not_strings_are_converted_as_the_standard_library_does(
        value: Any) -> None:
    assert outcome(dumps, [value]) == outcome(stdlib, [value])


def test_what_json_cannot_encode_is_refused_as_before() -> None:
    for value in ({"when": date(2026, 1, 1)}, [{1, 2}], [b"x"]):
        assert outcome(dumps, value) == outcome(stdlib, value)
        assert outcome(dumps, value)[0] == "error"


def test_assessment_documents_as_the_cli_printed_them() -> None:
    run = assess([Body(p.read_bytes(), "yaml", str(p))
                  for p in sorted(EXAMPLES.glob("*.yaml"))])
    documents = [assessment_document(done) for done in run.assessments]
    assert documents
    for document in documents:
        assert dumps(document) == stdlib(document)
    assert dumps(documents) == stdlib(documents)


PARSED_NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e-3, max_value=1e-3),
    st.floats(allow_nan=False, allow_infinity=False, min_value=1e14, max_value=1e23),
    st.sampled_from([0.0, -0.0, 1.0, 1e16, 1e-4, 1e-5, 1.5e-7, 5e-324, 0.000001234]))
PARSED = json_values(PARSED_NUMBERS, ANY_TEXT, ["a", "é", "\U0001f600", "B"])


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(PARSED)
def test_parsed_json_is_written_as_the_standard_library_writes_it(value: Any) -> None:
    """`encode_parsed` of what orjson parses back gives `dumps`'s text, as UTF-8."""
    try:
        parsed = orjson.loads(orjson.dumps(value))
    except TypeError:  # a lone surrogate: orjson writes no such text, nor parses any
        return
    assert encode_parsed(parsed) == stdlib(parsed).encode()


def test_what_orjson_refuses_is_written_as_dumps_writes_it() -> None:
    for value in ([2**70], {"when": [1, 2**65]}):
        assert encode_parsed(value) == stdlib(value).encode()


@given(json_values(st.integers(min_value=-(2**63), max_value=2**64 - 1), ANY_TEXT,
                   ["a", "é", "B"]))
def test_parsed_json_without_floats_needs_no_search(value: Any) -> None:
    """Told that the data holds no float, `encode_parsed` writes the same text."""
    try:
        parsed = orjson.loads(orjson.dumps(value))
    except TypeError:
        return
    assert encode_parsed(parsed, floats=False) == stdlib(parsed).encode()
