"""Links in the tether CLI: --link validation and body, `rm --link`'s request, NAMES of linked
containers, and the `links` table, against fixed JSON and a scripted daemon socket."""
import json
from pathlib import Path

import pytest

from tether.cli import main as cli_main
from tether.cli.formatting import container_names, link_state, links_table
from tether.cli.runopts import RunOptions, create_body, link_format_error
from test_cli_client import json_reply, ping, server  # noqa: F401  (server is a fixture)

ID_DB = "a" * 64
ID_CACHE = "b" * 64

LINK_OK = {"Name": "/web/db", "Parent": "/web", "Alias": "db", "Child": "/db", "ChildID": ID_DB,
           "ChildRunning": True, "IPAddress": "172.17.0.3", "Ports": ["5432/tcp"],
           "Stale": False, "StaleVariables": []}
LINK_STALE = {**LINK_OK, "Name": "/web/webdb", "Alias": "webdb", "Stale": True,
              "StaleVariables": ["WEBDB_PORT=tcp://172.17.0.2:5432",
                                 "WEBDB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                                 "WEBDB_PORT_5432_TCP_ADDR=172.17.0.2"]}
LINK_DOWN = {"Name": "/api/cache", "Parent": "/api", "Alias": "cache", "Child": "/redis-1",
             "ChildID": ID_CACHE, "ChildRunning": False, "IPAddress": "",
             "Ports": ["6379/tcp", "6379/udp"], "Stale": False, "StaleVariables": []}

USAGE_CREATE = ("\n\nUsage:  tether create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                "Run 'tether create --help' for more information\n")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli_main.main(argv)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def no_content(req: bytes) -> bytes:
    return b"HTTP/1.1 204 No Content\r\n\r\n"


# -- --link ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["db", "db:alias", "db:", ":alias", ":", "/db:/web/db", "a b"])
def test_link_shapes_docker_accepts(value: str) -> None:
    assert link_format_error(value) is None


@pytest.mark.parametrize("value,reason", [
    ("", "empty string specified for links"),
    ("a:b:c", "bad format for links: a:b:c"),
    ("::", "bad format for links: ::"),
    ("db:alias:", "bad format for links: db:alias:"),
])
def test_link_shapes_docker_refuses(value: str, reason: str) -> None:
    assert link_format_error(value) == reason


def test_links_go_in_hostconfig_as_typed() -> None:
    body = create_body(RunOptions(image="busybox", links=["db:alias", "x"]), environ={})
    assert body["HostConfig"]["Links"] == ["db:alias", "x"]
    assert create_body(RunOptions(image="busybox"), environ={})["HostConfig"]["Links"] is None


@pytest.mark.parametrize("command", ["create", "run"])
def test_bad_link_is_a_usage_error_before_any_request(command: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    host = f"unix://{tmp_path}/absent.sock"  # nothing listens: a request would fail differently
    code, out, err = run_cli(["-H", host, command, "--link", "db", "--link", "a:b:c", "busybox"],
                             capsys)
    usage = USAGE_CREATE.replace("create", command)
    assert (code, out, err) == (
        125, "", f'invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c{usage}')


def test_empty_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = f"unix://{tmp_path}/absent.sock"
    assert run_cli(["-H", host, "create", "--link", "", "busybox"], capsys) == (
        125, "", f'invalid argument "" for "--link" flag: empty string specified for links'
                 f"{USAGE_CREATE}")


def test_create_sends_the_links(server, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    path, seen, replies = server
    replies += [ping("1.44"), json_reply(201, {"Id": ID_DB, "Warnings": []})]
    code, out, _ = run_cli(["-H", f"unix://{path}", "create", "--link", "db:webdb", "--link", "db",
                            "busybox"], capsys)
    assert (code, out) == (0, ID_DB + "\n")
    body = json.loads(seen[-1].split(b"\r\n\r\n", 1)[1])
    assert body["HostConfig"]["Links"] == ["db:webdb", "db"]


# -- rm --link ---------------------------------------------------------------------------------
def test_rm_link_sends_the_name_without_slashes(server, capsys) -> None:  # noqa: F811
    path, seen, replies = server
    replies += [ping("1.44"), no_content]
    assert run_cli(["-H", f"unix://{path}", "rm", "--link", "/web/db"], capsys) == (
        0, "/web/db\n", "")
    assert seen[-1].startswith(b"DELETE /v1.44/containers/web/db?link=1 HTTP/1.1\r\n")


def test_rm_link_errors_are_collected(server, capsys) -> None:  # noqa: F811
    path, seen, replies = server
    message = "Conflict, cannot remove the default link name of the container"
    replies += [ping("1.44"), json_reply(409, {"message": message}), no_content]
    code, out, err = run_cli(["-H", f"unix://{path}", "rm", "-l", "/db", "/", "web/db"], capsys)
    assert (code, out) == (1, "web/db\n")
    assert err == f"Error response from daemon: {message}\ncontainer name cannot be empty\n"
    assert [req.split(b" ")[1] for req in seen[1:]] == [
        b"/v1.44/containers/db?link=1", b"/v1.44/containers/web/db?link=1"]


# -- ps NAMES ----------------------------------------------------------------------------------
def test_names_of_a_linked_container() -> None:
    names = ["/db", "/web/db", "/web/webdb"]
    assert container_names(names, trunc=True) == "db"
    assert container_names(names, trunc=False) == "db,web/db,web/webdb"
    # only link names (cannot come from the daemon, but docker's rule then joins them all)
    assert container_names(["/web/db"], trunc=True) == "web/db"


# -- links -------------------------------------------------------------------------------------
def test_state_column() -> None:
    assert [link_state(link) for link in (LINK_OK, LINK_STALE, LINK_DOWN)] == [
        "ok", "stale env", "not running"]
    assert link_state({**LINK_DOWN, "Stale": True}) == "not running"


def test_links_table_with_stale_variables() -> None:
    assert links_table([LINK_STALE, LINK_DOWN, LINK_OK]) == (
        "PARENT    ALIAS     CONTAINER   IP ADDRESS   PORTS                STATE\n"
        "api       cache     redis-1                  6379/tcp, 6379/udp   not running\n"
        "web       db        db          172.17.0.3   5432/tcp             ok\n"
        "web       webdb     db          172.17.0.3   5432/tcp             stale env\n"
        "\n"
        "  /web/webdb: WEBDB_PORT=tcp://172.17.0.2:5432 (now 172.17.0.3)\n"
        "  /web/webdb: WEBDB_PORT_5432_TCP=tcp://172.17.0.2:5432 (now 172.17.0.3)\n"
        "  /web/webdb: WEBDB_PORT_5432_TCP_ADDR=172.17.0.2 (now 172.17.0.3)\n")


def test_links_table_without_stale_or_links() -> None:
    assert links_table([LINK_OK]).endswith("5432/tcp   ok\n")
    assert links_table([]) == "PARENT    ALIAS     CONTAINER   IP ADDRESS   PORTS     STATE\n"
    stopped_stale = {**LINK_STALE, "ChildRunning": False, "IPAddress": ""}
    assert links_table([stopped_stale]).endswith(
        "  /web/webdb: WEBDB_PORT_5432_TCP_ADDR=172.17.0.2 (now not running)\n")


def test_links_command_for_one_container(server, capsys) -> None:  # noqa: F811
    path, seen, replies = server
    replies += [ping("1.44"), json_reply(200, [LINK_OK, LINK_STALE])]
    code, out, err = run_cli(["-H", f"unix://{path}", "links", "web"], capsys)
    assert (code, out, err) == (0, links_table([LINK_OK, LINK_STALE]), "")
    assert seen[-1].startswith(b"GET /v1.44/containers/web/links HTTP/1.1\r\n")


def test_links_command_for_all_as_json(server, capsys) -> None:  # noqa: F811
    path, seen, replies = server
    replies += [ping("1.44"), json_reply(200, [LINK_DOWN, LINK_OK])]
    code, out, _ = run_cli(["-H", f"unix://{path}", "links", "--format", "json"], capsys)
    assert code == 0 and json.loads(out) == [LINK_DOWN, LINK_OK]
    assert out.startswith('[\n    {\n        "Name": "/api/cache",')
    assert seen[-1].startswith(b"GET /v1.44/tether/links HTTP/1.1\r\n")


def test_links_command_errors(server, tmp_path: Path, capsys) -> None:  # noqa: F811
    path, _, replies = server
    replies += [ping("1.44"), json_reply(404, {"message": "No such container: nosuch"})]
    assert run_cli(["-H", f"unix://{path}", "links", "nosuch"], capsys) == (
        1, "", "Error response from daemon: No such container: nosuch\n")
    host = f"unix://{tmp_path}/absent.sock"
    assert run_cli(["-H", host, "links", "a", "b"], capsys) == (
        1, "", "tether: 'tether links' requires at most 1 argument\n\n"
               "Usage:  tether links [OPTIONS] [CONTAINER]\n\n"
               "Run 'tether links --help' for more information\n")
    assert run_cli(["-H", host, "links", "--format", "yaml"], capsys) == (
        125, "", 'unsupported format "yaml": use "table" or "json"\n')
