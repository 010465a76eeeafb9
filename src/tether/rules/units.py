"""Docker's human-readable units (docker/go-units), shared by the CLI and the daemon.

Both `docker ps` (CREATED, via the CLI) and the daemon (STATUS "Up 5 minutes") word durations
with go-units; users compare our output with Docker's, so the thresholds and rounding here follow
go-units exactly rather than what would look nicest.
"""
from __future__ import annotations

import re

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_duration(seconds: float) -> str:
    """Word a duration as go-units `HumanDuration` does (e.g. "About a minute", "3 days").

    Go truncates seconds and minutes but rounds hours half up (`int(d.Hours() + 0.5)`); the
    years branch truncates again. Keeping those quirks is what makes outputs match docker's.
    """
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_size(n: float, precision: int = 3) -> str:
    """Format a byte count as go-units `HumanSizeWithPrecision(n, 3)`: decimal units, "%.3g"
    (`precision=4` is go-units' plain `HumanSize`: prune reports, `system df` totals, the build
    context's "18.43kB").

    Python's "%.*g" and Go's agree for these magnitudes (both drop trailing zeros and switch to
    an exponent at 1e+03), so "999.9 kB" style edge cases come out as docker prints them.
    """
    return _scaled(n, 1000.0, _DECIMAL_UNITS, precision)


_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def bytes_size(n: float) -> str:
    """go-units `BytesSize`: binary units, "%.4g" (docker info's "Total Memory: 23.54GiB")."""
    return _scaled(n, 1024.0, _BINARY_UNITS, 4)


def _scaled(n: float, base: float, units: tuple[str, ...], precision: int) -> str:
    """go-units' CustomSize: divide by `base` while a larger unit exists, "%.<precision>g"."""
    size = float(n)
    unit = 0
    while size >= base and unit < len(units) - 1:
        size /= base
        unit += 1
    return f"{size:.{precision}g}{units[unit]}"


_GO_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_BINARY = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes as the docker CLI (go-units 0.5) reads a size: a number, then an
    optional space and a binary unit (k, m, g, t, p; "b", "kb", "kib" alike) in any case, with
    its errors: `invalid size: '<text>'` (no digit, negative), strconv's text for a number it
    cannot read, `invalid suffix: '<unit>'`. ValueError with that text."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    number, suffix = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " \
        else (text[:sep], text[sep + 1:])
    if not _GO_FLOAT.match(number):
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax')
    size = float(number)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not suffix:
        return int(size)
    if len(suffix) > 3:
        raise ValueError(f"invalid suffix: '{suffix}'")
    unit = suffix.lower()
    if unit[0] == "b" and len(unit) == 1:
        return int(size)
    if unit[0] not in _BINARY or unit[1:] not in ("", "b", "ib"):
        raise ValueError(f"invalid suffix: '{unit}'")
    return int(size * _BINARY[unit[0]])
