"""The filters of dockerd's prune routes (containers, images, networks): which keys each accepts,
`until` (a time, or a Go duration back from now) and `label` / `label!`, with dockerd's texts.

Why one rule for all: dockerd's prunes share `getUntilFromPruneFilters` and `matchLabels`, and a
filter that a prune silently dropped would remove what the user meant to keep (an `until` ignored
removes everything). Statuses follow dockerd: an unknown key is a 400, a bad `until` a 500 (its
error is untyped there).
"""
from __future__ import annotations

from dataclasses import dataclass

from tether.rules.errors import ApiError
from tether.rules.filters import check_keys, invalid_value, label_matches
from tether.rules.times import get_timestamp

CONTAINER_FILTERS = frozenset({"label", "label!", "until"})
IMAGE_FILTERS = frozenset({"dangling", "label", "label!", "until"})
NETWORK_FILTERS = CONTAINER_FILTERS


@dataclass(frozen=True)
class PruneFilter:
    """`until` as seconds since the epoch (None: no limit) and the label expressions."""

    until: float | None
    labels: tuple[str, ...]
    not_labels: tuple[str, ...]

    def keeps_labels(self, labels: dict[str, str] | None) -> bool:
        """dockerd's matchLabels: every `label` matches, and not every `label!` does (a
        `label!` list is one condition: all of it must hold for the object to be spared)."""
        labels = labels or {}
        if not all(label_matches(labels, expr) for expr in self.labels):
            return False
        return not (self.not_labels and all(label_matches(labels, e) for e in self.not_labels))

    def created_in_time(self, created: float) -> bool:
        """Created at or before `until` (dockerd: not After)."""
        return self.until is None or created <= self.until

    def matches(self, created: float, labels: dict[str, str] | None) -> bool:
        return self.created_in_time(created) and self.keeps_labels(labels)


def parse(filters: dict[str, list[str]], accepted: frozenset[str], now: float) -> PruneFilter:
    """Keys checked, then `until` read as dockerd's getUntilFromPruneFilters reads it."""
    check_keys(filters, accepted)
    until = filters.get("until", [])
    if len(until) > 1:
        raise ApiError("more than one until filter specified", 500)
    cutoff = None
    if until:
        try:
            cutoff = float(get_timestamp(until[0], now))
        except ValueError as exc:
            raise ApiError(str(exc), 500) from None
    return PruneFilter(cutoff, tuple(filters.get("label", [])), tuple(filters.get("label!", [])))


def dangling_only(filters: dict[str, list[str]]) -> bool:
    """Image prune's `dangling`: true/1 (the default) or false/0 (`image prune -a`); anything
    else, or both at once, is dockerd's invalid filter."""
    values = set(filters.get("dangling", []))
    if not values:
        return True
    if values & {"false", "0"}:
        return False
    if values & {"true", "1"}:
        return True
    raise invalid_value("dangling", filters["dangling"])
