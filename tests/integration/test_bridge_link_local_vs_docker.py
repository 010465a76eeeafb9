"""Link-local IPs on the default bridge network, compared with Docker 20.10, as docker-py's
TestNetworks.test_create_with_linklocal_ips uses them (an EndpointsConfig `bridge` entry with
IPAMConfig.LinkLocalIPs) and as the docker CLI sends them (`run --link-local-ip`, `network
connect --link-local-ip bridge`).

Docker shows them in the endpoint's IPAMConfig from the create on, adds each to the container's
interface (/16 for IPv4) at every start, and checks them only when it makes the endpoint: a
create with a bad one succeeds and its start fails. tether does the same; the addresses are read
in the running container. The endpoint DriverOpts docker-py's test_create_with_driveropt sends
stay refused (the bridge driver applies none of them), with an error naming the key.
"""
from __future__ import annotations

import re

import docker
import pytest

from harness import api
from reference import reference_fixture

pytestmark = pytest.mark.integration


ref = reference_fixture("bridge-link-local")


def _engines(daemon, ref) -> dict[str, tuple]:
    """Each engine's docker CLI, SDK client and socket path."""
    return {"tether": (daemon.docker, docker.DockerClient(base_url=daemon.host), daemon.sock),
            "docker": (ref.docker, docker.DockerClient(base_url=ref.host),
                       ref.host.removeprefix("unix://"))}


def _addresses(text: bytes) -> list[str]:
    """The link-local lines of `ip -o addr`, without the interface index (a host-wide counter);
    the bridge address beside them depends on the engine's other containers."""
    return [re.sub(r"^\d+: ", "", line).split("\\")[0].strip()
            for line in text.decode().splitlines() if " inet 169.254." in line]


def test_sdk_create_shows_and_applies_them_as_docker(daemon, ref) -> None:
    seen = {}
    for engine, (cli, client, _) in _engines(daemon, ref).items():
        api_client = client.api
        container = api_client.create_container(
            "busybox", "top", host_config=api_client.create_host_config(network_mode="bridge"),
            networking_config=api_client.create_networking_config({
                "bridge": api_client.create_endpoint_config(link_local_ips=["169.254.8.8"])}))
        try:
            before = api_client.inspect_container(container)["NetworkSettings"]["Networks"]
            api_client.start(container)
            after = api_client.inspect_container(container)["NetworkSettings"]["Networks"]
            inside = cli("exec", container["Id"], "ip", "-o", "-4", "addr", "show", "eth0")
            seen[engine] = (list(before), before["bridge"]["IPAMConfig"],
                            after["bridge"]["IPAMConfig"], _addresses(inside.stdout))
        finally:
            api_client.remove_container(container, force=True)
            client.close()
    assert seen["tether"] == seen["docker"]
    assert seen["tether"][3] == [
        "eth0    inet 169.254.8.8/16 brd 169.254.255.255 scope global eth0"]


def test_cli_run_and_connect_as_docker(daemon, ref) -> None:
    seen = {}
    for engine, (cli, client, _) in _engines(daemon, ref).items():
        client.close()
        steps = []
        run = cli("run", "--rm", "--link-local-ip", "169.254.9.9", "busybox",
                  "ip", "-o", "-4", "addr", "show", "eth0")
        steps.append((run.returncode, _addresses(run.stdout)))
        try:
            cli("run", "-d", "--name", "ll-conn", "busybox", "sleep", "300")
            cli("network", "disconnect", "bridge", "ll-conn")
            for ip in ("bogus", "10.9.9.9", "169.254.7.7"):  # dockerd's checks, then applied
                r = cli("network", "connect", "--link-local-ip", ip, "bridge", "ll-conn")
                steps.append((r.returncode, r.stderr.decode()))
            shown = cli("inspect", "-f", "{{json .NetworkSettings.Networks.bridge.IPAMConfig}}",
                        "ll-conn")
            steps.append(shown.stdout.decode())
            steps.append(_addresses(cli("exec", "ll-conn", "ip", "-o", "-4", "addr").stdout))
            cli("restart", "-t", "0", "ll-conn")  # kept: the new eth0 gets it again
            steps.append(_addresses(cli("exec", "ll-conn", "ip", "-o", "-4", "addr").stdout))
        finally:
            cli("rm", "-f", "ll-conn")
        seen[engine] = steps
    assert seen["tether"] == seen["docker"]
    assert "eth0    inet 169.254.7.7/16 brd 169.254.255.255 scope global eth0" in seen["tether"][-1]


@pytest.mark.parametrize("ip", ["bogus", "10.1.2.3", "::1"])
def test_bad_ones_fail_the_start_not_the_create_as_docker(daemon, ref, ip) -> None:
    seen = {}
    for engine, (cli, client, sock) in _engines(daemon, ref).items():
        client.close()
        created = cli("create", "--name", "ll-bad", "--link-local-ip", ip, "busybox", "true")
        try:
            status, body = api(sock, "POST", "/containers/ll-bad/start")
            state = cli("inspect", "-f", "{{.State.Status}}", "ll-bad").stdout.decode().strip()
            seen[engine] = (created.returncode, status, body, state)
        finally:
            cli("rm", "-f", "ll-bad")
    assert seen["tether"] == seen["docker"]


def test_endpoint_driver_opts_refused_by_key(daemon) -> None:
    client = daemon.sdk().api
    try:
        with pytest.raises(docker.errors.APIError) as err:
            client.create_container(
                "busybox", "top", host_config=client.create_host_config(network_mode="bridge"),
                networking_config=client.create_networking_config({
                    "bridge": client.create_endpoint_config(
                        driver_opt={"com.docker-py.setting": "on"})}))
        assert err.value.status_code == 400
        assert err.value.explanation == ("tether does not support "
                                         "EndpointSettings.DriverOpts.com.docker-py.setting yet")
    finally:
        client.close()
