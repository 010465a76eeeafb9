"""Kubernetes YAML as tether objects: the plan behind `tether kube play` and `kube down`, no I/O.

`plan(documents)` checks every document against the fields tether can apply (anything else is a
PlayError naming the field, as `kind name: unsupported field spec.x.y`) and turns it into what
the Engine API creates: named volumes for PersistentVolumeClaims, one container per pod
container (`<pod>-<container>`; a Deployment's replicas are pods `<name>-1`, `<name>-2`, ...;
a pod's further containers join its first one's network and IPC namespaces, and its PID
namespace with shareProcessNamespace: localhost is shared, as in a Kubernetes pod), on one user
network where each Service's name is a DNS alias of the pods it selects.
ConfigMaps and Secrets of the same file feed `env`/`envFrom`. The link-style variables of a
Service need the address of the pod behind it, known only once that pod runs:
`service_variables` makes them for the CLI, with Kubernetes' rule (rules/kube_env.py).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.rules.kube_env import service_env

LABEL_POD = "io.tether.kube.pod"
LABEL_MADE = "io.tether.kube"
DEFAULT_NETWORK = "tether-kube"

# the fields tether applies, as a tree: a dict is an object's fields, a 1-tuple a list of such
# objects, a _Leaf a value of a given type


class _Leaf:
    def __init__(self, description: str, accepts: Any) -> None:
        self.description, self.accepts = description, accepts


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


STR = _Leaf("a string", lambda v: isinstance(v, str))
INT = _Leaf("an integer", _is_int)
BOOL = _Leaf("true or false", lambda v: isinstance(v, bool))
STRS = _Leaf("a list of strings",
             lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v))
MAP = _Leaf("a map of strings", lambda v: isinstance(v, dict)
            and all(isinstance(k, str) and isinstance(i, str) for k, i in v.items()))
QUANTITY = _Leaf("a quantity", lambda v: isinstance(v, str) or _is_int(v))

_KEY_REF = {"name": STR, "key": STR, "optional": BOOL}
_SOURCE_REF = {"name": STR, "optional": BOOL}
_ITEMS = ({"key": STR, "path": STR},)
_PROBE = {"exec": {"command": STRS}, "periodSeconds": INT, "timeoutSeconds": INT,
          "failureThreshold": INT, "initialDelaySeconds": INT}
_CONTAINER = {
    "name": STR, "image": STR, "command": STRS, "args": STRS, "workingDir": STR,
    "tty": BOOL, "stdin": BOOL, "imagePullPolicy": STR,
    "env": ({"name": STR, "value": STR,
             "valueFrom": {"configMapKeyRef": _KEY_REF, "secretKeyRef": _KEY_REF}},),
    "envFrom": ({"prefix": STR, "configMapRef": _SOURCE_REF, "secretRef": _SOURCE_REF},),
    "ports": ({"containerPort": INT, "protocol": STR, "hostPort": INT, "hostIP": STR,
               "name": STR},),
    "resources": {"limits": {"cpu": QUANTITY, "memory": QUANTITY}},
    "readinessProbe": _PROBE, "livenessProbe": _PROBE,
    "securityContext": {"runAsUser": INT, "runAsGroup": INT, "privileged": BOOL,
                        "readOnlyRootFilesystem": BOOL,
                        "capabilities": {"add": STRS, "drop": STRS}},
    "volumeMounts": ({"name": STR, "mountPath": STR, "readOnly": BOOL},),
}
_POD_SPEC = {
    "containers": (_CONTAINER,), "restartPolicy": STR, "hostname": STR,
    "shareProcessNamespace": BOOL,
    "terminationGracePeriodSeconds": INT, "enableServiceLinks": BOOL,
    "hostAliases": ({"ip": STR, "hostnames": STRS},),
    "volumes": ({"name": STR,
                 "persistentVolumeClaim": {"claimName": STR, "readOnly": BOOL},
                 "emptyDir": {"medium": STR, "sizeLimit": QUANTITY},
                 "hostPath": {"path": STR, "type": STR},
                 "configMap": {"name": STR, "optional": BOOL, "items": _ITEMS},
                 "secret": {"secretName": STR, "optional": BOOL, "items": _ITEMS}},),
}
_META = {"name": STR, "labels": MAP, "annotations": MAP}
_HEAD = {"apiVersion": STR, "kind": STR, "metadata": _META}
_KINDS: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "Pod"): {**_HEAD, "spec": _POD_SPEC},
    ("apps/v1", "Deployment"): {
        **_HEAD,
        "spec": {"replicas": INT, "selector": {"matchLabels": MAP},
                 "template": {"metadata": {"labels": MAP, "annotations": MAP},
                              "spec": _POD_SPEC}}},
    ("v1", "Service"): {
        **_HEAD,
        "spec": {"selector": MAP, "type": STR,
                 "ports": ({"name": STR, "port": INT, "targetPort": QUANTITY, "protocol": STR,
                            "nodePort": INT},)}},
    ("v1", "PersistentVolumeClaim"): {
        **_HEAD, "spec": {"accessModes": STRS, "resources": {"requests": {"storage": QUANTITY}}}},
    ("v1", "ConfigMap"): {**_HEAD, "data": MAP},
    ("v1", "Secret"): {**_HEAD, "data": MAP, "stringData": MAP, "type": STR},
}
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}


class PlayError(ValueError):
    """YAML that tether cannot run as written."""


@dataclass
class ContainerPlan:
    name: str
    body: dict[str, Any]


@dataclass
class PodPlan:
    name: str
    labels: dict[str, str]
    containers: list[ContainerPlan]
    service_links: bool = True


@dataclass
class FilesVolume:
    """A volume holding a ConfigMap's or Secret's keys as files: made and filled (through a
    container of `image` that never starts) before the pod that mounts it."""

    name: str
    image: str
    files: dict[str, bytes]


@dataclass
class Plan:
    network: str
    volumes: list[str] = field(default_factory=list)
    files_volumes: list[FilesVolume] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    pods: list[PodPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def volume_names(self) -> list[str]:
        return self.volumes + [v.name for v in self.files_volumes]

    def container_names(self) -> list[str]:
        return [c.name for pod in self.pods for c in pod.containers]


def plan(documents: list[Any], network: str = DEFAULT_NETWORK) -> Plan:
    """The tether objects for `documents` (YAML documents as loaded; None ones skipped)."""
    docs = [d for d in documents if d is not None]
    for index, doc in enumerate(docs):
        _check_document(doc, index)
    try:
        return _plan(docs, network)
    except KeyError as exc:  # a field the checks let through as optional, needed here
        raise PlayError(f"required field {exc.args[0]!r} is missing") from None


def _plan(docs: list[dict[str, Any]], network: str) -> Plan:
    result = Plan(network)
    config = {(d["kind"], d["metadata"]["name"]): d for d in docs
              if d["kind"] in ("ConfigMap", "Secret")}
    result.services = [d for d in docs if d["kind"] == "Service"]
    for service in result.services:
        _check_service(service)
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "PersistentVolumeClaim":
            result.volumes.append(name)
            requests = ((doc.get("spec") or {}).get("resources") or {}).get("requests") or {}
            storage = requests.get("storage")
            if storage:
                result.notes.append(f"PersistentVolumeClaim {name}: a local volume, its storage "
                                    f"request {storage} is not enforced")
        elif kind == "Pod":
            result.pods.append(_pod(name, doc["metadata"], doc.get("spec") or {}, result, config,
                                    f"Pod {name}"))
        elif kind == "Deployment":
            spec = doc.get("spec") or {}
            template = spec.get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            wanted = (spec.get("selector") or {}).get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in wanted.items()):
                raise PlayError(f"Deployment {name}: spec.selector.matchLabels does not match "
                                "spec.template.metadata.labels")
            for replica in range(1, spec.get("replicas", 1) + 1):
                result.pods.append(_pod(f"{name}-{replica}", template.get("metadata") or {},
                                        template.get("spec") or {}, result, config,
                                        f"Deployment {name}"))
    return result


def service_variables(services: list[Mapping[str, Any]],
                      addresses: Mapping[str, str]) -> dict[str, str]:
    """The variables Kubernetes gives a pod for `services`, each Service's address being
    `addresses[service name]` (the pod behind it on tether); Services without one give none."""
    placed = [{**s, "spec": {**s["spec"], "clusterIP": addresses[s["metadata"]["name"]]}}
              for s in services if s["metadata"]["name"] in addresses]
    return service_env(placed)


def selects(service: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- checks ------------------------------------------------------------------------------------

def _check_document(doc: Any, index: int) -> None:
    if not isinstance(doc, dict):
        raise PlayError(f"document {index + 1}: not a Kubernetes object")
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in _KINDS:
        raise PlayError(f"document {index + 1}: unsupported kind {doc.get('kind')!r} "
                        f"(apiVersion {doc.get('apiVersion')!r})")
    if not isinstance(doc.get("metadata"), dict):
        raise PlayError(f"{doc['kind']} (document {index + 1}): metadata must be an object")
    name = doc["metadata"].get("name")
    if not isinstance(name, str) or not name:
        raise PlayError(f"{doc['kind']} (document {index + 1}): metadata.name is required")
    _check_fields(doc, _KINDS[key], "", f"{doc['kind']} {name}")


def _check_fields(value: Any, allowed: Any, path: str, where: str) -> None:
    if value is None:
        return
    if isinstance(allowed, _Leaf):
        if not allowed.accepts(value):
            raise PlayError(f"{where}: {path} must be {allowed.description}")
        return
    if isinstance(allowed, tuple):
        if not isinstance(value, list):
            raise PlayError(f"{where}: {path} must be a list")
        for i, item in enumerate(value):
            _check_fields(item, allowed[0], f"{path}[{i}]", where)
        return
    if not isinstance(value, dict):
        raise PlayError(f"{where}: {path} must be an object")
    for key, item in value.items():
        sub = f"{path}.{key}" if path else key
        if key not in allowed:
            raise PlayError(f"{where}: unsupported field {sub}")
        _check_fields(item, allowed[key], sub, where)


def _check_service(service: Mapping[str, Any]) -> None:
    name = service["metadata"]["name"]
    spec = service.get("spec") or {}
    if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort"):
        raise PlayError(f"Service {name}: unsupported spec.type {spec['type']!r}")
    if not spec.get("selector"):
        raise PlayError(f"Service {name}: spec.selector is required (tether has no Endpoints)")
    for i, port in enumerate(spec.get("ports") or []):
        if port.get("targetPort", port.get("port")) != port.get("port"):
            raise PlayError(f"Service {name}: spec.ports[{i}].targetPort must equal port (tether "
                            "gives the pod's own address and port)")


# --- pods --------------------------------------------------------------------------------------

def _pod(name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], result: Plan,
         config: Mapping[tuple[str, str], Any], where: str) -> PodPlan:
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    aliases = [s["metadata"]["name"] for s in result.services if selects(s, labels)]
    node_ports = {f"{p['port']}/{(p.get('protocol') or 'TCP').lower()}": p.get("nodePort")
                  for s in result.services if selects(s, labels)
                  and s["spec"].get("type") == "NodePort" for p in s["spec"].get("ports") or []}
    containers = spec.get("containers") or []
    if not containers:
        raise PlayError(f"{where}: spec.containers must name a container")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    plans: list[ContainerPlan] = []
    for i, c in enumerate(containers):
        body = _container_body(c, spec, volumes, config, f"{where}: spec.containers[{i}]")
        for mount in body["HostConfig"]["Mounts"]:
            files = mount.pop("Files", None)
            if files is not None:
                mount["Source"] = f"{name}-{mount['Source']}"
                if mount["Source"] not in [v.name for v in result.files_volumes]:
                    result.files_volumes.append(FilesVolume(mount["Source"], c["image"], files))
        body["Labels"] = {**annotations, **labels, LABEL_POD: name, LABEL_MADE: "1"}
        plans.append(ContainerPlan(f"{name}-{c.get('name') or i}", body))
    first = plans[0].body
    host = first["HostConfig"]
    host["NetworkMode"] = result.network
    first["NetworkingConfig"] = {"EndpointsConfig": {result.network: {"Aliases": aliases}}}
    for key, node_port in node_ports.items():
        host.setdefault("PortBindings", {}).setdefault(key, []).append(
            {"HostIp": "", "HostPort": str(node_port or "")})
        first.setdefault("ExposedPorts", {})[key] = {}
    share_pid = bool(spec.get("shareProcessNamespace"))
    if share_pid:
        result.notes.append(f"{where}: shareProcessNamespace: the pod's containers share the "
                            f"PID namespace of {plans[0].name}, whose process is its PID 1 (on "
                            "Kubernetes the pod's pause process is)")
    for member in plans[1:]:
        _join_first(member.body, first, plans[0].name, share_pid)
    return PodPlan(name, labels, plans, spec.get("enableServiceLinks", True))


def _join_first(body: dict[str, Any], first: dict[str, Any], first_name: str,
                share_pid: bool) -> None:
    """A pod's further container in the first one's network and IPC namespaces, and its PID
    namespace with `share_pid` (`container:` modes), as a pod's containers share them in
    Kubernetes (PID with shareProcessNamespace): its ports are published on the
    first one (the namespace's owner, whose address the pod has), and the pod's hostname and
    hostAliases are the first one's (dockerd refuses them beside a `container:` network)."""
    host = body["HostConfig"]
    body.pop("Hostname", None)
    if body.get("ExposedPorts"):
        first.setdefault("ExposedPorts", {}).update(body.pop("ExposedPorts"))
    for key, bindings in (host.pop("PortBindings", None) or {}).items():
        first["HostConfig"].setdefault("PortBindings", {}).setdefault(key, []).extend(bindings)
    host.pop("ExtraHosts", None)
    first["HostConfig"]["IpcMode"] = "shareable"
    host["NetworkMode"] = host["IpcMode"] = f"container:{first_name}"
    if share_pid:
        host["PidMode"] = f"container:{first_name}"


def _container_body(c: Mapping[str, Any], spec: Mapping[str, Any],
                    volumes: Mapping[str, Any], config: Mapping[tuple[str, str], Any],
                    where: str) -> dict[str, Any]:
    if not c.get("image"):
        raise PlayError(f"{where}.image is required")
    body: dict[str, Any] = {"Image": c["image"], "Env": _env(c, config, where)}
    policy = spec.get("restartPolicy") or "Always"
    if policy not in _RESTART:
        raise PlayError(f"{where.partition(':')[0]}: spec.restartPolicy must be Always, OnFailure "
                        f"or Never, not {policy!r}")
    host: dict[str, Any] = {"RestartPolicy": {"Name": _RESTART[policy]}}
    if c.get("command") is not None:
        body["Entrypoint"] = list(c["command"])
    if c.get("args") is not None:
        body["Cmd"] = list(c["args"])
    for key, field_name in (("workingDir", "WorkingDir"), ("tty", "Tty"), ("stdin", "OpenStdin")):
        if c.get(key) is not None:
            body[field_name] = c[key]
    if spec.get("hostname"):
        body["Hostname"] = spec["hostname"]
    for port in c.get("ports") or []:
        key = f"{port['containerPort']}/{(port.get('protocol') or 'TCP').lower()}"
        body.setdefault("ExposedPorts", {})[key] = {}
        if port.get("hostPort"):
            host.setdefault("PortBindings", {}).setdefault(key, []).append(
                {"HostIp": port.get("hostIP", ""), "HostPort": str(port["hostPort"])})
    limits = (c.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        host["Memory"] = _quantity(str(limits["memory"]), f"{where}.resources.limits.memory")
    if "cpu" in limits:
        host["NanoCpus"] = _cpus(str(limits["cpu"]), f"{where}.resources.limits.cpu")
    probe = c.get("readinessProbe") or c.get("livenessProbe")
    if c.get("readinessProbe") and c.get("livenessProbe"):
        raise PlayError(f"{where}: one of readinessProbe and livenessProbe (tether has one "
                        "health check)")
    if probe:
        body["Healthcheck"] = _healthcheck(probe)
    security = c.get("securityContext") or {}
    if "runAsUser" in security:
        body["User"] = str(security["runAsUser"]) + (
            f":{security['runAsGroup']}" if "runAsGroup" in security else "")
    elif "runAsGroup" in security:
        raise PlayError(f"{where}.securityContext.runAsGroup needs runAsUser on tether")
    caps = security.get("capabilities") or {}
    if spec.get("terminationGracePeriodSeconds") is not None:
        body["StopTimeout"] = int(spec["terminationGracePeriodSeconds"])
    # only what the YAML asks for is sent: a field left at its zero value stays unsent
    settings = {"Privileged": bool(security.get("privileged")),
                "ReadonlyRootfs": bool(security.get("readOnlyRootFilesystem")),
                "CapAdd": caps.get("add") or [], "CapDrop": caps.get("drop") or [],
                "ExtraHosts": [f"{n}:{a['ip']}" for a in spec.get("hostAliases") or []
                               for n in a.get("hostnames") or []]}
    host.update({k: v for k, v in settings.items() if v})
    host["Mounts"] = [_mount(m, volumes, config, f"{where}.volumeMounts[{i}]")
                      for i, m in enumerate(c.get("volumeMounts") or [])]
    body["HostConfig"] = host
    return body


def _env(c: Mapping[str, Any], config: Mapping[tuple[str, str], Any], where: str) -> list[str]:
    env = []
    for i, source in enumerate(c.get("envFrom") or []):
        ref_key = "configMapRef" if "configMapRef" in source else "secretRef"
        ref = source.get(ref_key) or {}
        data = _config_data(config, ref_key, ref, f"{where}.envFrom[{i}].{ref_key}")
        env += [f"{source.get('prefix', '')}{k}={v}" for k, v in (data or {}).items()]
    for i, entry in enumerate(c.get("env") or []):
        if "valueFrom" not in entry:
            env.append(f"{entry['name']}={entry.get('value', '')}")
            continue
        ref_key, ref = next(iter(entry["valueFrom"].items()))
        data = _config_data(config, ref_key, ref, f"{where}.env[{i}].valueFrom.{ref_key}")
        if data is not None and ref.get("key") in data:
            env.append(f"{entry['name']}={data[ref['key']]}")
        elif not ref.get("optional"):
            raise PlayError(f"{where}.env[{i}]: key {ref.get('key')!r} not in {ref.get('name')!r}")
    return env


def _config_data(config: Mapping[tuple[str, str], Any], ref_key: str, ref: Mapping[str, Any],
                 where: str) -> dict[str, str] | None:
    kind = "ConfigMap" if ref_key.startswith("configMap") else "Secret"
    doc = config.get((kind, ref.get("name")))
    if doc is None:
        if ref.get("optional"):
            return None
        raise PlayError(f"{where}: {kind} {ref.get('name')!r} is not in the file")
    if kind == "ConfigMap":
        return {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
    data = {}
    for key, value in (doc.get("data") or {}).items():
        try:
            data[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise PlayError(f"Secret {ref.get('name')}: data.{key} is not base64 text") from exc
    data.update({str(k): str(v) for k, v in (doc.get("stringData") or {}).items()})
    return data


def _mount(m: Mapping[str, Any], volumes: Mapping[str, Any],
           config: Mapping[tuple[str, str], Any], where: str) -> dict[str, Any]:
    volume = volumes.get(m["name"])
    if volume is None:
        raise PlayError(f"{where}: no volume named {m['name']!r} in spec.volumes")
    mount: dict[str, Any] = {"Target": m["mountPath"], "ReadOnly": bool(m.get("readOnly"))}
    if "configMap" in volume or "secret" in volume:
        # read-only, as Kubernetes mounts them; "Files" is taken out by _pod
        mount.update(Type="volume", Source=volume["name"], ReadOnly=True,
                     Files=_files(volume, config, f"{where}: volume {volume['name']!r}"))
    elif "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]
        mount.update(Type="volume", Source=claim["claimName"])
        mount["ReadOnly"] = mount["ReadOnly"] or bool(claim.get("readOnly"))
    elif "hostPath" in volume:
        if (volume["hostPath"].get("type") or "") not in ("", "Directory", "File"):
            raise PlayError(f"{where}: hostPath type {volume['hostPath']['type']!r} is not "
                            "supported (the path must exist)")
        mount.update(Type="bind", Source=volume["hostPath"]["path"])
    elif "emptyDir" in volume and (volume["emptyDir"] or {}).get("medium") == "Memory":
        mount["Type"] = "tmpfs"
        size = (volume["emptyDir"] or {}).get("sizeLimit")
        if size:
            mount["TmpfsOptions"] = {"SizeBytes": _quantity(str(size), f"{where}: sizeLimit")}
    elif "emptyDir" in volume:
        if (volume["emptyDir"] or {}).get("medium") or (volume["emptyDir"] or {}).get("sizeLimit"):
            raise PlayError(f"{where}: emptyDir sizeLimit needs medium Memory on tether")
        mount["Type"] = "volume"  # anonymous: removed with the container
    else:
        raise PlayError(f"{where}: volume {m['name']!r} has no source tether supports")
    return mount


def _files(volume: Mapping[str, Any], config: Mapping[tuple[str, str], Any],
           where: str) -> dict[str, bytes]:
    """A ConfigMap or Secret volume's files: a file per key, or the `items` chosen."""
    source = volume.get("configMap") or volume.get("secret") or {}
    ref_key = "configMapRef" if "configMap" in volume else "secretRef"
    ref = {"name": source.get("name", source.get("secretName")), "optional": source.get("optional")}
    data = _config_data(config, ref_key, ref, where) or {}
    items = source.get("items")
    if items is None:
        return {key: value.encode() for key, value in data.items()}
    files = {}
    for item in items:
        if item.get("key") not in data:
            raise PlayError(f"{where}: key {item.get('key')!r} not in {ref['name']!r}")
        path = str(item.get("path") or "")
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise PlayError(f"{where}: item path {path!r} must be relative, without '..'")
        files[path] = data[item["key"]].encode()
    return files


def _healthcheck(probe: Mapping[str, Any]) -> dict[str, Any]:
    command = list((probe.get("exec") or {}).get("command") or [])
    if command[:2] == ["/bin/sh", "-c"] and len(command) == 3:
        test = ["CMD-SHELL", command[2]]
    else:
        test = ["CMD", *command]
    check: dict[str, Any] = {"Test": test,
                             "Interval": int(probe.get("periodSeconds", 10)) * 1_000_000_000,
                             "Timeout": int(probe.get("timeoutSeconds", 1)) * 1_000_000_000,
                             "Retries": int(probe.get("failureThreshold", 3))}
    if probe.get("initialDelaySeconds"):
        check["StartPeriod"] = int(probe["initialDelaySeconds"]) * 1_000_000_000
    return check


_SUFFIXES = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
             "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _quantity(text: str, where: str) -> int:
    """A Kubernetes byte quantity (`64Mi`, `1G`, `67108864`) in bytes."""
    match = re.fullmatch(r"([0-9]+)([kMGT]i?|Ki)?", text)
    if not match or (match.group(2) or "") not in _SUFFIXES:
        raise PlayError(f"{where}: quantity {text!r} is not supported")
    return int(match.group(1)) * _SUFFIXES[match.group(2) or ""]


def _cpus(text: str, where: str) -> int:
    """A CPU quantity (`500m`, `2`, `0.5`) in nano CPUs."""
    match = re.fullmatch(r"([0-9]+)m", text)
    if match:
        return int(match.group(1)) * 1_000_000
    if re.fullmatch(r"[0-9]+(\.[0-9]{1,9})?", text):
        whole, _, frac = text.partition(".")
        return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") or 0)
    raise PlayError(f"{where}: quantity {text!r} is not supported")
