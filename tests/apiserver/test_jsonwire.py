"""jsonwire: orjson-produced bytes are exactly the standard library's compact JSON, and its reads
are exactly json.loads', for every value a client or etcd can hand the API server."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.components.apiserver import jsonwire, rbac

SCHEMAS = Path(__file__).resolve().parents[2] / "provisioner/components/apiserver/schemas_generated.json"

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text())
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


def outcome(fn, value):  # noqa: ANN001, ANN201
    """The bytes, or the type of the error: both encoders must agree on either."""
    try:
        return fn(value)
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=800, deadline=None)
@given(json_values)
def test_encoding_is_the_standard_librarys(value):
    assert outcome(jsonwire.dumps, value) == outcome(jsonwire.stdlib_dumps, value)


@settings(max_examples=800, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True)
       | st.floats(min_value=-1e-3, max_value=1e-3) | st.floats(min_value=1e14, max_value=1e18))
def test_every_float_is_spelled_as_python_spells_it(value):
    assert jsonwire.dumps({"v": [value, {"w": value}]}) == jsonwire.stdlib_dumps({"v": [value, {"w": value}]})
    assert jsonwire.dumps(value) == jsonwire.stdlib_dumps(value)


@pytest.mark.parametrize("text", ["é", "日本", "\x7f", "\u2028", "\U0001F600", "\ud800", "<a href='x'>&amp;</a>",
                                  "tab\there", "nul\x00", 'quote" back\\slash /'])
def test_strings_are_escaped_as_before(text):
    value = {text: [text, {"k": text}]}
    assert jsonwire.dumps(value) == jsonwire.stdlib_dumps(value)


def test_values_the_standard_library_refuses_are_still_refused():
    import datetime as dt
    for value in ({"when": dt.datetime(2026, 1, 1)}, {"s": {1, 2}}, {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            jsonwire.dumps(value)


def test_a_corpus_of_served_objects_encodes_identically():
    corpus = [obj for _, obj in rbac.default_objects()] + [json.loads(SCHEMAS.read_text())]
    for obj in corpus:
        assert jsonwire.dumps(obj) == jsonwire.stdlib_dumps(obj)


@settings(max_examples=800, deadline=None)
@given(json_values)
def test_reading_is_json_loads(value):
    data = jsonwire.stdlib_dumps(value)  # what this server stores; NaN and huge integers included
    got, want = jsonwire.loads(data), json.loads(data)
    assert jsonwire.stdlib_dumps(got) == jsonwire.stdlib_dumps(want)
    assert type(got) is type(want)


@pytest.mark.parametrize("data", [b"123456789012345678901234567890", b"[-9223372036854775809]", b"NaN",
                                  b'{"x":Infinity}', b'"\\ud800"', b"\xef\xbb\xbf{}", b'{"a":1,"a":2}', b"1e400"])
def test_reading_what_orjson_would_read_differently(data):
    got, want = jsonwire.loads(data), json.loads(data)
    assert repr(got) == repr(want)


def test_reading_bad_json_fails_in_the_standard_librarys_words():
    with pytest.raises(json.JSONDecodeError) as got:
        jsonwire.loads(b'{"a": [1, 2')
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(b'{"a": [1, 2')
    assert str(got.value) == str(want.value)
    assert math.isnan(jsonwire.loads(b"NaN"))
