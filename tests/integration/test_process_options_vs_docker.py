"""The process options of `docker run` (issue 13, item 6) and its log options (item 8) on tether
and on a real Docker 20.10, side by side: what the container sees (ulimit, /proc/self/status,
/dev/shm, sysctls, device nodes, its PID 1, its MAC), what inspect shows, and dockerd's errors.

Kept apart from 20.10 on purpose: a net.* sysctl with `--network host` is refused (runc's text)
where 20.10's runc let it through onto the host's namespace (its host-netns check looked only at
symlinked paths). Log rotation is compared in what `docker logs` gives back, not byte for byte:
tether's files are conmon's format, rotated by the daemon within a poll interval.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from conftest import running_daemon
from harness import api
from reference import ReferenceEngine, reference_fixture

SHOWN = [
    (["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn"),
    (["--ulimit", "nproc=50", "--ulimit", "core=-1"], "ulimit -u; ulimit -Hu; ulimit -c"),
    (["--shm-size", "1m"], "df -k /dev/shm | tail -1; grep -c ' /dev/shm ' /proc/mounts"),
    ([], "df -k /dev/shm | tail -1"),
    (["--ipc", "none"], "grep -c ' /dev/shm ' /proc/mounts; true"),
    (["--ipc", "host", "--shm-size", "1m"],
     "readlink /proc/self/ns/ipc; grep ' /dev/shm ' /proc/mounts; df -k /dev/shm | tail -1"),
    (["--ipc", "shareable", "--shm-size", "2m"], "grep ' /dev/shm ' /proc/mounts"),
    (["--ipc", "host", "--sysctl", "net.core.somaxconn=300"], "cat /proc/sys/net/core/somaxconn"),
    (["--sysctl", "kernel.shmmax=1000", "--sysctl", "net.ipv4.ip_forward=1",
      "--sysctl", "fs.mqueue.msg_max=20"],
     "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/sys/fs/mqueue/msg_max"),
    (["--group-add", "1234", "--group-add", "audio", "--group-add", "10"],
     "id; grep Groups /proc/self/status"),
    (["-u", "nobody", "--group-add", "audio"], "id; grep Groups /proc/self/status"),
    (["--oom-score-adj", "500"], "cat /proc/self/oom_score_adj"),
    (["--oom-score-adj", "1000"], "cat /proc/self/oom_score_adj"),
    (["--device", "/dev/zero:/dev/myzero"],
     "stat -c '%F %t:%T %a' /dev/myzero; head -c 3 /dev/myzero | od -An -c"),
    (["--device", "/dev/full:/dev/myfull:r"],
     "stat -c '%F %t:%T' /dev/myfull; head -c 2 /dev/myfull | od -An -c; "
     "echo x > /dev/myfull; echo write=$?"),
    (["--device", "/dev/full:/dev/myfull:rw"], "echo x > /dev/myfull; echo write=$?"),
    ([], "mknod /tmp/f c 1 7 && head -c 1 /tmp/f | od -An -c; echo read=$?"),
    (["--device-cgroup-rule", "c 1:7 r"],
     "mknod /tmp/f c 1 7 && head -c 1 /tmp/f | od -An -c; echo read=$?"),
    (["--init"], "ps -o pid,args | head -2"),
    (["--init", "--ulimit", "nofile=50"], "ps -o pid,args | head -2; ulimit -n"),
]


ref = reference_fixture("procopts")


def both(ref, daemon, *args: str) -> tuple[tuple, tuple]:
    results = []
    for run in (ref.docker, daemon.docker):
        r = run(*args, timeout=120)
        results.append((r.returncode, r.stdout.decode(), r.stderr.decode()))
    return results[0], results[1]


@pytest.mark.parametrize("options,script", SHOWN)
def test_container_sees_as_docker(ref, daemon, options, script) -> None:
    docker, tether = both(ref, daemon, "run", "--rm", *options, "busybox", "sh", "-c", script)
    assert tether == docker, tether
    assert docker[0] == 0, docker


def test_init_reaps_zombies_and_forwards_sigterm(ref, daemon) -> None:
    """Under --init an orphan's zombie is reaped (none stays), and `docker stop` ends a shell
    that ignores nothing itself at once with SIGTERM forwarded (exit 143, not a kill's 137)."""
    for run in (ref.docker, daemon.docker):
        name = f"procinit{uuid.uuid4().hex[:8]}"
        r = run("run", "-d", "--init", "--name", name, "busybox", "sh", "-c",
                "(sleep 0.2 &) ; sleep 1; ps -o stat | grep -c Z; sleep 100")
        assert r.returncode == 0, r.stderr
        try:
            for _ in range(100):  # until the shell has counted the zombies
                if run("logs", name).stdout:
                    break
                time.sleep(0.1)
            top = run("top", name, "-o", "pid,args")
            assert top.returncode == 0, top.stderr
            assert b"/sbin/docker-init -- sh -c" in top.stdout
        finally:
            stop = run("stop", "-t", "30", name)
            assert stop.returncode == 0
            code = run("inspect", "-f", "{{.State.ExitCode}}", name)
            logs = run("logs", name)
            run("rm", "-f", name)
        assert logs.stdout.decode().split() == ["0"], logs
        assert code.stdout.decode().strip() == "143"


INSPECTED = ["ShmSize", "Ulimits", "Sysctls", "GroupAdd", "Devices", "DeviceCgroupRules",
             "Init", "OomScoreAdj", "LogConfig"]


@pytest.mark.parametrize("options", [
    [],
    ["--shm-size", "2m", "--init", "--oom-score-adj", "7", "--ulimit", "nofile=10:20",
     "--sysctl", "kernel.shmmax=1000", "--group-add", "5", "--device", "/dev/zero:/dev/myzero",
     "--device-cgroup-rule", "c 1:7 r", "--log-opt", "max-size=1k"],
    ["--log-driver", "local"],
    ["--log-driver", "none"],
])
def test_inspect_as_docker(ref, daemon, options) -> None:
    shown = []
    for run in (ref.docker, daemon.docker):
        r = run("create", *options, "busybox", "true")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.decode().strip()
        try:
            host_config = json.loads(run("inspect", "-f", "{{json .HostConfig}}", cid).stdout)
        finally:
            run("rm", cid)
        shown.append({key: host_config.get(key) for key in INSPECTED})
    assert shown[1] == shown[0]


@pytest.mark.parametrize("options", [
    ["--group-add", "nosuch"],
    ["--device", "/dev/nope"],
    ["--log-driver", "foo"],
    ["--log-opt", "max-size=foo"],
    ["--log-opt", "max-size=-1"],
    ["--log-opt", "max-size=0"],
    ["--log-opt", "bar=2"],
    ["--log-driver", "local", "--log-opt", "bar=2"],
    ["--log-driver", "local", "--log-opt", "max-size=-1"],
    ["--log-opt", "max-file=0", "--log-opt", "max-size=1k"],
    ["--log-opt", "max-file=x", "--log-opt", "max-size=1k"],
    ["--log-opt", "mode=foo"],
    ["--oom-score-adj", "1001"],
    ["--ulimit", "nofile=300:200"],
    ["--sysctl", "kernel.foo=1"],
    ["--ipc", "host", "--sysctl", "kernel.shmmax=1000"],
    ["--ipc", "host", "--sysctl", "fs.mqueue.msg_max=20"],
    ["--device-cgroup-rule", "x 1:2 rwm"],
])
def test_refused_as_docker(ref, daemon, options) -> None:
    docker, tether = both(ref, daemon, "run", "--rm", *options, "busybox", "true")
    assert tether == docker
    assert docker[0] != 0


def test_negative_oom_score_adj_as_docker(ref, daemon) -> None:
    """Lowering a process's OOM score needs CAP_SYS_RESOURCE: where the engines have it the
    container shows -500, where they do not (this VM's root lacks it) runc's nsexec fails the
    start, and both engines must then report runc's last error as dockerd does, not nsexec's
    earlier line."""
    docker, tether = both(ref, daemon, "run", "--rm", "--oom-score-adj", "-500", "busybox",
                          "cat", "/proc/self/oom_score_adj")
    assert tether == docker


@pytest.mark.parametrize("host_config,config", [
    ({"ShmSize": -1}, {}),
    ({"OomScoreAdj": -1001}, {}),
    ({"Ulimits": [{"Name": "foo", "Soft": 1, "Hard": 2}]}, {}),
    ({"Ulimits": [{"Name": "nofile", "Soft": 300, "Hard": 200}]}, {}),
    ({"Sysctls": {"kernel.foo": "1"}}, {}),
    ({"Sysctls": {"kernel.hostname": "x"}}, {}),
    ({"GroupAdd": ["nosuch"]}, {}),
    ({"GroupAdd": ["-5"]}, {}),
    ({"Devices": [{"PathOnHost": "/dev/nope", "PathInContainer": "/dev/x",
                   "CgroupPermissions": "rwm"}]}, {}),
    ({"DeviceCgroupRules": ["x 1:2 rwm"]}, {}),
    ({"LogConfig": {"Type": "foo", "Config": {}}}, {}),
    ({"LogConfig": {"Type": "json-file", "Config": {"max-size": "foo"}}}, {}),
    ({"LogConfig": {"Type": "json-file", "Config": {"max-file": "x", "max-size": "1k"}}}, {}),
    ({"LogConfig": {"Type": "none", "Config": {"max-file": "3"}}}, {}),
    ({}, {"MacAddress": "zz"}),
])
def test_api_errors_as_docker(ref, daemon, host_config, config) -> None:
    """Status and text at create, then at start, through the API (the docker CLI checks some
    of these values itself before it sends them)."""
    results = []
    for sock in (ref.host[len("unix://"):], daemon.sock):
        body = {"Image": "busybox", "Cmd": ["true"], **config, "HostConfig": host_config}
        status, reply = api(sock, "POST", "/v1.41/containers/create", body)
        steps = [(status, reply.get("message") if isinstance(reply, dict) else reply)]
        if status == 201:
            cid = reply["Id"]
            status, reply = api(sock, "POST", f"/v1.41/containers/{cid}/start")
            steps.append((status, reply.get("message") if isinstance(reply, dict) else reply))
            api(sock, "DELETE", f"/v1.41/containers/{cid}?force=1")
        results.append(steps)
    assert results[1] == results[0]


@pytest.mark.parametrize("network", ["default", "user"])
def test_mac_address_as_docker(ref, daemon, network) -> None:
    """Config.MacAddress on the default bridge and on a user network (the container's
    NetworkMode): the container's eth0 has it, inspect shows it."""
    mac = "02:42:ac:11:00:99"
    seen = []
    net = f"procmac{uuid.uuid4().hex[:6]}"
    for sock, run in ((ref.host[len("unix://"):], ref.docker), (daemon.sock, daemon.docker)):
        body = {"Image": "busybox", "Cmd": ["cat", "/sys/class/net/eth0/address"],
                "MacAddress": mac}
        if network == "user":
            assert run("network", "create", "--subnet", "10.231.0.0/24", net).returncode == 0
            body["HostConfig"] = {"NetworkMode": net}
        status, reply = api(sock, "POST", "/v1.41/containers/create", body)
        assert status == 201, reply
        cid = reply["Id"]
        try:
            r = run("start", "-a", cid)
            shown = run("inspect", "-f", "{{.Config.MacAddress}} {{.NetworkSettings.MacAddress}} "
                        "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}", cid)
            seen.append((r.returncode, r.stdout, shown.stdout))
        finally:
            run("rm", "-f", cid)
            if network == "user":
                run("network", "rm", net)
    assert seen[1] == seen[0]
    assert seen[0][1].decode().strip() == mac


def test_mac_address_on_user_network(daemon) -> None:
    """The docker CLI (API 1.44) sends --mac-address in the endpoint settings; on a user
    network the container's interface has it."""
    net = f"procmac{uuid.uuid4().hex[:6]}"
    assert daemon.docker("network", "create", net).returncode == 0
    try:
        r = daemon.docker("run", "--rm", "--network", net, "--mac-address", "02:42:0a:0b:0c:0d",
                          "busybox", "cat", "/sys/class/net/eth0/address")
        assert (r.returncode, r.stdout) == (0, b"02:42:0a:0b:0c:0d\n"), r.stderr
        r = daemon.docker("run", "--rm", "--mac-address", "02:42:0a:0b:0c:0e",
                          "busybox", "cat", "/sys/class/net/eth0/address")
        assert (r.returncode, r.stdout) == (0, b"02:42:0a:0b:0c:0e\n"), r.stderr
    finally:
        daemon.docker("network", "rm", net)


def test_host_network_net_sysctl_refused(daemon) -> None:
    """Later Docker's behaviour, not 20.10's (see the module's docstring)."""
    r = daemon.docker("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1",
                      "busybox", "true")
    assert r.returncode != 0
    assert (b'sysctl "net.ipv4.ip_forward" not allowed in host network namespace' in r.stderr
            or b'sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace'
            in r.stderr), r.stderr


def test_log_max_size_applied(daemon) -> None:
    """json-file's max-size (max-file 1): the log never holds more than the limit, and its
    newest lines are kept."""
    r = daemon.docker("run", "-d", "--log-opt", "max-size=2k", "busybox", "sh", "-c",
                      "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    try:
        assert daemon.docker("wait", cid).stdout.strip() == b"0"
        lines = daemon.docker("logs", cid).stdout.decode().split()
        assert lines and lines[-1] == "line-399"
        assert len(lines) < 100  # 400 lines of ~60 bytes in conmon's format: rotated
        first = int(lines[0].split("-")[1])
        assert lines == [f"line-{i}" for i in range(first, 400)]
    finally:
        daemon.docker("rm", "-f", cid)


@pytest.mark.parametrize("groups", [[1000, 1001], ["1000", "1001"]])
def test_sdk_group_add(daemon, groups) -> None:
    """docker-py 7.1.0's test_group_id_ints / test_group_id_strings (api_container_test.py)."""
    client = daemon.sdk()
    api = client.api
    container = api.create_container("busybox", "id -G",
                                     host_config=api.create_host_config(group_add=groups))
    try:
        api.start(container)
        assert api.wait(container)["StatusCode"] == 0
        shown = api.logs(container).decode("utf-8").strip().split(" ")
        assert "1000" in shown and "1001" in shown
    finally:
        api.remove_container(container, force=True)
        client.close()


DAEMON_FLAGS = ["--default-ulimit", "nofile=77:88", "--default-ulimit", "nproc=99", "--init",
                "--log-driver", "local", "--log-opt", "max-size=3k"]
# an init of the test's own for --init-path: it says so, then runs the command as tini would
CUSTOM_INIT = '#!/bin/sh\necho "custom-init $*"\nshift\nexec "$@"\n'


def test_daemon_defaults_as_docker(monkeypatch, tmp_path) -> None:
    """dockerd's --default-ulimit (merged under the container's own), --init with --init-path,
    and the --log-driver/--log-opt defaults (the options merged into a container's own for the
    same driver only), on both engines started with the same flags."""
    init = tmp_path / "custom-init"
    init.write_text(CUSTOM_INIT)
    init.chmod(0o755)
    tmp_path.chmod(0o755)
    flags = [*DAEMON_FLAGS, "--init-path", str(init)]
    monkeypatch.setenv("REFDOCKER_FLAGS", " ".join(flags))
    engine = ReferenceEngine("procopts-flags")
    seen = []
    try:
        engine.start()
        with running_daemon(*flags) as d:
            for run in (engine.docker, d.docker):
                outputs = []
                for options in ([], ["--ulimit", "nofile=10:20"], ["--init=false"]):
                    r = run("run", "--rm", *options, "busybox", "sh", "-c",
                            "ulimit -n; ulimit -Hn; ulimit -u; ps -o pid,args | head -2")
                    outputs.append((r.returncode, r.stdout, r.stderr))
                for options in (["--log-opt", "max-file=1"], ["--log-driver", "json-file"],
                                ["--log-driver", "json-file", "--log-opt", "max-file=2"]):
                    cid = run("create", *options, "busybox").stdout.decode().strip()
                    outputs.append(run("inspect", "-f", "{{json .HostConfig.LogConfig}}",
                                       cid).stdout)
                    run("rm", cid)
                cid = run("run", "-d", "--init=false", "busybox", "echo", "kept").stdout.strip()
                run("wait", cid)
                outputs.append(run("logs", cid).stdout)
                run("rm", cid)
                seen.append(outputs)
    finally:
        engine.stop()
    assert seen[1] == seen[0]
    first = seen[0][0][1].splitlines()  # the init's line, the ulimits, then ps
    assert first[:4] == [b"custom-init -- sh -c ulimit -n; ulimit -Hn; ulimit -u; ps -o pid,args"
                         b" | head -2", b"77", b"88", b"99"]
    assert json.loads(seen[0][3]) == {"Type": "local",
                                      "Config": {"max-file": "1", "max-size": "3k"}}
    assert seen[0][-1] == b"kept\n"


CLI_FLAGS = ["--shm-size", "2m", "--init", "--oom-score-adj", "7", "--ulimit", "nofile=10:20",
             "--sysctl", "kernel.shmmax=1000", "--group-add", "audio", "--device",
             "/dev/zero:/dev/myzero:rw", "--device-cgroup-rule", "c 1:7 r", "--log-driver",
             "json-file", "--log-opt", "max-size=1k", "--mac-address", "02:42:ac:11:00:98"]


def test_tether_cli_flags_reach_the_api(daemon) -> None:
    """tether's run/create send what the docker CLI sends for the same flags."""
    shown = []
    for run in (daemon.docker, daemon.tether):
        r = run("create", *CLI_FLAGS, "busybox", "true")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.decode().strip()
        try:
            inspected = json.loads(daemon.docker("inspect", cid).stdout)[0]
        finally:
            daemon.docker("rm", cid)
        shown.append(({key: inspected["HostConfig"].get(key) for key in INSPECTED},
                      inspected["Config"].get("MacAddress")))
    assert shown[1] == shown[0]


@pytest.mark.parametrize("flags", [["--ulimit", "nofile=300:200"], ["--ulimit", "foo=1"],
                                   ["--sysctl", "kernel.foo=1"], ["--shm-size", "x"],
                                   ["--device-cgroup-rule", "x 1:2 rwm"],
                                   ["--mac-address", "zz"]])
def test_tether_cli_refuses_as_docker(daemon, flags) -> None:
    results = [run("create", *flags, "busybox", "true") for run in (daemon.docker, daemon.tether)]
    assert [r.returncode for r in results] == [125, 125]
    first_line = results[0].stderr.decode().splitlines()[0].removeprefix("docker: ")
    assert first_line in results[1].stderr.decode(), results[1].stderr


def _rotated_logs(run, options: list[str]) -> list[str]:
    """Lines `docker logs` gives of a container that wrote 300 numbered lines slowly enough
    for a poll to see each file fill (10 ms a line)."""
    r = run("run", "-d", *options, "busybox", "sh", "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); usleep 10000; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    try:
        assert run("wait", cid, timeout=120).stdout.strip() == b"0"
        logs = run("logs", cid)
        assert logs.returncode == 0 and logs.stdout, logs
        return logs.stdout.decode().split()
    finally:
        run("rm", "-f", cid)


def test_log_rotation_over_files_as_docker(ref, daemon) -> None:
    """max-size=1k, max-file=3: the oldest lines are gone, the newest kept in order, on both."""
    options = ["--log-opt", "max-size=1k", "--log-opt", "max-file=3"]
    for run in (ref.docker, daemon.docker):
        lines = _rotated_logs(run, options)
        first = int(lines[0].split("-")[1])
        assert lines == [f"line-{i}" for i in range(first, 300)], lines
        assert 200 < first < 300  # about 3 kB kept of ~3 kB per 40 lines in either format


def test_exec_inherits_process_options_as_docker(ref, daemon) -> None:
    """An exec gets the container's rlimits, OOM score and --group-add groups (also as
    another user), as dockerd builds it from the container's process. Soft and hard nofile are
    equal: this host's runc (1.1.5, Go 1.19) lets Go raise an exec's soft nofile to its hard
    limit now and then, on Docker as on tether (1 exec in 40 here, both engines)."""
    seen = []
    for run in (ref.docker, daemon.docker):
        name = f"procexec{uuid.uuid4().hex[:8]}"
        r = run("run", "-d", "--name", name, "--group-add", "audio", "--ulimit", "nofile=100:100",
                "--ulimit", "nproc=70:80", "--oom-score-adj", "300", "--init", "busybox", "sleep",
                "60")
        assert r.returncode == 0, r.stderr
        try:
            a = run("exec", name, "sh", "-c",
                    "id; ulimit -n; ulimit -u; ulimit -Hu; cat /proc/self/oom_score_adj")
            b = run("exec", "-u", "nobody", name, "id")
            seen.append((a.returncode, a.stdout, b.returncode, b.stdout))
        finally:
            run("rm", "-f", name)
    assert seen[1] == seen[0]


def test_log_driver_none_as_docker(ref, daemon) -> None:
    """No log is kept; `docker logs` is refused with dockerd's text and status."""
    seen = []
    for sock, run in ((ref.host[len("unix://"):], ref.docker), (daemon.sock, daemon.docker)):
        r = run("run", "-d", "--log-driver", "none", "busybox", "echo", "hi")
        cid = r.stdout.decode().strip()
        try:
            run("wait", cid)
            logs = run("logs", cid)
            status, reply = api(sock, "GET", f"/v1.41/containers/{cid}/logs?stdout=1")
            seen.append((logs.returncode, logs.stdout, logs.stderr, status, reply))
        finally:
            run("rm", "-f", cid)
    assert seen[1] == seen[0]
    assert seen[0][3] == 501


def test_logs_follow_across_rotations_as_docker(ref, daemon) -> None:
    """`docker logs -f` from the start of a container whose log rotates keeps every line.
    Docker 20.10 repeats some lines after a rotation (its follower re-reads part of a file;
    later Docker fixed its follower); tether gives each once."""
    wanted = [f"line-{i}" for i in range(200)]
    for run in (ref.docker, daemon.docker):
        r = run("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox",
                "sh", "-c", "sleep 1; i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); "
                "usleep 5000; done")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.decode().strip()
        try:
            followed = run("logs", "-f", cid, timeout=120).stdout.decode().split()
        finally:
            run("rm", "-f", cid)
        if run == daemon.docker:
            assert followed == wanted
        else:
            assert sorted(set(followed), key=wanted.index) == wanted


def test_rotation_resumes_after_a_daemon_restart(fresh_daemon) -> None:
    """A container taken back by a restarted tetherd has its log rotated again: after the
    restart the files stay within max-file and the newest lines are kept."""
    d = fresh_daemon
    r = d.docker("run", "-d", "-i", "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
                 "busybox", "sh", "-c",
                 "while [ ! -e /go ]; do usleep 50000; done; i=0; "
                 "while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); usleep 5000; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    d.stop()
    d.start()
    assert d.docker("exec", cid, "touch", "/go").returncode == 0
    assert d.docker("wait", cid, timeout=120).stdout.strip() == b"0"
    lines = d.docker("logs", cid).stdout.decode().split()
    first = int(lines[0].split("-")[1])
    assert lines == [f"line-{i}" for i in range(first, 300)]
    assert first > 200
    logs = sorted(p.name for p in d.data_root.glob(f"containers/{cid}/container.log*"))
    assert logs in (["container.log", "container.log.1"], ["container.log.1"]), logs
    d.docker("rm", "-f", cid)
