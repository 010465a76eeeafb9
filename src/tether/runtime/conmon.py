"""Run containers with runc under conmon, the monitor that outlives the daemon.

conmon (2.1.6) facts this module relies on, from its source and checked here:
- Without `--sync` it forks once: the first process writes the monitor's pid to `-P` and exits at
  once; the monitor calls setsid, becomes a subreaper, runs `runc create` and reports on the pipe
  named by `_OCI_SYNCPIPE`: `{"data": PID}` when created, `{"data": -1, "message": RUNC_STDERR}`
  when runc failed. The container process is then held by runc until `runc start`.
- At exit it drains the output, writes the status (code, or 128+signal) to `<persist dir>/exit`
  (`-0`), closes attach connections and removes its attach symlink.
- Attach: a SOCK_SEQPACKET socket `attach` in the bundle, reached through the symlink
  `<socket-dir-path>/<cuuid>` -> bundle (conmon's way around the 108-byte socket path limit).
  Every output packet starts with one byte naming the pipe (2 stdout, 3 stderr; a tty is all 2).
  Packets sent to it go to the container's stdin. When a client's connection reads EOF (it shut down
  its write side or closed), conmon closes the container's stdin if `-i` was given, unless
  `--leave-stdin-open`: that is Docker's StdinOnce.
- Resize: `1 HEIGHT WIDTH\\n` written to the `ctl` fifo in the bundle (`-t` containers);
  `2 0 0\\n` there makes conmon reopen its log file (after a rotation).
- Logs: `-l k8s-file:PATH`.
"""
from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import signal
import socket
from pathlib import Path

from tether.runtime import execfifo
from tether.runtime.execs import ExecProcess, clear_sessions, start_exec

_LOST_MONITOR_CODE = 255  # Docker's code when the monitor vanished without an exit status
_CONMON_EXIT_TIMEOUT = 10.0
_SEQPACKET_MAX = 4096  # conmon reads stdin packets into a buffer of 8 KiB; longer ones truncate
_RECV_SIZE = 65536
_STREAM_OF_PIPE = {2: 1, 3: 2}
_RUNC_MSG = re.compile(r'(?:level=(\w+) )?msg="((?:[^"\\]|\\.)*)"')


def _runc_message(stderr: str) -> str:
    """runc's error text without logrus' `time=... level=error msg="..."` wrapping: its last
    error-level message, as containerd reports a runtime failure (runc's nsexec may log an
    earlier one, e.g. a refused oom_score_adj, that Docker does not show)."""
    found = [(level, _unquote(m)) for level, m in _RUNC_MSG.findall(stderr)]
    errors = [m for level, m in found if level == "error"]
    if errors:
        return errors[-1]
    return found[-1][1] if found else stderr.strip()


def _unquote(quoted: str) -> str:
    """A logrus-quoted message (Go's %q) as text; escapes JSON does not know (`\\x01`, `\\a`,
    which a command name from an image can put there) leave it as it came."""
    try:
        return json.loads(f'"{quoted}"')
    except ValueError:
        return quoted


async def _read_line(fd: int) -> bytes:
    """Read from a pipe until a newline or EOF, without blocking the event loop."""
    os.set_blocking(fd, False)
    data = b""
    while b"\n" not in data:
        await _wait_fd_readable(fd)
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return data


async def _wait_fd_readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _frozen(cgroup_paths: dict[str, str]) -> bool:
    """Whether the container's cgroup is frozen, read where runc reads it: the v1 freezer when
    there is one (a hybrid host's unified cgroup does not freeze), else the v2 cgroup.freeze."""
    if "freezer" in cgroup_paths:
        path, frozen = Path(cgroup_paths["freezer"]) / "freezer.state", "FROZEN"
    elif "" in cgroup_paths:
        path, frozen = Path(cgroup_paths[""]) / "cgroup.freeze", "1"
    else:
        return False
    try:
        return path.read_text().strip() == frozen
    except OSError:
        return False


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), None if no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _open_pidfd(pid: int, comm: str) -> int | None:
    """A pidfd for `pid` if it is still alive and really runs `comm` (pids get reused)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == comm:
                return fd
    except FileNotFoundError:
        pass
    os.close(fd)
    return None


class Attachment:
    """One client's view of a container's stdio through conmon's attach socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def read(self) -> tuple[int, bytes] | None:
        """(1 stdout | 2 stderr, data); None once conmon closed the stream (the process exited)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                packet = await loop.sock_recv(self._sock, _RECV_SIZE)
            except OSError:
                return None
            if not packet:
                return None
            if len(packet) > 1:
                return _STREAM_OF_PIPE.get(packet[0], 1), packet[1:]

    async def write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, len(data), _SEQPACKET_MAX):
            await loop.sock_sendall(self._sock, data[start:start + _SEQPACKET_MAX])

    async def close_stdin(self) -> None:
        """Half-close: conmon then closes the container's stdin (unless created stdin_once=False)."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._sock.close()


class Runtime:
    """Drives conmon and runc for the containers under one state directory.

    Layout of `state_dir`: `runc/` is runc's --root; `sock/<id>` is conmon's attach symlink to the
    bundle; `ctr/<id>/` holds conmon's pid file (`conmon.pid`), the container pid file (`pid`), the
    exit status (`exit`), conmon's early stderr (`conmon.err`) and a `bundle` symlink; `exec/`
    one directory per exec session (runc's pid file, a tty's console socket), emptied at start.
    """

    def __init__(self, state_dir: Path, runc: str = "/usr/sbin/runc",
                 conmon: str = "/usr/bin/conmon") -> None:
        self.state_dir = Path(state_dir)
        self.runc = runc
        self.conmon = conmon
        self.runc_root = self.state_dir / "runc"
        self.sock_dir = self.state_dir / "sock"
        self.ctr_dir = self.state_dir / "ctr"
        self.exec_dir = self.state_dir / "exec"
        clear_sessions(self.exec_dir)
        # each container's OCI process, as its config.json holds it, and that file's identity:
        # an exec starts from it, and parsing the whole config (seccomp profile included) on
        # every exec cost more than the rest of the exec set-up
        self._processes: dict[str, tuple[tuple[int, int, int], dict]] = {}

    def _dir(self, cid: str) -> Path:
        return self.ctr_dir / cid

    def _conmon_args(self, cid: str, bundle: Path, tty: bool, stdin: bool, stdin_once: bool,
                     log_path: Path | None, log_size_max: int | None = None) -> list[str]:
        d = self._dir(cid)
        args = [self.conmon, "--api-version", "1", "-c", cid, "-u", cid, "-n", cid,
                "-r", self.runc, f"--runtime-arg=--root={self.runc_root}", "-b", str(bundle),
                "-p", str(d / "pid"), "-P", str(d / "conmon.pid"),
                "-l", f"k8s-file:{log_path}" if log_path is not None else "none",
                "-0", str(d), "--socket-dir-path", str(self.sock_dir)]
        if log_size_max:  # conmon starts the file anew when a line would pass it
            args.append(f"--log-size-max={log_size_max}")
        if tty:
            args.append("-t")
        if stdin:
            args.append("-i")
            if not stdin_once:
                args.append("--leave-stdin-open")
        return args

    async def create(self, cid: str, bundle: Path, *, tty: bool, stdin: bool,
                     log_path: Path | None,
                     stdin_once: bool = True, log_size_max: int | None = None) -> None:
        """Create the container under a new conmon; its process is held until `start`.

        `stdin_once` is Docker's StdinOnce: the container's stdin closes when an attached client
        ends its input; `log_path` None keeps no log (`--log-driver none`), `log_size_max` is
        the log file's size limit in bytes. Raises RuntimeError
        with runc's message (everything cleaned up) on failure.
        """
        d = self._dir(cid)
        if d.exists() or self._runc_state(cid) is not None:
            await self.delete(cid)  # leftovers of an earlier container with this id
        for directory in (d, self.runc_root, self.sock_dir):
            directory.mkdir(parents=True, exist_ok=True)
        (d / "bundle").symlink_to(Path(bundle).resolve())
        sync_r, sync_w = os.pipe()
        try:
            with open(d / "conmon.err", "wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    *self._conmon_args(cid, bundle, tty, stdin, stdin_once, log_path,
                                       log_size_max),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=err, pass_fds=(sync_w,), cwd=d,
                    env={**os.environ, "_OCI_SYNCPIPE": str(sync_w)})
            os.close(sync_w)
            sync_w = -1
            await proc.wait()
            reply = await _read_line(sync_r)
        finally:
            os.close(sync_r)
            if sync_w >= 0:
                os.close(sync_w)
        await self._check_created(cid, reply)

    async def _check_created(self, cid: str, reply: bytes) -> None:
        try:
            result = json.loads(reply)
        except ValueError:
            result = {"data": -1, "message": ""}
        if result.get("data", -1) > 0:
            return
        message = _runc_message(result.get("message", "")) or self._conmon_error(cid)
        await self.delete(cid)
        raise RuntimeError(message)

    def _conmon_error(self, cid: str) -> str:
        try:
            text = (self._dir(cid) / "conmon.err").read_text().strip()
        except FileNotFoundError:
            text = ""
        return text or "conmon exited without creating the container"

    async def _runc(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.runc_root), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await proc.communicate()
        return proc.returncode or 0, stderr.decode(errors="replace")

    async def start(self, cid: str) -> int:
        """Let the created container's process run (`runc start`'s checks and texts, its fifo
        step done here: runtime/execfifo.py); returns its pid."""
        pid = _read_int(self._dir(cid) / "pid")
        if pid is None:
            raise RuntimeError("container does not exist")
        pidfd = execfifo.pidfd(pid)  # first: the status check below then pins it to init
        try:
            status = self.status(cid)
            if status is None:
                raise RuntimeError("container does not exist")
            if status == "stopped":
                raise RuntimeError("cannot start a container that has stopped")
            if status == "running":
                raise RuntimeError("cannot start an already running container")
            if status != "created":
                raise RuntimeError(f"cannot start a container in the {status} state")
            await execfifo.release(self.runc_root / cid, pidfd)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
        return pid

    async def pause(self, cid: str) -> None:
        """Freeze every process of the container (cgroup freezer), as `docker pause`."""
        await self._runc_checked("pause", cid)

    async def resume(self, cid: str) -> None:
        await self._runc_checked("resume", cid)

    async def _runc_checked(self, *args: str) -> None:
        code, stderr = await self._runc(*args)
        if code != 0:
            raise RuntimeError(_runc_message(stderr))

    def _runc_state(self, cid: str) -> dict | None:
        try:
            return json.loads((self.runc_root / cid / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def status(self, cid: str) -> str | None:
        """runc's status, computed as runc does from its state file without running runc."""
        state = self._runc_state(cid)
        if state is None:
            return None
        stat = _proc_stat(state.get("init_process_pid", 0))
        if stat is None or stat[0] in ("Z", "X") or int(stat[19]) != state.get("init_process_start"):
            return "stopped"
        if (self.runc_root / cid / "exec.fifo").exists():
            return "created"
        return "paused" if _frozen(state.get("cgroup_paths") or {}) else "running"

    def pid(self, cid: str) -> int | None:
        """The container's init pid while its process exists."""
        if self.status(cid) not in ("created", "running", "paused"):
            return None
        state = self._runc_state(cid)
        return state["init_process_pid"] if state else None

    def cgroup_paths(self, cid: str) -> dict[str, str]:
        """Where runc put the container's cgroup (controller -> directory, "" for the unified
        hierarchy), from its state: kept until `runc delete`, also after the process exited."""
        state = self._runc_state(cid) or {}
        paths = state.get("cgroup_paths") or {}
        return {str(k): str(v) for k, v in paths.items()} if isinstance(paths, dict) else {}

    def exit_code(self, cid: str) -> int | None:
        return _read_int(self._dir(cid) / "exit")

    def conmon_pid(self, cid: str) -> int | None:
        return _read_int(self._dir(cid) / "conmon.pid")

    async def kill(self, cid: str, signal_number: int) -> None:
        """Signal the container's init process; nothing happens if it is not running."""
        pid = self.pid(cid)
        if pid is None:
            return
        try:
            os.kill(pid, signal_number)
        except ProcessLookupError:
            pass

    async def wait(self, cid: str) -> int:
        """The exit code, once conmon has recorded it; works for conmons of earlier daemons.

        Waits on a pidfd of conmon (not our child after it daemonised), so no polling. If conmon
        vanished without writing a status (killed), the code is 255, as Docker reports a lost shim.
        """
        code = self.exit_code(cid)
        if code is not None:
            return code
        conmon_pid = self.conmon_pid(cid)
        pidfd = _open_pidfd(conmon_pid, "conmon") if conmon_pid else None
        if pidfd is not None:
            try:
                await _wait_fd_readable(pidfd)
            finally:
                os.close(pidfd)
        code = self.exit_code(cid)
        return _LOST_MONITOR_CODE if code is None else code

    def _connect(self, cid: str, name: str, sock_type: int) -> socket.socket:
        """Connect to a socket in the bundle through conmon's symlink, whatever its path length."""
        dir_fd = os.open(self.sock_dir / cid, os.O_PATH | os.O_DIRECTORY)
        sock = socket.socket(socket.AF_UNIX, sock_type | socket.SOCK_CLOEXEC)
        try:
            sock.connect(f"/proc/self/fd/{dir_fd}/{name}")
        except OSError:
            sock.close()
            raise
        finally:
            os.close(dir_fd)
        sock.setblocking(False)
        return sock

    async def attach(self, cid: str) -> Attachment:
        """A new connection to the container's stdio; raises RuntimeError when it has exited."""
        try:
            return Attachment(self._connect(cid, "attach", socket.SOCK_SEQPACKET))
        except OSError as e:
            raise RuntimeError(f"cannot attach to container {cid}: {e.strerror}") from e

    async def resize(self, cid: str, height: int, width: int) -> None:
        """Set a tty container's window size through conmon's control fifo."""
        self._control(cid, f"1 {height} {width}\n".encode())

    async def reopen_log(self, cid: str) -> None:
        """Have conmon start writing to a new file at the log's path (after a rotation moved
        the old one away)."""
        self._control(cid, b"2 0 0\n")

    def _control(self, cid: str, message: bytes) -> None:
        """One message to conmon's control fifo, without blocking; nothing to do for a container
        that is gone (no fifo, or no conmon reading it)."""
        try:
            fd = os.open(self.sock_dir / cid / "ctl", os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENXIO):
                return
            raise
        try:
            os.write(fd, message)
        finally:
            os.close(fd)

    def _container_process(self, cid: str) -> dict:
        """The process of the container's config.json, parsed again only when the file was
        rewritten (a new start writes a new one)."""
        path = self._dir(cid) / "bundle" / "config.json"
        st = path.stat()
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._processes.get(cid)
        if cached is None or cached[0] != identity:
            cached = identity, json.loads(path.read_text())["process"]
            self._processes[cid] = cached
        return cached[1]

    async def exec(self, cid: str, *, args: list[str], env: list[str], cwd: str, uid: int,
                   gid: int, additional_gids: list[int], tty: bool,
                   caps: list[str] | None = None,
                   console_size: tuple[int, int] | None = None) -> ExecProcess:
        """Run a process in the running container; it gets the container's capabilities
        unless `caps` says otherwise (Docker's `exec --privileged` passes all), its rlimits,
        OOM score and no-new-privileges setting (runc applies the container's seccomp filter itself). A tty
        starts at `console_size` (height, width), so the first prompt is drawn at the client's
        size."""
        container = self._container_process(cid)
        capabilities = (container["capabilities"] if caps is None else
                        {"bounding": caps, "effective": caps, "permitted": caps})
        process = {
            "terminal": tty, "args": args, "env": env, "cwd": cwd,
            "user": {"uid": uid, "gid": gid, "additionalGids": additional_gids},
            "capabilities": capabilities,
            "noNewPrivileges": bool(container.get("noNewPrivileges")),
        }
        for key in ("rlimits", "oomScoreAdj"):  # as dockerd's exec, from the container's process
            if key in container:
                process[key] = container[key]
        if tty and console_size:  # applied by runc's init before the process runs
            process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
        return await start_exec(self.runc, str(self.runc_root), cid, process, self.exec_dir)

    async def delete(self, cid: str) -> None:
        """Remove the container whatever its state: kill it, let conmon finish, remove its files."""
        if self._runc_state(cid) is not None:
            await self._runc("delete", "--force", cid)
        await self._stop_conmon(cid)
        self._processes.pop(cid, None)
        shutil.rmtree(self._dir(cid), ignore_errors=True)
        link = self.sock_dir / cid
        if link.is_symlink():
            link.unlink()

    async def _stop_conmon(self, cid: str) -> None:
        """Wait for conmon to notice the exit and leave; kill it if it does not."""
        conmon_pid = self.conmon_pid(cid)
        pidfd = _open_pidfd(conmon_pid, "conmon") if conmon_pid else None
        if pidfd is None:
            return
        try:
            await asyncio.wait_for(_wait_fd_readable(pidfd), _CONMON_EXIT_TIMEOUT)
        except TimeoutError:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            await _wait_fd_readable(pidfd)
        finally:
            os.close(pidfd)
