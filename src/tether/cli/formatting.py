"""Tables and columns exactly as the docker CLI prints them (cli/command/formatter).

Users diff our output against docker's, and scripts parse it, so column widths follow Go's
tabwriter (minwidth 10, padding 3, last column unpadded) and each cell follows docker's rules.
"""
from __future__ import annotations

import json
import time
from typing import Any, Iterable, Sequence

from tether.rules.units import human_duration, human_size

PS_HEADER = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
IMAGES_HEADER = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")


def tabwrite(rows: Sequence[Sequence[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Align cells as Go's tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0) does.

    Every cell but a line's last is padded to the column's width: max(minwidth, widest + padding).
    """
    ncols = max((len(r) for r in rows), default=0)
    widths = [minwidth] * ncols
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell) + padding)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "".join(line + "\n" for line in lines)


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to `width` runes, the last one replaced by "…"."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's strconv.Quote (docker quotes the COMMAND column with it)."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def short_id(ident: str) -> str:
    """stringid.TruncateID: drop any "sha256:" and keep 12 characters."""
    return ident.split(":", 1)[-1][:12]


def ago(created: float, now: float | None = None) -> str:
    """CREATED column wording: "2 minutes ago"."""
    return human_duration((time.time() if now is None else now) - created) + " ago"


def join_host_port(host: str, port: str) -> str:
    """Go's net.JoinHostPort: IPv6 hosts bracketed ("[::]:32768")."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def natural_key(text: str) -> list[tuple[int, ...]]:
    """Sort key of sortorder.NaturalLess, which orders `docker port` lines: digit runs compare
    as numbers (fewer leading zeros first on a tie) and sort before any other byte; other bytes
    compare one by one; a prefix sorts first."""
    key: list[tuple[int, ...]] = []
    data = text.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(data):
        if not 0x30 <= data[i] <= 0x39:
            key.append((1, data[i]))
            i += 1
            continue
        start = i
        while i < len(data) and data[i] == 0x30:
            i += 1
        digits_start = i
        while i < len(data) and 0x30 <= data[i] <= 0x39:
            i += 1
        digits = data[digits_start:i]
        key.append((0, len(digits), int(digits or b"0"), digits_start - start))
    return key


def _form_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{join_host_port(ip, group)}->{group}"
    return f"{group}/{proto}"


def display_ports(ports: Iterable[dict[str, Any]] | None) -> str:
    """docker CLI 28's DisplayablePorts: consecutive ports grouped per (IP, type), host mappings
    (public port != private port) listed last, all joined with ", "."""
    def sort_key(p: dict[str, Any]) -> tuple[int, str, int, str]:
        return (p.get("PrivatePort", 0), p.get("IP") or "", p.get("PublicPort") or 0,
                p.get("Type", ""))

    groups: dict[str, list[int]] = {}
    result: list[str] = []
    host_mappings: list[str] = []
    for port in sorted(ports or [], key=sort_key):
        current = port.get("PrivatePort", 0)
        proto = port.get("Type", "")
        key = proto
        ip = port.get("IP") or ""
        if ip:
            public = port.get("PublicPort") or 0
            if public != current:
                host_mappings.append(f"{join_host_port(ip, str(public))}->{current}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
        elif current == group[1] + 1:
            group[1] = current
        else:
            result.append(_form_group(key, group[0], group[1]))
            groups[key] = [current, current]
    result += [_form_group(key, first, last) for key, (first, last) in groups.items()]
    return ", ".join(result + host_mappings)


def container_names(names: list[str] | None, trunc: bool) -> str:
    """NAMES column: leading "/" dropped; truncated shows the first name without an inner "/"."""
    stripped = [n[1:] for n in names or []]
    if trunc:
        for name in stripped:
            if "/" not in name:
                return name
    return ",".join(stripped)


def size_cell(item: dict[str, Any]) -> str:
    """SIZE column of `ps -s`: "0B (virtual 1.99MB)"."""
    rw = human_size(item.get("SizeRw") or 0)
    root = item.get("SizeRootFs") or 0
    return f"{rw} (virtual {human_size(root)})" if root > 0 else rw


def ps_row(item: dict[str, Any], trunc: bool, now: float, with_size: bool = False) -> list[str]:
    """One `docker ps` line from a GET /containers/json item."""
    command = item.get("Command", "")
    image = item.get("Image", "")
    if trunc and image.startswith("sha256:"):
        image = short_id(image)
    row = [
        short_id(item["Id"]) if trunc else item["Id"],
        image,
        go_quote(ellipsis(command, 20) if trunc else command),
        ago(item.get("Created", now), now),
        item.get("Status", ""),
        display_ports(item.get("Ports")),
        container_names(item.get("Names"), trunc),
    ]
    if with_size:
        row.append(size_cell(item))
    return row


def ps_table(items: list[dict[str, Any]], trunc: bool = True, with_size: bool = False,
             now: float | None = None) -> str:
    now = time.time() if now is None else now
    header = list(PS_HEADER) + (["SIZE"] if with_size else [])
    return tabwrite([header] + [ps_row(i, trunc, now, with_size) for i in items])


def image_rows(items: list[dict[str, Any]], trunc: bool, now: float) -> list[list[str]]:
    """`docker images` lines: one per repo:tag, `<none>` for untagged images."""
    rows = []
    for item in items:
        ident = short_id(item["Id"]) if trunc else item["Id"]
        created = ago(item.get("Created", now), now)
        size = human_size(item.get("Size", 0))
        tags = [t for t in item.get("RepoTags") or [] if t != "<none>:<none>"]
        for ref in tags or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            rows.append([repo, tag, ident, created, size])
    return rows


def images_table(items: list[dict[str, Any]], trunc: bool = True, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return tabwrite([list(IMAGES_HEADER)] + image_rows(items, trunc, now))


def go_json_indent(value: Any) -> str:
    """docker inspect's output: the daemon's JSON re-indented with four spaces."""
    return json.dumps(value, indent=4, ensure_ascii=False)


LINKS_HEADER = ("PARENT", "ALIAS", "CONTAINER", "IP ADDRESS", "PORTS", "STATE")


def link_state(link: dict[str, Any]) -> str:
    """STATE of `tether links`: a stopped child outranks stale env, since no address is reachable
    at all then; stale means the parent's PID 1 still holds the child's former address."""
    if not link.get("ChildRunning"):
        return "not running"
    return "stale env" if link.get("Stale") else "ok"


def _link_order(link: dict[str, Any]) -> tuple[str, str]:
    return link.get("Parent", ""), link.get("Alias", "")


def link_row(link: dict[str, Any]) -> list[str]:
    """One `tether links` line from a GET /containers/{id}/links item (names without the "/")."""
    return [
        link.get("Parent", "").lstrip("/"),
        link.get("Alias", ""),
        link.get("Child", "").lstrip("/"),
        link.get("IPAddress") or "",
        ", ".join(link.get("Ports") or []),
        link_state(link),
    ]


def stale_lines(link: dict[str, Any]) -> list[str]:
    """The variables a stale link left in the parent's PID 1, each with the child's address now."""
    if not link.get("Stale"):
        return []
    now = link.get("IPAddress") or "not running"
    name = link.get("Name", "")
    return [f"  {name}: {var} (now {now})" for var in link.get("StaleVariables") or []]


def links_table(links: list[dict[str, Any]]) -> str:
    """The link graph as a table (sorted by parent, then alias, so the output is stable), followed
    by the stale variables, if any, after a blank line."""
    ordered = sorted(links, key=_link_order)
    table = tabwrite([list(LINKS_HEADER)] + [link_row(link) for link in ordered])
    stale = [line for link in ordered for line in stale_lines(link)]
    return table + ("\n" + "".join(line + "\n" for line in stale) if stale else "")
