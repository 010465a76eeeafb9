"""seccomp, no-new-privileges and the other --security-opt values on tether and on a real Docker
20.10, side by side.

A static probe (seccomp_probe.c) tries a set of syscalls, each in a child of its own with harmless
arguments, and prints the errno each got; the same container options must give the same errnos on
both engines. The config.json each engine hands runc is compared too, rule for rule. The one
difference kept on purpose: tether's default profile refuses socket(AF_VSOCK) (Docker 23+ does
too; 20.10 does not), see runtime/seccomp_default.py. Also: /proc/1/status (and an exec's),
inspect's SecurityOpt/AppArmorProfile/MaskedPaths, info's SecurityOptions, dockerd's refusal
texts at create and at start, `systempaths=unconfined`, and tetherd's own flags.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from conftest import running_daemon
from harness import api
from reference import reference_fixture

PROBE_SOURCE = (Path(__file__).parent / "seccomp_probe.c").read_text()
EPERM = 1
# every capability the reference engine knows and this host's bounding set holds (no
# CAP_SYS_RESOURCE here): Docker's --privileged asks for all of them and cannot start
DOCKER_KNOWN_CAPS = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
    "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_TIME SYS_TTY_CONFIG MKNOD "
    "LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM "
    "BLOCK_SUSPEND AUDIT_READ").split()
# a custom profile: everything allowed but mkdir/mkdirat, which fail with EACCES
CUSTOM_PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}


ref = reference_fixture("i11-seccomp")


@pytest.fixture(scope="module")
def probe(cbin) -> Path:
    return cbin.build("seccomp-probe", PROBE_SOURCE)


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seccomp") / "profile.json"
    path.write_text(json.dumps(CUSTOM_PROFILE, indent=2))
    return path


def run_probe(run, probe: Path, *options: str) -> dict[str, int]:
    r = run("run", "--rm", "-v", f"{probe}:/probe:ro", *options, "busybox", "/probe", timeout=120)
    assert r.returncode == 0, r.stderr
    results = dict(line.split() for line in r.stdout.decode().splitlines())
    return {name: int(err) for name, err in results.items()}


def status_fields(run, *options: str, exec_too: bool = False) -> tuple[str, ...]:
    """Seccomp and NoNewPrivs of the container's PID 1 (and of an exec'd process)."""
    name = f"i11sec{uuid.uuid4().hex[:8]}"
    r = run("run", "-d", "--name", name, *options, "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        commands = [["cat", "/proc/1/status"]]
        if exec_too:
            commands.append(["cat", "/proc/self/status"])
        out = []
        for command in commands:
            r = run("exec", name, *command)
            assert r.returncode == 0, r.stderr
            out += [line.replace("\t", " ") for line in r.stdout.decode().splitlines()
                    if line.startswith(("Seccomp:", "NoNewPrivs:"))]
        return tuple(out)
    finally:
        run("rm", "-f", name)


def seccomp_rules(section: dict | None) -> tuple | None:
    """An OCI seccomp section as comparable facts: one (name, action, errno, args) per name."""
    if section is None:
        return None
    rules = sorted(json.dumps([name, r["action"], r.get("errnoRet"),
                               [{k: v for k, v in a.items() if v or k != "valueTwo"}
                                for a in r.get("args") or []]])
                   for r in section["syscalls"] for name in r["names"])
    return (section["defaultAction"], section.get("defaultErrnoRet"),
            section.get("architectures"), rules)


def runc_config(run, bundles: Path, *options: str) -> dict:
    """The config.json an engine handed to runc for a container made with `options`."""
    r = run("run", "-d", *options, "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    try:
        return json.loads((bundles / cid / "config.json").read_text())
    finally:
        run("rm", "-f", cid)


@pytest.mark.parametrize("options", [
    (), ("--cap-add", "SYS_ADMIN"), ("--cap-drop", "ALL"),
    tuple(arg for cap in DOCKER_KNOWN_CAPS for arg in ("--cap-add", cap)),
    ("--cap-drop", "SYS_CHROOT", "--cap-add", "SYS_PTRACE", "--cap-add", "SYSLOG"),
    ("--security-opt", "no-new-privileges"), ("--security-opt", "seccomp=unconfined")],
    ids=["default", "sys-admin", "drop-all", "docker-known-caps", "caps", "nnp", "unconfined"])
def test_runc_gets_dockers_filter(ref, daemon, options) -> None:
    """The seccomp section runc compiles, rule for rule, as Docker 20.10 wrote it, but for the
    socket rule (AF_VSOCK refused). (`--cap-add ALL` differs by design: tether's ALL holds
    CAP_BPF and CAP_PERFMON, which open bpf and perf_event_open; Docker 20.10 knows neither.)"""
    docker = runc_config(ref.docker, ref.bundles, *options)
    tether = runc_config(daemon.docker, daemon.exec_root / "bundles", *options)
    assert tether["process"]["noNewPrivileges"] == bool(docker["process"].get("noNewPrivileges"))
    expected = docker["linux"].get("seccomp")
    if expected is not None:
        for rule in expected["syscalls"]:
            if "socket" in rule["names"]:
                rule["names"].remove("socket")
        expected["syscalls"].append({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]})
    assert seccomp_rules(tether["linux"].get("seccomp")) == seccomp_rules(expected)


@pytest.mark.parametrize("options", [(), ("--cap-add", "SYS_ADMIN"), ("--cap-drop", "ALL"),
                                     ("--cap-add", "SYS_PTRACE", "--cap-add", "SYS_TIME",
                                      "--cap-add", "SYS_MODULE", "--cap-add", "SYS_BOOT"),
                                     ("--security-opt", "no-new-privileges")],
                         ids=["default", "sys-admin", "drop-all", "more-caps", "nnp"])
def test_probe_filtered_as_docker(ref, daemon, probe, options) -> None:
    docker = run_probe(ref.docker, probe, *options)
    tether = run_probe(daemon.docker, probe, *options)
    assert tether.pop("socket_vsock") == EPERM
    docker.pop("socket_vsock")
    assert tether == docker
    # the filter is really there: namespaces only with CAP_SYS_ADMIN, personas filtered
    admin = "SYS_ADMIN" in options
    assert tether["unshare_user"] == (0 if admin else EPERM)
    assert tether["clone_newuser"] == (0 if admin else EPERM)
    assert tether["clone_plain"] == 0 and tether["personality_no_aslr"] == EPERM
    assert tether["keyctl"] == EPERM and tether["userfaultfd"] == EPERM


def test_probe_unconfined_as_docker(ref, daemon, probe) -> None:
    docker = run_probe(ref.docker, probe, "--security-opt", "seccomp=unconfined")
    tether = run_probe(daemon.docker, probe, "--security-opt", "seccomp=unconfined")
    assert tether == docker
    assert tether["personality_no_aslr"] == 0 and tether["keyctl"] != EPERM


def test_probe_privileged_as_docker_all_caps_unconfined(ref, daemon, probe) -> None:
    """Docker's --privileged cannot start on this host (it asks for CAP_SYS_RESOURCE, which the
    bounding set lacks); its seccomp side is "no filter", so the reference is every capability it
    can give with seccomp=unconfined."""
    caps = [arg for cap in DOCKER_KNOWN_CAPS for arg in ("--cap-add", cap)]
    docker = run_probe(ref.docker, probe, *caps, "--security-opt", "seccomp=unconfined")
    tether = run_probe(daemon.docker, probe, "--privileged")
    assert tether == docker
    assert tether["unshare_user"] == 0 and tether["personality_no_aslr"] == 0


def test_probe_custom_profile_as_docker(ref, daemon, probe, profile_file) -> None:
    option = ("--security-opt", f"seccomp={profile_file}")
    docker = run_probe(ref.docker, probe, *option)
    tether = run_probe(daemon.docker, probe, *option)
    assert tether == docker
    for run in (ref.docker, daemon.docker):
        r = run("run", "--rm", *option, "busybox", "mkdir", "/newdir")
        assert r.returncode == 1 and b"Permission denied" in r.stderr, r.stderr


@pytest.mark.parametrize("options", [
    (), ("--security-opt", "seccomp=unconfined"), ("--security-opt", "seccomp:unconfined"),
    ("--security-opt", "no-new-privileges"), ("--security-opt", "no-new-privileges:true"),
    ("--security-opt", "no-new-privileges=false"), ("--security-opt", "no-new-privileges=1"),
    ("--security-opt", "apparmor=unconfined"), ("--security-opt", "label=disable"),
    ("--cap-add", "SYS_ADMIN", "--security-opt", "no-new-privileges")])
def test_proc_status_as_docker(ref, daemon, options) -> None:
    assert status_fields(daemon.docker, *options, exec_too=True) == \
        status_fields(ref.docker, *options, exec_too=True)


def test_proc_status_custom_profile(ref, daemon, profile_file) -> None:
    option = ("--security-opt", f"seccomp={profile_file}")
    expected = status_fields(ref.docker, *option)
    assert status_fields(daemon.docker, *option) == expected
    assert expected == ("NoNewPrivs: 0", "Seccomp: 2")


def test_privileged_runs_unconfined(daemon) -> None:
    """Docker's WithSeccomp gives a privileged container no filter (the reference cannot start
    one here, see above)."""
    assert status_fields(daemon.docker, "--privileged") == ("NoNewPrivs: 0", "Seccomp: 0")
    assert status_fields(daemon.docker, "--privileged", "--security-opt",
                         "no-new-privileges") == ("NoNewPrivs: 1", "Seccomp: 0")


def test_unshare_user_namespace_refused(ref, daemon) -> None:
    for run in (ref.docker, daemon.docker):
        r = run("run", "--rm", "busybox", "unshare", "-U", "-r", "id")
        assert r.returncode != 0 and b"Operation not permitted" in r.stderr, r.stderr
        r = run("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-U", "-r", "id",
                "-u")
        assert (r.returncode, r.stdout) == (0, b"0\n"), r.stderr


@pytest.mark.parametrize("options", [
    (), ("--privileged",), ("--privileged", "--security-opt", "label=user:x"),
    ("--privileged", "--security-opt", "label:level:s0"),
    ("--security-opt", "apparmor=foo"), ("--security-opt", "apparmor:foo"),
    ("--security-opt", "label=disable"), ("--security-opt", "seccomp=unconfined"),
    ("--security-opt", "no-new-privileges"), ("--security-opt", "no-new-privileges=TRUE"),
    ("--security-opt", "seccomp=PROFILE", "--security-opt", "no-new-privileges:false")])
def test_inspect_as_docker(ref, daemon, profile_file, options) -> None:
    options = tuple(o.replace("PROFILE", str(profile_file)) for o in options)
    views = []
    for run in (ref.docker, daemon.docker):
        r = run("create", *options, "busybox", "true")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.decode().strip()
        try:
            r = run("inspect", "-f", "{{json .HostConfig.SecurityOpt}} {{json .AppArmorProfile}} "
                    "{{json .ProcessLabel}} {{json .MountLabel}}", cid)
            views.append((r.returncode, r.stdout))
        finally:
            run("rm", "-f", cid)
    assert views[1] == views[0]


@pytest.mark.parametrize("option", ["bogus=1", "no-new-privileges=yes", "mask=/x",
                                     "no-new-privileges:", "=x"])
def test_refused_options_as_docker(ref, daemon, option) -> None:
    results = []
    for run in (ref.docker, daemon.docker):
        r = run("create", "--security-opt", option, "busybox", "true")
        results.append((r.returncode, r.stdout, r.stderr))
    assert results[1] == results[0]
    assert results[0][0] == 1 and b"invalid --security-opt 2" in results[0][2]


@pytest.mark.parametrize("security_opt", [["bogus"], ["disable", "nonsense"]])
def test_refused_at_create_through_the_api_as_docker(ref, daemon, security_opt) -> None:
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": security_opt}}
    docker = api(ref.host[len("unix://"):], "POST", "/v1.41/containers/create", body)
    tether = api(daemon.sock, "POST", "/v1.41/containers/create", body)
    assert tether == docker
    assert docker[0] == 500


@pytest.mark.parametrize("security_opt", ["x", [1]])
def test_mistyped_security_opt_refused_with_dockers_text(ref, daemon, security_opt) -> None:
    """A body of the wrong type gets dockerd's decoder text; tether answers 400 (the client's
    mistake) where dockerd answers 500, as for every mistyped body field."""
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": security_opt}}
    docker = api(ref.host[len("unix://"):], "POST", "/v1.41/containers/create", body)
    tether = api(daemon.sock, "POST", "/v1.41/containers/create", body)
    assert (docker[0], tether[0]) == (500, 400)
    assert tether[1] == docker[1]


@pytest.mark.parametrize("profile", ["[]", '{"syscalls": "x"}', '{"syscalls": [{"names": "read"}]}',
                                     "{bad", "{", '{"a" 1}', '{"a": [1 2]}', '{"a": 1 "b"}',
                                     "{} x", '{"a": 1,}', '{"a": NaN}', '{"a": "\\q"}',
                                     '{"syscalls": [{"names": ["read"], "errnoRet": -1}]}',
                                     '{"syscalls": [{"names": ["read"], "includes": '
                                     '{"minKernel": "4"}}]}'])
def test_bad_profile_refused_at_start_as_docker(ref, daemon, profile) -> None:
    """The docker CLI sends a profile file's content; dockerd decodes it when the container
    starts: 500 with its decoder's text."""
    body = {"Image": "busybox", "Cmd": ["true"],
            "HostConfig": {"SecurityOpt": [f"seccomp={profile}"]}}
    results = []
    for sock in (ref.host[len("unix://"):], daemon.sock):
        status, created = api(sock, "POST", "/v1.41/containers/create", body)
        assert status == 201, created
        cid = created["Id"]
        try:
            results.append(api(sock, "POST", f"/v1.41/containers/{cid}/start"))
        finally:
            api(sock, "DELETE", f"/v1.41/containers/{cid}?force=1")
    assert results[1] == results[0]
    assert results[0][0] == 500


def test_info_security_options_as_docker(ref, daemon) -> None:
    outputs = [run("info", "-f", "{{json .SecurityOptions}}").stdout
               for run in (ref.docker, daemon.docker)]
    assert outputs[1] == outputs[0] == b'["name=seccomp,profile=default"]\n'


def test_daemon_seccomp_profile_and_no_new_privileges(profile_file) -> None:
    """tetherd --seccomp-profile PATH --no-new-privileges: the profile replaces the default for
    every container that names none, info names its path, and containers start with
    no-new-privileges unless their options say otherwise."""
    with running_daemon("--seccomp-profile", str(profile_file), "--no-new-privileges") as d:
        r = d.docker("info", "-f", "{{json .SecurityOptions}}")
        assert r.stdout == f'["name=seccomp,profile={profile_file}"]\n'.encode()
        r = d.docker("run", "--rm", "busybox", "mkdir", "/newdir")
        assert r.returncode == 1 and b"Permission denied" in r.stderr, r.stderr
        r = d.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "mkdir",
                     "/newdir")
        assert r.returncode == 0, r.stderr
        assert status_fields(d.docker) == ("NoNewPrivs: 1", "Seccomp: 2")
        assert status_fields(d.docker, "--security-opt", "no-new-privileges=false") == \
            ("NoNewPrivs: 0", "Seccomp: 2")


# masked and read-only paths Docker 20.10 and tether share (tether adds Docker 28's two)
SYSTEM_PATHS = ("/proc/keys /proc/kcore /proc/acpi /proc/scsi /proc/timer_list /sys/firmware "
                "/proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger").split()


@pytest.mark.parametrize("options", [(), ("--security-opt", "systempaths=unconfined"),
                                     ("--cap-add", "SYS_ADMIN", "--security-opt",
                                      "systempaths=unconfined")])
def test_system_paths_as_docker(ref, daemon, options) -> None:
    """`--security-opt systempaths=unconfined` (the CLI sends empty MaskedPaths and
    ReadonlyPaths) leaves /proc and /sys unmasked and writable where Docker does."""
    script = ("awk '{print $5, $6}' /proc/self/mountinfo | grep -E '^(" + "|".join(SYSTEM_PATHS)
              + ") ' | sort")
    outputs = []
    for run in (ref.docker, daemon.docker):
        r = run("run", "--rm", *options, "busybox", "sh", "-c", script)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout.decode())
    assert outputs[1] == outputs[0]
    assert ("/proc/keys" in outputs[0]) == (not options)


@pytest.mark.parametrize("options", [("--security-opt", "systempaths=unconfined"),
                                     ("--privileged",)])
def test_system_paths_in_inspect_as_docker(ref, daemon, options) -> None:
    views = []
    for run in (ref.docker, daemon.docker):
        cid = run("create", *options, "busybox", "true").stdout.decode().strip()
        try:
            views.append(run("inspect", "-f", "{{json .HostConfig.MaskedPaths}} "
                             "{{json .HostConfig.ReadonlyPaths}}", cid).stdout)
        finally:
            run("rm", "-f", cid)
    assert views[1] == views[0]


def test_system_paths_given_through_the_api(daemon) -> None:
    """MaskedPaths/ReadonlyPaths sent by a client replace the defaults (also of a privileged
    container, as dockerd)."""
    body = {"Image": "busybox", "Cmd": ["sh", "-c", "awk '{print $5, $6}' /proc/self/mountinfo"],
            "HostConfig": {"MaskedPaths": ["/proc/cpuinfo"], "ReadonlyPaths": ["/proc/sys"],
                           "Privileged": True}}
    status, created = daemon.api("POST", "/v1.41/containers/create", body)
    assert status == 201, created
    cid = created["Id"]
    try:
        assert daemon.api("POST", f"/v1.41/containers/{cid}/start")[0] == 204
        assert daemon.api("POST", f"/v1.41/containers/{cid}/wait")[1]["StatusCode"] == 0
        logs = daemon.docker("logs", cid).stdout.decode().splitlines()
        assert sorted(line.split()[0] for line in logs if line.startswith("/proc/")) == \
            ["/proc/cpuinfo", "/proc/sys"]  # the defaults (/proc/keys...) are replaced
        assert any(line.startswith("/proc/sys ro") for line in logs)
    finally:
        daemon.api("DELETE", f"/v1.41/containers/{cid}?force=1")
