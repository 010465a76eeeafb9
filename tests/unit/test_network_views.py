"""The list's NetworkSettings.Networks (NetworkManager.networks) is inspect's, computed alone."""
from __future__ import annotations

from pathlib import Path

import pytest

from tether.network.manager import NetworkManager

RUNNING = {"NetworkID": "n1", "EndpointID": "e1", "Gateway": "172.17.0.1",
           "IPAddress": "172.17.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02",
           "SandboxID": "s1", "Ports": {"80/tcp": None}}
USER = ("app", {"Name": "app", "Aliases": ["web"], "IPAMConfig": None, "Links": None,
                "MacAddress": "02:42:ac:12:00:09",
                "State": {"NetworkID": "n2", "EndpointID": "e2", "IPAddress": "172.18.0.3",
                          "IPPrefixLen": 16, "SandboxID": "s1"}})
STOPPED_USER = ("zeta", {"Name": "zeta", "MacAddress": "02:42:ac:13:00:05"})

CASES = [
    ("default", {}, []),
    ("default", RUNNING, []),
    ("bridge", {"NetworkID": "n1", "SandboxID": "s1"}, []),
    ("host", {}, []),
    ("none", {}, []),
    ("default", {**RUNNING, "Detached": True}, [USER]),
    ("app", {"Attached": True, **RUNNING, "EndpointConfig": {"Aliases": ["b"]}}, [USER]),
    ("app", {}, [USER, STOPPED_USER]),
    ("container:abc", {}, []),
]


@pytest.mark.parametrize("mode,state,user", CASES)
def test_networks_are_inspects(tmp_path: Path, mode: str, state: dict, user: list) -> None:
    settings = NetworkManager(tmp_path).settings(mode, state, "/run/netns/x", user)
    assert NetworkManager.networks(mode, state, user) == settings["Networks"]
    assert list(settings["Networks"]) == sorted(settings["Networks"])


def test_bridge_endpoint_fills_the_top_level_fields(tmp_path: Path) -> None:
    settings = NetworkManager(tmp_path).settings("default", RUNNING, "/run/netns/x")
    assert settings["IPAddress"] == "172.17.0.2" and settings["SandboxKey"] == "/run/netns/x"
    assert settings["Networks"]["bridge"]["MacAddress"] == "02:42:ac:11:00:02"
    assert settings["Ports"] == {"80/tcp": None}
    detached = NetworkManager(tmp_path).settings("default", {**RUNNING, "Detached": True},
                                                 "/run/netns/x", [USER])
    assert detached["IPAddress"] == "" and "bridge" not in detached["Networks"]
    assert detached["Networks"]["app"]["MacAddress"] == "02:42:ac:12:00:09"
