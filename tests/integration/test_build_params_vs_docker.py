"""Differential tests: the legacy builder's `cache_from`, `extra_hosts`, `network_mode` and a
Dockerfile inside the context, and `load` of a body that is no tar, through docker-py on tetherd
and Docker 20.10."""
from __future__ import annotations

import io
import re
import subprocess
import tarfile
from typing import Iterator

import docker
import pytest

from reference import started

pytestmark = pytest.mark.integration
HOSTS: dict[docker.APIClient, str] = {}  # each client's DOCKER_HOST, for the SDK's high level


@pytest.fixture(scope="module")
def clients(daemon) -> Iterator[dict[str, docker.APIClient]]:
    with started("builddiff") as ref:
        made = {"docker": docker.APIClient(base_url=ref.host),
                "tether": docker.APIClient(base_url=daemon.host)}
        HOSTS.update({made["docker"]: ref.host, made["tether"]: daemon.host})
        yield made
        for client in made.values():
            client.close()


def on_both(clients, fn) -> tuple:
    return fn(clients["docker"]), fn(clients["tether"])


def dockerfile(*lines: str) -> io.BytesIO:
    return io.BytesIO("\n".join(lines).encode())


def build(client: docker.APIClient, **kwargs) -> list[dict]:
    # forcerm: a failed step's container goes too (rm alone keeps it, on both engines)
    return list(client.build(decode=True, rm=True, forcerm=True, **kwargs))


def errors(log: list[dict]) -> list:
    return [(line["errorDetail"].get("code"), line["error"]) for line in log if "error" in line]


def remove(client: docker.APIClient, *images: str) -> None:
    for image in images:
        try:
            client.remove_image(image, force=True)
        except docker.errors.NotFound:
            pass


def test_cache_from(clients):
    """Only the cache_from images' chains give cache hits; unknown names are skipped."""
    text = ["FROM busybox", "ENV FOO=bar", "RUN touch baz", "RUN touch bax"]

    def hits(client):
        try:
            build(client, fileobj=dockerfile(*text), tag="cf1")
            counts = []
            for cache_from in (["cf1"], ["nosuchtag"], ["busybox"], None):
                log = build(client, fileobj=dockerfile(*text), tag="cf2", cache_from=cache_from)
                counts.append(sum("Using cache" in line.get("stream", "") for line in log))
            return counts
        finally:
            remove(client, "cf2", "cf1")
    docker_counts, tether_counts = on_both(clients, hits)
    assert docker_counts == [3, 0, 0, 3]
    assert tether_counts == docker_counts


def test_extra_hosts(clients):
    def hosts_lines(client):
        try:
            log = build(client, fileobj=dockerfile(
                "FROM busybox", "RUN ping -c1 -W1 extra.test && grep test /etc/hosts > /found"),
                tag="ehb", extra_hosts={"extra.test": "127.0.0.1", "other.test": "127.0.0.2"},
                nocache=True)
            ctr = client.create_container("ehb", "cat /found")
            try:
                client.start(ctr)
                client.wait(ctr)
                return errors(log), client.logs(ctr)
            finally:
                client.remove_container(ctr, force=True)
        finally:
            remove(client, "ehb")
    docker_result, tether_result = on_both(clients, hosts_lines)
    assert b"127.0.0.1\textra.test" in docker_result[1]
    assert tether_result == docker_result


def test_network_mode(clients):
    """RUN steps on a user network reach its containers by alias; on `none`, nothing."""
    def result(client):
        net = client.create_network("bnet")["Id"]
        target = client.create_container("busybox", "sleep 60")
        try:
            client.start(target)
            client.connect_container_to_network(target, net, aliases=["pingtarget.test"])
            on_net = errors(build(client, fileobj=dockerfile(
                "FROM busybox", "RUN ping -c1 -W2 pingtarget.test"), network_mode="bnet",
                nocache=True, tag="bnm1"))
            on_none = errors(build(client, fileobj=dockerfile(
                "FROM busybox", "RUN ip -o link | grep -c eth0"), network_mode="none",
                nocache=True, tag="bnm2"))
            return on_net, on_none
        finally:
            client.remove_container(target, force=True)
            client.remove_network(net)
            remove(client, "bnm1", "bnm2")
    docker_result, tether_result = on_both(clients, result)
    assert docker_result[0] == [] and docker_result[1] != []
    assert tether_result == docker_result


def _context(dockerfile_path: str) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, body in (("file.txt", b"hello"),
                           (dockerfile_path, b"FROM busybox\nCOPY . /src\nRUN ls -a /src\n")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    return data


@pytest.mark.parametrize("path,given", [
    ("hello/world/custom.dockerfile", "hello/world/custom.dockerfile"),
    ("sub/Dockerfile", "./sub/Dockerfile"),
    ("sub/Dockerfile", "sub/nosuch"),
    ("sub/Dockerfile", "../Dockerfile"),
])
def test_dockerfile_inside_context(clients, path, given):
    def result(client):
        try:
            log = build(client, fileobj=_context(path), custom_context=True, dockerfile=given,
                        tag="dfin")
        except docker.errors.APIError as exc:
            return exc.status_code, exc.explanation
        finally:
            remove(client, "dfin")
        text = "".join(line.get("stream", "") for line in log)
        return re.sub(r"[0-9a-f]{12}", "<ID>", text), errors(log)
    docker_result, tether_result = on_both(clients, result)
    assert tether_result == docker_result


@pytest.mark.parametrize("body", [b"abc", b"x" * 1024, b"hello" * 300])
def test_load_of_no_tar(clients, body):
    """200 and the tar reader's error in the stream (docker-py raises ImageLoadError)."""
    def result(client):
        sdk = docker.DockerClient(base_url=HOSTS[client])
        with pytest.raises(docker.errors.ImageLoadError) as caught:
            sdk.images.load(body)
        sdk.close()
        return str(caught.value)
    docker_error, tether_error = on_both(clients, result)
    assert tether_error == docker_error


def test_cli_load_of_no_tar(clients):
    def result(client):
        r = subprocess.run(["docker", "-H", HOSTS[client], "load"], input=b"not a tar",
                           capture_output=True)
        return r.returncode, r.stdout, r.stderr
    docker_result, tether_result = on_both(clients, result)
    assert docker_result[0] == 1
    assert tether_result == docker_result
