"""What every endpoint that takes `filters` shares with dockerd: the check of the keys it knows
(filters.Validate, `Invalid filter 'X'`), the text for a value it cannot read, and label matching
(filters.MatchKVList: `label=key` wants the label present, `label=key=value` with that value; a
`label!` filter negates the same match, each endpoint combining its list as dockerd does).

One rule for all of them: a filter an endpoint dropped silently, or matched differently from the
others, would list, or prune, what the user did not mean.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tether.rules.errors import BadRequest


def check_keys(filters: Mapping[str, list[str]], accepted: Iterable[str],
               prefix: str = "") -> None:
    """The first key (in the client's order) the endpoint does not know is a 400; `prefix` is
    put before the text by endpoints that wrap it (build prune)."""
    allowed = set(accepted)
    for key in filters:
        if key not in allowed:
            raise BadRequest(f"{prefix}Invalid filter '{key}'")


def invalid_value(key: str, values: list[str]) -> BadRequest:
    """dockerd's invalidFilter for a value it cannot read: `Invalid filter 'dangling=[x y]'`."""
    return BadRequest(f"Invalid filter '{key}=[{' '.join(values)}]'")


def label_matches(labels: Mapping[str, str], expr: str) -> bool:
    """`key` (the label is present) or `key=value` (present with that value)."""
    key, sep, value = expr.partition("=")
    return key in labels and (not sep or labels[key] == value)


def pattern_matches(pattern: str, value: str) -> bool:
    """filters.Match (the `name` and `id` keys of lists): the value equals the pattern or the
    pattern, a regular expression, is found in it; a pattern Python cannot compile matches
    only itself."""
    if pattern == value:
        return True
    try:
        return re.search(pattern, value) is not None
    except (re.error, OverflowError, RecursionError):  # what Go would refuse to compile
        return False
