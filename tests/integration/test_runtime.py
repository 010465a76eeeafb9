"""The runtime driver against real runc and conmon: a busybox rootfs on overlay, one bundle per test."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tether.runtime import Runtime, build_spec
from tether.runtime.logs import read_log
from tether.runtime.mounts import is_mounted, mount_overlay, unmount

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists("/usr/bin/conmon"),
                       reason="needs root, runc and conmon"),
]

BUSYBOX = "/bin/busybox"
DOCKER_CAPS = "00000000a80425fb"
TIMEOUT = 10


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox image layer: the binary, a symlink per applet, the usual top-level dirs."""
    root = tmp_path_factory.mktemp("lower")
    (root / "bin").mkdir()
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    for d in ("proc", "sys", "dev", "etc", "tmp", "root"):
        (root / d).mkdir()
    return root


class Harness:
    """Makes containers on an overlay rootfs and removes all of them afterwards."""

    def __init__(self, base: Path, lower: Path) -> None:
        self.base = base
        self.lower = lower
        self.runtime = Runtime(base / "state")
        self.cids: list[str] = []
        self.rootfses: list[Path] = []

    def run(self, coro: Awaitable) -> object:
        return asyncio.run(asyncio.wait_for(coro, TIMEOUT))

    def bundle(self, cid: str, args: list[str], tty: bool = False) -> Path:
        work = self.base / cid
        rootfs = work / "rootfs"
        mount_overlay([self.lower], work / "upper", work / "work", rootfs)
        self.rootfses.append(rootfs)
        bundle = work / "bundle"
        bundle.mkdir()
        spec = build_spec(rootfs=str(rootfs), args=args, env=["PATH=/bin", "TERM=xterm"], cwd="/",
                          uid=0, gid=0, additional_gids=[0], tty=tty, hostname=cid, netns_path=None,
                          mounts=[], cgroups_path=f"/tether-test-{cid}")
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    async def create(self, cid: str, args: list[str], *, tty: bool = False, stdin: bool = False) -> None:
        bundle = self.bundle(cid, args, tty)
        self.cids.append(cid)
        await self.runtime.create(cid, bundle, tty=tty, stdin=stdin, log_path=self.log(cid))

    def log(self, cid: str) -> Path:
        return self.base / cid / "ctr.log"

    def output(self, cid: str) -> bytes:
        return b"".join(data for _, _, data in read_log(self.log(cid)))

    def cleanup(self) -> None:
        for cid in self.cids:
            try:
                asyncio.run(self.runtime.delete(cid))
            except Exception:  # keep cleaning the rest
                subprocess.run(["runc", "--root", str(self.runtime.runc_root), "delete", "--force", cid],
                               capture_output=True)
        for rootfs in self.rootfses:
            unmount(rootfs)


@pytest.fixture
def h(tmp_path: Path, lower: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path, lower)
    try:
        yield harness
    finally:
        harness.cleanup()


def alive(pid: int) -> bool:
    """True while `pid` runs; an exited process waiting for init to reap it counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


async def read_until(read: Callable[[], Awaitable[tuple[int, bytes] | None]], needle: bytes) -> bytes:
    seen = b""
    while needle not in seen:
        item = await read()
        if item is None:
            raise AssertionError(f"output ended before {needle!r}: {seen!r}")
        seen += item[1]
    return seen


async def read_all(read: Callable[[], Awaitable[tuple[int, bytes] | None]]) -> list[tuple[int, bytes]]:
    items = []
    while (item := await read()) is not None:
        items.append(item)
    return items


def test_exit_code_and_log(h: Harness) -> None:
    async def go() -> int:
        await h.create("exit3", ["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert h.runtime.status("exit3") == "created"
        pid = await h.runtime.start("exit3")
        assert pid > 0
        return await h.runtime.wait("exit3")

    assert h.run(go()) == 3
    assert h.runtime.exit_code("exit3") == 3
    assert h.runtime.status("exit3") == "stopped"
    entries = [(stream, data) for _, stream, data in read_log(h.log("exit3"))]
    assert sorted(entries) == [(1, b"out\n"), (2, b"err\n")]


def test_create_failure_raises_runc_message_and_cleans_up(h: Harness) -> None:
    with pytest.raises(RuntimeError, match='exec: "nosuchbinary": executable file not found'):
        h.run(h.create("bad", ["nosuchbinary"]))
    assert h.runtime.status("bad") is None
    assert not (h.runtime.ctr_dir / "bad").exists()
    assert not (h.runtime.sock_dir / "bad").exists()


def test_sigkill_gives_137(h: Harness) -> None:
    async def go() -> int:
        await h.create("k9", ["sleep", "100"])
        await h.runtime.start("k9")
        await h.runtime.kill("k9", signal.SIGKILL)
        return await h.runtime.wait("k9")

    assert h.run(go()) == 137


def test_sigterm_reaches_pid1_and_gives_143(h: Harness) -> None:
    """PID 1 of a namespace ignores default-action signals, so the command traps TERM, as images do."""
    async def go() -> int:
        await h.create("k15", ["sh", "-c", "trap 'echo got TERM; exit 143' TERM; echo ready; "
                                           "while :; do sleep 0.05; done"])
        attach = await h.runtime.attach("k15")
        await h.runtime.start("k15")
        await read_until(attach.read, b"ready")
        await h.runtime.kill("k15", signal.SIGTERM)
        attach.close()
        return await h.runtime.wait("k15")

    assert h.run(go()) == 143
    assert b"got TERM\n" in h.output("k15")


def test_kill_stopped_container_is_no_error(h: Harness) -> None:
    async def go() -> None:
        await h.create("done", ["true"])
        await h.runtime.start("done")
        await h.runtime.wait("done")
        await h.runtime.kill("done", signal.SIGKILL)

    h.run(go())


def test_wait_from_a_new_runtime_object_while_running_and_after_exit(h: Harness) -> None:
    async def go() -> tuple[int, int]:
        await h.create("w", ["sh", "-c", "sleep 0.3; exit 4"])
        await h.runtime.start("w")
        other = Runtime(h.runtime.state_dir)  # as a restarted daemon would see it
        first = await other.wait("w")
        conmon_pid = other.conmon_pid("w")
        assert conmon_pid and not alive(conmon_pid)
        return first, await Runtime(h.runtime.state_dir).wait("w")

    assert h.run(go()) == (4, 4)


def test_attach_before_start_sees_output_from_byte_0(h: Harness) -> None:
    async def go() -> list[tuple[int, bytes]]:
        await h.create("early", ["sh", "-c", "echo first; echo second >&2"])
        attach = await h.runtime.attach("early")
        await h.runtime.start("early")
        items = await read_all(attach.read)
        attach.close()
        return items

    items = h.run(go())
    assert b"".join(d for s, d in items if s == 1) == b"first\n"
    assert b"".join(d for s, d in items if s == 2) == b"second\n"


def test_stdin_through_attach_and_close_stdin(h: Harness) -> None:
    async def go() -> tuple[bytes, int]:
        await h.create("cat", ["cat"], stdin=True)
        attach = await h.runtime.attach("cat")
        await h.runtime.start("cat")
        await attach.write(b"hello\n" + b"x" * 20000 + b"\n")
        await attach.close_stdin()
        out = b"".join(d for _, d in await read_all(attach.read))
        attach.close()
        return out, await h.runtime.wait("cat")

    out, code = h.run(go())
    assert out == b"hello\n" + b"x" * 20000 + b"\n"
    assert code == 0


def test_tty_output_and_resize(h: Harness) -> None:
    async def go() -> bytes:
        # SIGWINCH interrupts busybox's `read`, hence the retries.
        script = "until read a; do :; done; stty size; until read b; do :; done; stty size"
        await h.create("tty", ["sh", "-c", script], tty=True, stdin=True)
        attach = await h.runtime.attach("tty")
        await h.runtime.start("tty")
        await h.runtime.resize("tty", 20, 70)
        await attach.write(b"\n")
        seen = await read_until(attach.read, b"20 70")
        await h.runtime.resize("tty", 33, 120)
        await attach.write(b"\n")
        seen += await read_until(attach.read, b"33 120")
        attach.close()
        assert await h.runtime.wait("tty") == 0
        return seen

    seen = h.run(go())
    assert b"20 70\r\n" in seen and b"33 120\r\n" in seen


def test_exec_without_tty(h: Harness) -> None:
    async def go() -> None:
        await h.create("ex", ["sleep", "100"])
        await h.runtime.start("ex")
        proc = await h.runtime.exec("ex", args=["sh", "-c", "echo out; echo err >&2; exit 5"], env=["PATH=/bin"],
                                    cwd="/tmp", uid=0, gid=0, additional_gids=[0], tty=False)
        items = await read_all(proc.read)
        assert b"".join(d for s, d in items if s == 1) == b"out\n"
        assert b"".join(d for s, d in items if s == 2) == b"err\n"
        assert await proc.wait() == 5

        cat = await h.runtime.exec("ex", args=["cat"], env=["PATH=/bin"], cwd="/", uid=0, gid=0,
                                   additional_gids=[0], tty=False)
        await cat.write(b"abc")
        await cat.close_stdin()
        assert b"".join(d for _, d in await read_all(cat.read)) == b"abc"
        assert await cat.wait() == 0

        who = await h.runtime.exec("ex", args=["sh", "-c", "id -u; id -G; pwd; grep CapEff /proc/self/status"],
                                   env=["PATH=/bin"], cwd="/tmp", uid=1000, gid=1000,
                                   additional_gids=[1000, 20], tty=False)
        out = b"".join(d for _, d in await read_all(who.read))
        assert out.split(b"\n")[:3] == [b"1000", b"1000 20", b"/tmp"]
        assert await who.wait() == 0

    h.run(go())


def test_exec_killed_by_signal_gives_128_plus_n(h: Harness) -> None:
    async def go() -> int:
        await h.create("exk", ["sleep", "100"])
        await h.runtime.start("exk")
        proc = await h.runtime.exec("exk", args=["sh", "-c", "echo up; exec sleep 100"], env=["PATH=/bin"],
                                    cwd="/", uid=0, gid=0, additional_gids=[0], tty=False)
        await read_until(proc.read, b"up")
        os.kill(proc.pid, signal.SIGTERM)  # runc forwards it to the process
        return await proc.wait()

    assert h.run(go()) == 143


def test_exec_with_tty_and_resize(h: Harness) -> None:
    async def go() -> bytes:
        await h.create("ext", ["sleep", "100"])
        await h.runtime.start("ext")
        script = "tty; stty size; read x; stty size; exit 7"
        proc = await h.runtime.exec("ext", args=["sh", "-c", script],
                                    env=["PATH=/bin", "TERM=xterm"], cwd="/", uid=0, gid=0,
                                    additional_gids=[0], tty=True, console_size=(30, 120))
        seen = await read_until(proc.read, b"30 120")  # the size it was started with
        await proc.resize(25, 90)
        # runc applies a resize when its SIGWINCH handler runs: give it that moment
        await asyncio.sleep(0.5)
        await proc.write(b"\n")
        seen += await read_until(proc.read, b"25 90")
        assert await proc.wait() == 7
        return seen

    out = h.run(go())
    assert b"/dev/pts/" in out and b"30 120" in out and b"25 90" in out


def test_security_defaults_inside(h: Harness) -> None:
    # This VM's kernel has no /proc/kcore; /proc/keys is masked the same way and is not empty here.
    masked = "/proc/kcore" if os.path.exists("/proc/kcore") else "/proc/keys"
    script = f"grep Cap /proc/self/status; echo pid=$$; wc -c < {masked}; cat /proc/1/cmdline | tr '\\0' ' '"

    async def go() -> int:
        await h.create("sec", ["sh", "-c", script])
        await h.runtime.start("sec")
        return await h.runtime.wait("sec")

    assert h.run(go()) == 0
    out = h.output("sec").decode()
    caps = dict(line.split(":\t") for line in out.splitlines() if line.startswith("Cap"))
    assert caps == {"CapInh": "0000000000000000", "CapPrm": DOCKER_CAPS, "CapEff": DOCKER_CAPS,
                    "CapBnd": DOCKER_CAPS, "CapAmb": "0000000000000000"}
    assert "pid=1\n" in out
    assert "\n0\n" in out  # masked with /dev/null
    assert out.rstrip().endswith("sh -c " + script)


def test_delete_running_container_leaves_nothing(h: Harness) -> None:
    async def go() -> int:
        await h.create("del", ["sleep", "100"], stdin=True)
        await h.runtime.start("del")
        conmon_pid = h.runtime.conmon_pid("del")
        assert conmon_pid and h.runtime.status("del") == "running"
        await h.runtime.delete("del")
        return conmon_pid

    conmon_pid = h.run(go())
    assert not alive(conmon_pid)
    assert h.runtime.status("del") is None
    assert not (h.runtime.runc_root / "del").exists()
    assert not (h.runtime.ctr_dir / "del").exists()
    assert not (h.runtime.sock_dir / "del").exists()
    assert not any(Path("/sys/fs/cgroup").glob("*/tether-test-del"))
    unmount(h.base / "del" / "rootfs")
    assert not is_mounted(h.base / "del" / "rootfs")


def test_overlay_mount_is_idempotent(h: Harness, lower: Path) -> None:
    target = h.base / "ov" / "rootfs"
    h.rootfses.append(target)
    for _ in range(2):
        mount_overlay([lower], h.base / "ov" / "upper", h.base / "ov" / "work", target)
    (target / "tmp" / "new").write_text("x")
    assert (h.base / "ov" / "upper" / "tmp" / "new").exists()
    unmount(target)
    assert not is_mounted(target)
    unmount(target)  # not mounted any more: no error
