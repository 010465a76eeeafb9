"""The pure rules of legacy links.

Expected values marked "recorded" were printed by a real Docker 20.10 engine
(shared/reference/refdocker.sh, busybox children, `docker run --rm --link child:alias busybox
env`, `cat /etc/hosts`, `cat /proc/1/environ`); only the HOSTNAME/PATH/HOME lines the daemon adds
around the link variables were left out. Docker's env reaches the process through runc, whose
`os.Setenv` keeps a repeated variable at its first position: `merge_env([], ...)` does the same.
"""
from __future__ import annotations

import pytest

from tether.engine.links import (
    LinkError,
    env_prefix,
    hosts_line,
    link_env,
    link_name,
    parse_link,
    stale_variables,
)
from tether.rules.config import merge_env

IMAGE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SPEC_PORTS = ["6300/udp", "6379/tcp", "6380/tcp", "6381/tcp", "6382/udp", "8080/tcp"]
SPEC_ENV = ["e2", "e3=v3=v3", "HOME=/x", "PATH=/bin:/sbin", "lower.dot=ok", "e1="]

# recorded: `run --name db-1 --expose 6300/udp --expose 6379-6381 --expose 6382/udp --expose 8080
# -e e1= -e e2 -e e3=v3=v3 -e HOME=/x -e PATH=/bin:/sbin -e lower.dot=ok`, then
# `run --name web --link db-1 ...`; db-1's Config.Env is SPEC_ENV.
DB_1_AT_2 = """\
DB_1_PORT=udp://172.17.0.2:6300
DB_1_PORT_6379_TCP_START=tcp://172.17.0.2:6379
DB_1_PORT_6379_TCP_ADDR=172.17.0.2
DB_1_PORT_6379_TCP_PROTO=tcp
DB_1_PORT_6379_TCP_PORT_START=6379
DB_1_PORT_6379_UDP_END=udp://172.17.0.2:6382
DB_1_PORT_6379_UDP_PORT_END=6382
DB_1_PORT_6300_UDP=udp://172.17.0.2:6300
DB_1_PORT_6300_UDP_ADDR=172.17.0.2
DB_1_PORT_6300_UDP_PORT=6300
DB_1_PORT_6300_UDP_PROTO=udp
DB_1_PORT_6379_TCP=tcp://172.17.0.2:6379
DB_1_PORT_6379_TCP_PORT=6379
DB_1_PORT_6380_TCP=tcp://172.17.0.2:6380
DB_1_PORT_6380_TCP_ADDR=172.17.0.2
DB_1_PORT_6380_TCP_PORT=6380
DB_1_PORT_6380_TCP_PROTO=tcp
DB_1_PORT_6381_TCP=tcp://172.17.0.2:6381
DB_1_PORT_6381_TCP_ADDR=172.17.0.2
DB_1_PORT_6381_TCP_PORT=6381
DB_1_PORT_6381_TCP_PROTO=tcp
DB_1_PORT_6382_UDP=udp://172.17.0.2:6382
DB_1_PORT_6382_UDP_ADDR=172.17.0.2
DB_1_PORT_6382_UDP_PORT=6382
DB_1_PORT_6382_UDP_PROTO=udp
DB_1_PORT_8080_TCP=tcp://172.17.0.2:8080
DB_1_PORT_8080_TCP_ADDR=172.17.0.2
DB_1_PORT_8080_TCP_PORT=8080
DB_1_PORT_8080_TCP_PROTO=tcp
DB_1_NAME=/web/db-1
DB_1_ENV_e3=v3=v3
DB_1_ENV_lower.dot=ok
DB_1_ENV_e1=
"""

# recorded, one child per case: (link name, child IP, ExposedPorts keys, Config.Env, env lines)
RECORDED = [
    pytest.param("/hardcore_heyrovsky/two", "172.17.0.4", ["80/tcp", "81/tcp"], [IMAGE_PATH], """\
TWO_PORT=tcp://172.17.0.4:80
TWO_PORT_80_TCP=tcp://172.17.0.4:80
TWO_PORT_80_TCP_ADDR=172.17.0.4
TWO_PORT_80_TCP_PORT=80
TWO_PORT_80_TCP_PROTO=tcp
TWO_PORT_81_TCP=tcp://172.17.0.4:81
TWO_PORT_81_TCP_ADDR=172.17.0.4
TWO_PORT_81_TCP_PORT=81
TWO_PORT_81_TCP_PROTO=tcp
TWO_NAME=/hardcore_heyrovsky/two
""", id="80+81 alone: no range"),
    pytest.param("/objective_dijkstra/dup", "172.17.0.5", ["81/tcp", "80/udp", "80/tcp"],
                 [IMAGE_PATH], """\
DUP_PORT=tcp://172.17.0.5:80
DUP_PORT_80_TCP_START=tcp://172.17.0.5:80
DUP_PORT_80_TCP_ADDR=172.17.0.5
DUP_PORT_80_TCP_PROTO=tcp
DUP_PORT_80_TCP_PORT_START=80
DUP_PORT_80_TCP_END=tcp://172.17.0.5:81
DUP_PORT_80_TCP_PORT_END=81
DUP_PORT_80_TCP=tcp://172.17.0.5:80
DUP_PORT_80_TCP_PORT=80
DUP_PORT_80_UDP=udp://172.17.0.5:80
DUP_PORT_80_UDP_ADDR=172.17.0.5
DUP_PORT_80_UDP_PORT=80
DUP_PORT_80_UDP_PROTO=udp
DUP_PORT_81_TCP=tcp://172.17.0.5:81
DUP_PORT_81_TCP_ADDR=172.17.0.5
DUP_PORT_81_TCP_PORT=81
DUP_PORT_81_TCP_PROTO=tcp
DUP_NAME=/objective_dijkstra/dup
""", id="80/tcp 80/udp 81/tcp: a range across protocols"),
    pytest.param("/amazing_poincare/dns", "172.17.0.6", ["53/udp", "53/tcp"], [IMAGE_PATH], """\
DNS_PORT=tcp://172.17.0.6:53
DNS_PORT_53_TCP=tcp://172.17.0.6:53
DNS_PORT_53_TCP_ADDR=172.17.0.6
DNS_PORT_53_TCP_PORT=53
DNS_PORT_53_TCP_PROTO=tcp
DNS_PORT_53_UDP=udp://172.17.0.6:53
DNS_PORT_53_UDP_ADDR=172.17.0.6
DNS_PORT_53_UDP_PORT=53
DNS_PORT_53_UDP_PROTO=udp
DNS_NAME=/amazing_poincare/dns
""", id="53 tcp+udp: tcp first"),
    pytest.param("/thirsty_lumiere/gap", "172.17.0.7", ["84/tcp", "83/tcp", "82/tcp", "80/tcp"],
                 [IMAGE_PATH], """\
GAP_PORT=tcp://172.17.0.7:80
GAP_PORT_82_TCP_START=tcp://172.17.0.7:82
GAP_PORT_82_TCP_ADDR=172.17.0.7
GAP_PORT_82_TCP_PROTO=tcp
GAP_PORT_82_TCP_PORT_START=82
GAP_PORT_82_TCP_END=tcp://172.17.0.7:84
GAP_PORT_82_TCP_PORT_END=84
GAP_PORT_80_TCP=tcp://172.17.0.7:80
GAP_PORT_80_TCP_ADDR=172.17.0.7
GAP_PORT_80_TCP_PORT=80
GAP_PORT_80_TCP_PROTO=tcp
GAP_PORT_82_TCP=tcp://172.17.0.7:82
GAP_PORT_82_TCP_PORT=82
GAP_PORT_83_TCP=tcp://172.17.0.7:83
GAP_PORT_83_TCP_ADDR=172.17.0.7
GAP_PORT_83_TCP_PORT=83
GAP_PORT_83_TCP_PROTO=tcp
GAP_PORT_84_TCP=tcp://172.17.0.7:84
GAP_PORT_84_TCP_ADDR=172.17.0.7
GAP_PORT_84_TCP_PORT=84
GAP_PORT_84_TCP_PROTO=tcp
GAP_NAME=/thirsty_lumiere/gap
""", id="a range after a gap"),
    pytest.param("/upbeat_gagarin/one", "172.17.0.8", [], ["A=1", IMAGE_PATH], """\
ONE_NAME=/upbeat_gagarin/one
ONE_ENV_A=1
""", id="no ports, image PATH skipped"),
    pytest.param("/busy_stonebraker/big.name-x", "172.17.0.10",
                 ["9002/udp", "9000/udp", "9001/udp"], ["K=a=b", "E=", IMAGE_PATH], """\
BIG.NAME_X_PORT=udp://172.17.0.10:9000
BIG.NAME_X_PORT_9000_UDP_START=udp://172.17.0.10:9000
BIG.NAME_X_PORT_9000_UDP_ADDR=172.17.0.10
BIG.NAME_X_PORT_9000_UDP_PROTO=udp
BIG.NAME_X_PORT_9000_UDP_PORT_START=9000
BIG.NAME_X_PORT_9000_UDP_END=udp://172.17.0.10:9002
BIG.NAME_X_PORT_9000_UDP_PORT_END=9002
BIG.NAME_X_PORT_9000_UDP=udp://172.17.0.10:9000
BIG.NAME_X_PORT_9000_UDP_PORT=9000
BIG.NAME_X_PORT_9001_UDP=udp://172.17.0.10:9001
BIG.NAME_X_PORT_9001_UDP_ADDR=172.17.0.10
BIG.NAME_X_PORT_9001_UDP_PORT=9001
BIG.NAME_X_PORT_9001_UDP_PROTO=udp
BIG.NAME_X_PORT_9002_UDP=udp://172.17.0.10:9002
BIG.NAME_X_PORT_9002_UDP_ADDR=172.17.0.10
BIG.NAME_X_PORT_9002_UDP_PORT=9002
BIG.NAME_X_PORT_9002_UDP_PROTO=udp
BIG.NAME_X_NAME=/busy_stonebraker/big.name-x
BIG.NAME_X_ENV_K=a=b
BIG.NAME_X_ENV_E=
""", id="udp range, name with . and -, values with = or empty"),
    pytest.param("/suspicious_chaplygin/odd", "172.17.0.11", ["7000-7002/tcp", "90/UDP", "95"], [],
                 """\
ODD_PORT=tcp://172.17.0.11:7000-7002
ODD_PORT_7000-7002_TCP=tcp://172.17.0.11:7000-7002
ODD_PORT_7000-7002_TCP_ADDR=172.17.0.11
ODD_PORT_7000-7002_TCP_PORT=7000-7002
ODD_PORT_7000-7002_TCP_PROTO=tcp
ODD_PORT_90_UDP=UDP://172.17.0.11:90
ODD_PORT_90_UDP_ADDR=172.17.0.11
ODD_PORT_90_UDP_PORT=90
ODD_PORT_90_UDP_PROTO=UDP
ODD_PORT_95_TCP=tcp://172.17.0.11:95
ODD_PORT_95_TCP_ADDR=172.17.0.11
ODD_PORT_95_TCP_PORT=95
ODD_PORT_95_TCP_PROTO=tcp
ODD_NAME=/suspicious_chaplygin/odd
""", id="API keys as sent: a range key counts as 0, upper-case proto, no proto"),
    pytest.param("/web/db-1", "172.17.0.2", SPEC_PORTS, SPEC_ENV, DB_1_AT_2, id="spec example"),
]


@pytest.mark.parametrize(("alias_path", "ip", "exposed", "child_env", "expected"), RECORDED)
def test_link_env_as_the_process_sees_it(alias_path: str, ip: str, exposed: list[str],
                                         child_env: list[str], expected: str) -> None:
    assert merge_env([], link_env(alias_path, ip, exposed, child_env)) == expected.splitlines()


def test_link_env_raw_list_repeats_range_addr_and_proto() -> None:
    """What dockerd hands to the runtime before runc folds the repeats (moby links.go v20.10)."""
    env = link_env("/web/db-1", "172.17.0.2", reversed(SPEC_PORTS), SPEC_ENV)
    assert env[:8] == [
        "DB_1_PORT=udp://172.17.0.2:6300",
        "DB_1_PORT_6379_TCP_START=tcp://172.17.0.2:6379",
        "DB_1_PORT_6379_TCP_ADDR=172.17.0.2",
        "DB_1_PORT_6379_TCP_PROTO=tcp",
        "DB_1_PORT_6379_TCP_PORT_START=6379",
        "DB_1_PORT_6379_UDP_END=udp://172.17.0.2:6382",
        "DB_1_PORT_6379_UDP_PORT_END=6382",
        "DB_1_PORT_6300_UDP=udp://172.17.0.2:6300",
    ]
    assert env.count("DB_1_PORT_6379_TCP_ADDR=172.17.0.2") == 2
    assert env.count("DB_1_PORT_6379_TCP_PROTO=tcp") == 2
    assert len(env) == 1 + 6 + 4 * len(SPEC_PORTS) + 1 + 3


def test_link_env_without_ports_or_env_is_just_the_name() -> None:
    assert link_env("/web/db", "172.17.0.2", [], []) == ["DB_NAME=/web/db"]


def test_link_env_other_protocols_on_one_number_are_ordered_by_name() -> None:
    """Docker leaves these in random order; tether picks one, after tcp."""
    env = link_env("/w/x", "10.0.0.2", ["7/udp", "7/sctp", "7/tcp"], [])
    assert env[:7] == [
        "X_PORT=tcp://10.0.0.2:7",
        "X_PORT_7_TCP_START=tcp://10.0.0.2:7",
        "X_PORT_7_TCP_ADDR=10.0.0.2",
        "X_PORT_7_TCP_PROTO=tcp",
        "X_PORT_7_TCP_PORT_START=7",
        "X_PORT_7_UDP_END=udp://10.0.0.2:7",
        "X_PORT_7_UDP_PORT_END=7",
    ]
    assert [e for e in env[7:] if "_PROTO=" in e] == [
        "X_PORT_7_TCP_PROTO=tcp", "X_PORT_7_SCTP_PROTO=sctp", "X_PORT_7_UDP_PROTO=udp"]


@pytest.mark.parametrize(("alias_path", "prefix"), [
    ("/web/db-1", "DB_1"), ("db", "DB"), ("/web/my.db", "MY.DB"), ("/p/a/b", "B"),
    ("/web/x_y-z", "X_Y_Z"),
    ("/w/straße", "STRAßE"),  # recorded: STRAßE_PORT=... (Go keeps ß, Python would write SS)
])
def test_env_prefix(alias_path: str, prefix: str) -> None:
    assert env_prefix(alias_path) == prefix


@pytest.mark.parametrize(("value", "expected"), [
    ("db:alias", ("db", "alias")),
    ("db", ("db", "db")),
    ("/db:/web/alias", ("db", "alias")),
    ("/db", ("/db", "/db")),
    ("db-1:", ("db-1", "")),
    (":x", ("", "x")),
    ("db-1:a/b", ("db-1", "a/b")),
    ("db-1:/x/y", ("db-1", "/x/y")),
])
def test_parse_link(value: str, expected: tuple[str, str]) -> None:
    assert parse_link(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    # recorded: POST /containers/create with HostConfig.Links [value]
    ("a:b:c", "bad format for links: a:b:c"),
    ("", "empty string specified for links"),
    ("/a:/b/c:d", "bad format for links: /a:/b/c:d"),
])
def test_parse_link_errors(value: str, message: str) -> None:
    with pytest.raises(LinkError) as caught:
        parse_link(value)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("value", "parent", "expected"), [
    # recorded: inspect HostConfig.Links of parents created with these links to db-1
    ("db-1", "/web", "/web/db-1"),
    ("db-1:my.db", "/web", "/web/my.db"),
    ("/db-1:/other/al", "/pensive_banzai", "/pensive_banzai/al"),
    ("/db-1", "/hungry_mendel", "/hungry_mendel/db-1"),
    ("db-1:/x/y", "/quizzical_panini", "/quizzical_panini/x/y"),
    ("db-1:a/b", "/quizzical_chebyshev", "/quizzical_chebyshev/a/b"),
    # recorded: inspect Links null, the link named after the parent itself is dropped
    ("db-1:", "/sharp_meitner", "/sharp_meitner"),
])
def test_link_name_of_parsed_links(value: str, parent: str, expected: str) -> None:
    assert link_name(parent, parse_link(value)[1]) == expected


@pytest.mark.parametrize(("alias", "child_name", "expected"), [
    # recorded: /etc/hosts of web with --link db-1 --link db-1:my.db
    ("db-1", "/db-1", ("172.17.0.2", "db-1 acddea747a66")),
    ("my.db", "/db-1", ("172.17.0.2", "my.db acddea747a66 db-1")),
    ("my.db", "db-1", ("172.17.0.2", "my.db acddea747a66 db-1")),
    ("/web/my.db", "db-1", ("172.17.0.2", "my.db acddea747a66 db-1")),
    ("a/db-1", "/db-1", ("172.17.0.2", "db-1 acddea747a66")),
])
def test_hosts_line(alias: str, child_name: str, expected: tuple[str, str]) -> None:
    assert hosts_line(alias, "172.17.0.2", "acddea747a66", child_name) == expected


# recorded: web's /proc/1/environ after db-1 moved from 172.17.0.2 to 172.17.0.12 (stop, another
# container took .2, start): the link variables PID 1 holds, both links, as runc exported them.
WEB_PID1 = (["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOSTNAME=9e4e4c982bc5"]
            + DB_1_AT_2.splitlines()
            + DB_1_AT_2.replace("DB_1_", "MY.DB_").replace("/web/db-1", "/web/my.db").splitlines()
            + ["HOME=/root"])

DB_1_STALE = [
    "DB_1_PORT=udp://172.17.0.2:6300",
    "DB_1_PORT_6379_TCP_START=tcp://172.17.0.2:6379",
    "DB_1_PORT_6379_TCP_ADDR=172.17.0.2",
    "DB_1_PORT_6379_UDP_END=udp://172.17.0.2:6382",
    "DB_1_PORT_6300_UDP=udp://172.17.0.2:6300",
    "DB_1_PORT_6300_UDP_ADDR=172.17.0.2",
    "DB_1_PORT_6379_TCP=tcp://172.17.0.2:6379",
    "DB_1_PORT_6380_TCP=tcp://172.17.0.2:6380",
    "DB_1_PORT_6380_TCP_ADDR=172.17.0.2",
    "DB_1_PORT_6381_TCP=tcp://172.17.0.2:6381",
    "DB_1_PORT_6381_TCP_ADDR=172.17.0.2",
    "DB_1_PORT_6382_UDP=udp://172.17.0.2:6382",
    "DB_1_PORT_6382_UDP_ADDR=172.17.0.2",
    "DB_1_PORT_8080_TCP=tcp://172.17.0.2:8080",
    "DB_1_PORT_8080_TCP_ADDR=172.17.0.2",
]


def test_recorded_pid1_env_is_link_env_folded() -> None:
    """The recorded environ really is what the two links give, so the tables below are sound."""
    links = (link_env("/web/db-1", "172.17.0.2", SPEC_PORTS, SPEC_ENV)
             + link_env("/web/my.db", "172.17.0.2", SPEC_PORTS, SPEC_ENV))
    assert WEB_PID1[2:-1] == merge_env([], links)


def test_stale_variables_of_one_link() -> None:
    assert stale_variables(WEB_PID1, "/web/db-1", "172.17.0.2", "172.17.0.12") == DB_1_STALE


def test_stale_variables_of_the_other_alias() -> None:
    expected = [v.replace("DB_1_", "MY.DB_") for v in DB_1_STALE]
    assert stale_variables(WEB_PID1, "/web/my.db", "172.17.0.2", "172.17.0.12") == expected


def test_no_stale_variables_when_the_address_is_the_same() -> None:
    assert stale_variables(WEB_PID1, "/web/db-1", "172.17.0.2", "172.17.0.2") == []


def test_stale_variables_need_the_whole_address() -> None:
    """172.17.0.1 is a prefix of 172.17.0.12: a value holding the latter is not stale."""
    fresh = link_env("/web/db-1", "172.17.0.12", SPEC_PORTS, SPEC_ENV)
    assert stale_variables(fresh, "/web/db-1", "172.17.0.1", "172.17.0.3") == []


def test_stale_variables_ignore_other_links_and_copied_child_env() -> None:
    """`db-port` makes DB_PORT_PORT_... variables; the child's own env may hold the address."""
    env = (link_env("/web/db-port", "172.17.0.2", ["80/tcp"], [])
           + link_env("/web/db", "172.17.0.2", ["80/tcp"], ["PEER=172.17.0.2", "X"]))
    assert stale_variables(env, "/web/db", "172.17.0.2", "172.17.0.5") == [
        "DB_PORT=tcp://172.17.0.2:80",
        "DB_PORT_80_TCP=tcp://172.17.0.2:80",
        "DB_PORT_80_TCP_ADDR=172.17.0.2",
    ]
