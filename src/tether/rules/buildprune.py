"""The filters of `POST /build/prune` as dockerd checks them before it asks BuildKit (keys, then
`until` / `unused-for` as Go durations), with its texts."""
from __future__ import annotations

from tether.rules.errors import ApiError
from tether.rules.filters import check_keys
from tether.rules.times import go_duration_ns

PREFIX = "failed to prune build cache: "
CACHE_FIELDS = frozenset({"id", "parent", "type", "description", "inuse", "shared", "private"})
DURATION_FIELDS = ("until", "unused-for")
ACCEPTED = CACHE_FIELDS | frozenset(DURATION_FIELDS)


def check(filters: dict[str, list[str]]) -> None:
    """Unknown keys are a 400; an `until` or `unused-for` that is not a Go duration a 500."""
    check_keys(filters, ACCEPTED, PREFIX)
    for key in DURATION_FIELDS:
        for value in filters.get(key, []):
            if go_duration_ns(value) is None:
                raise ApiError(f"{PREFIX}\"{key}\" filter expects a duration (e.g., '24h'): "
                               f"time: invalid duration \"{value}\"", 500)
