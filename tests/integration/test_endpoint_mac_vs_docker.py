"""`POST /networks/{id}/connect` with an EndpointSettings.MacAddress, through docker-py (whose
`connect_container_to_network(mac_address=...)` sends it), as docker-py's
TestNetworks.test_connect_with_mac_address does.

Before the start both engines show the MAC asked for in the container's endpoint (compared with
Docker 20.10). At the start Docker 20.10 drops it (it reads Config.MacAddress only); dockerd 25+
(API 1.44, the version tether speaks) gives the interface that MAC, and so does tether: checked
in the running container's own view of its interface.
"""
from __future__ import annotations


import docker
import pytest

from reference import reference_fixture

pytestmark = pytest.mark.integration

MAC = "02:42:ac:11:00:42"


ref = reference_fixture("endpoint-mac")


def _connect_created(host: str) -> tuple[docker.DockerClient, str, str]:
    """A created container connected to a new network with MAC; (client, container, network)."""
    client = docker.DockerClient(base_url=host)
    network = client.networks.create("mac-net")
    container = client.api.create_container("busybox", ["sleep", "300"])["Id"]
    client.api.connect_container_to_network(container, "mac-net", mac_address=MAC)
    return client, container, network.id


def _endpoint(client: docker.DockerClient, container: str) -> dict:
    return client.api.inspect_container(container)["NetworkSettings"]["Networks"]["mac-net"]


def _clean(client: docker.DockerClient, container: str, network: str) -> None:
    client.api.remove_container(container, force=True)
    client.api.remove_network(network)
    client.close()


def test_mac_shown_before_start_as_docker(daemon, ref) -> None:
    seen = {}
    for engine, host in (("tether", daemon.host), ("docker", ref.host)):
        client, container, network = _connect_created(host)
        try:
            seen[engine] = _endpoint(client, container)["MacAddress"]
        finally:
            _clean(client, container, network)
    assert seen == {"tether": MAC, "docker": MAC}


def test_mac_applied_at_start(daemon) -> None:
    client, container, network = _connect_created(daemon.host)
    try:
        client.api.start(container)
        assert _endpoint(client, container)["MacAddress"] == MAC
        # the bridge is eth0 (its MAC from its IP), the network connected later eth1
        run = client.api.exec_create(container, ["cat", "/sys/class/net/eth1/address"])
        assert client.api.exec_start(run["Id"]).decode().strip() == MAC
        net = client.api.inspect_network(network)
        assert net["Containers"][container]["MacAddress"] == MAC
    finally:
        _clean(client, container, network)


def test_invalid_mac_fails_the_start(daemon) -> None:
    client = docker.DockerClient(base_url=daemon.host)
    network = client.networks.create("mac-net")
    container = client.api.create_container("busybox", ["sleep", "300"])["Id"]
    try:
        client.api.connect_container_to_network(container, "mac-net", mac_address="nope")
        with pytest.raises(docker.errors.APIError) as err:
            client.api.start(container)
        assert err.value.status_code == 500
        assert err.value.explanation == "address nope: invalid MAC address"
    finally:
        _clean(client, container, network.id)
