"""The API socket: 0660, group from -G/--group as dockerd picks it (default `docker`, the daemon's
own group when there is none), a fatal error for another unknown group; and a listen backlog that
lets 1000 clients connect at once and all get their answer."""
from __future__ import annotations

import errno
import grp
import os
import resource
import selectors
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from harness import Daemon

PING = b"GET /_ping HTTP/1.1\r\nHost: tether\r\nConnection: close\r\n\r\n"
# Connect and ask for /_ping as nobody, with the supplementary groups given; prints the status line.
CLIENT = ("import socket, sys\n"
          "s = socket.socket(socket.AF_UNIX)\n"
          "s.connect(sys.argv[1])\n"
          f"s.sendall({PING!r})\n"
          "print(s.recv(64).split(b'\\r\\n')[0].decode())\n")


@pytest.fixture
def own() -> Iterator[list[Daemon]]:
    """Daemons of a test's own (no image needed), torn down whatever happens."""
    made: list[Daemon] = []
    try:
        yield made
    finally:
        for d in made:
            d.destroy()


def start(own: list[Daemon], *flags: str) -> Daemon:
    d = Daemon(*flags)
    own.append(d)
    d.start()
    return d


def as_nobody(sock: str, groups: list[int]) -> subprocess.CompletedProcess:
    """The client as uid nobody (setpriv's own capabilities are gone once python runs)."""
    group_flags = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", *group_flags,
                           "/usr/bin/python3", "-c", CLIENT, sock], capture_output=True, text=True, timeout=30)


def assert_socket(sock: str, gid: int) -> None:
    st = os.stat(sock)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 0, gid)


@pytest.fixture
def temp_group() -> Iterator[tuple[str, int]]:
    name = f"tether-it-{uuid.uuid4().hex[:8]}"
    subprocess.run(["groupadd", name], check=True)
    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["groupdel", name], check=False)


def test_default_group_is_docker_when_it_exists(daemon: Daemon) -> None:
    try:
        expected = grp.getgrnam("docker").gr_gid
    except KeyError:
        expected = 0  # dockerd's fallback too: the daemon's own group, with a warning
    assert_socket(daemon.sock, expected)


def test_without_a_docker_group_the_socket_keeps_the_daemons_group(own: list[Daemon],
                                                                    tmp_path: Path) -> None:
    """tetherd sees a group database without `docker` (its own mount namespace, /etc/group
    replaced): the default -G falls back to root's group, with a warning, as dockerd does."""
    groups = tmp_path / "group"
    groups.write_text("".join(line for line in Path("/etc/group").read_text().splitlines(True)
                              if not line.startswith("docker:")))
    hide = ["unshare", "--mount", "--propagation", "slave", "sh", "-c",
            'mount --bind "$0" /etc/group && exec "$@"', str(groups)]
    d = Daemon(wrapper=hide)
    own.append(d)
    d.start()
    assert_socket(d.sock, 0)
    assert f"could not change group {d.sock} to docker: group docker not found" in d.log()


def test_named_group_may_use_the_socket_and_others_may_not(own: list[Daemon],
                                                          temp_group: tuple[str, int]) -> None:
    name, gid = temp_group
    d = start(own, "--group", name)
    assert_socket(d.sock, gid)
    member = as_nobody(d.sock, [gid])
    assert (member.returncode, member.stdout.strip()) == (0, "HTTP/1.1 200 OK"), member.stderr
    stranger = as_nobody(d.sock, [])
    assert stranger.returncode != 0 and "PermissionError" in stranger.stderr


def test_numeric_and_empty_groups(own: list[Daemon]) -> None:
    assert_socket(start(own, "-G", "4242").sock, 4242)  # a GID no group has, as dockerd takes it
    assert_socket(start(own, "-G", "").sock, 0)


def test_unknown_group_stops_the_daemon(own: list[Daemon]) -> None:
    d = Daemon("-G", "tether-no-such-group")
    own.append(d)
    with pytest.raises(RuntimeError, match="tetherd exited"):
        d.start()
    assert "tetherd: failed to load listeners: group tether-no-such-group not found" in d.log()
    assert not os.path.exists(d.sock)


def test_a_thousand_clients_connecting_at_once_are_all_answered(daemon: Daemon) -> None:
    """Non-blocking connects: a full listen queue says EAGAIN at once instead of waiting."""
    clients = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, clients + 200)), hard))
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    try:
        refused = 0
        for _ in range(clients):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            try:
                s.connect(daemon.sock)
            except BlockingIOError:
                refused += 1
        assert refused == 0, f"{refused} of {clients} connects got EAGAIN"
        replies = {s.fileno(): b"" for s in socks}
        for s in socks:
            s.setblocking(True)
            s.sendall(PING)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + 120  # a bound against hanging, not a speed check
        open_count = clients
        while open_count and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                try:
                    chunk = s.recv(4096)
                except OSError as exc:
                    assert exc.errno == errno.EAGAIN, exc
                    continue
                replies[s.fileno()] += chunk
                if not chunk:
                    sel.unregister(s)
                    open_count -= 1
        status = [r.split(b"\r\n", 1)[0] for r in replies.values()]
        assert status.count(b"HTTP/1.1 200 OK") == clients, {line: status.count(line) for line in set(status)}
    finally:
        sel.close()
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
