"""Docker's time stamps: Go's RFC3339Nano in UTC, as dockerd writes them in records, the zero
time Go prints for a time never set, and the time arguments clients send (GetTimestamp)."""
from __future__ import annotations

import functools
import re
import time
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    """The current time as Go's RFC3339Nano in UTC, the form Docker writes in records."""
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


@functools.lru_cache(maxsize=4096)
def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch of an RFC3339(Nano) UTC time written by `now_rfc3339`.

    Cached: the container list reads every container's Created and StartedAt on each request,
    and strptime costs about 25 us a call, the largest share of listing 200 containers."""
    if not value or value == ZERO_TIME:
        return 0.0
    head, _, frac = value.rstrip("Z").partition(".")
    seconds = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)


_DURATION_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
                "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIX = re.compile(r"\d+(?:\.\d+)?")


def go_duration_ns(text: str) -> int | None:
    """A Go duration (`1h30m`, `-2.5s`, `500ms`) in nanoseconds, as time.ParseDuration reads
    it; None when `text` is not one."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_NS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        return None
    return -int(total) if text.startswith("-") else int(total)


def get_timestamp(value: str, now: float) -> str:
    """docker's GetTimestamp: the moment a client's `since`/`until` means, as the
    `<seconds>.<nanoseconds>` text the API takes. A Go duration counts back from `now`, a Unix
    time passes as given, else an RFC 3339 time or date (without a zone: UTC, the daemon's).
    ValueError with dockerd's text when it is none of them."""
    if value != "0":
        ns = go_duration_ns(value)
        if ns is not None:
            return f"{now - ns / 1e9:.9f}"
    if _UNIX.fullmatch(value):
        return value
    if "-" in value:
        try:
            moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f'parsing time "{value}": not an RFC 3339 time') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return f"{moment.timestamp():.9f}"
    raise ValueError(f'failed to parse value as time or duration: "{value}"')


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): `1m30s`, `5s`, `0s`, `500ms`, `1h0m0s`, `1.5s`."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
        return f"{sign}{ns}ns"
    seconds, minutes = _decimal(ns % (60 * 10**9), 10**9) + "s", ns // (60 * 10**9)
    if not minutes:
        return sign + seconds
    hours, minutes = divmod(minutes, 60)
    return sign + (f"{hours}h" if hours else "") + f"{minutes}m" + seconds


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    digits = len(str(unit)) - 1
    return f"{whole}" + (f".{fraction:0{digits}d}".rstrip("0") if fraction else "")
