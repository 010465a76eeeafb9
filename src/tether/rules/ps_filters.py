"""The `GET /containers/json` (`docker ps --filter`) filters that need more than a comparison:
which keys dockerd 20.10 knows, `publish`/`expose` port sets, `is-task`, and the `before`/`since`
cut of the newest-first list.

Pure, so the daemon's list and the unit tests share one reading of dockerd's rules (daemon/
list.go): a key tether dropped would list containers the user filtered out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tether.rules import filters as common
from tether.rules.errors import ApiError, BadRequest
from tether.rules.portspec import PortSpecError, go_quote, parse_uint16, split_proto_port

ACCEPTED = ("ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
            "label", "name", "network", "publish", "since", "status", "volume")


def check_keys(filters: Mapping[str, list[str]]) -> None:
    """dockerd's `Invalid filter 'X'` (400) for the first key it does not know."""
    common.check_keys(filters, ACCEPTED)


STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def wants_stopped(values: Iterable[str]) -> bool:
    """A `status` filter lists stopped containers without `all` (dockerd turns `all` on for
    it); a value that is no container state is dockerd's `Invalid filter 'status=X'` (400)."""
    given = False
    for value in values:
        if value not in STATES:
            raise BadRequest(f"Invalid filter 'status={value}'")
        given = True
    return given


def port_set(key: str, values: Iterable[str]) -> set[str]:
    """The `port/proto` set a `publish` or `expose` filter stands for: `80`, `80/udp`,
    `8000-8002/tcp`. A `:` (a host binding) is refused, as dockerd refuses it; dockerd returns
    these errors unclassified, so they are 500s with its texts."""
    ports: set[str] = set()
    for value in values:
        if ":" in value:
            raise ApiError(f"filter for '{key}' should not contain ':': {value}", 500)
        proto, port = split_proto_port(value)
        try:
            start, end = _port_range(port)
        except PortSpecError as exc:
            raise ApiError(f"error while looking up for {key} {value}: {exc}", 500) from None
        ports.update(f"{n}/{proto}" for n in range(start, end + 1))
    return ports


def _port_range(text: str) -> tuple[int, int]:
    """nat.ParsePortRange as dockerd 20.10 vendors it: "N" or "N-M", with that version's texts
    (older than the CLI's, which portspec.parse_port_range follows)."""
    if not text:
        raise PortSpecError("Empty string specified for ports.")
    parts = text.split("-")
    start = parse_uint16(parts[0])
    end = parse_uint16(parts[1]) if len(parts) > 1 else start
    if end < start:
        raise PortSpecError(f"Invalid range specified for the Port: {text}")
    return start, end


def ports_match(ports: Sequence[Mapping[str, Any]], publish: set[str], expose: set[str]) -> bool:
    """Whether a list item's Ports satisfy the port filters: one entry whose PublicPort/Type is
    in `publish` or whose PrivatePort/Type is in `expose` (an unpublished port's PublicPort is 0,
    as in dockerd's list). No port filter at all matches every container."""
    if not publish and not expose:
        return True
    return any(f"{p.get('PublicPort', 0)}/{p['Type']}" in publish
               or f"{p['PrivatePort']}/{p['Type']}" in expose for p in ports)


def wants_tasks(values: list[str]) -> bool | None:
    """`is-task`: None without the filter, else whether swarm task containers are wanted (`true`
    wins over `false` when both are given, as dockerd checks `true` first); any other value set
    is dockerd's `Invalid filter 'is-task=[x]'`."""
    if not values:
        return None
    if "true" in values:
        return True
    if "false" in values:
        return False
    raise common.invalid_value("is-task", values)


def cut_before_since(ids: Sequence[str], before: str | None, since: str | None) -> list[str]:
    """dockerd's cut of the newest-first list: `before` drops every container up to and
    including the named one; after that, `since` ends the list at the named one (exclusive).
    While `before` is still skipping, meeting the `since` container does not end the list."""
    out: list[str] = []
    skipping = before is not None
    for cid in ids:
        if skipping:
            skipping = cid != before
            continue
        if cid == since:
            break
        out.append(cid)
    return out


def id_name_candidates(names: Mapping[str, Iterable[str]], id_values: Sequence[str],
                       name_values: Sequence[str]) -> set[str] | None:
    """dockerd's filterByNameIDMatches, the list it walks (and cuts with before/since) when
    `id` or `name` is given; None when neither is. An `id` value names the one container whose
    ID it is a prefix of (none when empty, spaced or shared by several); a `name` value keeps
    the containers one of whose names (link names included, with or without `/`) it matches,
    among those the ids named when `id` is given too. The regular expressions of both keys
    are applied to each container after this, as dockerd does."""
    if not id_values and not name_values:
        return None
    matches: set[str] = set()
    for value in id_values:
        if value and " " not in value:
            found = [cid for cid in names if cid.startswith(value)]
            if len(found) == 1:
                matches.add(found[0])
    for cid, held in names.items():
        if id_values and cid not in matches:
            continue
        if any(common.pattern_matches(v, n) or common.pattern_matches(v, n.removeprefix("/"))
               for n in held for v in name_values):
            matches.add(cid)
    return matches


def resolve_exact(value: str, names: Mapping[str, Iterable[str]]) -> str:
    """The container `before=`/`since=` name: a full ID, else a name (with or without `/`) that
    exactly one container holds; `names` maps each ID to its names (link names included).
    dockerd looks no prefix up and answers an unclassified 500 for anything else."""
    if value in names:
        return value
    found = {cid for cid, held in names.items()
             if any(n.removeprefix("/") == value.removeprefix("/") for n in held)}
    if len(found) == 1:
        return found.pop()
    raise ApiError(f"no such container {value}", 500)


def exit_codes(values: Iterable[str]) -> list[int]:
    """`exited` values as Go's strconv.Atoi reads them; dockerd returns Atoi's error as is."""
    codes = []
    for value in values:
        text = value[1:] if value[:1] in "+-" else value
        if not text or not text.isascii() or not text.isdigit():
            raise ApiError(f"strconv.Atoi: parsing {go_quote(value)}: invalid syntax", 500)
        codes.append(int(value))
    return codes


def with_descendants(roots: Iterable[str], children: Callable[[str], Iterable[str]]) -> set[str]:
    """The `ancestor` filter's image set: each named image and every image made on it, however
    deep (dockerd walks the parent links a build step or commit recorded)."""
    found: set[str] = set()
    todo = list(roots)
    while todo:
        image_id = todo.pop()
        if image_id not in found:
            found.add(image_id)
            todo.extend(children(image_id))
    return found
