"""The text of a container's /etc/hosts, /etc/hostname and /etc/resolv.conf (pure functions).

Docker Engine 20.10 is the profile (see shared/spec/links-and-ports.md §2): hosts lines are
`IP<TAB>names`, the IPv6 block uses `fe00::0` and `ff00::0`, and resolv.conf is the host's with
loopback nameservers dropped, falling back to Google's public servers when none is left.
"""
from __future__ import annotations

import ipaddress

DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
IPV6_LOCAL_LINES = (
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)


def hostname_file(hostname: str) -> str:
    return hostname + "\n"


def hosts_file(hostname: str, address: str | None = None, domainname: str = "",
               extra: list[tuple[str, str]] = (), links: list[tuple[str, str]] = (),
               more: list[str] = ()) -> str:
    """/etc/hosts: localhost lines, `--add-host` entries, link entries, then the container's own
    line for each of its addresses (`more`: on its further networks, in connection order)."""
    lines = [("127.0.0.1", "localhost"), *IPV6_LOCAL_LINES, *extra, *links]
    if domainname:
        names = f"{hostname}.{domainname} {hostname}"
    elif "." in hostname:
        names = f"{hostname} {hostname.split('.', 1)[0]}"
    else:
        names = hostname
    lines += [(ip, names) for ip in (address, *more) if ip]
    return "".join(f"{ip}\t{names}\n" for ip, names in lines)


def _is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_conf(host_text: str, dns: list[str] = (), dns_search: list[str] = (),
                dns_options: list[str] = (), ipv6: bool = False) -> str:
    """The container's resolv.conf, from the host's text and the `--dns*` options.

    Loopback nameservers cannot be reached from a container's namespace, and IPv6 ones only on a
    network with IPv6, so both are dropped; with none left the container uses 8.8.8.8 and 8.8.4.4.
    """
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    others: list[str] = []
    for raw in host_text.splitlines():
        line = raw.strip()
        fields = line.split()
        if not fields or line.startswith(("#", ";")):
            continue
        key = fields[0]
        if key == "nameserver" and len(fields) > 1:
            address = fields[1]
            if _is_loopback(address) or (":" in address and not ipv6):
                continue
            nameservers.append(address)
        elif key in ("search", "domain"):
            search = fields[1:]
        elif key == "options":
            options.extend(fields[1:])
        else:
            others.append(line)
    if dns:
        nameservers = list(dns)
    elif not nameservers:
        nameservers = list(DEFAULT_NAMESERVERS)
    if dns_search:
        search = [] if list(dns_search) == ["."] else list(dns_search)
    if dns_options:
        options = list(dns_options)
    out = [f"nameserver {ns}" for ns in nameservers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    out.extend(others)
    return "\n".join(out) + "\n"


EMBEDDED_DNS = "127.0.0.11"


def embedded_resolv_conf(host_text: str, dns_search: list[str] = (),
                         dns_options: list[str] = ()) -> str:
    """resolv.conf on a user-defined network (Docker 20.10): the host's search domains and
    options, the embedded resolver as the only nameserver, and `ndots:0` unless set."""
    search: list[str] = []
    options: list[str] = []
    for raw in host_text.splitlines():
        fields = raw.split()
        if fields and fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields and fields[0] == "options":
            options.extend(fields[1:])
    if dns_search:
        search = [] if list(dns_search) == ["."] else list(dns_search)
    if dns_options:
        options = list(dns_options)
    if not any(opt.startswith("ndots:") for opt in options):
        options.append("ndots:0")
    out = ["search " + " ".join(search)] if search else []
    out += [f"nameserver {EMBEDDED_DNS}", "options " + " ".join(options)]
    return "\n".join(out) + "\n"


def _first_name_is(line: str, alias: str) -> bool:
    """Docker's etchosts.Update match: the line's first name is the alias (then a blank or `.`)."""
    fields = line.split("\t", 1)
    if len(fields) != 2:
        return False
    names = fields[1].rstrip("\n")
    return names == alias or names.startswith((alias + " ", alias + "\t", alias + "."))


def update_hosts_alias(text: str, alias: str, address: str) -> str:
    """Give every line whose first name is `alias` the new address (a linked container moved)."""
    lines = text.splitlines(keepends=True)
    return "".join(f"{address}\t{line.split(chr(9), 1)[1]}" if _first_name_is(line, alias)
                   else line for line in lines)


def remove_hosts_alias(text: str, alias: str) -> str:
    """Drop the lines of a removed link."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not _first_name_is(line, alias))
