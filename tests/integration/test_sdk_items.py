"""The docker SDK 7 as real programs use it against tetherd: the high-level DockerClient
(containers run/create/get/list, exec_run streaming and demuxed, logs following to the end,
attach_socket, wait, restart, ports, images) and the low-level APIClient with a host config
built by create_host_config (port bindings, links, publish-all)."""
from __future__ import annotations

import socket
import time
from typing import Iterator

import docker
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def client(daemon) -> Iterator[docker.DockerClient]:
    """An SDK client; every container it made (named sdki-*) is removed afterwards."""
    c = daemon.sdk()
    try:
        yield c
    finally:
        for ctr in c.containers.list(all=True, filters={"name": "sdki-"}):
            ctr.remove(force=True)
        c.close()


def test_run_detached_get_list(client):
    ctr = client.containers.run("busybox", ["sleep", "60"], name="sdki-run", detach=True,
                                labels={"suite": "sdki"})
    assert client.containers.get("sdki-run").id == ctr.id
    ctr.reload()
    assert ctr.status == "running"
    listed = client.containers.list(filters={"label": "suite=sdki"})
    assert [c.id for c in listed] == [ctr.id]
    assert ctr.id not in [c.id for c in client.containers.list(filters={"status": "exited"})]


def test_run_foreground_returns_output_and_raises_on_failure(client):
    assert client.containers.run("busybox", ["echo", "fg"], name="sdki-fg", remove=True) == b"fg\n"
    with pytest.raises(docker.errors.ContainerError) as info:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], name="sdki-fail")
    assert info.value.exit_status == 3


def test_create_start_wait(client):
    ctr = client.containers.create("busybox", ["sh", "-c", "exit 4"], name="sdki-wait")
    assert ctr.status == "created"
    ctr.start()
    assert ctr.wait(timeout=30) == {"StatusCode": 4, "Error": None}


def test_exec_run_stream_and_demux(client):
    ctr = client.containers.run("busybox", ["sleep", "60"], name="sdki-exec", detach=True)
    result = ctr.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True)
    assert b"".join(result.output) == b"a\nb\n"
    code, (out, err) = ctr.exec_run(["sh", "-c", "echo o; echo e >&2; exit 2"], demux=True)
    assert (code, out, err) == (2, b"o\n", b"e\n")
    result = ctr.exec_run(["sh", "-c", "echo o; echo e >&2"], stream=True, demux=True)
    chunks = list(result.output)
    assert b"".join(c[0] or b"" for c in chunks) == b"o\n"
    assert b"".join(c[1] or b"" for c in chunks) == b"e\n"


def test_logs_stream_ends_when_container_exits(client):
    ctr = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"],
                                name="sdki-logs", detach=True)
    started = time.monotonic()
    lines = list(ctr.logs(stream=True))  # the SDK follows when streaming
    assert b"".join(lines) == b"1\n2\n3\n"
    assert time.monotonic() - started < 15


def test_attach_socket(client):
    ctr = client.containers.create("busybox", ["cat"], name="sdki-attach", stdin_open=True)
    sock = ctr.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw: socket.socket = sock._sock
    try:
        ctr.start()
        raw.sendall(b"ping\n")
        raw.settimeout(10)
        data = b""
        while b"ping" not in data:
            chunk = raw.recv(4096)
            assert chunk, f"attach stream closed early: {data!r}"
            data += chunk
        # a non-tty attach is multiplexed: an 8-byte header saying stdout (1), then the payload
        assert data[0] == 1 and data[8:].startswith(b"ping\n")
    finally:
        raw.close()
        sock.close()


def test_restart(client):
    ctr = client.containers.run("busybox", ["sleep", "60"], name="sdki-restart", detach=True)
    pid = client.api.inspect_container(ctr.id)["State"]["Pid"]
    ctr.restart(timeout=1)
    ctr.reload()
    assert ctr.status == "running"
    assert ctr.attrs["State"]["Pid"] not in (0, pid)


def test_ports_attribute(client):
    ctr = client.containers.run("busybox", ["sleep", "60"], name="sdki-ports", detach=True,
                                ports={"80/tcp": 18081, "53/udp": None})
    ctr.reload()
    # like Docker 20.10+, an unqualified binding is listed for IPv4 and, when present, IPv6
    assert ctr.ports["80/tcp"][0] == {"HostIp": "0.0.0.0", "HostPort": "18081"}
    assert {b["HostPort"] for b in ctr.ports["80/tcp"]} == {"18081"}
    udp = ctr.ports["53/udp"]
    assert udp and int(udp[0]["HostPort"]) > 1024


def test_images_list_get(client):
    tags = [t for img in client.images.list() for t in img.tags]
    assert "busybox:latest" in tags
    img = client.images.get("busybox")
    assert img.tags == ["busybox:latest"] and img.id.startswith("sha256:")
    assert client.images.list(name="busybox")[0].id == img.id
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nope-sdki:1")


def test_low_level_host_config(client):
    api = client.api
    db = api.create_container("busybox", ["sleep", "60"], name="sdki-db", ports=[5432])
    api.start(db)
    hc = api.create_host_config(port_bindings={80: 18082, 443: ("127.0.0.1", 18443)},
                                links={"sdki-db": "database"}, publish_all_ports=True)
    web = api.create_container("busybox", ["sleep", "60"], name="sdki-web", ports=[80, 443, 8000],
                               host_config=hc)
    api.start(web)
    assert api.port(web, 80)[0] == {"HostIp": "0.0.0.0", "HostPort": "18082"}
    assert api.port(web, 443) == [{"HostIp": "127.0.0.1", "HostPort": "18443"}]
    assert int(api.port(web, 8000)[0]["HostPort"]) > 1024  # published by PublishAllPorts
    info = api.inspect_container(web)
    assert info["HostConfig"]["PublishAllPorts"] is True
    assert info["HostConfig"]["Links"] == ["/sdki-db:/sdki-web/database"]
    assert info["State"]["Running"] is True
    exe = api.exec_create(web, ["sh", "-c", "echo $DATABASE_PORT_5432_TCP_PORT"])
    assert api.exec_start(exe) == b"5432\n"
