"""build_spec and resolve_user against what a real Docker 20.10 engine produced on this machine.

The REF_* constants are copied from the config.json that Docker 20.10 (Debian docker.io, under
containerd + runc) wrote for `docker run -d busybox sleep 100`; the user cases from `docker run -u`
against an image with the /etc/passwd and /etc/group below. Differences kept on purpose are listed
in tether.runtime.oci's docstring and asserted here (masked paths of Docker 28); the seccomp
section is the caller's (tests/unit/test_seccomp_translation.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tether.rules.errors import BadRequest
from tether.runtime.oci import ALL_CAPABILITIES, build_spec, capabilities
from tether.runtime.user import resolve_user

REF_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
REF_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
]
REF_DEVICES = [{"allow": False, "access": "rwm"}] + [
    {"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
    for ma, mi in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))
] + [{"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]
REF_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
              "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
DOCKER28_EXTRA_MASKED = {"/proc/interrupts", "/sys/devices/virtual/powercap"}
REF_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
REF_SYSCTL = {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}

HOSTS_BIND = {"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts", "options": ["rbind", "rprivate"]}


def spec(**overrides: object) -> dict:
    args: dict = dict(rootfs="/r", args=["sleep", "100"], env=["PATH=/bin"], cwd="/", uid=0, gid=0,
                      additional_gids=[0], tty=False, hostname="abc", netns_path=None,
                      mounts=[HOSTS_BIND], cgroups_path="/tether/abc")
    args.update(overrides)
    return build_spec(**args)


def test_defaults_match_docker() -> None:
    s = spec()
    caps = s["process"]["capabilities"]
    assert caps == {"bounding": REF_CAPS, "effective": REF_CAPS, "permitted": REF_CAPS}
    assert s["mounts"] == REF_MOUNTS + [HOSTS_BIND]
    linux = s["linux"]
    assert linux["resources"]["devices"] == REF_DEVICES
    assert [p for p in linux["maskedPaths"] if p not in DOCKER28_EXTRA_MASKED] == REF_MASKED
    assert DOCKER28_EXTRA_MASKED <= set(linux["maskedPaths"])
    assert linux["readonlyPaths"] == REF_READONLY
    assert linux["sysctl"] == REF_SYSCTL
    assert linux["namespaces"] == [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")]
    assert "seccomp" not in linux
    assert s["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert s["process"]["noNewPrivileges"] is False and s["process"]["oomScoreAdj"] == 0
    assert s["root"] == {"path": "/r", "readonly": False}
    assert s["hostname"] == "abc" and linux["cgroupsPath"] == "/tether/abc"


def test_seccomp_section_and_no_new_privileges_as_given() -> None:
    section = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}
    s = spec(seccomp=section, no_new_privileges=True)
    assert s["linux"]["seccomp"] == section and s["process"]["noNewPrivileges"] is True


def test_system_paths_given_replace_the_defaults() -> None:
    s = spec(masked_paths=[], readonly_paths=["/proc/sys"], privileged=True)
    assert (s["linux"]["maskedPaths"], s["linux"]["readonlyPaths"]) == ([], ["/proc/sys"])
    s = spec(privileged=True)
    assert (s["linux"]["maskedPaths"], s["linux"]["readonlyPaths"]) == ([], [])


def test_default_caps_are_dockers_mask() -> None:
    mask = sum(1 << ALL_CAPABILITIES.index(c) for c in capabilities())
    assert f"{mask:016x}" == "00000000a80425fb"


def test_netns_by_path_tty_and_readonly() -> None:
    s = spec(netns_path="/run/netns/x", tty=True, readonly_rootfs=True)
    assert s["linux"]["namespaces"][1] == {"type": "network", "path": "/run/netns/x"}
    assert s["process"]["terminal"] is True
    assert s["root"]["readonly"] is True


def test_cap_add_and_drop_as_docker() -> None:
    # docker run --cap-add NET_ADMIN --cap-drop chown gave exactly this list on the reference engine
    assert capabilities(["NET_ADMIN"], ["chown"]) == REF_CAPS[1:] + ["CAP_NET_ADMIN"]
    assert capabilities(["cap_net_admin", "NET_ADMIN"]) == REF_CAPS + ["CAP_NET_ADMIN"]
    assert capabilities(["KILL"], ["ALL"]) == ["CAP_KILL"]
    everything = capabilities(["all"], ["MKNOD"])
    assert "CAP_MKNOD" not in everything and "CAP_SYS_ADMIN" in everything
    assert set(capabilities(privileged=True)) >= set(REF_CAPS) | {"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}


def test_unknown_capability_is_bad_request() -> None:
    with pytest.raises(BadRequest, match='invalid CapAdd: unknown capability: "CAP_FOO"'):
        capabilities(["foo"])


def test_privileged_opens_devices_sys_and_paths() -> None:
    s = spec(privileged=True)
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["readonlyPaths"] == []
    sys_mounts = [m for m in s["mounts"] if m["destination"] in ("/sys", "/sys/fs/cgroup")]
    assert all("ro" not in m["options"] for m in sys_mounts)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
        "bob:x:1001:1001::/home/bob:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text(
        "root:x:0:\nwheel:x:10:root,alice\nalice:x:1000:\nstaff:x:50:alice\nbob:x:1001:\n")
    return tmp_path


# (-u value, what Docker 20.10 put in config.json / printed with `id; echo $HOME`)
@pytest.mark.parametrize("user, expected", [
    ("", (0, 0, [0, 10], "/root")),
    ("root", (0, 0, [0, 10], "/root")),
    ("alice", (1000, 1000, [1000, 10, 50], "/home/alice")),
    ("1000", (1000, 1000, [1000, 10, 50], "/home/alice")),
    ("alice:staff", (1000, 50, [50], "/home/alice")),
    ("1001:50", (1001, 50, [50], "/home/bob")),
    ("bob", (1001, 1001, [1001], "/home/bob")),
    ("2000", (2000, 0, [0], "/")),
    ("2000:3000", (2000, 3000, [3000], "/")),
    ("root:wheel", (0, 10, [10], "/root")),
])
def test_resolve_user_like_docker(rootfs: Path, user: str, expected: tuple) -> None:
    assert resolve_user(str(rootfs), user) == expected


def test_resolve_user_errors_use_dockers_text(rootfs: Path) -> None:
    with pytest.raises(BadRequest, match="^unable to find user nosuch: no matching entries in passwd file$"):
        resolve_user(str(rootfs), "nosuch")
    with pytest.raises(BadRequest, match="^unable to find group nogroup: no matching entries in group file$"):
        resolve_user(str(rootfs), "alice:nogroup")


def test_resolve_user_without_etc_files(tmp_path: Path) -> None:
    assert resolve_user(str(tmp_path), "") == (0, 0, [0], "/")
    assert resolve_user(str(tmp_path), "1000:1000") == (1000, 1000, [1000], "/")


def test_passwd_symlink_out_of_rootfs_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").symlink_to("/etc/passwd")
    assert resolve_user(str(tmp_path), "") == (0, 0, [0], "/")


def test_passwd_symlink_resolves_inside_the_rootfs(tmp_path: Path) -> None:
    """As runc's securejoin: an absolute link names the rootfs's own file, not the host's."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "real").write_text("svc:x:7:8::/srv:/bin/sh\n")
    (tmp_path / "etc" / "passwd").symlink_to("/real")
    assert resolve_user(str(tmp_path), "svc") == (7, 8, [8], "/srv")
    with pytest.raises(BadRequest, match="unable to find user root"):
        resolve_user(str(tmp_path), "root")
