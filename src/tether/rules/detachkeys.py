"""Detach keys: Docker's `--detach-keys` grammar and its escape scanner (pure, stdlib only).

Both ends scan a terminal's input for the sequence, as Docker does: the CLI so that the keys
never reach the daemon, the daemon for clients that do not scan (the SDK, raw sockets). The
rules are moby/term's: `ToBytes` for the grammar and the escape proxy for the matching, which
holds back a partial match until the next byte decides and, on a mismatch, lets the held bytes
and the mismatching byte through without matching that byte again.
"""
from __future__ import annotations

DEFAULT = b"\x10\x11"  # ctrl-p,ctrl-q

# "ctrl-@" is 0, "ctrl-a" 1, ... "ctrl-z" 26, then ctrl-[ \ ] ^ _ for 27-31: moby/term's table
_CTRL = ["ctrl-@", *(f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)),
         "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


def parse(keys: str) -> bytes:
    """`ctrl-p,ctrl-q`, `a,b`, `DEL` to bytes; "" is the default sequence.

    Raises ValueError with moby's wording for an unknown key (matching is case-sensitive, and a
    single key is one byte: a non-ASCII letter is unknown, as it is in Go's byte-length check).
    """
    if keys == "":
        return DEFAULT
    codes = bytearray()
    for key in keys.split(","):
        raw = key.encode()
        if len(raw) == 1:
            codes += raw
        elif key in _CTRL:
            codes.append(_CTRL.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(codes)


class EscapeScanner:
    """Feed input as it arrives; get back what to forward and whether the sequence was typed."""

    def __init__(self, keys: bytes = DEFAULT) -> None:
        self.keys = keys or DEFAULT
        self.pos = 0  # how much of the sequence the held-back input matches

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detached). At a detach the bytes typed after it are dropped."""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    self.pos = 0
                    return bytes(out), True
                continue
            out += self.keys[:self.pos]
            out.append(byte)
            self.pos = 0
        return bytes(out), False
