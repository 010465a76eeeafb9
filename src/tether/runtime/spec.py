"""The OCI runtime spec (config.json) a container gets, with Docker's defaults.

The defaults follow moby's `oci/defaults.go` and `daemon/oci_linux.go`, checked against the config.json
that a real Docker 20.10 engine handed to runc on this machine (see tests/unit/test_runtime_spec.py).
Differences kept on purpose:

- seccomp: the caller passes the `linux.seccomp` section (tether.runtime.seccomp_host translates
  the profile); tether's default profile differs from Docker 20.10's as seccomp_default.py says.
- masked paths follow Docker 28 (the CLI generation tether targets), which adds `/proc/interrupts` and
  `/sys/devices/virtual/powercap` to 20.10's list. Docker 28's per-CPU `thermal_throttle` masks
  depend on the host's CPUs and are not included.
- no `process.rlimits` unless `--ulimit`/`--default-ulimit` ask (engine/process_config.py), as
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

from tether.rules.errors import BadRequest

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


def build_spec(*, rootfs: str, args: list[str], env: list[str], cwd: str, uid: int, gid: int,
               additional_gids: list[int], tty: bool, hostname: str, netns_path: str | None,
               mounts: list[dict], cgroups_path: str, readonly_rootfs: bool = False,
               cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (),
               privileged: bool = False, rootfs_propagation: str | None = None,
               seccomp: dict | None = None, no_new_privileges: bool = False,
               masked_paths: list[str] | None = None,
               readonly_paths: list[str] | None = None) -> dict:
    """A complete config.json for runc: Docker's defaults plus this container's settings.

    `mounts` (OCI mount dicts, for example the /etc/hosts binds) come after the default mounts so
    that they land on top of them; a default mount whose destination the caller mounts itself is
    left out (a `--tmpfs /dev/shm` replaces Docker's /dev/shm, as in dockerd). Inheritable and ambient capabilities stay empty, as in Docker
    since 20.10.14, so that an exec'd setuid-less binary cannot regain dropped capabilities.
    `seccomp` is the OCI seccomp section (None: no filter). `masked_paths` / `readonly_paths`
    (HostConfig's, `--security-opt systempaths=unconfined` sends empty ones) replace the
    defaults when given, also for a privileged container, as in dockerd.
    """
    caps = capabilities(cap_add, cap_drop, privileged)
    namespaces = [{"type": ns} for ns in _NAMESPACES]
    if netns_path:
        namespaces[1]["path"] = netns_path
    linux: dict = {
        "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0",
                   "net.ipv4.ping_group_range": "0 2147483647"},
        "resources": {"devices": device_rules(privileged)},
        "cgroupsPath": cgroups_path,
        "namespaces": namespaces,
        "devices": [],
        "maskedPaths": list(masked_paths) if masked_paths is not None
        else [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": list(readonly_paths) if readonly_paths is not None
        else [] if privileged else list(READONLY_PATHS),
    }
    if rootfs_propagation:
        linux["rootfsPropagation"] = rootfs_propagation
    if seccomp is not None:
        linux["seccomp"] = seccomp
    own = {m["destination"] for m in mounts}
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": list(additional_gids)},
            "args": list(args),
            "env": list(env),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
            "noNewPrivileges": no_new_privileges,
            "oomScoreAdj": 0,
        },
        "root": {"path": rootfs, "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": [m for m in default_mounts(privileged) if m["destination"] not in own]
        + [dict(m) for m in mounts],
        "linux": linux,
    }
