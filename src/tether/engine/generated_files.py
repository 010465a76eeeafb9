"""The files the daemon writes for each container and bind-mounts over its /etc: hostname,
hosts and resolv.conf (their texts are tether.network.files, Docker 20.10's).

A running container sees each file through a bind mount, so a change (a link's child got a new
address, a network joined or left) rewrites the same inode in place; a rename would leave the
mount pointing at the old file.
"""
from __future__ import annotations

import os
from pathlib import Path

from tether.engine.paths import CONTAINER_DIR_MODE, Paths
from tether.engine.records import Container
from tether.network import files


class GeneratedFiles:
    """hostname, hosts and resolv.conf under each container's directory."""

    def __init__(self, paths: Paths, host_resolv: Path, host_hosts: Path) -> None:
        self.paths = paths
        self.host_resolv = host_resolv
        self.host_hosts = host_hosts

    def write_all(self, c: Container) -> None:
        """The container's directory and the three files, at create. With `--network host`
        the container sees the host's own hosts and resolv.conf."""
        base = self.paths.container(c.id)
        base.mkdir(CONTAINER_DIR_MODE, parents=True, exist_ok=True)  # its rootfs and upper dir's guard
        for d in (self.paths.upper(c.id), self.paths.work(c.id), self.paths.rootfs(c.id)):
            d.mkdir(parents=True, exist_ok=True)
        rewrite_in_place(base / "hostname", files.hostname_file(c.config.hostname))
        if c.network_mode == "host":
            rewrite_in_place(base / "hosts", _read_or_empty(self.host_hosts))
            rewrite_in_place(base / "resolv.conf", _read_or_empty(self.host_resolv))
            return
        self.write_hosts(c)
        self.write_resolv(c)

    def write_resolv(self, c: Container) -> None:
        """resolv.conf: the host's, or the embedded resolver's once the container is on a user
        network (then it stays so, as in Docker)."""
        host_resolv = _read_or_empty(self.host_resolv)
        if c.on_user_network:
            text = files.embedded_resolv_conf(host_resolv, c.host_config.dns_search or [],
                                              c.host_config.dns_options or [])
        else:
            text = files.resolv_conf(host_resolv, c.host_config.dns or [],
                                     c.host_config.dns_search or [],
                                     c.host_config.dns_options or [])
        rewrite_in_place(self.paths.container(c.id) / "resolv.conf", text)

    def write_hosts(self, c: Container, links: list[tuple[str, str]] | None = None) -> None:
        """/etc/hosts with the container's current addresses and its links' lines."""
        extra = [tuple(reversed(h.split(":", 1))) for h in c.host_config.extra_hosts or []]
        # each endpoint's IPv4 then IPv6 address, as Docker writes them
        more = [c.network.get("GlobalIPv6Address", ""), *(
            (entry.get("State") or {}).get(key, "") for entry in c.networks.values()
            for key in ("IPAddress", "GlobalIPv6Address"))]
        text = files.hosts_file(c.config.hostname, c.network.get("IPAddress"),
                                c.config.domainname, extra=extra, links=links or [],
                                more=more)
        rewrite_in_place(self._hosts(c), text)

    def set_hosts_alias(self, c: Container, alias: str, address: str) -> None:
        """A link's line follows its child's new address."""
        path = self._hosts(c)
        rewrite_in_place(path, files.update_hosts_alias(path.read_text(), alias, address))

    def remove_hosts_alias(self, c: Container, alias: str) -> None:
        path = self._hosts(c)
        rewrite_in_place(path, files.remove_hosts_alias(path.read_text(), alias))

    def drop_own_hosts_lines(self, c: Container) -> None:
        """Every line of the container's own name (Docker 20.10, at a network disconnect)."""
        self.remove_hosts_alias(c, c.config.hostname + (
            f".{c.config.domainname}" if c.config.domainname else ""))

    def _hosts(self, c: Container) -> Path:
        return self.paths.container(c.id) / "hosts"


def rewrite_in_place(path: Path, text: str) -> None:
    """Replace a file's content keeping its inode. A failed write (a full disk) raises an
    OSError naming the file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.truncate()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
