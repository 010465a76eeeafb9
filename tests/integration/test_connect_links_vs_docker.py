"""`POST /networks/{id}/connect` with Links on a user network, through docker-py, against tetherd
and Docker 20.10, as docker-py's TestNetworks.test_connect_with_links does: the linked
container need not exist yet (the link is a name the embedded resolver reads at query time),
inspect shows the links as `name:alias`, and the alias resolves once the container is there.
"""
from __future__ import annotations


import docker
import pytest

from reference import reference_fixture

pytestmark = pytest.mark.integration


ref = reference_fixture("connect-links")


def _exec(client: docker.DockerClient, container: str, argv: list[str]) -> tuple[int, str]:
    run = client.api.exec_create(container, argv)
    out = client.api.exec_start(run["Id"]).decode()
    return client.api.exec_inspect(run["Id"])["ExitCode"], out


def _scenario(host: str) -> dict[str, object]:
    client = docker.DockerClient(base_url=host)
    made: list[str] = []
    network = client.networks.create("links-net")
    try:
        def start(**kwargs: object) -> str:
            made.append(client.api.create_container(
                "busybox", ["sleep", "300"],
                host_config=client.api.create_host_config(network_mode="links-net"),
                **kwargs)["Id"])
            client.api.start(made[-1])
            return made[-1]

        parent = start()
        client.api.disconnect_container_from_network(parent, "links-net")
        # as sent, not as docker-py formats them: a bare name and a repeat
        response = client.api._post_json(
            client.api._url("/networks/{0}/connect", "links-net"),
            data={"Container": parent,
                  "EndpointConfig": {"Links": ["later:bar", "later:bar", "other"]}})
        client.api._raise_for_status(response)
        seen: dict[str, object] = {"links": client.api.inspect_container(parent)[
            "NetworkSettings"]["Networks"]["links-net"]["Links"]}
        seen["before"] = _exec(client, parent, ["nslookup", "bar"])[0]
        later = start(name="later")
        code, out = _exec(client, parent, ["nslookup", "bar"])
        address = client.api.inspect_container(later)["NetworkSettings"]["Networks"][
            "links-net"]["IPAddress"]
        seen["after"] = (code, address in out)
        return seen
    finally:
        for container in made:
            client.api.remove_container(container, force=True)
        network.remove()
        client.close()


def test_connect_links_as_docker(daemon, ref) -> None:
    ours, theirs = _scenario(daemon.host), _scenario(ref.host)
    assert ours == theirs
    assert ours["after"] == (0, True)
