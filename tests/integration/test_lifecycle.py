"""Container lifecycle through the tether CLI, against a real daemon in its own netns."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse

import pytest

pytestmark = pytest.mark.integration


def out(result) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout.decode().strip()


def inspect(daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return body


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_foreground_run_exit_code(daemon):
    r = daemon.tether("run", "--rm", "busybox", "sh", "-c", "echo hello; echo oops >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == b"hello\n"
    assert r.stderr == b"oops\n"
    r = daemon.tether("run", "--name", "kept", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3
    assert inspect(daemon, "kept")["State"]["ExitCode"] == 3
    out(daemon.tether("rm", "kept"))


def test_foreground_run_with_stdin(daemon):
    r = daemon.tether("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo end", input=b"in\n")
    assert (r.returncode, r.stdout) == (0, b"in\nend\n"), r.stderr


def test_detached_run_logs_and_rm(daemon):
    cid = out(daemon.tether("run", "-d", "--name", "logger", "busybox", "sh", "-c",
                            "for i in 1 2 3; do echo line$i; done; sleep 30"))
    assert len(cid) == 64
    wait_for(lambda: out(daemon.tether("logs", "logger")).count("line") == 3, what="logs")
    assert out(daemon.tether("logs", "--tail", "1", "logger")) == "line3"
    stamped = out(daemon.tether("logs", "-t", "logger")).splitlines()[0]
    assert stamped.endswith("Z line1") and stamped[4] == "-" and stamped[10] == "T"
    assert out(daemon.tether("rm", "-f", "logger")) == "logger"
    assert daemon.leaks(cid) == []


def test_inside_the_container(daemon):
    cid = out(daemon.tether("run", "-d", "busybox", "sleep", "60"))
    try:
        assert out(daemon.tether("exec", cid, "hostname")) == cid[:12]
        assert out(daemon.tether("exec", cid, "cat", "/proc/1/cmdline")).replace("\0", " ").strip() \
            == "sleep 60"
        caps = out(daemon.tether("exec", cid, "grep", "CapBnd", "/proc/1/status")).split()[1]
        assert caps == "00000000a80425fb"  # Docker's 14 default capabilities
        # masked paths read as empty (/proc/kcore is absent on some kernels; when there, masked)
        assert out(daemon.tether("exec", cid, "sh", "-c",
                                 "cat /proc/keys /proc/timer_list | wc -c")) == "0"
        assert daemon.tether("exec", cid, "sh", "-c",
                             "[ ! -e /proc/kcore ] || [ $(wc -c </proc/kcore) = 0 ]").returncode == 0
        daemon.tether("exec", cid, "sh", "-c", "echo changed > /bin/busybox-note; rm /bin/ls")
    finally:
        daemon.tether("rm", "-f", cid)
    # the image is untouched: a new container still has /bin/ls and no note
    r = daemon.tether("run", "--rm", "busybox", "sh", "-c", "ls /bin/ls && ! test -e /bin/busybox-note")
    assert r.returncode == 0, r.stderr


def test_exec_exit_codes_env_workdir_user(daemon):
    cid = out(daemon.tether("run", "-d", "-e", "FOO=bar", "busybox", "sleep", "60"))
    try:
        assert daemon.tether("exec", cid, "sh", "-c", "exit 7").returncode == 7
        assert out(daemon.tether("exec", "-e", "X=1", cid, "sh", "-c", "echo $FOO$X")) == "bar1"
        assert out(daemon.tether("exec", "-w", "/tmp", cid, "pwd")) == "/tmp"
        assert out(daemon.tether("exec", "-u", "nobody", cid, "id", "-un")) == "nobody"
        r = daemon.tether("exec", "-i", cid, "sh", "-c", "cat; echo done", input=b"from stdin\n")
        assert r.stdout == b"from stdin\ndone\n"
    finally:
        daemon.tether("rm", "-f", cid)


def test_stop_sends_sigterm_then_sigkill(daemon):
    # a shell that traps TERM exits 0 on stop
    polite = out(daemon.tether("run", "-d", "busybox", "sh", "-c",
                               "trap 'exit 0' TERM; while true; do sleep 0.1; done"))
    stubborn = out(daemon.tether("run", "-d", "busybox", "sh", "-c",
                                 "trap '' TERM; while true; do sleep 0.1; done"))
    try:
        time.sleep(0.3)
        assert out(daemon.tether("stop", polite)) == polite
        assert inspect(daemon, polite)["State"]["ExitCode"] == 0
        started = time.monotonic()
        assert out(daemon.tether("stop", "-t", "1", stubborn)) == stubborn
        assert time.monotonic() - started >= 1
        assert inspect(daemon, stubborn)["State"]["ExitCode"] == 137
    finally:
        daemon.tether("rm", "-f", polite, stubborn)


def test_kill_with_signal(daemon):
    # PID 1 only receives signals it handles, so the shell traps USR1 and says so in its code
    cid = out(daemon.tether("run", "-d", "busybox", "sh", "-c",
                            "trap 'exit 42' USR1; while true; do sleep 0.1; done"))
    try:
        time.sleep(0.3)
        out(daemon.tether("kill", "-s", "USR1", cid))
        wait_for(lambda: not inspect(daemon, cid)["State"]["Running"], what="exit")
        assert inspect(daemon, cid)["State"]["ExitCode"] == 42
        r = daemon.tether("kill", cid)
        assert r.returncode == 1 and b"is not running" in r.stderr
    finally:
        daemon.tether("rm", "-f", cid)


def test_restart_keeps_logs_and_counts(daemon):
    cid = out(daemon.tether("run", "-d", "busybox", "sh", "-c", "echo start; sleep 60"))
    try:
        first = inspect(daemon, cid)["State"]["StartedAt"]
        assert out(daemon.tether("restart", "-t", "0", cid)) == cid
        state = inspect(daemon, cid)["State"]
        assert state["Running"] and state["StartedAt"] != first
        wait_for(lambda: out(daemon.tether("logs", cid)).count("start") == 2, what="logs")
    finally:
        daemon.tether("rm", "-f", cid)


def test_restart_policies(daemon):
    failing = out(daemon.tether("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c",
                                "exit 1"))
    always = out(daemon.tether("run", "-d", "--restart", "always", "busybox", "sh", "-c",
                               "sleep 0.2; exit 0"))
    never = out(daemon.tether("run", "-d", "busybox", "sh", "-c", "exit 1"))
    try:
        wait_for(lambda: inspect(daemon, failing)["RestartCount"] == 2
                 and inspect(daemon, failing)["State"]["Status"] == "exited", what="on-failure:2")
        time.sleep(0.5)
        assert inspect(daemon, failing)["RestartCount"] == 2
        wait_for(lambda: inspect(daemon, always)["RestartCount"] >= 2, what="always restarts")
        assert inspect(daemon, never)["RestartCount"] == 0
        out(daemon.tether("stop", always))
        count = inspect(daemon, always)["RestartCount"]
        time.sleep(0.6)
        assert inspect(daemon, always)["State"]["Status"] == "exited"
        assert inspect(daemon, always)["RestartCount"] == count
    finally:
        daemon.tether("rm", "-f", failing, always, never)


def test_rm_force_of_running_container_leaves_nothing(daemon):
    cid = out(daemon.tether("run", "-d", "busybox", "sleep", "60"))
    r = daemon.tether("rm", cid)
    assert r.returncode == 1
    assert b"You cannot remove a running container" in r.stderr
    assert out(daemon.tether("rm", "-f", cid)) == cid
    assert daemon.leaks(cid) == []


def test_names_conflicts_and_errors(daemon):
    cid = out(daemon.tether("create", "--name", "taken", "busybox", "true"))
    try:
        r = daemon.tether("run", "--name", "taken", "busybox", "true")
        assert r.returncode == 125
        assert (f'Conflict. The container name "/taken" is already in use by container "{cid}". '
                "You have to remove (or rename) that container to be able to reuse that name."
                ).encode() in r.stderr
        r = daemon.tether("run", "--name", "bad/name", "busybox", "true")
        assert r.returncode == 125
        assert (b"Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                in r.stderr)
        r = daemon.tether("inspect", "nosuchthing")
        assert r.returncode == 1 and b"No such object: nosuchthing" in r.stderr
        r = daemon.tether("stop", "nosuchthing")
        assert r.returncode == 1 and b"No such container: nosuchthing" in r.stderr
        r = daemon.tether("run", "nosuchimage")
        assert r.returncode == 125 and b"nosuchimage" in r.stderr
        status, body = daemon.api("POST", "/containers/create", {"Image": "nosuchimage"})
        assert (status, body["message"]) == (404, "No such image: nosuchimage:latest")
    finally:
        daemon.tether("rm", "-f", cid)


def test_generated_names_and_ps(daemon):
    cid = out(daemon.tether("run", "-d", "busybox", "sleep", "60"))
    try:
        name = inspect(daemon, cid)["Name"]
        assert name.startswith("/") and "_" in name
        table = out(daemon.tether("ps")).splitlines()
        assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                    "PORTS", "NAMES"]
        row = next(line for line in table if line.startswith(cid[:12]))
        assert "Up " in row and row.endswith(name[1:]) and '"sleep 60"' in row
        assert cid[:12] in out(daemon.tether("ps", "-q")).split()
    finally:
        daemon.tether("rm", "-f", cid)


def test_inspect_format_and_json(daemon):
    cid = out(daemon.tether("run", "-d", "--name", "fmt", "-l", "a=b", "busybox", "sleep", "60"))
    try:
        assert out(daemon.tether("inspect", "-f", "{{.Name}} {{.State.Running}}", "fmt")) \
            == "/fmt true"
        assert json.loads(out(daemon.tether("inspect", "-f", "{{json .Config.Labels}}", "fmt"))) \
            == {"a": "b"}
        body = json.loads(out(daemon.tether("inspect", "fmt")))
        assert body[0]["Id"] == cid and body[0]["Config"]["Hostname"] == cid[:12]
    finally:
        daemon.tether("rm", "-f", cid)


def test_import_and_images(daemon, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "hello.txt").write_text("imported\n")
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    subprocess.run(["ln", "-s", "busybox", str(rootfs / "bin" / "sh")], check=True)
    subprocess.run(["ln", "-s", "busybox", str(rootfs / "bin" / "cat")], check=True)
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
    image_id = out(daemon.tether("import", "-c", "ENV GREETING=hi", "-c", 'CMD ["cat", "/hello.txt"]',
                                 "-", "imported:1.0", input=tar))
    assert image_id.startswith("sha256:")
    assert "imported" in out(daemon.tether("images"))
    r = daemon.tether("run", "--rm", "imported:1.0")
    assert r.stdout == b"imported\n"
    r = daemon.tether("run", "--rm", "imported:1.0", "sh", "-c", "echo $GREETING")
    assert r.stdout == b"hi\n"
    out(daemon.tether("tag", "imported:1.0", "imported:again"))
    out(daemon.tether("rmi", "imported:again"))
    out(daemon.tether("rmi", "imported:1.0"))
    assert "imported" not in out(daemon.tether("images"))


def test_logs_follow_until_exit_and_since(daemon):
    cid = out(daemon.tether("run", "-d", "busybox", "sh", "-c",
                            "echo one; sleep 1; echo two >&2; sleep 0.5"))
    try:
        r = daemon.tether("logs", "-f", cid)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"one\n", b"two\n")
        future = str(int(time.time()) + 100)
        assert out(daemon.tether("logs", "--since", future, cid)) == ""
    finally:
        daemon.tether("rm", "-f", cid)


def test_list_filters(daemon):
    a = out(daemon.tether("run", "-d", "--name", "flt-a", "-l", "role=db", "busybox", "sleep", "60"))
    b = out(daemon.tether("run", "-d", "--name", "flt-b", "busybox", "sh", "-c", "exit 2"))
    try:
        out(daemon.tether("wait", b))

        def ids(filters: dict) -> set[str]:
            query = urllib.parse.quote(json.dumps(filters))
            status, items = daemon.api("GET", f"/containers/json?all=1&filters={query}")
            assert status == 200, items
            return {i["Id"] for i in items}
        assert ids({"label": ["role=db"]}) == {a}
        assert ids({"name": {"flt-": True}}) == {a, b}
        assert ids({"status": ["exited"], "name": ["flt-"]}) == {b}
        assert ids({"exited": ["2"]}) == {b}
        assert a in ids({"ancestor": ["busybox"]})
        assert ids({"id": [a[:10]]}) == {a}
        status, items = daemon.api("GET", "/containers/json?filters=notjson")
        assert status == 400
    finally:
        daemon.tether("rm", "-f", a, b)
