"""Which containers become one Kubernetes pod: those joined by `container:` namespace modes.

A container run with `--network container:X` (or `--ipc`/`--pid container:X`) lives in X's
namespaces, as the containers of a Kubernetes pod live in the pod's. `kube generate` therefore
writes such containers as ONE pod, whose first container is the namespace owner (the one with a
network namespace of its own) and whose further containers are its members. tether has no
infra ("pause") container: the owner is always a container of the application, and becomes a
container of the pod like the others.

A Kubernetes pod always shares its network, IPC and UTS namespaces among its containers, and
its PID namespace when `shareProcessNamespace` is set. What follows from that:
- a member that joins only the owner's network gets its IPC namespace too (a warning says so:
  it is more sharing, nothing asked for is lost);
- when any member shares a PID namespace, the whole pod does (warning for those that did not);
- a member that shares IPC or PID with a container whose network it does not share cannot be
  said at all: one pod would add a shared network, two would drop the sharing. That is refused,
  as is a member named without its owner (its pod would lack the container whose namespaces it
  lives in). Both are errors naming the container, its owner and the flag.
No I/O here: the input is the inspect JSON of the containers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.rules.container_mode import donor

# (HostConfig key, the namespace's name in messages, the docker run flag)
MODES = (("NetworkMode", "network", "--network"), ("IpcMode", "IPC", "--ipc"),
         ("PidMode", "PID", "--pid"))


class PodError(ValueError):
    """Namespace sharing that no Kubernetes pod can express."""


@dataclass
class PodGroup:
    """The containers of one pod: the namespace owner first, then its members in the order
    given. `share_pid` is the pod's shareProcessNamespace."""

    containers: list[Mapping[str, Any]]
    share_pid: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def owner(self) -> Mapping[str, Any]:
        return self.containers[0]


def group(containers: Sequence[Mapping[str, Any]],
          others: Sequence[Mapping[str, Any]] = ()) -> list[PodGroup]:
    """The pods of `containers`, in the order of their first container. `others` holds the
    inspect JSON of containers they refer to that are not among them, so that an owner left out
    is named in the error (a reference to no container at all is named as given)."""
    lookup = _Lookup([*containers, *others])
    given = {name(c): c for c in containers}
    edges = []
    for c in containers:
        for key, ns, flag in MODES:
            ref = donor(c["HostConfig"].get(key))
            if not ref:
                continue
            owner = lookup.find(ref)
            if owner is None:
                raise PodError(f"{name(c)} joins the {ns} namespace of {ref} ({flag} "
                               f"container:{ref}), which is no container here")
            if name(owner) not in given:
                raise PodError(f"{name(c)} joins the {ns} namespace of {name(owner)} ({flag} "
                               f"container:{name(owner)}): name {name(owner)} too, the two "
                               "become one pod")
            edges.append((name(c), name(owner)))
    return [_pod([given[n] for n in names], lookup)
            for names in _components(list(given), edges)]


def name(c: Mapping[str, Any]) -> str:
    return str(c["Name"]).lstrip("/")


class _Lookup:
    """Containers found as dockerd finds a `container:` mode's donor: by name, full ID or
    unique ID prefix (NetworkMode holds the full ID once the member started)."""

    def __init__(self, containers: Sequence[Mapping[str, Any]]) -> None:
        self.containers = containers

    def find(self, ref: str) -> Mapping[str, Any] | None:
        for c in self.containers:
            if name(c) == ref.lstrip("/") or c["Id"] == ref:
                return c
        matches = {c["Id"]: c for c in self.containers if c["Id"].startswith(ref)}
        return next(iter(matches.values())) if len(matches) == 1 else None

    def donor(self, c: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
        """The container whose namespace `c` joins by HostConfig[key], None for none."""
        ref = donor(c["HostConfig"].get(key))
        return self.find(ref) if ref else None


def _components(names: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """`names` grouped by the edges joining them, each group and the groups in `names` order."""
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for a, b in edges:
        if a in parent and b in parent:
            parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _pod(containers: list[Mapping[str, Any]], lookup: _Lookup) -> PodGroup:
    if len(containers) == 1:
        return PodGroup(containers)
    network_owner = {name(c): _network_owner(c, lookup) for c in containers}
    owners = list(dict.fromkeys(network_owner.values()))
    if len(owners) > 1:
        raise PodError(_split_namespaces(containers, network_owner, lookup))
    pod = owners[0]
    ordered = sorted(containers, key=lambda c: name(c) != pod)
    result = PodGroup(ordered)
    for c in ordered[1:]:
        if not donor(c["HostConfig"].get("IpcMode")):
            result.warnings.append(
                f"{name(c)}: joins the network namespace of {pod} but not its IPC namespace: "
                f"in a Kubernetes pod it shares {pod}'s IPC namespace too")
    names = [name(c) for c in ordered]
    pid_edges = [(name(c), name(o)) for c in ordered
                 for o in [lookup.donor(c, "PidMode")] if o is not None]
    pid_groups = _components(names, pid_edges)
    result.share_pid = len(pid_groups) < len(names)
    for g in pid_groups if result.share_pid and len(pid_groups) > 1 else ():
        for m in g:
            now = (f"shares its PID namespace only with {', '.join(n for n in g if n != m)}"
                   if len(g) > 1 else "has a PID namespace of its own")
            result.warnings.append(f"{m}: {now}: in pod {pod} every container shares one "
                                   "(shareProcessNamespace: true)")
    return result


def _network_owner(c: Mapping[str, Any], lookup: _Lookup) -> str:
    """The container whose network namespace `c` is in, following chains of members."""
    seen = [name(c)]
    while (owner := lookup.donor(c, "NetworkMode")) is not None:
        if name(owner) in seen:
            raise PodError(f"the network modes of {', '.join(seen)} form a circle")
        seen.append(name(owner))
        c = owner
    return name(c)


def _split_namespaces(containers: list[Mapping[str, Any]], network_owner: Mapping[str, str],
                      lookup: _Lookup) -> str:
    """The error for a pod whose containers are in two network namespaces: the first
    container that shares IPC or PID across them."""
    for c in containers:
        for key, ns, flag in MODES[1:]:
            owner = lookup.donor(c, key)
            if owner is not None and network_owner[name(owner)] != network_owner[name(c)]:
                return (f"{name(c)} shares the {ns} namespace of {name(owner)} ({flag} "
                        f"container:{name(owner)}) but not its network namespace: the "
                        "containers of a Kubernetes pod share both, and two pods would share "
                        f"neither; run it with --network container:{network_owner[name(owner)]}"
                        " too")
    raise AssertionError("a group joined by network modes alone has one network owner")
