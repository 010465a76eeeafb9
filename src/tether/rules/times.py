"""Docker's time stamps: Go's RFC3339Nano in UTC, as dockerd writes them in records, and the
zero time Go prints for a time never set."""
from __future__ import annotations

import time
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    """The current time as Go's RFC3339Nano in UTC, the form Docker writes in records."""
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch of an RFC3339(Nano) UTC time written by `now_rfc3339`."""
    if not value or value == ZERO_TIME:
        return 0.0
    head, _, frac = value.rstrip("Z").partition(".")
    seconds = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)
