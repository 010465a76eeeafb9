"""JSON read as dockerd's Go encoding/json reads it: the first value of a body (json.Decoder)
or a whole string (json.Unmarshal), number literals kept for Go's messages, and Go's scanner
texts for malformed input ("invalid character 'x' looking for beginning of value", "unexpected
EOF"), so that a client never sees a Python decoder's message. Pure: stdlib only.
"""
from __future__ import annotations

import json
from typing import Any


class GoSyntaxError(ValueError):
    """A body encoding/json cannot scan; `str(exc)` is Go's text."""


class JsonFloat(float):
    """A JSON number that is not an integer literal, with its source text kept: Go quotes that
    text ("number 1e3") when such a number is refused for an integer field."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


def _integer(text: str) -> int | float:
    """An integer literal; one too long for Python's int conversion (over 4300 digits) is out
    of every Go type's range anyway, so it is kept as an (infinite) JsonFloat with its text."""
    try:
        return int(text)
    except ValueError:
        return JsonFloat(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's NaN and Infinity: Go refuses them


_DECODER = json.JSONDecoder(parse_float=JsonFloat, parse_int=_integer,
                            parse_constant=_no_constant)
_WHITESPACE = " \t\r\n"


def loads(data: bytes | str, whole: bool = False) -> Any:
    """The first JSON value of `data`, as dockerd's json.Decoder reads a body: bytes after it
    are not looked at, invalid UTF-8 becomes U+FFFD, non-integer numbers keep their text
    (JsonFloat). A syntax error raises GoSyntaxError with Go's text; the caller handles an
    empty body (Go's io.EOF) before. With `whole`, as json.Unmarshal reads a string (the
    `filters` parameter): nothing may follow the value, and a cut-off value is "unexpected end
    of JSON input"."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        message = syntax_error(text[start:]) or "exceeded max depth"  # None: too deep for Python
        raise GoSyntaxError(_unmarshal_text(message) if whole else message) from None
    if not isinstance(value, (dict, list)):  # Python ends a number where Go wants more ("1.")
        message = syntax_error(text[start:])
        if message:
            raise GoSyntaxError(_unmarshal_text(message) if whole else message)
    rest = text[end:].lstrip(_WHITESPACE)
    if whole and rest:
        raise GoSyntaxError(f"invalid character {_quote_char(rest[0])} after top-level value")
    return value


def _unmarshal_text(message: str) -> str:
    """json.Unmarshal's wording of a message json.Decoder words as "unexpected EOF"."""
    return "unexpected end of JSON input" if message == "unexpected EOF" else message


def _quote_char(ch: str) -> str:
    """Go's quoteChar: the byte Go's scanner stopped at (a character's first UTF-8 byte, read
    as a rune of its own), quoted as strconv.Quote does, between single quotes."""
    b = ch.encode("utf-8", "surrogatepass")[0]
    named = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r",
             0x09: "\\t", 0x0B: "\\v", 0x5C: "\\\\", 0x27: "\\'"}
    if b in named:
        return f"'{named[b]}'"
    if b < 0x20 or b == 0x7F:
        return f"'\\x{b:02x}'"
    if 0x80 <= b <= 0xA0 or b == 0xAD:  # not printable for Go's strconv.IsPrint
        return f"'\\u{b:04x}'"
    return f"'{chr(b)}'"


_LITERALS = {"t": "true", "f": "false", "n": "null"}
_ESCAPES = '"\\/bfnrtu'
_HEX = "0123456789abcdefABCDEF"


_MAX_DEPTH = 10000  # encoding/json's maxNestingDepth


def syntax_error(text: str) -> str | None:
    """Go's scanner message for the first syntax error in the JSON value at the start of
    `text` ("invalid character 'x' looking for beginning of value", "unexpected EOF", ...);
    None if that value is well formed. Iterative, so nesting depth costs no recursion."""
    stack: list[str] = []  # "{" or "[" of each open container
    expect = "value"       # what the scanner wants next
    i, n = 0, len(text)
    while True:
        if expect == "after" and not stack:
            return None  # the value is complete: Go reads no further
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            return "unexpected EOF"
        c = text[i]
        if expect in ("value", "key", "value-or-close", "key-or-close"):
            if expect.endswith("-or-close") and c == ("}" if expect == "key-or-close" else "]"):
                stack.pop()
                i += 1
                expect = "after"
            elif expect.startswith("key"):
                if c != '"':
                    return f"invalid character {_quote_char(c)} looking for beginning of object key string"
                i, problem = _scan_string(text, i)
                if problem:
                    return problem
                expect = "colon"
            elif c in "{[":
                if len(stack) >= _MAX_DEPTH:
                    return f"invalid character {_quote_char(c)} exceeded max depth"
                stack.append(c)
                i += 1
                expect = "key-or-close" if c == "{" else "value-or-close"
            else:
                i, problem = _scan_scalar(text, i)
                if problem:
                    return problem
                expect = "after"
        elif expect == "colon":
            if c != ":":
                return f"invalid character {_quote_char(c)} after object key"
            i += 1
            expect = "value"
        else:  # after a value inside a container
            closer, where = ("}", "after object key:value pair") if stack[-1] == "{" \
                else ("]", "after array element")
            if c == ",":
                expect = "key" if stack[-1] == "{" else "value"
            elif c == closer:
                stack.pop()
            else:
                return f"invalid character {_quote_char(c)} {where}"
            i += 1


def _scan_string(text: str, i: int) -> tuple[int, str | None]:
    """Past the string starting at text[i] (a quote), or Go's error inside it."""
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1, None
        if ord(c) < 0x20:
            return i, f"invalid character {_quote_char(c)} in string literal"
        if c == "\\":
            if i + 1 >= n:
                break
            escape = text[i + 1]
            if escape not in _ESCAPES:
                return i, f"invalid character {_quote_char(escape)} in string escape code"
            i += 2
            if escape == "u":
                for k in range(4):
                    if i + k >= n:
                        return n, "unexpected EOF"
                    if text[i + k] not in _HEX:
                        return i, (f"invalid character {_quote_char(text[i + k])} in \\u "
                                   "hexadecimal character escape")
                i += 4
            continue
        i += 1
    return n, "unexpected EOF"


def _scan_scalar(text: str, i: int) -> tuple[int, str | None]:
    """Past the string, number or literal starting at text[i], or Go's error in it."""
    c, n = text[i], len(text)
    if c == '"':
        return _scan_string(text, i)
    if c in _LITERALS:
        word = _LITERALS[c]
        for k in range(1, len(word)):
            if i + k >= n:
                return n, "unexpected EOF"
            if text[i + k] != word[k]:
                return i, (f"invalid character {_quote_char(text[i + k])} in literal {word} "
                           f"(expecting {_quote_char(word[k])})")
        return i + len(word), None
    if c != "-" and not "0" <= c <= "9":
        return i, f"invalid character {_quote_char(c)} looking for beginning of value"
    return _scan_number(text, i)


def _scan_number(text: str, i: int) -> tuple[int, str | None]:
    n = len(text)

    def digits(j: int, context: str) -> tuple[int, str | None]:
        if j >= n:
            return n, "unexpected EOF"
        if not ("0" <= text[j] <= "9"):
            return j, f"invalid character {_quote_char(text[j])} {context}"
        while j < n and "0" <= text[j] <= "9":
            j += 1
        return j, None
    if text[i] == "-":
        i += 1
        if i >= n:
            return n, "unexpected EOF"
        if not ("0" <= text[i] <= "9"):
            return i, f"invalid character {_quote_char(text[i])} in numeric literal"
    if text[i] == "0":
        i += 1
    else:
        i, _ = digits(i, "in numeric literal")
    if i < n and text[i] == ".":
        i, problem = digits(i + 1, "after decimal point in numeric literal")
        if problem:
            return i, problem
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        i, problem = digits(i, "in exponent of numeric literal")
        if problem:
            return i, problem
    return i, None
