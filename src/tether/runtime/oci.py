"""The one compiler to the OCI runtime spec (config.json): the container's typed spec
(tether.spec) plus what the engine resolved for this start (`Parts`: rootfs, mounts, netns,
user, environment additions, cwd, seccomp section, cgroups path) in, runc's config out. Nothing
else writes OCI fields.

One small function per concern (`process`, `root`, `mounts`, `namespaces`, `sysctls`,
`resources`, `security`), each reading the spec's typed fields, so that applying a new field is
one field (spec/types.py), one validation (spec/create.py), one entry in spec/support.py and one
line here. podman's pkg/specgen -> pkg/specgen/generate is the model.

The defaults follow moby's `oci/defaults.go` and `daemon/oci_linux.go`, checked against the config.json
that a real Docker 20.10 engine handed to runc on this machine (see tests/unit/test_runtime_spec.py).
Differences kept on purpose:

- seccomp: the caller passes the `linux.seccomp` section (tether.runtime.seccomp_host translates
  the profile); tether's default profile differs from Docker 20.10's as seccomp_default.py says.
- masked paths follow Docker 28 (the CLI generation tether targets), which adds `/proc/interrupts` and
  `/sys/devices/virtual/powercap` to 20.10's list. Docker 28's per-CPU `thermal_throttle` masks
  depend on the host's CPUs and are not included.
- no `process.rlimits` unless `--ulimit`/`--default-ulimit` ask (`Parts.rlimits`), as
  Docker: the container inherits the limits of its creator (Docker's containerd has RLIMIT_NOFILE
  1048576 on a systemd host; here the daemon's own). Asking for more than the daemon's hard limit
  fails without CAP_SYS_RESOURCE, which this host's bounding set lacks.
- the empty resource sections Docker writes (`memory.disableOOMKiller`, `cpu.shares: 0`,
  `blockIO.weight: 0`) mean "unset" to runc and are omitted; so are the prestart hooks.
- privileged containers get every capability the daemon itself holds (Docker asks for every
  capability it knows and runc then fails on hosts with a reduced bounding set, as this one has),
  and no host device nodes yet (Docker adds all of /dev).
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tether.rules import process_options
from tether.rules import resources as resource_rules
from tether.rules.errors import BadRequest
from tether.runtime import cgroups
from tether.spec.types import Config, HostConfig

OCI_VERSION = "1.0.2-dev"

# Indexed by capability number, as in linux/capability.h.
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

# Docker's default set, in Docker's order (the order shows in config.json and `docker inspect`).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Docker's device cgroup allow list after "deny all": zero, null, urandom, random, tty, console;
# then an explicit deny of /dev/net/tun (10:229) that `--device` can override.
_ALLOWED_CHAR_DEVICES = ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))

_NAMESPACES = ("mount", "network", "uts", "pid", "ipc")


def _mount(destination: str, fstype: str, source: str, options: list[str]) -> dict:
    return {"destination": destination, "type": fstype, "source": source, "options": options}


def default_mounts(privileged: bool = False) -> list[dict]:
    """The kernel filesystems every container gets; privileged ones get /sys and its cgroups writable."""
    sys_ro = [] if privileged else ["ro"]
    return [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *sys_ro]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", [*sys_ro, "nosuid", "noexec", "nodev"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]),
    ]


def device_rules(privileged: bool = False) -> list[dict]:
    """The device cgroup: deny everything, then allow the few character devices a process needs."""
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    rules: list[dict] = [{"allow": False, "access": "rwm"}]
    rules += [{"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
              for major, minor in _ALLOWED_CHAR_DEVICES]
    rules.append({"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
    return rules


@functools.cache
def _daemon_bounding_set() -> frozenset[str]:
    """Capabilities this process may pass on: a container cannot get more than its creator holds.

    Read once from /proc/self/status; this is the only I/O in the module and only "ALL" uses it.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return frozenset(c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1)
    return frozenset(ALL_CAPABILITIES)


def _all_capabilities() -> list[str]:
    held = _daemon_bounding_set()
    return [c for c in ALL_CAPABILITIES if c in held]


def normalize_capabilities(names: Iterable[str], field: str) -> list[str]:
    """Docker's spelling rules: case-insensitive, `CAP_` optional, "ALL" kept as is.

    `field` names the HostConfig field ("CapAdd"/"CapDrop") for Docker's error text.
    """
    result = []
    for name in names:
        upper = name.upper()
        if upper == "ALL":
            result.append("ALL")
            continue
        cap = upper if upper.startswith("CAP_") else "CAP_" + upper
        if cap not in ALL_CAPABILITIES:
            raise BadRequest(f'invalid {field}: unknown capability: "{cap}"')
        result.append(cap)
    return result


def capabilities(cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (),
                 privileged: bool = False) -> list[str]:
    """The container's capability set, combining Docker's defaults with --cap-add/--cap-drop.

    As moby's TweakCapabilities: "ALL" in cap_add wins (everything but the drops); "ALL" in cap_drop
    leaves only the adds; otherwise the defaults minus drops, then the adds not yet present.
    """
    adds = normalize_capabilities(cap_add, "CapAdd")
    drops = normalize_capabilities(cap_drop, "CapDrop")
    if privileged:
        return _all_capabilities()
    if "ALL" in adds:
        return [c for c in _all_capabilities() if c not in drops]
    if "ALL" in drops:
        return list(dict.fromkeys(adds))
    caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
    return caps + [c for c in dict.fromkeys(adds) if c not in caps]


@dataclass
class Parts:
    """What the engine resolved for one start: the process's command line, its environment
    (the spec's Env with the daemon's additions: PATH, HOSTNAME, TERM, link variables, HOME),
    the user as found in the root's passwd and group files, the rootfs mounted, the OCI mounts
    of volumes, binds and generated files, the netns (None: the host's), the cgroups path, the
    rootfs propagation the binds need and the security decisions (seccomp section or None,
    no-new-privileges)."""

    rootfs: str
    args: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int
    additional_gids: list[int]
    netns_path: str | None
    mounts: list[dict]
    cgroups_path: str
    rootfs_propagation: str | None = None
    seccomp: dict | None = None
    no_new_privileges: bool = False
    # the process options' host and root lookups (engine/process_config.py): Ulimits merged
    # with the daemon's --default-ulimits as OCI rlimits, GroupAdd's GIDs found in the root's
    # /etc/group, the init binary to bind ("" for none: Init, else the daemon's --init), and
    # HostConfig.Devices' nodes as stat'ed on the host with their device cgroup allow rules
    rlimits: list[dict] = field(default_factory=list)
    group_add_gids: list[int] = field(default_factory=list)
    init_path: str = ""
    devices: list[dict] = field(default_factory=list)
    device_allow: list[dict] = field(default_factory=list)
    # namespace type -> the file of a namespace joined from another container (`container:`
    # modes, engine/shared_ns.py); its network one is also `netns_path`
    joined: dict[str, str] = field(default_factory=dict)
    # the host-side tmpfs bound at /dev/shm of a shareable IPC namespace ("": a private one)
    shm_path: str = ""


def process(config: Config, host_config: HostConfig, parts: Parts) -> dict:
    """The container's first process. Inheritable and ambient capabilities stay empty, as in
    Docker since 20.10.14, so that an exec'd binary cannot regain dropped capabilities."""
    caps = capabilities(host_config.cap_add or (), host_config.cap_drop or (),
                        host_config.privileged)
    out: dict = {
        "terminal": config.tty,
        "user": {"uid": parts.uid, "gid": parts.gid,  # the user's groups, then GroupAdd's
                 "additionalGids": list(dict.fromkeys([*parts.additional_gids,
                                                       *parts.group_add_gids]))},
        "args": init_args(parts),
        "env": list(parts.env),
        "cwd": parts.cwd,
        "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
        "noNewPrivileges": parts.no_new_privileges,
        "oomScoreAdj": host_config.oom_score_adj,
    }
    if parts.rlimits:
        out["rlimits"] = [dict(limit) for limit in parts.rlimits]
    height, width = (list(host_config.console_size or []) + [0, 0])[:2]
    if config.tty and height and width:  # the tty's first size, as dockerd passes it to runc
        out["consoleSize"] = {"height": height, "width": width}
    return out


def init_args(parts: Parts) -> list[str]:
    """The command line, under tini (bound at /sbin/docker-init) when the container has one."""
    return process_options.init_args(parts.args) if parts.init_path else list(parts.args)


def root(host_config: HostConfig, parts: Parts) -> dict:
    return {"path": parts.rootfs, "readonly": host_config.readonly_rootfs}


def mounts(host_config: HostConfig, parts: Parts) -> list[dict]:
    """Docker's kernel filesystems, then the engine's mounts on top of them; a default mount
    whose destination the engine mounts itself is left out (a `--tmpfs /dev/shm` replaces
    Docker's /dev/shm, as in dockerd)."""
    own = {m["destination"] for m in parts.mounts}
    defaults = [shm_mount(host_config, parts) if m["destination"] == "/dev/shm" else m
                for m in default_mounts(host_config.privileged)]
    return [m for m in defaults if m is not None and m["destination"] not in own] \
        + [dict(m) for m in parts.mounts] + init_mounts(parts)


def shm_mount(host_config: HostConfig, parts: Parts) -> dict | None:
    """/dev/shm as dockerd sets it up for the IPC mode: a private tmpfs of ShmSize; none with
    `--ipc none`; the host's, bound, with `--ipc host` (ShmSize does not apply there); the
    engine's tmpfs (`parts.shm_path`) of a shareable container, bound, for it and for those
    that join its IPC namespace."""
    if host_config.ipc_mode == "none":
        return None
    if host_config.ipc_mode == "host":
        return process_options.host_shm_mount()
    if parts.shm_path:
        return {"destination": "/dev/shm", "type": "bind", "source": parts.shm_path,
                "options": ["rbind", "rprivate"]}
    return _mount("/dev/shm", "tmpfs", "shm", process_options.shm_options(host_config.shm_size))


def init_mounts(parts: Parts) -> list[dict]:
    """The init binary, bound read-only at /sbin/docker-init, when the container has one."""
    return [process_options.init_mount(parts.init_path)] if parts.init_path else []


def _host_network(host_config: HostConfig) -> bool:
    return host_config.network_mode == "host"


def namespaces(host_config: HostConfig, parts: Parts) -> list[dict]:
    """New namespaces of each kind; the network one is the engine's (`netns_path`), or a new
    one without it, or none with `--network host` (the daemon's); IPC, PID and UTS are the
    daemon's with their `host` modes; one joined from another container has its path."""
    out: list[dict] = []
    hosts = {"network": _host_network(host_config), "ipc": host_config.ipc_mode == "host",
             "pid": host_config.pid_mode == "host", "uts": host_config.uts_mode == "host"}
    for kind in _NAMESPACES:
        if hosts.get(kind):
            continue
        if kind in parts.joined:
            out.append({"type": kind, "path": parts.joined[kind]})
            continue
        out.append({"type": kind, "path": parts.netns_path}
                   if kind == "network" and parts.netns_path else {"type": kind})
    if host_config.cgroupns_mode == "private":  # the default is the host's (spec/create.py)
        out.append({"type": "cgroup"})
    return out


def sysctls(config: Config, host_config: HostConfig) -> dict:
    """Docker's namespaced defaults; a container in the host's network namespace or in
    another container's gets no net.* ones (they would be the daemon's or the donor's), as
    dockerd sets them only in a namespace of the container's own. Config.Domainname is the
    UTS namespace's kernel.domainname, as dockerd sets it."""
    shared = _host_network(host_config) or host_config.network_mode.startswith("container:")
    out = {} if shared else {
        "net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
    if config.domainname:
        out["kernel.domainname"] = config.domainname
    out.update(process_options.sysctls(host_config.sysctls, host_config.ipc_mode))
    return out


def resources(host_config: HostConfig, parts: Parts) -> dict:
    """The device cgroup and the container's limits. The limits go through
    tether.rules.resources' mapping of the API-shaped Resources (`to_api`), the one `docker
    update` writes live through too, so a limit has one OCI form however it is set. Block
    devices are looked up at each start, as dockerd does: a missing one fails the start in
    dockerd's words."""
    try:
        limits = resource_rules.oci_resources(host_config.resources.to_api(omit=False),
                                              cgroups.device_number)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return {"devices": device_cgroup(host_config, parts), **limits}


def cgroups_path(host_config: HostConfig, parts: Parts) -> str:
    """The engine's cgroup for the container (`parts.cgroups_path`, named by its id), or that
    name under HostConfig.CgroupParent, as dockerd's cgroupfs driver places it."""
    parent = host_config.resources.cgroup_parent
    if not parent:
        return parts.cgroups_path
    return resource_rules.cgroups_path(PurePosixPath(parts.cgroups_path).name, parent)


def device_cgroup(host_config: HostConfig, parts: Parts) -> list[dict]:
    """Docker's device cgroup, then the allow rules of the host devices given (`--device`)
    and of DeviceCgroupRules (a rule that does not parse fails the start, 500, as dockerd)."""
    return [*device_rules(host_config.privileged), *parts.device_allow,
            *process_options.device_cgroup_rules(host_config.resources.device_cgroup_rules)]


def security(host_config: HostConfig, parts: Parts) -> dict:
    """Masked and read-only paths (HostConfig's, stored at create; None means Docker's defaults,
    none for a privileged container), and the seccomp filter the engine chose."""
    privileged = host_config.privileged
    out = {
        "maskedPaths": list(host_config.masked_paths) if host_config.masked_paths is not None
        else [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": list(host_config.readonly_paths)
        if host_config.readonly_paths is not None
        else [] if privileged else list(READONLY_PATHS),
    }
    if parts.seccomp is not None:
        out["seccomp"] = parts.seccomp
    return out


def compile_spec(config: Config, host_config: HostConfig, parts: Parts) -> dict:
    """A complete config.json for runc: Docker's defaults plus this container's spec."""
    linux: dict = {
        "sysctl": sysctls(config, host_config),
        "resources": resources(host_config, parts),
        "cgroupsPath": cgroups_path(host_config, parts),
        "namespaces": namespaces(host_config, parts),
        "devices": [dict(d) for d in parts.devices],
    }
    linux.update(security(host_config, parts))
    if parts.rootfs_propagation:
        linux["rootfsPropagation"] = parts.rootfs_propagation
    return {
        "ociVersion": OCI_VERSION,
        "process": process(config, host_config, parts),
        "root": root(host_config, parts),
        # the host's UTS namespace keeps its name (runc may not set it there)
        "hostname": "" if host_config.uts_mode == "host" else config.hostname,
        "mounts": mounts(host_config, parts),
        "linux": linux,
    }


def build_spec(*, rootfs: str, args: list[str], env: list[str], cwd: str, uid: int, gid: int,
               additional_gids: list[int], tty: bool, hostname: str, netns_path: str | None,
               mounts: list[dict], cgroups_path: str, readonly_rootfs: bool = False,
               cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (),
               privileged: bool = False, rootfs_propagation: str | None = None,
               seccomp: dict | None = None, no_new_privileges: bool = False,
               masked_paths: list[str] | None = None,
               readonly_paths: list[str] | None = None) -> dict:
    """`compile_spec` for a spec given field by field (the runtime's own tests, which run runc
    without an engine)."""
    config = Config(hostname=hostname, tty=tty)
    host_config = HostConfig(readonly_rootfs=readonly_rootfs, cap_add=list(cap_add),
                             cap_drop=list(cap_drop), privileged=privileged,
                             masked_paths=masked_paths, readonly_paths=readonly_paths)
    return compile_spec(config, host_config, Parts(
        rootfs=rootfs, args=args, env=env, cwd=cwd, uid=uid, gid=gid,
        additional_gids=additional_gids, netns_path=netns_path, mounts=mounts,
        cgroups_path=cgroups_path, rootfs_propagation=rootfs_propagation, seccomp=seccomp,
        no_new_privileges=no_new_privileges))
