"""Exec instances: `docker exec` sessions in a running container.

Like dockerd, exec instances live in the daemon's memory only: an exec is a client's session and
ends with it. The exit code is recorded before the client's stream is closed, because the docker
CLI asks for it (`GET /exec/{id}/json`) right after its stream ends.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from tether.engine.containers import ContainerService
from tether.rules import detachkeys
from tether.rules import config as rules
from tether.rules.errors import ApiError, BadRequest, Conflict, NotFound
from tether.runtime.conmon import ExecProcess
from tether.runtime.user import additional_groups, resolve_user


@dataclass
class Exec:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    user: str
    working_dir: str
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    privileged: bool
    console_size: tuple[int, int] | None = None
    detach_keys: bytes = b""  # as given at create; empty means the default (ctrl-p,ctrl-q)
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    process: ExecProcess | None = field(default=None, repr=False)

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0],
                              "arguments": self.cmd[1:], "privileged": self.privileged,
                              "user": self.user},
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": base64.b64encode(self.detach_keys).decode(),  # []byte in Go's JSON
            "Pid": self.pid,
        }


def console_size(value: object) -> tuple[int, int] | None:
    """`ConsoleSize: [height, width]` of an exec body (API 1.42+); absent or zero is none."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        height, width = value
        if height > 0 and width > 0:
            return height, width
    return None


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self._execs: dict[str, Exec] = {}

    def create(self, ref: str, body: dict[str, Any]) -> Exec:
        """`POST /containers/{id}/exec`."""
        c = self.containers.get(ref)
        if not isinstance(body, dict):
            raise BadRequest("exec configuration cannot be empty")
        cmd = body.get("Cmd") or []
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise BadRequest("No exec command specified")
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")
        self.containers.links.link_env(c)  # as the reference engine: refused while a link is down
        keys = str(body.get("DetachKeys") or "")
        try:
            detach_keys = detachkeys.parse(keys) if keys else b""
        except ValueError:
            raise ApiError(f"Invalid escape keys ({keys}) provided") from None  # a 500, as dockerd
        e = Exec(id=secrets.token_hex(32), container_id=c.id, cmd=list(cmd),
                 env=list(body.get("Env") or []), user=body.get("User") or "",
                 working_dir=body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
                 attach_stdin=bool(body.get("AttachStdin")),
                 attach_stdout=bool(body.get("AttachStdout")),
                 attach_stderr=bool(body.get("AttachStderr")),
                 privileged=bool(body.get("Privileged")),
                 console_size=console_size(body.get("ConsoleSize")), detach_keys=detach_keys)
        self._execs[e.id] = e
        self._emit(e, "exec_create: " + _command_text(e.cmd))
        return e

    def _emit(self, e: Exec, action: str, **extra: str) -> None:
        c = self.containers.get(e.container_id)
        self.containers.emit(c, action, execID=e.id, **extra)

    def get(self, exec_id: str) -> Exec:
        e = self._execs.get(exec_id)
        if e is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return e

    def check_startable(self, e: Exec) -> None:
        """Errors that must reach the client as plain HTTP, before its stream is taken over."""
        if e.running or e.exit_code is not None:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        c = self.containers.get(e.container_id)
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")

    async def launch(self, e: Exec, console_size: tuple[int, int] | None = None) -> ExecProcess:
        """Start the process: the container's environment, then the exec's own variables."""
        c = self.containers.get(e.container_id)
        rootfs = str(self.containers.paths.rootfs(c.id))
        uid, gid, groups, home = resolve_user(rootfs, e.user or c.config.user)
        groups = list(dict.fromkeys([*groups, *additional_groups(
            rootfs, c.host_config.group_add)]))  # as dockerd's getUser for an exec
        # link variables are computed afresh, as Docker 20.10 does for every exec
        env = rules.merge_env(rules.process_env(c.config.env, c.config.hostname, e.tty,
                                                self.containers.links.link_env(c)), e.env)
        if not any(v.startswith("HOME=") for v in env):
            env.append(f"HOME={home}")
        cwd = e.working_dir or c.config.working_dir or "/"
        e.process = await self.containers.runtime.exec(
            c.id, args=e.cmd, env=env, cwd=cwd, uid=uid, gid=gid, additional_gids=groups,
            tty=e.tty,
            console_size=console_size or e.console_size)
        e.pid = e.process.pid
        e.running = True
        self._emit(e, "exec_start: " + _command_text(e.cmd))
        return e.process

    def detached(self, e: Exec) -> None:
        """The client typed the detach keys: the process runs on without it."""
        self._emit(e, "exec_detach")

    def finish(self, e: Exec, code: int) -> None:
        e.exit_code = code
        e.running = False
        e.process = None
        try:
            self._emit(e, "exec_die", exitCode=str(code))
        except NotFound:  # the container went away with its exec
            pass

    def discard(self, e: Exec) -> None:
        """Forget an exec no client will ask about (a health probe's): dockerd lists them in
        no view either, and a probe every second would otherwise grow the table for ever."""
        self._execs.pop(e.id, None)

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        e = self.get(exec_id)
        if e.process is None:
            raise Conflict(f"Exec {exec_id} is not running")
        await e.process.resize(height, width)


def _command_text(cmd: list[str]) -> str:
    """dockerd's `<entrypoint> <args joined>`: a trailing space when there are no arguments."""
    return f"{cmd[0]} {' '.join(cmd[1:])}"
