"""The pure rules of legacy links (`--link name:alias`), as the Docker 20.10 daemon applies them.

Docker keeps these rules in a small package of their own (moby daemon/links, runconfig/opts
`ParseLink`, the extra-hosts loop of daemon/container_operations.go); so does tether, so that the
engine only wires records to them. Every quirk below was checked against a real 20.10 engine:

* link names are `path.Join(parent, alias)`, so `db:a/b` names the link `/web/a/b` and `db:`
  names it after the parent itself (a name already taken: Docker silently drops such a link);
* the env algorithm is the pre-28 one: `<A>_PORT` is the lowest port whatever its protocol,
  "ranges" ignore protocols and need three entries, and their block comes before the per-port
  variables, repeating `_ADDR` and `_PROTO` (runc keeps the first position, with `os.Setenv`).
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass


class LinkError(ValueError):
    """A `Links` entry the daemon rejects; the message is Docker's own text."""


def parse_link(value: str) -> tuple[str, str]:
    """Split a link into (container name, alias) as runconfig/opts `ParseLink` does.

    The stored form `/db:/web/alias` is accepted too, because a container's saved HostConfig
    is fed back through here when links are registered again (daemon restart)."""
    if value == "":
        raise LinkError("empty string specified for links")
    parts = value.split(":")
    if len(parts) > 2:
        raise LinkError(f"bad format for links: {value}")
    if len(parts) == 1:
        return value, value
    name, alias = parts
    if name.startswith("/"):
        return name[1:], _last_element(alias)
    return name, alias


def link_name(parent_name: str, alias: str) -> str:
    """The name a link reserves: Go's `path.Join(parent.Name, alias)`."""
    return posixpath.normpath("/".join(part for part in (parent_name, alias) if part))


def env_prefix(alias_path: str) -> str:
    """`/web/db-1` -> `DB_1`: the last element, upper-cased, with only `-` turned into `_`."""
    return _go_upper(_last_element(alias_path)).replace("-", "_")


def link_env(alias_path: str, ip: str, exposed: Iterable[str],
             child_env: Iterable[str]) -> list[str]:
    """The variables one link gives the parent, in Docker 20.10's order (moby daemon/links).

    `alias_path` is the link name (`/web/db`), `exposed` the child's ExposedPorts keys
    (`5432/tcp`), `child_env` its Config.Env. The list may name a variable twice (a range's
    `_ADDR` and `_PROTO` come again with its first port), exactly as dockerd hands it on."""
    prefix = env_prefix(alias_path)
    ports = sorted((_Port.parse(key) for key in exposed), key=_Port.sort_key)
    env = [f"{prefix}_PORT={ports[0].url(ip)}"] if ports else []
    for start, end in _ranges(ports):
        env += _range_vars(prefix, start, end, ip)
    for port in ports:
        env += _port_vars(prefix, port, ip)
    env.append(f"{prefix}_NAME={alias_path}")
    env += _child_env_vars(prefix, child_env)
    return env


def hosts_line(alias: str, child_ip: str, child_hostname: str, child_name: str) -> tuple[str, str]:
    """The /etc/hosts entry of a link: `(ip, "alias hostname [name]")`.

    The child's name is added only when it differs from the alias (`--link db` gives
    `db <hostname>`); a link name or a slashed alias is reduced to its last element, as
    dockerd does with `path.Split`."""
    short_alias = _last_element(alias)
    name = child_name.removeprefix("/")
    names = [short_alias, child_hostname] + ([name] if name != short_alias else [])
    return child_ip, " ".join(names)


def stale_variables(started_env: Iterable[str], alias_path: str, old_ip: str,
                    new_ip: str) -> list[str]:
    """The address-bearing variables of one link, among `started_env` (`NAME=value` entries, the
    environment a parent's first process started with), that still carry the child's old
    address now that it has `new_ip`. Names are matched to this link's own variable shapes, so
    another link's variables, the child's `_ENV_` copies and longer addresses that merely start
    with `old_ip` never count."""
    if old_ip == new_ip:
        return []
    name_shape = re.compile(
        rf"{re.escape(env_prefix(alias_path))}_PORT(?:_[^_=]+_[^_=]+(?:_ADDR|_START|_END)?)?")
    value_shape = re.compile(rf"(?:[^:/]+://)?{re.escape(old_ip)}(?::[^:]+)?")
    return [entry for entry in started_env
            if name_shape.fullmatch(entry.partition("=")[0])
            and value_shape.fullmatch(entry.partition("=")[2])]


@dataclass(frozen=True)
class _Port:
    """One ExposedPorts key, kept as written (Docker prints the text it was given)."""

    text: str
    proto: str
    number: int

    @classmethod
    def parse(cls, key: str) -> _Port:
        """`5432/tcp` or `5432` (tcp); a key that is no plain port (`7000-7002/tcp`, accepted by
        the API) counts as port 0, like go-connections' `Port.Int()`."""
        text, _, proto = key.partition("/")
        number = int(text) if re.fullmatch(r"[0-9]+", text) and int(text) <= 65535 else 0
        return cls(text, proto or "tcp", number)

    def sort_key(self) -> tuple[int, bool, str]:
        """By number, tcp first on equal numbers. Docker leaves two other protocols on one number
        in random order (unstable sort); tether orders them by name."""
        return self.number, self.proto.lower() != "tcp", self.proto

    def var(self, prefix: str) -> str:
        return f"{prefix}_PORT_{self.text}_{_go_upper(self.proto)}"

    def url(self, ip: str) -> str:
        return f"{self.proto}://{ip}:{self.text}"


def _ranges(ports: list[_Port]) -> list[tuple[_Port, _Port]]:
    """The (first, last) ports of each "range" of 20.10: from a port, walk on while the next
    number is at most one more than a counter that grows by one per entry, protocols ignored
    (so 80/tcp, 80/udp, 81/tcp is a range); a range needs three entries at least."""
    found = []
    i = 0
    while i < len(ports):
        j = _range_end(ports, i)
        if j > i + 1:
            found.append((ports[i], ports[j]))
            i = j + 1
        else:
            i += 1
    return found


def _range_end(ports: list[_Port], index: int) -> int:
    """moby's `nextContiguous`: the index of the last entry of the run starting at `index`."""
    value = ports[index].number
    for i in range(index + 1, len(ports)):
        if ports[i].number > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def _range_vars(prefix: str, start: _Port, end: _Port, ip: str) -> list[str]:
    """A range block: named after its first port, except the two END variables, which take the
    last port's protocol in their name."""
    head = start.var(prefix)
    tail = f"{prefix}_PORT_{start.text}_{_go_upper(end.proto)}"
    return [f"{head}_START={start.url(ip)}", f"{head}_ADDR={ip}", f"{head}_PROTO={start.proto}",
            f"{head}_PORT_START={start.text}", f"{tail}_END={end.url(ip)}",
            f"{tail}_PORT_END={end.text}"]


def _port_vars(prefix: str, port: _Port, ip: str) -> list[str]:
    var = port.var(prefix)
    return [f"{var}={port.url(ip)}", f"{var}_ADDR={ip}", f"{var}_PORT={port.text}",
            f"{var}_PROTO={port.proto}"]


def _child_env_vars(prefix: str, child_env: Iterable[str]) -> list[str]:
    """`<A>_ENV_<name>=<value>` per child variable; bare names, HOME and PATH are left out."""
    found = []
    for entry in child_env:
        name, sep, value = entry.partition("=")
        if sep and name not in ("HOME", "PATH"):
            found.append(f"{prefix}_ENV_{name}={value}")
    return found


def _last_element(path: str) -> str:
    """Go's `path.Split(p)` file part: everything after the last slash."""
    return path.rsplit("/", 1)[-1]


def _go_upper(text: str) -> str:
    """Go's `strings.ToUpper`: a character whose upper case is several characters (`ß`) stays
    as it is, where Python's `str.upper` would expand it."""
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in text)
