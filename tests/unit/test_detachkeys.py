"""Docker's detach keys: moby/term's grammar and escape proxy."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from tether.rules.detachkeys import DEFAULT, EscapeScanner, parse


@pytest.mark.parametrize("text,keys", [
    ("", DEFAULT),
    ("ctrl-p,ctrl-q", b"\x10\x11"),
    ("ctrl-a,x", b"\x01x"),
    ("ctrl-@,ctrl-z,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", bytes([0, 26, 27, 28, 29, 30, 31])),
    ("DEL", b"\x7f"),
    ("a,b,c", b"abc"),
])
def test_parse(text, keys):
    assert parse(text) == keys


@pytest.mark.parametrize("text,bad", [
    ("ctrl-foo", "ctrl-foo"), ("CTRL-P", "CTRL-P"), ("ctrl-p,,ctrl-q", ""), (",", ""), ("del", "del"),
    ("é", "é"), ("ctrl-p,ab", "ab"),
])
def test_parse_refuses_with_moby_wording(text, bad):
    with pytest.raises(ValueError) as exc:
        parse(text)
    assert str(exc.value) == f"Unknown character: '{bad}'"


def test_scanner_detaches_and_keeps_what_came_before():
    s = EscapeScanner()
    assert s.feed(b"ls\x10\x11rest") == (b"ls", True)


def test_scanner_holds_a_partial_match_until_the_next_read():
    s = EscapeScanner()
    assert s.feed(b"ab\x10") == (b"ab", False)
    assert s.feed(b"\x11") == (b"", True)


def test_scanner_releases_held_bytes_on_a_mismatch():
    s = EscapeScanner()
    assert s.feed(b"\x10") == (b"", False)
    assert s.feed(b"x") == (b"\x10x", False)


def test_mismatching_byte_is_not_matched_again():
    """moby's proxy: ctrl-p ctrl-p ctrl-q does not detach (the second ctrl-p is let through)."""
    s = EscapeScanner()
    assert s.feed(b"\x10\x10\x11") == (b"\x10\x10\x11", False)


def test_custom_and_single_key():
    assert EscapeScanner(b"\x01x").feed(b"\x10\x11\x01x") == (b"\x10\x11", True)
    assert EscapeScanner(b"q").feed(b"abq") == (b"ab", True)


def test_empty_keys_mean_the_default():
    assert EscapeScanner(b"").feed(b"\x10\x11") == (b"", True)


@given(st.lists(st.binary(max_size=8), max_size=10))
def test_without_the_sequence_everything_passes_in_order(chunks):
    data = b"".join(chunks)
    if b"\x10\x11" in data or data.endswith(b"\x10"):
        return
    s = EscapeScanner()
    out = b""
    for chunk in chunks:
        forwarded, detached = s.feed(chunk)
        assert not detached
        out += forwarded
    assert out == data
