"""The environment variables Kubernetes gives a pod for the Services of its namespace.

The kubelet (pkg/kubelet/envvars, documented under "Discovering services: environment variables")
turns every Service that has a cluster IP into `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT`,
`<NAME>_SERVICE_PORT_<PORTNAME>` and the Docker-link-compatible `<NAME>_PORT`,
`<NAME>_PORT_<port>_<PROTO>` with its `_PROTO`, `_PORT` and `_ADDR`. This is that rule as a pure
function, so that `kube generate` can say which of a linked container's variables Kubernetes will
make by itself and which it must write into the pod, `kube play` can inject them as a cluster
would, and a test can compare them name by name with what tether's `--link` gives.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def env_name(service_name: str) -> str:
    """A Service's variable prefix: its name upper-cased, dashes turned into underscores."""
    return service_name.upper().replace("-", "_")


def service_env(services: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The variables of `services` (Kubernetes Service objects, with `spec.clusterIP` filled in
    as the cluster assigns it), in the kubelet's order. Headless Services ("None") and Services
    without an address give none, as on a cluster."""
    env: dict[str, str] = {}
    for service in services:
        spec = service.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        ports = spec.get("ports") or []
        if ip in ("", "None") or not ports:
            continue
        prefix = env_name(service["metadata"]["name"])
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{env_name(port['name'])}"] = str(port["port"])
        env.update(_link_variables(prefix, ip, ports))
    return env


def _link_variables(prefix: str, ip: str, ports: list[Mapping[str, Any]]) -> dict[str, str]:
    """The Docker-link-shaped part: `<NAME>_PORT` is the first port's URL, then a block per port."""
    env: dict[str, str] = {}
    host_port = f"[{ip}]" if ":" in ip else ip
    for index, port in enumerate(ports):
        proto = (port.get("protocol") or "TCP").lower()
        url = f"{proto}://{host_port}:{port['port']}"
        if index == 0:
            env[f"{prefix}_PORT"] = url
        var = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
        env[var] = url
        env[f"{var}_PROTO"] = proto
        env[f"{var}_PORT"] = str(port["port"])
        env[f"{var}_ADDR"] = ip
    return env
