"""The HTTP client against a scripted unix-socket server: negotiation, errors, chunked bodies,
hijack; plus argv parsing, docker-style usage errors and daemon auto-start."""
import json
import socket
import stat
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tether.cli import main as cli_main
from tether.cli.client import (Client, CliError, ConnectError, DaemonError, resolve_host,
                               socket_path)
from tether.cli.daemon_start import start_daemon
from tether.cli.runopts import RunOptions, create_body, env_list, publish_map, qualified_name, tagged

Reply = Callable[[bytes], bytes]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, list[bytes], list[Reply]]]:
    """A unix socket answering each request with the next scripted reply."""
    path = str(tmp_path / "d.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    seen: list[bytes] = []
    replies: list[Reply] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        with conn:
            buf = b""
            while replies:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                if b"\r\n\r\n" not in buf:
                    break
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(next((l.split(b":")[1] for l in head.split(b"\r\n")
                                   if l.lower().startswith(b"content-length")), b"0"))
                while len(buf) < length:
                    buf += conn.recv(65536)
                seen.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                conn.sendall(replies.pop(0)(seen[-1]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, seen, replies
    listener.close()


def ping(version: str) -> Reply:
    return lambda req: f"HTTP/1.1 200 OK\r\nApi-Version: {version}\r\nContent-Length: 0\r\n\r\n".encode()


def json_reply(status: int, obj: object, chunked: bool = False) -> Reply:
    body = json.dumps(obj).encode()
    if chunked:
        mid = len(body) // 2
        payload = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (mid, body[:mid], len(body) - mid, body[mid:])
        return lambda req: (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                            f"Transfer-Encoding: chunked\r\n\r\n").encode() + payload
    return lambda req: (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_host_resolution_order() -> None:
    assert resolve_host("unix:///a", {"TETHER_HOST": "unix:///b"}) == "unix:///a"
    assert resolve_host(None, {"TETHER_HOST": "unix:///b", "DOCKER_HOST": "unix:///c"}) == "unix:///b"
    assert resolve_host(None, {"DOCKER_HOST": "unix:///c"}) == "unix:///c"
    assert resolve_host(None, {}) == "unix:///run/tether/tether.sock"
    with pytest.raises(CliError, match="only unix://"):
        socket_path("tcp://127.0.0.1:2375")


def test_negotiates_down_and_uses_version_prefix(server) -> None:
    path, seen, replies = server
    replies += [ping("1.41"), json_reply(200, [{"Id": "x"}], chunked=True)]
    client = Client(f"unix://{path}")
    assert client.json("GET", "/containers/json", {"all": 1, "filters": None}) == [{"Id": "x"}]
    assert seen[0].startswith(b"HEAD /_ping HTTP/1.1\r\n")
    assert seen[1].startswith(b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\n")


def test_caps_version_at_1_44_and_reports_daemon_errors(server) -> None:
    path, seen, replies = server
    replies += [ping("1.51"), json_reply(404, {"message": "No such container: nope"})]
    client = Client(f"unix://{path}")
    with pytest.raises(DaemonError) as info:
        client.request("POST", "/containers/nope/start")
    assert info.value.status == 404
    assert info.value.message == "Error response from daemon: No such container: nope"
    assert b"/v1.44/containers/nope/start" in seen[1]


def test_hijack_keeps_bytes_that_came_with_the_101(server) -> None:
    path, seen, replies = server
    replies += [ping("1.44"), lambda req: (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: "
                                            b"application/vnd.docker.raw-stream\r\n\r\nhello")]
    conn = Client(f"unix://{path}").hijack("/containers/x/attach", {"stream": 1})
    assert conn.initial == b"hello"
    assert b"Upgrade: tcp" in seen[1]
    conn.sock.close()


def test_connect_error_wording(tmp_path: Path) -> None:
    client = Client(f"unix://{tmp_path}/none.sock")
    with pytest.raises(ConnectError) as info:
        _ = client.version  # the property negotiates, so it connects
    assert info.value.message == (f"Cannot connect to the tether daemon at unix://{tmp_path}/none.sock."
                                  " Is the tether daemon running?")


def test_autostart_runs_the_daemon_and_waits_for_its_socket(tmp_path: Path) -> None:
    sock = tmp_path / "auto.sock"
    fake = tmp_path / "tetherd"
    fake.write_text(f"#!{sys.executable}\nimport socket, time\ns = socket.socket(socket.AF_UNIX)\n"
                    f"s.bind({str(sock)!r}); s.listen(); time.sleep(3)\n")
    fake.chmod(0o755)
    (tmp_path / "log").write_text("an earlier daemon's lines\n")
    (tmp_path / "log").chmod(0o644)
    start_daemon(str(sock), executable=fake, log_path=tmp_path / "log", timeout=10)
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(sock))
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o600  # next to the socket: private
    failing = tmp_path / "bad"
    failing.write_text("#!/bin/sh\necho boom\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(CliError, match="exited with code 3"):
        start_daemon(str(tmp_path / "never.sock"), executable=failing, log_path=tmp_path / "log")
    assert "boom" in (tmp_path / "log").read_text()


def _parse(argv: list[str]) -> dict:
    cli_main._register()
    command = cli_main.cli.commands[argv[0]]
    return command.make_context(argv[0], argv[1:], obj=None).params


def test_run_options_stop_at_the_image() -> None:
    params = _parse(["run", "-it", "--rm", "-e", "A=1", "--name=x", "busybox", "ls", "-l", "--rm"])
    assert params["interactive"] and params["tty"] and params["rm"]
    assert params["image"] == "busybox" and params["command"] == ("ls", "-l", "--rm")
    assert params["env"] == ("A=1",) and params["name"] == "x"


def test_usage_errors_are_worded_like_docker(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(["run", "--foo"])
    assert info.value.code == 125
    assert capsys.readouterr().err == ("unknown flag: --foo\n\nUsage:  tether run [OPTIONS] IMAGE "
                                       "[COMMAND] [ARG...]\n\nRun 'tether run --help' for more information\n")
    with pytest.raises(SystemExit) as info:
        cli_main.main(["ps", "--format"])
    assert info.value.code == 125
    assert capsys.readouterr().err == ("flag needs an argument: --format\n\nUsage:  tether ps [OPTIONS]"
                                       "\n\nRun 'tether ps --help' for more information\n")
    with pytest.raises(SystemExit) as info:
        cli_main.main(["stop"])
    assert info.value.code == 1
    assert capsys.readouterr().err.startswith("tether: 'tether stop' requires at least 1 argument\n")


def test_create_body_like_docker_cli() -> None:
    opts = RunOptions(image="busybox", command=["sh"], detach=True, interactive=True, name="web",
                      env=["A=1", "HOME", "NOPE"], publish=["8080:80", "127.0.0.1::53/udp", "[::1]:9:9"],
                      publish_all=True, expose=["90"], links=["db:db"], restart="on-failure:3")
    body = create_body(opts, environ={"HOME": "/root"})
    assert body["Env"] == ["A=1", "HOME=/root"]
    assert body["AttachStdin"] is False and body["OpenStdin"] is True and body["AttachStdout"] is False
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9/tcp": {}, "90/tcp": {}}
    host = body["HostConfig"]
    assert host["PortBindings"]["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": ""}]
    assert host["PortBindings"]["9/tcp"] == [{"HostIp": "::1", "HostPort": "9"}]
    assert host["Links"] == ["db:db"] and host["PublishAllPorts"] is True
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {}}}
    with pytest.raises(CliError):
        create_body(RunOptions(image="x", restart="sometimes"))


def test_env_file_and_refs(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nX=1\n\nY\n")
    assert env_list(["Z=2"], [str(env_file)], {"Y": "y"}) == ["X=1", "Y=y", "Z=2"]
    assert tagged("busybox") == "busybox:latest" and tagged("localhost:5000/a") == "localhost:5000/a:latest"
    assert qualified_name("busybox") == "docker.io/library/busybox"
    assert qualified_name("me/app") == "docker.io/me/app"
    assert qualified_name("localhost:5000/a") == "localhost:5000/a"
    assert publish_map(["80"])[0] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
