"""`GET /images/search`: a registry's v1 search (Docker Hub's index by default), with dockerd's
term split, limit range and result filters (`is-official`, `is-automated`, `stars`)."""
from __future__ import annotations

from typing import Any, Iterable

from tether.image.registry import INDEX_HOST, Credentials, RegistryClient
from tether.rules import filters as filters_rule
from tether.rules.errors import BadRequest

FILTERS = frozenset({"is-automated", "is-official", "stars"})


def split_term(term: str) -> tuple[str, str]:
    """(index host, remote query): a term whose first part is a registry host
    (`localhost:5000/x`) searches that registry for the rest; any other term, Docker Hub's
    index (`docker.io/` dropped)."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if first in ("docker.io", INDEX_HOST):
            return INDEX_HOST, rest
        return first, rest
    return INDEX_HOST, term


def _bool_filter(filters: dict[str, list[str]], key: str) -> bool | None:
    values = filters.get(key)
    if not values:
        return None
    if values == ["true"]:
        return True
    if values == ["false"]:
        return False
    raise filters_rule.invalid_value(key, values)


def result_filter(filters: dict[str, list[str]]):
    """dockerd's checks of the filters (before it asks the registry) and the test on each
    result; a bad one is dockerd's invalid filter (400)."""
    filters_rule.check_keys(filters, FILTERS)
    official, automated = _bool_filter(filters, "is-official"), _bool_filter(filters, "is-automated")
    stars = 0
    for value in filters.get("stars", []):
        try:
            stars = max(stars, int(value))
        except ValueError:
            raise BadRequest(f"Invalid filter 'stars={value}'") from None

    def keep(result: dict[str, Any]) -> bool:
        return ((official is None or bool(result.get("is_official")) == official)
                and (automated is None or bool(result.get("is_automated")) == automated)
                and int(result.get("star_count") or 0) >= stars)
    return keep


def search(term: str, limit: int, filters: dict[str, list[str]],
           credentials: Credentials | None, insecure: Iterable[str]) -> list[dict[str, Any]]:
    keep = result_filter(filters)
    if not 1 <= limit <= 100:
        raise BadRequest(f"Limit {limit} is outside the range of [1, 100]")
    host, query = split_term(term)
    reply = RegistryClient(host, "", credentials, insecure).search(query, limit)
    results = reply.get("results") or []
    return [{"star_count": int(r.get("star_count") or 0), "is_official": bool(r.get("is_official")),
             "name": str(r.get("name") or ""), "is_automated": bool(r.get("is_automated")),
             "description": str(r.get("description") or "")}
            for r in results if isinstance(r, dict) and keep(r)]
