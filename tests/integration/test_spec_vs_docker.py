"""The typed spec against Docker 20.10: inspect's HostConfig and Config of equivalent
containers (every field Docker shows, Docker's defaults), and the create-time refusal of bad
port bindings (same status and text, no container left), on both engines."""
from __future__ import annotations

import json
from typing import Any

import pytest

from harness import UnixHTTPConnection
from reference import reference_fixture
from tether.runtime.oci import MASKED_PATHS

pytestmark = pytest.mark.integration

# tether masks Docker 28's paths (runtime/oci.py), a difference kept on purpose
DOCKER28_MASKED = {"/proc/interrupts", "/sys/devices/virtual/powercap"}


reference = reference_fixture("spec")


def _api(host: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = UnixHTTPConnection(host.removeprefix("unix://"), 60)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, payload,
                     {"Content-Type": "application/json"} if payload else {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def _shown(host: str, name: str) -> dict[str, Any]:
    status, body = _api(host, "GET", f"/containers/{name}/json")
    assert status == 200, body
    host_config, config = body["HostConfig"], body["Config"]
    config["Hostname"] = "<id>"
    if host_config.get("MaskedPaths"):
        host_config["MaskedPaths"] = [p for p in host_config["MaskedPaths"]
                                      if p not in DOCKER28_MASKED]
    return {"HostConfig": host_config, "Config": config}


CLI_CASES = {
    "bare": ["busybox"],  # nothing but the image: every field at Docker's default
    "plain": ["busybox", "true"],
    "flags": ["-t", "-i", "-p", "127.0.0.1:18081:80/udp", "--dns", "192.0.2.53",
              "--dns-search", "example.org", "--add-host", "h:192.0.2.7", "--cap-add",
              "NET_ADMIN", "--cap-drop", "CHOWN", "-e", "A=1", "-l", "x=y", "--restart",
              "on-failure:3", "-v", "/tmp:/h:ro", "--read-only", "--tmpfs", "/run:size=1m",
              "-w", "/wd", "-u", "nobody", "--domainname", "example.org", "--expose", "9090",
              "--security-opt", "no-new-privileges", "--log-opt", "max-file=2",
              "--stop-signal", "SIGUSR1", "busybox", "sh", "-c", "true"],
    "privileged": ["--privileged", "--network", "host", "busybox", "true"],
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_inspect_spec_as_docker(daemon, reference, case) -> None:
    name = f"spec-{case}"
    shown = {}
    for engine, (docker, host) in {"docker": (reference.docker, reference.host),
                                   "tether": (daemon.docker, daemon.host)}.items():
        r = docker("create", "--name", name, *CLI_CASES[case])
        assert r.returncode == 0, (engine, r.stderr)
        try:
            shown[engine] = _shown(host, name)
        finally:
            docker("rm", "-f", name)
    assert shown["tether"] == shown["docker"]


def test_tethers_masked_paths_are_dockers_and_28s() -> None:
    assert DOCKER28_MASKED <= set(MASKED_PATHS)


BAD_BINDINGS = [
    {"80/tcp": [{"HostPort": "abc"}]},
    {"abc/tcp": [{"HostPort": "80"}]},
    {"80/tcp": [{"HostPort": "70000"}]},
    {"80/tcp": [{"HostPort": "90-80"}]},
    {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "0x50"}]},
    {"80/tcp": [{"HostPort": "-1"}]},
    {"80/tcp": [{"HostPort": "8080-"}]},
    {"80-81/tcp": [{"HostPort": "90"}]},
    {"80/tcp": [{"HostPort": "8080"}, {"HostPort": "80:80"}]},  # the second one is named
]


@pytest.mark.parametrize("bindings", BAD_BINDINGS, ids=[json.dumps(b) for b in BAD_BINDINGS])
def test_bad_port_bindings_refused_at_create_as_docker(daemon, reference, bindings) -> None:
    body = {"Image": "busybox", "Cmd": ["true"], "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"PortBindings": bindings}}
    answers = {}
    for engine, host in (("docker", reference.host), ("tether", daemon.host)):
        before = _api(host, "GET", "/containers/json?all=1")[1]
        answers[engine] = _api(host, "POST", "/containers/create?name=spec-bad", body)
        assert _api(host, "GET", "/containers/json?all=1")[1] == before, engine
    assert answers["tether"] == answers["docker"]
    assert answers["tether"][0] == 400

