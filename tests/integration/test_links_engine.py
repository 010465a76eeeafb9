"""Legacy links in tetherd: env vars, /etc/hosts, restarts, errors, reports, icc=false."""
from __future__ import annotations


import pytest

from conftest import running_daemon
from test_lifecycle import inspect, out, wait_for

pytestmark = pytest.mark.integration


def env_of(d, cid: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out(d.tether("exec", cid, "env")).splitlines())


def pid1_env(d, cid: str) -> dict[str, str]:
    raw = out(d.tether("exec", cid, "cat", "/proc/1/environ"))
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_link_env_hosts_and_restart(daemon):
    d = daemon
    db = out(d.tether("run", "-d", "--name", "ldb", "-e", "PG_VERSION=9.3", "--expose", "5432",
                      "busybox", "sleep", "300"))
    web = out(d.tether("run", "-d", "--name", "lweb", "--link", "ldb:db", "busybox", "sleep", "300"))
    try:
        ip = inspect(d, db)["NetworkSettings"]["IPAddress"]
        env = env_of(d, web)
        assert env["DB_PORT"] == f"tcp://{ip}:5432"
        assert env["DB_PORT_5432_TCP_ADDR"] == ip and env["DB_PORT_5432_TCP_PORT"] == "5432"
        assert env["DB_NAME"] == "/lweb/db" and env["DB_ENV_PG_VERSION"] == "9.3"
        hosts = out(d.tether("exec", web, "cat", "/etc/hosts")).splitlines()
        assert f"{ip}\tdb {db[:12]} ldb" in hosts
        assert d.tether("exec", web, "ping", "-c1", "-W2", "db").returncode == 0
        assert d.tether("exec", web, "ping", "-c1", "-W2", "ldb").returncode == 0
        # reports
        assert inspect(d, web)["HostConfig"]["Links"] == ["/ldb:/lweb/db"]
        status, items = d.api("GET", '/containers/json?filters={"name":["ldb"]}')
        assert items[0]["Names"] == ["/ldb", "/lweb/db"]
        assert inspect(d, "lweb/db")["Id"] == db
        # the linked container comes back with another address
        out(d.tether("stop", "-t", "0", "ldb"))
        squatter = out(d.tether("run", "-d", "busybox", "sleep", "300"))
        assert inspect(d, squatter)["NetworkSettings"]["IPAddress"] == ip
        out(d.tether("start", "ldb"))
        new_ip = inspect(d, db)["NetworkSettings"]["IPAddress"]
        assert new_ip != ip
        wait_for(lambda: f"{new_ip}\tdb {db[:12]} ldb" in out(d.tether("exec", web, "cat",
                                                                      "/etc/hosts")),
                 what="hosts rewritten")
        assert pid1_env(d, web)["DB_PORT_5432_TCP_ADDR"] == ip          # PID 1: as it started
        assert env_of(d, web)["DB_PORT_5432_TCP_ADDR"] == new_ip        # exec: afresh (20.10)
        status, view = d.api("GET", f"/containers/{web}/links")
        assert status == 200 and view[0]["Stale"] is True and view[0]["IPAddress"] == new_ip
        assert f"DB_PORT_5432_TCP_ADDR={ip}" in view[0]["StaleVariables"]
        # rm --link drops the name and the hosts line
        d.tether("rm", "-f", squatter)
        status, _ = d.api("DELETE", "/containers/lweb/db?link=1")
        assert status == 204
        assert "ldb" not in out(d.tether("exec", web, "cat", "/etc/hosts"))
        assert inspect(d, web)["HostConfig"]["Links"] is None
    finally:
        d.tether("rm", "-f", web, db)


def test_link_errors(daemon):
    d = daemon
    r = d.docker("run", "-d", "--link", "nosuch:db", "busybox", "true")
    assert b"could not get container for nosuch: No such container: nosuch" in r.stderr
    out(d.tether("create", "--name", "stopped-db", "busybox", "sleep", "300"))
    try:
        r = d.docker("run", "-d", "--name", "lonely", "--link", "stopped-db:db", "busybox", "true")
        assert r.returncode == 125
        assert b"Cannot link to a non running container: /stopped-db AS /lonely/db" in r.stderr
        r = d.docker("run", "--rm", "--network", "host", "--link", "stopped-db:db", "busybox", "true")
        assert b"conflicting options: host type networking can't be used with links" in r.stderr
        status, body = d.api("DELETE", "/containers/lonely?link=1")
        assert (status, body["message"]) == (
            500, "Conflict, cannot remove the default link name of the container")
    finally:
        d.tether("rm", "-f", "stopped-db", "lonely")


def test_links_survive_a_daemon_restart(fresh_daemon):
    d = fresh_daemon
    db = out(d.tether("run", "-d", "--name", "db", "--expose", "5432", "busybox", "sleep", "300"))
    web = out(d.tether("run", "-d", "--name", "web", "--link", "db:db", "busybox", "sleep", "300"))
    d.kill9()
    d.start()
    assert inspect(d, web)["HostConfig"]["Links"] == ["/db:/web/db"]
    assert env_of(d, web)["DB_NAME"] == "/web/db"
    d.tether("rm", "-f", web, db)


def test_icc_false_lets_only_linked_pairs_talk():
    with running_daemon("--icc=false") as d:
        server = ("while true; do echo hi | nc -l -p 5432; done & "
                  "while true; do echo hi | nc -l -p 6000; done")
        db = out(d.tether("run", "-d", "--name", "db", "--expose", "5432", "busybox", "sh", "-c",
                          server))
        web = out(d.tether("run", "-d", "--name", "web", "--link", "db:db", "busybox", "sleep",
                           "300"))
        other = out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "300"))

        def talk(src: str, port: int) -> bool:
            r = d.tether("exec", src, "sh", "-c", f"echo | nc -w 1 db-ip {port}".replace(
                "db-ip", inspect(d, db)["NetworkSettings"]["IPAddress"]))
            return r.stdout.strip() == b"hi"

        wait_for(lambda: talk(web, 5432), what="linked pair on an exposed port")
        assert not talk(web, 6000)          # not exposed
        assert not talk(other, 5432)        # not linked
        # the linked container restarts with a new address: the pair still passes
        out(d.tether("stop", "-t", "0", "db"))
        squatter = out(d.tether("run", "-d", "busybox", "sleep", "300"))
        out(d.tether("start", "db"))
        wait_for(lambda: talk(web, 5432), what="the pair after db moved")
        d.tether("rm", "-f", db, web, other, squatter)
