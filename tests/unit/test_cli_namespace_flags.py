"""`tether run/create --ipc/--pid/--uts`: the namespace modes the docker CLI takes, sent as
HostConfig fields only when given, with the docker CLI 28's own refusals of --pid and --uts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli_client import json_reply, ping, server  # noqa: F401  (server is a fixture)
from test_cli_links import run_cli

ID = "c" * 64


def test_the_modes_are_sent_as_given(server,  # noqa: F811
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, seen, replies = server
    replies += [ping("1.44"), json_reply(201, {"Id": ID, "Warnings": []})] * 2
    code, out, _ = run_cli(["-H", f"unix://{path}", "create", "--network", "container:app",
                            "--ipc", "container:app", "--pid", "container:app", "--uts", "host",
                            "busybox"], capsys)
    assert (code, out) == (0, ID + "\n")
    host = json.loads(seen[-1].split(b"\r\n\r\n", 1)[1])["HostConfig"]
    assert (host["NetworkMode"], host["IpcMode"], host["PidMode"], host["UTSMode"]) == (
        "container:app", "container:app", "container:app", "host")
    assert run_cli(["-H", f"unix://{path}", "create", "busybox"], capsys)[0] == 0
    host = json.loads(seen[-1].split(b"\r\n\r\n", 1)[1])["HostConfig"]
    assert not {"IpcMode", "PidMode", "UTSMode"} & set(host)


@pytest.mark.parametrize("command", ["create", "run"])
@pytest.mark.parametrize("flags,message", [
    (["--pid", "foo"], "--pid: invalid PID mode"),
    (["--pid", "container:"], "--pid: invalid PID mode"),
    (["--uts", "container:x"], "--uts: invalid UTS mode"),
])
def test_refused_before_any_request_in_the_docker_clis_words(
        command: str, flags: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    host = f"unix://{tmp_path}/absent.sock"  # nothing listens: a request would fail differently
    assert run_cli(["-H", host, command, *flags, "busybox"], capsys) == (
        125, "", f"tether: {message}\n\nRun 'tether {command} --help' for more information\n")
