"""Containers as Kubernetes objects: the mapping behind `tether kube generate`, with no I/O.

The input is what the Engine API says about containers (GET /containers/{id}/json, the shape
Docker's inspect has) and about the networks they are on (GET /networks/{id}); the output is a
list of Kubernetes objects (dicts, to be written as YAML) and a list of warnings, one for each
thing the containers do that the objects cannot say. Nothing is dropped without a warning.

Legacy links are the centre of it. A link `--link db:alias` becomes a Service named after the
alias that selects db's pod and carries db's exposed ports, ordered as Docker orders them, so the
kubelet's service variables (rules/kube_env.py) include the same `ALIAS_PORT*` names the link
gave; the link variables the kubelet does not make (`ALIAS_NAME`, `ALIAS_ENV_*`) are written into
the parent's `env` with tether's values. Services come before the pods in the output, because the
kubelet gives a pod the variables of the Services that exist when the pod is made.

Containers joined by `container:` namespace modes are one pod (rules/kube_pods.py says which and
refuses what a pod cannot hold): the namespace owner's container first, then its members, with
the pod-level fields (restart policy, hostname, host namespaces, grace period) of the owner,
each member's differing value reported, ports merged (they are one network namespace's) and
shareProcessNamespace where a PID namespace is shared. Services select the pod.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.rules.container_mode import donor
from tether.rules.kube_env import env_name
from tether.rules.kube_names import NameCollision, NameTable, dns1035
from tether.rules.kube_play import LABEL_POD
from tether.rules.kube_pods import PodError, PodGroup, group

APP_LABEL = "app"
DEFAULT_NETWORKS = ("bridge", "default")
HOSTPATH_COMMENT = ("# hostPath: a bind mount of the tether host; the path must exist on the node "
                    "that runs this pod")
_ANONYMOUS_VOLUME = re.compile(r"[0-9a-f]{64}")
# HostConfig fields this mapping does not carry: a warning each when set
_UNMAPPED_HOST_CONFIG = ("Devices", "Dns", "DnsOptions", "DnsSearch", "VolumesFrom", "Sysctls",
                         "Ulimits", "GroupAdd", "Init", "UTSMode", "UsernsMode", "CgroupParent",
                         "CpuShares", "CpusetCpus", "CpusetMems", "CpuQuota", "CpuPeriod",
                         "BlkioWeight", "MemorySwap", "MemoryReservation", "PidsLimit",
                         "OomKillDisable", "Runtime", "Isolation")

# values of those that mean "nothing asked for" (Docker shows the runtime it chose)
_DEFAULTS = {"Runtime": ("runc",), "Isolation": ("default",)}


class GenerateError(ValueError):
    """Input the mapping refuses as a whole (an ambiguous name)."""


@dataclass
class Generated:
    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Service:
    name: str
    selector: str
    ports: list[dict[str, Any]]
    source: str  # what asked for it, for messages
    node_port: bool = False


def generate(containers: list[Mapping[str, Any]], networks: Mapping[str, Mapping[str, Any]],
             linked: Mapping[str, Mapping[str, Any]] | None = None, kind: str = "pod",
             services: bool = False,
             volumes: Mapping[str, Mapping[str, Any]] | None = None) -> Generated:
    """Kubernetes objects for `containers` (inspect JSON). `networks` maps network names to
    their inspect JSON; `linked` holds the inspect JSON of link targets and `container:` mode
    donors that are not among `containers` (a target's ports and env make the link's Service
    and variables; a donor left out is named in the error). `kind` is "pod"
    or "deployment"; `services` adds a NodePort Service for ports published on a random port;
    `volumes` maps named volumes to their inspect JSON (labels, driver and options)."""
    try:
        return _Generator(containers, networks, linked or {}, kind, services, volumes or {}).run()
    except (NameCollision, PodError) as exc:
        raise GenerateError(str(exc)) from exc


class _Generator:
    def __init__(self, containers: list[Mapping[str, Any]],
                 networks: Mapping[str, Mapping[str, Any]],
                 linked: Mapping[str, Mapping[str, Any]], kind: str, services: bool,
                 volumes: Mapping[str, Mapping[str, Any]]) -> None:
        self.groups = _dependency_order(group(containers, list(linked.values())))
        self.volume_info = volumes
        self.networks = networks
        self.known = {_name(c): c for c in [*linked.values(), *containers]}
        self.generated = {_name(c) for c in containers}
        self.kind = kind
        self.nodeports = services
        self.pods = NameTable("container")
        self.service_names = NameTable("alias")
        self.claims = NameTable("volume")
        self.services: dict[str, _Service] = {}
        self.claim_docs: dict[str, dict[str, Any]] = {}
        self.out = Generated()
        self.pod_of: dict[str, str] = {}
        self.in_pod: dict[str, str] = {}
        self.name_pods()

    def run(self) -> Generated:
        workloads = []
        for pod_group in self.groups:
            self.out.warnings += pod_group.warnings
            workloads.append(self.workload(pod_group))
        self.out.documents = [*self.claim_docs.values(),
                              *(self.service_doc(s) for s in self.services.values()), *workloads]
        return self.out

    def name_pods(self) -> None:
        """A pod's name is its owner's, a container's in it its own (mangled both). A pod
        `kube play` made (its containers share the label io.tether.kube.pod) keeps the name it
        had in the YAML, and its containers theirs (`<pod>-<container>` without `<pod>-`), so
        that a played pod generates as it was written. Two pods of one name are refused."""
        named: dict[str, str] = {}
        for g in self.groups:
            labels = {(c["Config"].get("Labels") or {}).get(LABEL_POD) for c in g.containers}
            played = labels.pop() if len(labels) == 1 else None
            source = f"pod {played}" if played else f"container {_name(g.owner)}"
            pod = dns1035(played) if played else self.pods.name(_name(g.owner))
            if named.setdefault(pod, source) != source:
                raise GenerateError(f"{named[pod]} and {source} would both be pod {pod!r}")
            for c in g.containers:
                self.pod_of[_name(c)] = pod
                if played:
                    self.in_pod[_name(c)] = dns1035(_name(c).removeprefix(f"{played}-"))
                else:
                    self.in_pod[_name(c)] = self.pods.name(_name(c))

    def warn(self, container: Mapping[str, Any], text: str) -> None:
        self.out.warnings.append(f"{_name(container)}: {text}")

    # --- workloads ---------------------------------------------------------------------------

    def workload(self, pod_group: PodGroup) -> dict[str, Any]:
        c = pod_group.owner
        pod = self.pod_of[_name(c)]
        labels = {APP_LABEL: pod}
        annotations = self.annotations(pod_group)
        spec = self.pod_spec(pod_group, pod)
        meta: dict[str, Any] = {"name": pod, "labels": labels}
        if annotations:
            meta["annotations"] = annotations
        if self.kind == "pod":
            return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        if spec.get("restartPolicy", "Always") != "Always":
            self.warn(c, f"restart policy {_restart_name(c)!r}: the pods of a Deployment are "
                      "always restarted")
        spec.pop("restartPolicy", None)
        template_meta = {k: v for k, v in meta.items() if k != "name"}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": pod, "labels": labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": template_meta, "spec": spec}}}

    def annotations(self, pod_group: PodGroup) -> dict[str, str]:
        """The containers' labels, the owner's value where a member's differs (reported)."""
        annotations: dict[str, str] = {}
        for c in pod_group.containers:
            for key, value in sorted((c["Config"].get("Labels") or {}).items()):
                if annotations.setdefault(str(key), str(value)) != str(value):
                    self.warn(c, f"label {key}={value} is not carried: the pod's annotation has "
                              f"{_name(pod_group.owner)}'s value")
        return dict(sorted(annotations.items()))

    def pod_spec(self, pod_group: PodGroup, pod: str) -> dict[str, Any]:
        """The pod: a container per member of the group, the owner's pod-level fields."""
        owner = pod_group.owner
        spec: dict[str, Any] = {"containers": []}
        volumes: list[dict[str, Any]] = []
        ports: list[dict[str, Any]] = []
        for c in pod_group.containers:
            container = self.container(c, pod, len(volumes))
            for port in container.pop("ports", []):
                if port not in ports:  # one network namespace: a port declared once is enough
                    ports.append(port)
                    container.setdefault("ports", []).append(port)
            volumes += [v for v in container.pop("volumes", []) if v not in volumes]
            spec["containers"].append(container)
        if volumes:
            spec["volumes"] = volumes
        if pod_group.share_pid:
            spec["shareProcessNamespace"] = True
        spec["restartPolicy"] = self.restart_policy(owner)
        self.pod_level(owner, spec)
        if owner["HostConfig"].get("NetworkMode") == "host":
            spec["hostNetwork"] = True
        for member in pod_group.containers[1:]:
            self.member_pod_level(member, owner, spec)
        return spec

    def member_pod_level(self, c: Mapping[str, Any], owner: Mapping[str, Any],
                         spec: Mapping[str, Any]) -> None:
        """Report each pod-level field where a member differs from the owner: a pod has one."""
        if _restart_name(c) != _restart_name(owner):
            self.warn(c, f"restart policy {_restart_name(c)!r} is not carried: a pod has one, "
                      f"{_name(owner)}'s ({_restart_name(owner)!r})")
        own: dict[str, Any] = {}
        self.pod_level(c, own, owner=False)
        for key in sorted(set(own) | set(spec)):
            if key in ("terminationGracePeriodSeconds", "hostIPC", "hostPID") \
                    and own.get(key) != spec.get(key):
                theirs = "unset" if own.get(key) is None else repr(own[key])
                self.warn(c, f"pod field {key}: its own value ({theirs}) is not carried, the "
                          f"pod has {_name(owner)}'s")

    def container(self, c: Mapping[str, Any], pod: str, first_volume: int) -> dict[str, Any]:
        """One container of the pod, its `ports` and `volumes` (pod-level, numbered from
        `first_volume`) still in it for pod_spec to merge."""
        config, host = c["Config"], c["HostConfig"]
        container: dict[str, Any] = {"name": self.in_pod[_name(c)], "image": config["Image"]}
        if config.get("Entrypoint"):
            container["command"] = list(config["Entrypoint"])
        if config.get("Cmd"):
            container["args"] = list(config["Cmd"])
        env = self.env(c) + self.link_env(c)
        if env:
            container["env"] = env
        if config.get("WorkingDir"):
            container["workingDir"] = config["WorkingDir"]
        ports = self.container_ports(c, pod)
        if ports:
            container["ports"] = ports
        resources = self.resources(c)
        if resources:
            container["resources"] = resources
        probe = self.probe(c)
        if probe:
            container["readinessProbe"] = probe
        security = self.security_context(c)
        if security:
            container["securityContext"] = security
        if config.get("Tty"):
            container["tty"] = True
        if config.get("OpenStdin"):
            container["stdin"] = True
        mounts, volumes = self.volumes(c, first_volume)
        if mounts:
            container["volumeMounts"] = mounts
            container["volumes"] = volumes
        self.network(c)
        for key in _UNMAPPED_HOST_CONFIG:
            if host.get(key) not in (None, "", 0, [], {}, False, -1, *_DEFAULTS.get(key, ())):
                self.warn(c, f"HostConfig.{key} is not carried to Kubernetes")
        for opt in host.get("SecurityOpt") or []:
            if not opt.startswith("label"):
                self.warn(c, f"security option {opt!r} is not carried to Kubernetes")
        return container

    def env(self, c: Mapping[str, Any]) -> list[dict[str, str]]:
        env = []
        for entry in c["Config"].get("Env") or []:
            name, sep, value = entry.partition("=")
            if not sep:
                self.warn(c, f"environment entry {name!r} has no value and is left out")
                continue
            env.append({"name": name, "value": value})
        return env

    def container_ports(self, c: Mapping[str, Any], pod: str) -> list[dict[str, Any]]:
        bindings = c["HostConfig"].get("PortBindings") or {}
        ports, random = [], []
        for key in _sorted_ports(set(c["Config"].get("ExposedPorts") or {}) | set(bindings)):
            number, proto = _port_key(key)
            if number is None:
                self.warn(c, f"exposed port {key!r} is not a single port and is left out")
                continue
            base = {"containerPort": number, "protocol": proto.upper()}
            published = bindings.get(key) or []
            if not published and c["HostConfig"].get("PublishAllPorts"):
                published = [{"HostIp": "", "HostPort": ""}]  # -P: each on a random port
            if not published:
                ports.append(base)
            for binding in published:
                port = dict(base)
                if binding.get("HostPort"):
                    port["hostPort"] = int(binding["HostPort"])
                    if binding.get("HostIp") not in (None, "", "0.0.0.0", "::"):
                        port["hostIP"] = binding["HostIp"]
                else:
                    random.append(port)
                if port not in ports:
                    ports.append(port)
        if random and self.nodeports:
            self.add_service(f"{pod}-published", _name(c),
                             [_service_port(p["containerPort"], p["protocol"]) for p in random],
                             f"ports of {_name(c)} published on random host ports",
                             node_port=True)
        elif random:
            self.warn(c, "ports published on a random host port have no Kubernetes equivalent "
                      "without --service (a NodePort Service)")
        return ports

    def resources(self, c: Mapping[str, Any]) -> dict[str, Any]:
        host = c["HostConfig"]
        limits = {}
        if host.get("NanoCpus"):
            limits["cpu"] = f"{host['NanoCpus'] // 1_000_000}m"
        if host.get("Memory"):
            limits["memory"] = str(host["Memory"])
        return {"limits": limits} if limits else {}

    def probe(self, c: Mapping[str, Any]) -> dict[str, Any] | None:
        """HEALTHCHECK as a readiness probe: like Docker's health status, it marks the pod
        unready and never restarts it (a liveness probe would)."""
        check = c["Config"].get("Healthcheck") or {}
        test = check.get("Test") or []
        if not test or test[0] == "NONE":
            return None
        if test[0] == "CMD-SHELL":
            command = ["/bin/sh", "-c", " ".join(test[1:])]
        elif test[0] == "CMD":
            command = list(test[1:])
        else:
            self.warn(c, f"health check test {test[0]!r} is not carried to Kubernetes")
            return None
        probe: dict[str, Any] = {"exec": {"command": command},
                                 "periodSeconds": _seconds(check.get("Interval"), 30),
                                 "timeoutSeconds": _seconds(check.get("Timeout"), 30),
                                 "failureThreshold": check.get("Retries") or 3}
        if check.get("StartPeriod"):
            probe["initialDelaySeconds"] = _seconds(check["StartPeriod"], 0)
            self.warn(c, "health check start period: Kubernetes waits it out before the first "
                      "probe, where Docker probes and ignores failures")
        return probe

    def security_context(self, c: Mapping[str, Any]) -> dict[str, Any]:
        config, host = c["Config"], c["HostConfig"]
        context: dict[str, Any] = {}
        user = config.get("User") or ""
        uid, _, gid = user.partition(":")
        if user and uid.isdigit() and (not gid or gid.isdigit()):
            context["runAsUser"] = int(uid)
            if gid:
                context["runAsGroup"] = int(gid)
        elif user:
            self.warn(c, f"user {user!r}: Kubernetes takes numeric IDs only (runAsUser); the "
                      "image's user applies")
        if host.get("Privileged"):
            context["privileged"] = True
        caps = {k: [cap.upper().removeprefix("CAP_") for cap in host.get(f"Cap{k.title()}") or []]
                for k in ("add", "drop")}
        caps = {k: v for k, v in caps.items() if v}
        if caps:
            context["capabilities"] = caps
        if host.get("ReadonlyRootfs"):
            context["readOnlyRootFilesystem"] = True
        return context

    def volumes(self, c: Mapping[str, Any], first: int
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The container's volumeMounts and the pod volumes they need, numbered from `first`:
        the pod's earlier containers have the numbers below."""
        mounts, volumes = [], []

        def add(name: str, target: str, read_only: bool, source: dict[str, Any]) -> None:
            mount: dict[str, Any] = {"name": name, "mountPath": target}
            if read_only:
                mount["readOnly"] = True
            mounts.append(mount)
            volumes.append({"name": name, **source})

        for index, m in enumerate(c.get("Mounts") or [], first):
            read_only = not m.get("RW", True)
            if m["Type"] == "volume" and _ANONYMOUS_VOLUME.fullmatch(m.get("Name") or ""):
                add(f"anonymous-{index}", m["Destination"], read_only, {"emptyDir": {}})
            elif m["Type"] == "volume":
                claim = self.claims.name(m["Name"])
                if claim not in self.claim_docs:
                    self.claim_docs[claim] = self.claim_doc(c, claim, m["Name"])
                add(claim, m["Destination"], read_only,
                    {"persistentVolumeClaim": {"claimName": claim}})
            elif m["Type"] == "bind":
                add(f"host-{index}", m["Destination"], read_only,
                    {"hostPath": {"path": m["Source"]}})
            elif m["Type"] == "tmpfs":
                add(f"tmpfs-{index}", m["Destination"], read_only,
                    {"emptyDir": {"medium": "Memory"}})
            else:
                self.warn(c, f"mount of type {m['Type']!r} at {m['Destination']} is left out")
        tmpfs = sorted((c["HostConfig"].get("Tmpfs") or {}).items())
        for index, (target, options) in enumerate(tmpfs, first):
            empty: dict[str, Any] = {"medium": "Memory"}
            size = _tmpfs_size(options)
            if size:
                empty["sizeLimit"] = size
            add(f"tmpfs-opt-{index}", target, "ro" in options.split(","), {"emptyDir": empty})
        return mounts, volumes

    def claim_doc(self, c: Mapping[str, Any], claim: str, volume: str) -> dict[str, Any]:
        """A claim of the cluster's default storage; the volume's labels become its
        annotations, and a driver or options it had are reported, not carried."""
        info = self.volume_info.get(volume) or {}
        doc = _claim_doc(claim)
        if info.get("Labels"):
            doc["metadata"]["annotations"] = {str(k): str(v)
                                              for k, v in sorted(info["Labels"].items())}
        if info.get("Driver", "local") != "local" or info.get("Options"):
            options = ",".join(f"{k}={v}" for k, v in sorted((info.get("Options") or {}).items()))
            self.warn(c, f"volume {volume!r} (driver {info.get('Driver', 'local')}"
                      f"{', options ' + options if options else ''}): the claim gets the "
                      "cluster's default storage")
        return doc

    def restart_policy(self, c: Mapping[str, Any]) -> str:
        name = _restart_name(c)
        if name in ("always", "unless-stopped"):
            if name == "unless-stopped":
                self.warn(c, "restart policy 'unless-stopped' becomes Always")
            return "Always"
        if name == "on-failure":
            retries = (c["HostConfig"].get("RestartPolicy") or {}).get("MaximumRetryCount")
            if retries:
                self.warn(c, f"restart policy on-failure:{retries}: Kubernetes has no retry limit")
            return "OnFailure"
        return "Never"

    def pod_level(self, c: Mapping[str, Any], spec: dict[str, Any], owner: bool = True) -> None:
        """The pod-level fields `c` asks for, into `spec`. A member (not `owner`) has the
        owner's hostname in Docker, so its own is not looked at."""
        config, host = c["Config"], c["HostConfig"]
        hostname = config.get("Hostname") or ""
        if owner and hostname and hostname != c["Id"][:12]:
            if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", hostname) and len(hostname) <= 63:
                spec["hostname"] = hostname
            else:
                self.warn(c, f"hostname {hostname!r} is no DNS label and is left out")
        hosts: dict[str, list[str]] = {}
        for entry in host.get("ExtraHosts") or []:
            name, _, ip = entry.partition(":")
            hosts.setdefault(ip, []).append(name)
        if hosts:
            spec["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in hosts.items()]
        if config.get("StopTimeout") is not None:
            spec["terminationGracePeriodSeconds"] = config["StopTimeout"]
        if config.get("StopSignal") not in (None, "", "SIGTERM", "15"):
            self.warn(c, f"stop signal {config['StopSignal']}: Kubernetes sends the image's "
                      "STOPSIGNAL or SIGTERM")
        for mode_key, flag in (("IpcMode", "hostIPC"), ("PidMode", "hostPID")):
            mode = host.get(mode_key) or ""
            if mode == "host":
                spec[flag] = True
            elif mode not in ("", "private", "shareable") and not donor(mode):
                self.warn(c, f"HostConfig.{mode_key} {mode!r} is not carried to Kubernetes")
        macs = [config.get("MacAddress")] + [
            e.get("MacAddress") for e in (c["NetworkSettings"].get("Networks") or {}).values()
            if e.get("MacAddress") != _generated_mac(e.get("IPAddress") or "")]
        for mac in dict.fromkeys(m for m in macs if m):
            self.warn(c, f"MAC address {mac} cannot be set in Kubernetes")

    # --- networks, links, Services -----------------------------------------------------------

    def network(self, c: Mapping[str, Any]) -> None:
        mode = c["HostConfig"].get("NetworkMode") or "default"
        if mode == "host" or donor(mode):  # a member: in its pod's network
            return
        if mode == "none":
            self.warn(c, f"network mode {mode!r} is not carried to Kubernetes")
            return
        attached = list((c["NetworkSettings"].get("Networks") or {}).items())
        for index, (name, endpoint) in enumerate(attached):
            info = self.networks.get(name) or {}
            if index:
                self.warn(c, f"second network {name!r}: a pod has one network, shared by all "
                          "pods")
            if info.get("Internal"):
                self.warn(c, f"network {name!r} is internal: Kubernetes needs a NetworkPolicy "
                          "for that")
            if (info.get("Options") or {}).get("com.docker.network.bridge.enable_icc") == "false":
                self.warn(c, f"network {name!r} has inter-container traffic off (--icc=false): "
                          "Kubernetes needs a NetworkPolicy for that")
            if name in DEFAULT_NETWORKS:
                continue
            for alias in endpoint.get("Aliases") or []:
                if c["Id"].startswith(alias) or alias in (_name(c), c["Config"].get("Hostname")):
                    continue  # the names every container has there; the pod's own name is enough
                self.link_service(c, alias, _name(c), f"network alias {alias!r} of {_name(c)}")

    def link_env(self, c: Mapping[str, Any]) -> list[dict[str, str]]:
        """The parent's own part of each link: its Service, and the variables the kubelet will
        not give (`_NAME`, `_ENV_*`), with the values tether gives."""
        env = []
        for link in c["HostConfig"].get("Links") or []:
            target, _, link_name = link.partition(":")
            target = target.lstrip("/")
            alias = link_name.rsplit("/", 1)[-1]
            service = self.link_service(c, alias, target, f"link {target}:{alias} of {_name(c)}")
            prefix = alias.upper().replace("-", "_")
            if service and env_name(service) != prefix:
                self.warn(c, f"link alias {alias!r}: its Service {service!r} gives variables "
                          f"{env_name(service)}_* where the link gives {prefix}_*")
            env.append({"name": f"{prefix}_NAME", "value": link_name})
            child = self.known.get(target)
            for entry in (child or {}).get("Config", {}).get("Env") or []:
                name, sep, value = entry.partition("=")
                if sep and name not in ("HOME", "PATH"):
                    env.append({"name": f"{prefix}_ENV_{name}", "value": value})
        return env

    def link_service(self, c: Mapping[str, Any], alias: str, target: str,
                     source: str) -> str | None:
        child = self.known.get(target)
        if child is None:
            self.warn(c, f"{source}: {target} is unknown, no Service made")
            return None
        if target not in self.generated:
            self.warn(c, f"{source}: {target} is not generated here, its Service selects no "
                      "pod until it runs in the cluster")
        keys = [k for k in _sorted_ports(child["Config"].get("ExposedPorts") or {})
                if _port_key(k)[0] is not None]
        if not keys:
            self.warn(c, f"{source}: {target} exposes no port, and a Service needs one: the name "
                      f"{alias!r} will not resolve")
            return None
        if _has_port_range(keys):
            self.warn(c, f"{source}: the link's range variables (_START, _END) for three or more "
                      "consecutive ports are not carried")
        ports = [_service_port(*_port_key(k)) for k in keys]  # type: ignore[misc]
        return self.add_service(alias, target, ports, source)

    def add_service(self, docker_name: str, target: str, ports: list[dict[str, Any]],
                    source: str, node_port: bool = False) -> str:
        name = self.service_names.name(docker_name)
        selector = self.pod_of.get(target) or dns1035(target)
        existing = self.services.get(name)
        if existing is not None and existing.selector != selector:
            raise GenerateError(f"Service {name!r} would select both {existing.selector!r} "
                                f"({existing.source}) and {selector!r} ({source})")
        if existing is None:
            self.services[name] = _Service(name, selector, ports, source, node_port)
        else:  # a second way to the same pod: the ports of both
            existing.ports += [p for p in ports if p not in existing.ports]
        return name

    @staticmethod
    def service_doc(service: _Service) -> dict[str, Any]:
        ports = service.ports
        if len(ports) > 1:
            ports = [{**p, "name": f"{p['protocol'].lower()}-{p['port']}"} for p in ports]
        spec: dict[str, Any] = {"selector": {APP_LABEL: service.selector}, "ports": ports}
        if service.node_port:
            spec["type"] = "NodePort"
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": service.name, "annotations": {
                    "tether.io/from": service.source}},
                "spec": spec}


def with_comments(yaml_text: str) -> str:
    """The YAML with a comment above each hostPath volume: the path is the tether host's."""
    lines = []
    for line in yaml_text.splitlines(keepends=True):
        stripped = line.lstrip(" -")
        if stripped.startswith("hostPath:"):
            lines.append(" " * (len(line) - len(line.lstrip(" "))) + HOSTPATH_COMMENT + "\n")
        lines.append(line)
    return "".join(lines)


def _name(c: Mapping[str, Any]) -> str:
    return str(c["Name"]).lstrip("/")


def _restart_name(c: Mapping[str, Any]) -> str:
    return (c["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no"


def _dependency_order(groups: list[PodGroup]) -> list[PodGroup]:
    """The pods of link targets before the pods that link to them, otherwise in the given
    order."""
    index = {_name(c): i for i, g in enumerate(groups) for c in g.containers}
    ordered: list[PodGroup] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for c in groups[i].containers:
            for link in c["HostConfig"].get("Links") or []:
                target = index.get(link.partition(":")[0].lstrip("/"))
                if target is not None:
                    visit(target)
        ordered.append(groups[i])

    for i in range(len(groups)):
        visit(i)
    return ordered


def _generated_mac(ip: str) -> str | None:
    """The MAC a bridge endpoint gets when none is asked for: 02:42 and the IPv4 address."""
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    return "02:42:" + ":".join(f"{int(p):02x}" for p in parts)


def _port_key(key: str) -> tuple[int | None, str]:
    text, _, proto = key.partition("/")
    return (int(text) if text.isdigit() and 0 < int(text) < 65536 else None), proto or "tcp"


def _sorted_ports(keys: Iterable[str]) -> list[str]:
    """Docker's link order: by number, tcp first on equal numbers, so the first Service port is
    the one Docker's `<ALIAS>_PORT` names."""
    def key(k: str) -> tuple[int, bool, str]:
        number, proto = _port_key(k)
        return number or 0, proto != "tcp", proto
    return sorted(keys, key=key)


def _has_port_range(keys: list[str]) -> bool:
    numbers = [_port_key(k)[0] or 0 for k in keys]
    return any(numbers[i + 2] <= numbers[i] + 2 for i in range(len(numbers) - 2))


def _service_port(number: int, proto: str) -> dict[str, Any]:
    return {"port": number, "targetPort": number, "protocol": proto.upper()}


def _seconds(nanoseconds: int | None, default: int) -> int:
    """Go durations in ns as the whole seconds Kubernetes takes, rounded up, at least 1."""
    if not nanoseconds:
        return default
    return max(1, -(-nanoseconds // 1_000_000_000))


def _tmpfs_size(options: str) -> str | None:
    for option in options.split(","):
        key, _, value = option.partition("=")
        match = re.fullmatch(r"([0-9]+)([kmgKMG]?)", value) if key == "size" else None
        if match:
            suffix = {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}[match.group(2).lower()]
            return match.group(1) + suffix
    return None


def _claim_doc(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}
