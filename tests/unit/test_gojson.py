"""tether.rules.gojson: JSON read as Go's encoding/json reads it, with Go's scanner texts. The texts
were answered by Docker 20.10 (the reference engine) for the same bodies."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.rules import gojson


def test_json_float_keeps_its_text() -> None:
    value: Any = gojson.loads("[1E+2, 2.50]")
    assert [v.text for v in value] == ["1E+2", "2.50"]
    assert value == [100.0, 2.5]


@pytest.mark.parametrize(("text", "message"), [  # Docker 20.10's answers to these bodies
    ('{x', "invalid character 'x' looking for beginning of object key string"),
    ('{"Image":"busybox",}', "invalid character '}' looking for beginning of object key string"),
    ('{"Image":"busybox"', "unexpected EOF"),
    ('nul', "unexpected EOF"),
    ('{"Image":"busy\\xbox"}', "invalid character 'x' in string escape code"),
    ('{"Image":01}', "invalid character '1' after object key:value pair"),
    ('[1,]', "invalid character ']' looking for beginning of value"),
    ('{"Name":tru}', "invalid character '}' in literal true (expecting 'e')"),
    ('{"Name":nulx}', "invalid character 'x' in literal null (expecting 'l')"),
    ('{"Name":-}', "invalid character '}' in numeric literal"),
    ('{"Name":1.}', "invalid character '}' after decimal point in numeric literal"),
    ('{"Name":1e}', "invalid character '}' in exponent of numeric literal"),
    ('{"Name":1e+}', "invalid character '}' in exponent of numeric literal"),
    ('{"Name" 1}', "invalid character '1' after object key"),
    ('{"Name":"a" "b"}', "invalid character '\"' after object key:value pair"),
    ('[1 2]', "invalid character '2' after array element"),
    ('{"Name":"a\\u12x"}', "invalid character 'x' in \\u hexadecimal character escape"),
    ('{"Name":"a\x01"}', "invalid character '\\x01' in string literal"),
    ('{"Name":\u00c3}', "invalid character 'Ã' looking for beginning of value"),
    ('{"Name":NaN}', "invalid character 'N' looking for beginning of value"),
    ("{'Name':1}", "invalid character '\\'' looking for beginning of object key string"),
    ('{"a":[' + "[" * 3000 + "x", "invalid character 'x' looking for beginning of value"),
])
def test_syntax_errors_have_gos_text(text: str, message: str) -> None:
    with pytest.raises(gojson.GoSyntaxError) as info:
        gojson.loads(text.encode())
    assert str(info.value) == message


def test_loads_reads_the_first_value_as_gos_decoder() -> None:
    assert gojson.loads(b' {"Name":"n"}x') == {"Name": "n"}
    assert gojson.loads(b'{"Name":"\xff\xfe"}') == {"Name": "\ufffd\ufffd"}
    with pytest.raises(gojson.GoSyntaxError, match="^invalid character '\\[' exceeded max depth$"):
        gojson.loads(b"[" * 10001 + b"]" * 10001)
    with pytest.raises(gojson.GoSyntaxError, match="^exceeded max depth$"):  # Go takes it
        gojson.loads(b"[" * 5000 + b"]" * 5000)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.sampled_from(["", " x", "]", "\n"]), st.booleans())
def test_the_scanner_accepts_well_formed_json(value: Any, tail: str, ascii_only: bool) -> None:
    """Anything after the first value is not read, as with Go's json.Decoder."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert gojson.syntax_error(text + tail) is None
    assert gojson.loads(text + tail) == value


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE+-tfnrulasx \\', max_size=25))
def test_the_scanner_refuses_what_the_parser_refuses(text: str) -> None:
    """Either both the scanner and the parser read a first value, or both refuse the text."""
    try:
        gojson.loads(text)
    except gojson.GoSyntaxError as exc:
        assert str(exc) == gojson.syntax_error(text.lstrip()) and str(exc)
    else:
        assert gojson.syntax_error(text.lstrip()) is None
