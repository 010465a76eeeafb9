"""The -p/--expose grammar and dockerd's view of PortBindings (tether.rules.portspec), and the
CLI's port reporting built on it.

PUBLISH and EXPOSE were recorded from the real docker CLI 28.2 against Docker 20.10 (refdocker.sh):
each spec went through `docker create -p SPEC busybox` (or `--expose SPEC`), and either the CLI's
error (between "docker: " and the usage hint) or `docker inspect -f '{{json .HostConfig.PortBindings}}
{{json .Config.ExposedPorts}}'` was written down. tests/integration/test_ports_cli_vs_docker.py
replays them against a reference engine, so the tables cannot drift from Docker.
"""
from __future__ import annotations

import ipaddress
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.cli.client import CliError
from tether.cli.commands_container import port_lines
from tether.cli.formatting import display_ports, natural_key
from tether.cli.runopts import RunOptions, create_body
from tether.rules.portspec import (BindingRequest, PortSpecError, binding_requests,
                                   parse_expose, parse_publish, parse_uint16, port_key,
                                   publish_body, validate_bindings)

Row = tuple[str, Any]

PUBLISH: list[Row] = [
    ('80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('8080:80', [('80/tcp', {'HostIp': '', 'HostPort': '8080'})]),
    ('127.0.0.1:8080:80', [('80/tcp', {'HostIp': '127.0.0.1', 'HostPort': '8080'})]),
    ('127.0.0.1::80', [('80/tcp', {'HostIp': '127.0.0.1', 'HostPort': ''})]),
    ('8000-8002:80-82',
     [('80/tcp', {'HostIp': '', 'HostPort': '8000'}),
      ('81/tcp', {'HostIp': '', 'HostPort': '8001'}),
      ('82/tcp', {'HostIp': '', 'HostPort': '8002'})]),
    ('8000-9000:5000', [('5000/tcp', {'HostIp': '', 'HostPort': '8000-9000'})]),
    ('127.0.0.1:8000-9000:5000', [('5000/tcp', {'HostIp': '127.0.0.1', 'HostPort': '8000-9000'})]),
    ('127.0.0.1:80:5000/udp', [('5000/udp', {'HostIp': '127.0.0.1', 'HostPort': '80'})]),
    ('6666:5000', [('5000/tcp', {'HostIp': '', 'HostPort': '6666'})]),
    ('[::1]:80:80', [('80/tcp', {'HostIp': '::1', 'HostPort': '80'})]),
    ('[::1]::80', [('80/tcp', {'HostIp': '::1', 'HostPort': ''})]),
    ('::1:8080:80', [('80/tcp', {'HostIp': '::1', 'HostPort': '8080'})]),
    ('::1::80', [('80/tcp', {'HostIp': '::1', 'HostPort': ''})]),
    ('::FFFF:1.2.3.4:80:80', [('80/tcp', {'HostIp': '::FFFF:1.2.3.4', 'HostPort': '80'})]),
    ('[1.2.3.4]:80:80', [('80/tcp', {'HostIp': '1.2.3.4', 'HostPort': '80'})]),
    ('[]:80:80', [('80/tcp', {'HostIp': '', 'HostPort': '80'})]),
    ('0.0.0.0:80:80', [('80/tcp', {'HostIp': '0.0.0.0', 'HostPort': '80'})]),
    ('1.2.3.4:0:80', [('80/tcp', {'HostIp': '1.2.3.4', 'HostPort': '0'})]),
    ('80/UDP', [('80/udp', {'HostIp': '', 'HostPort': ''})]),
    ('80/Sctp', [('80/sctp', {'HostIp': '', 'HostPort': ''})]),
    ('80/', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('80/tcp/udp', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('0:80', [('80/tcp', {'HostIp': '', 'HostPort': '0'})]),
    ('080:0080', [('80/tcp', {'HostIp': '', 'HostPort': '80'})]),
    ('8000-8001:80', [('80/tcp', {'HostIp': '', 'HostPort': '8000-8001'})]),
    ('80-81:8000', [('8000/tcp', {'HostIp': '', 'HostPort': '80-81'})]),
    ('8000-8001:80-81/udp',
     [('80/udp', {'HostIp': '', 'HostPort': '8000'}),
      ('81/udp', {'HostIp': '', 'HostPort': '8001'})]),
    ('80-80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('80-80:90', [('90/tcp', {'HostIp': '', 'HostPort': '80'})]),
    ('65535', [('65535/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('1-2-3',
     [('1/tcp', {'HostIp': '', 'HostPort': ''}), ('2/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('80-81-x',
     [('80/tcp', {'HostIp': '', 'HostPort': ''}), ('81/tcp', {'HostIp': '', 'HostPort': ''})]),
    (':80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('::80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('0-65535:1', [('1/tcp', {'HostIp': '', 'HostPort': '0-65535'})]),
    ('published=8080,target=80', [('80/tcp', {'HostIp': '', 'HostPort': '8080'})]),
    ('published=8080,target=80,protocol=udp', [('80/udp', {'HostIp': '', 'HostPort': '8080'})]),
    ('published=8080,target=80,protocol=UDP', [('80/udp', {'HostIp': '', 'HostPort': '8080'})]),
    ('target=80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('published=,target=80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('target=80,mode=host', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('a=b=c,target=80', [('80/tcp', {'HostIp': '', 'HostPort': ''})]),
    ('target=80=90', 'invalid containerPort: 80=90'),
    ('', 'no port specified: <empty>'),
    (':', 'no port specified: :<empty>'),
    ('::', 'no port specified: ::<empty>'),
    ('/udp', 'no port specified: /udp<empty>'),
    ('x:/foo', 'no port specified: x:/foo<empty>'),
    ('1.2.3.4::', 'no port specified: 1.2.3.4::<empty>'),
    ('80/foo', 'invalid proto: foo'),
    ('80/FOO', 'invalid proto: FOO'),
    (':80/foo', 'invalid proto: foo'),
    ('x:80:80/foo', 'invalid IP address: x'),
    ('x::', 'invalid IP address: x'),
    ('a:b:c', 'invalid IP address: a'),
    ('1:2:3:4', 'invalid IP address: 1:2'),
    ('1.2.3.4:80', 'invalid hostPort: 1.2.3.4'),
    ('65536', 'invalid containerPort: 65536'),
    ('99999999999999999999', 'invalid containerPort: 99999999999999999999'),
    ('80-70', 'invalid containerPort: 80-70'),
    ('+80', 'invalid containerPort: +80'),
    ('-80', 'invalid containerPort: -80'),
    ('80-', 'invalid containerPort: 80-'),
    ('-', 'invalid containerPort: -'),
    (' 80', 'invalid containerPort:  80'),
    ('80 ', 'invalid containerPort: 80 '),
    ('80,81', 'invalid containerPort: 80,81'),
    ('x/foo', 'invalid containerPort: x'),
    ('y:80/foo', 'invalid hostPort: y'),
    ('70-60:80/foo', 'invalid hostPort: 70-60'),
    ('1-2:80-82/foo', 'invalid ranges specified for container and host Ports: 80-82 and 1-2'),
    ('1-2:80-82', 'invalid ranges specified for container and host Ports: 80-82 and 1-2'),
    ('80:1-2', 'invalid ranges specified for container and host Ports: 1-2 and 80'),
    ('8000-9000:5000-5001',
     'invalid ranges specified for container and host Ports: 5000-5001 and 8000-9000'),
    ('65536:80', 'invalid hostPort: 65536'),
    ('80/udp:90', 'invalid hostPort: 80/udp'),
    ('1.2.3.4:x:80', 'invalid hostPort: x'),
    ('1.2.3.4:80:x', 'invalid containerPort: x'),
    ('01.2.3.4:80:80', 'invalid IP address: 01.2.3.4'),
    ('1.2.3.256:80:80', 'invalid IP address: 1.2.3.256'),
    ('fe80::1%eth0:80:80', 'invalid IP address: fe80::1%eth0'),
    ('[fe80::1%lo]:80:80', 'invalid IP address: fe80::1%lo'),
    ('1::2::3:80:80', 'invalid IP address: 1::2::3'),
    (':::80', 'invalid IP address: :'),
    ('[::1]:80', "invalid IP address [:: address [::: missing ']' in address"),
    ('[::1:80:80', "invalid IP address [::1: address [::1:: missing ']' in address"),
    ('[:80:80', "invalid IP address [: address [:: missing ']' in address"),
    ('[::1]x:80:80', 'invalid IP address [::1]x: address [::1]x:: missing port in address'),
    ('[::1]:x:80:80', 'invalid IP address [::1]:x: address [::1]:x:: too many colons in address'),
    ('[::1][:80:80', 'invalid IP address [::1][: address [::1][:: missing port in address'),
    ('[::1]]:80:80', 'invalid IP address [::1]]: address [::1]]:: missing port in address'),
    ('[[::1]:80:80', "invalid IP address [[::1]: address [[::1]:: unexpected '[' in address"),
    ('ḟoo:80:80', 'invalid IP address: ḟoo'),
    ('published=8080', 'no port specified: 8080:/tcp<empty>'),
    ('published=8080,target', "invalid publish opts format (should be name=value but got 'target')"),
    ('=5,target=80', "invalid publish opts format (should be name=value but got '=5')"),
    ('target=80,,published=1', "invalid publish opts format (should be name=value but got '')"),
]

EXPOSE: list[Row] = [
    ('80', ['80/tcp']),
    ('80/udp', ['80/udp']),
    ('80/UDP', ['80/UDP']),
    ('8000-8002/udp', ['8000/udp', '8001/udp', '8002/udp']),
    ('80/foo', ['80/foo']),
    ('80/', ['80/tcp']),
    ('80/tcp/udp', ['80/tcp']),
    ('0', ['0/tcp']),
    ('1-2-3', ['1/tcp', '2/tcp']),
    ('80-81-x', ['80/tcp', '81/tcp']),
    ('', 'invalid range format for --expose: , error: empty string specified for ports'),
    ('x',
     'invalid range format for --expose: x, error: strconv.ParseUint: parsing "x": invalid syntax'),
    ('80-70',
     'invalid range format for --expose: 80-70, error: invalid range specified for port: 80-70'),
    ('1:2', 'invalid port format for --expose: 1:2'),
    ('/udp', 'invalid range format for --expose: /udp, error: empty string specified for ports'),
    ('65536',
     'invalid range format for --expose: 65536, error: strconv.ParseUint: parsing "65536": value '
     'out of range'),
    ('99999999999999999999',
     'invalid range format for --expose: 99999999999999999999, error: strconv.ParseUint: parsing '
     '"99999999999999999999": value out of range'),
    ('-',
     'invalid range format for --expose: -, error: strconv.ParseUint: parsing "": invalid syntax'),
    ('80-',
     'invalid range format for --expose: 80-, error: strconv.ParseUint: parsing "": invalid syntax'),
    ('-80',
     'invalid range format for --expose: -80, error: strconv.ParseUint: parsing "": invalid syntax'),
    ('é',
     'invalid range format for --expose: é, error: strconv.ParseUint: parsing "é": invalid syntax'),
    ('"x',
     'invalid range format for --expose: "x, error: strconv.ParseUint: parsing "\\"x": invalid '
     'syntax'),
    (' 80',
     'invalid range format for --expose:  80, error: strconv.ParseUint: parsing " 80": invalid '
     'syntax'),
    ('80-x',
     'invalid range format for --expose: 80-x, error: strconv.ParseUint: parsing "x": invalid '
     'syntax'),
    ('\x01',
     'invalid range format for --expose: \x01, error: strconv.ParseUint: parsing "\\x01": invalid '
     'syntax'),
    ('6553x6',
     'invalid range format for --expose: 6553x6, error: strconv.ParseUint: parsing "6553x6": '
     'invalid syntax'),
    ('65536x',
     'invalid range format for --expose: 65536x, error: strconv.ParseUint: parsing "65536x": value '
     'out of range'),
]


def _outcome(parse: Any, spec: str) -> Any:
    try:
        return parse(spec)
    except PortSpecError as exc:
        return str(exc)


@pytest.mark.parametrize(("spec", "expected"), PUBLISH)
def test_publish_matches_docker(spec: str, expected: Any) -> None:
    assert _outcome(parse_publish, spec) == expected


@pytest.mark.parametrize(("spec", "expected"), EXPOSE)
def test_expose_matches_docker(spec: str, expected: Any) -> None:
    assert _outcome(parse_expose, spec) == expected


def test_publish_body_merges_as_the_cli() -> None:
    exposed, bindings = publish_body(["8080:80", "127.0.0.1::80", "53:53/udp", "8000-8001:90-91"])
    assert list(exposed) == ["53/udp", "80/tcp", "90/tcp", "91/tcp"]
    assert all(value == {} for value in exposed.values())
    assert bindings["80/tcp"] == [{"HostIp": "", "HostPort": "8080"},
                                  {"HostIp": "127.0.0.1", "HostPort": ""}]
    assert bindings["91/tcp"] == [{"HostIp": "", "HostPort": "8001"}]
    assert publish_body([]) == ({}, {})


def test_go_uint_parsing_stops_at_the_first_problem() -> None:
    assert parse_uint16("00080") == 80 and parse_uint16("65535") == 65535
    for text, why in [("", "invalid syntax"), ("6553x6", "invalid syntax"),
                      ("65536x", "value out of range"), ("٣", "invalid syntax")]:
        with pytest.raises(PortSpecError, match=why):
            parse_uint16(text)
    with pytest.raises(PortSpecError) as info:
        parse_uint16("\udcff\x7f\u00a0\U0001f600")
    assert str(info.value) == 'strconv.ParseUint: parsing "\\xff\\x7f\\u00a0😀": invalid syntax'


# ---- the daemon's side ---------------------------------------------------------------------------
def test_port_key() -> None:
    assert port_key("5000/tcp") == (5000, "tcp") and port_key("53") == (53, "tcp")
    assert port_key("53/UDP") == (53, "udp") and port_key("80/") == (80, "tcp")
    with pytest.raises(PortSpecError):
        port_key("abc/tcp")


@pytest.mark.parametrize(("bindings", "message"), [
    # texts from Docker 20.10 (POST /containers/create straight to the API)
    ({"abc/tcp": [{"HostPort": ""}]}, 'invalid port specification: "abc"'),
    ({"80-82/tcp": []}, 'invalid port specification: "80-82"'),
    ({"80/tcp": [{"HostPort": "x"}]}, 'invalid port specification: "x"'),
    ({"80/tcp": [{"HostPort": "70-60"}]}, 'invalid port specification: "70-60"'),
    ({"80/tcp": [{"HostPort": "65536"}]}, 'invalid port specification: "65536"'),
    # Docker 20.10 accepts these and publishes a port forwarding to port 0; tether refuses
    ({"0/tcp": [{"HostPort": ""}]}, 'invalid port specification: "0"'),
    ({"/tcp": None}, 'invalid port specification: ""'),
    ({"80/tcp": ["8080"]}, "invalid port binding: '8080'"),
    ({"80/tcp": [{"HostPort": 8080}]}, "invalid port binding"),
])
def test_validate_bindings_rejects_as_dockerd(bindings: dict[str, Any], message: str) -> None:
    with pytest.raises(PortSpecError, match=message.replace("(", r"\(")) as info:
        validate_bindings(bindings)
    assert isinstance(info.value, ValueError)


def test_validate_bindings_keeps_the_request() -> None:
    # all accepted by Docker 20.10: a HostPort's "/proto" is ignored, "0" and "" are ephemeral,
    # an unknown protocol only fails at start
    request = {"80/tcp": [{"HostIp": "", "HostPort": "8000-9000"}, {"HostPort": "8000/udp"}],
               "81": None, "82/udp": [], "83/foo": [{"HostPort": "0"}], "84/tcp": [{}]}
    assert validate_bindings(request) == request
    assert validate_bindings(None) == {}


def _req(proto: str, port: int, ip: str = "", start: int = 0, end: int = 0) -> BindingRequest:
    return BindingRequest(proto, port, ip, start, end)


def test_binding_requests_in_docker_allocation_order() -> None:
    exposed = dict.fromkeys(["443/tcp", "53/udp", "53/tcp", "80/tcp", "53/sctp", "9000/tcp"], {})
    bindings = {"443/tcp": [{"HostIp": "::1", "HostPort": "8443"},
                            {"HostIp": "127.0.0.1", "HostPort": "8443"}],
                "80/tcp": [{"HostIp": "", "HostPort": "8000-9000"}, {"HostPort": ""}],
                "9000/tcp": [{"HostIp": "10.0.0.1", "HostPort": "9000"}]}
    # Docker 20.10: host port descending or container port descending, by Go's insertion sort
    assert binding_requests(exposed, bindings, publish_all=True) == [
        _req("tcp", 9000, "10.0.0.1", 9000, 9000),
        _req("tcp", 443, "::1", 8443, 8443), _req("tcp", 443, "127.0.0.1", 8443, 8443),
        _req("tcp", 80, "", 8000, 9000), _req("tcp", 80),
        _req("udp", 53), _req("tcp", 53), _req("sctp", 53)]
    assert binding_requests(exposed, bindings, publish_all=False) == [
        _req("tcp", 9000, "10.0.0.1", 9000, 9000),
        _req("tcp", 443, "::1", 8443, 8443), _req("tcp", 443, "127.0.0.1", 8443, 8443),
        _req("tcp", 80, "", 8000, 9000), _req("tcp", 80)]


def test_two_exact_ports_of_one_container_port_higher_first() -> None:
    """What the reference engine does with -p 6667:5000 -p 6668:5000: 6668 is listed first."""
    bindings = {"5000/tcp": [{"HostPort": "6667"}, {"HostPort": "6668"}]}
    assert binding_requests({"5000/tcp": {}}, bindings, False) == [
        _req("tcp", 5000, "", 6668, 6668), _req("tcp", 5000, "", 6667, 6667)]


def test_binding_requests_follow_dockerd_quirks() -> None:
    # only exposed ports are published (keys matched as sent); "80" is tcp; a HostPort's
    # "/udp" is ignored; an unparsable HostIp is the default; IPv4-mapped IPv6 is IPv4
    bindings = {"80": [{"HostPort": "7000"}], "81/tcp": [{"HostPort": "8000/udp"}],
                "82/tcp": [{"HostIp": "bogus"}], "83/UDP": [{"HostIp": "::FFFF:1.2.3.4"}],
                "99/tcp": [{"HostPort": "9999"}]}
    exposed = dict.fromkeys(["80", "81/tcp", "82/tcp", "83/UDP"], {})
    assert binding_requests(exposed, bindings, False) == [
        _req("udp", 83, "1.2.3.4"), _req("tcp", 82), _req("tcp", 81, "", 8000, 8000),
        _req("tcp", 80, "", 7000, 7000)]
    assert binding_requests(None, bindings, True) == []
    assert binding_requests({"80/tcp": {}}, None, False) == []


def test_binding_requests_refuse_unknown_protocols_only_when_publishing() -> None:
    assert binding_requests({"80/foo": {}}, None, False) == []
    with pytest.raises(PortSpecError, match="^invalid transport protocol: 0$"):
        binding_requests({"80/foo": {}}, None, True)
    with pytest.raises(PortSpecError, match="^invalid transport protocol: 1$"):
        binding_requests({"80/icmp": {}}, {"80/icmp": [{"HostPort": "1"}]}, False)


# ---- the CLI ------------------------------------------------------------------------------------
def test_create_body_ports() -> None:
    body = create_body(RunOptions(image="busybox", publish=["8080:80", "8080:80/udp"],
                                  expose=["7000-7001", "90/FOO", "80"], publish_all=True))
    assert list(body["ExposedPorts"]) == ["7000/tcp", "7001/tcp", "80/tcp", "80/udp", "90/FOO"]
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                                  "80/udp": [{"HostIp": "", "HostPort": "8080"}]}
    assert body["HostConfig"]["PublishAllPorts"] is True
    assert "ExposedPorts" not in create_body(RunOptions(image="busybox"))
    for opts, message in [(RunOptions(image="b", publish=["80", "80/foo"]), "invalid proto: foo"),
                          (RunOptions(image="b", expose=["1:2"]),
                           "invalid port format for --expose: 1:2")]:
        with pytest.raises(CliError) as info:
            create_body(opts)
        assert (info.value.message, info.value.code) == (message, 125)


PORTS = {"53/udp": [{"HostIp": "0.0.0.0", "HostPort": "53"}, {"HostIp": "::", "HostPort": "53"}],
         "80/tcp": [{"HostIp": "::", "HostPort": "8080"}, {"HostIp": "0.0.0.0", "HostPort": "8080"}],
         "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}],
         "7000/tcp": None, "9000/tcp": [{"HostIp": "::1", "HostPort": "9000"}]}


def test_port_lines_as_docker_cli_28() -> None:
    # recorded from docker CLI 28.2 (`docker port pw`, `docker port pw 80`, ...)
    assert port_lines(PORTS, "pw", "") == [
        "53/udp -> 0.0.0.0:53", "53/udp -> [::]:53", "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> [::]:8080", "443/tcp -> 127.0.0.1:32768", "9000/tcp -> [::1]:9000"]
    assert port_lines(PORTS, "pw", "80") == ["0.0.0.0:8080", "[::]:8080"]
    assert port_lines(PORTS, "pw", "80/") == port_lines(PORTS, "pw", "80/tcp")
    assert port_lines({}, "pw", "") == []
    for arg, message in [("53/UDP", "Error: No public port '53/UDP' published for pw"),
                         ("7000", "Error: No public port '7000' published for pw"),
                         ("x", 'Error: invalid port (x): strconv.ParseUint: parsing "x": invalid syntax'),
                         ("/tcp", 'Error: invalid port (): strconv.ParseUint: parsing "": invalid syntax'),
                         ("99999", "Error: invalid port (99999): strconv.ParseUint: parsing "
                                   '"99999": value out of range')]:
        with pytest.raises(CliError) as info:
            port_lines(PORTS, "pw", arg)
        assert (info.value.message, info.value.code) == (message, 1)


def test_natural_key_is_sortorder_natural_less() -> None:
    items = ["443/tcp -> x", "80/tcp -> [::]:1", "80/tcp -> 0.0.0.0:1", "a10", "a9", "a09",
             "a009", "a", "ab", "a-", "", "9000/tcp"]
    assert sorted(items, key=natural_key) == [
        "", "80/tcp -> 0.0.0.0:1", "80/tcp -> [::]:1", "443/tcp -> x", "9000/tcp", "a", "a9",
        "a09", "a009", "a10", "a-", "ab"]


def _ports(*items: tuple[int, str, str, int]) -> list[dict[str, Any]]:
    return [{"PrivatePort": p, "Type": t, **({"IP": ip, "PublicPort": pub} if ip else {})}
            for p, t, ip, pub in items]


def test_display_ports_groups_as_cli_28() -> None:
    # a closed group is written at once; open groups follow in key-creation order, then host
    # mappings (docker CLI 28 DisplayablePorts)
    ports = _ports((80, "tcp", "", 0), (81, "tcp", "", 0), (83, "tcp", "", 0),
                   (80, "udp", "", 0), (84, "tcp", "", 0), (90, "tcp", "0.0.0.0", 90),
                   (91, "tcp", "0.0.0.0", 91), (90, "tcp", "::", 90),
                   (5000, "tcp", "127.0.0.1", 8000), (53, "udp", "::1", 53))
    assert display_ports(ports) == (
        "80-81/tcp, [::1]:53->53/udp, 83-84/tcp, 80/udp, 0.0.0.0:90-91->90-91/tcp, "
        "[::]:90->90/tcp, 127.0.0.1:8000->5000/tcp")


# ---- properties ---------------------------------------------------------------------------------
PORT = st.integers(0, 65535)
PROTO = st.sampled_from(["tcp", "udp", "sctp"]).flatmap(
    lambda p: st.tuples(*[st.sampled_from([c, c.upper()]) for c in p]).map("".join))


@st.composite
def valid_specs(draw: st.DrawFn) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    """A spec docker accepts and, computed independently, the bindings it stands for."""
    start = draw(PORT)
    count = draw(st.integers(1, min(4, 65536 - start)))
    host_kind = draw(st.sampled_from(["none", "same", "range"] if count == 1 else ["none", "same"]))
    host_start = draw(st.integers(0, 65536 - count))
    host_text, hosts = "", [""] * count
    if host_kind == "same":
        host_text = f"{host_start}-{host_start + count - 1}" if count > 1 else str(host_start)
        hosts = [str(host_start + i) for i in range(count)]
    elif host_kind == "range":
        host_end = draw(st.integers(host_start, 65535))
        host_text = f"{host_start}-{host_end}"
        hosts = [host_text if host_end != host_start else str(host_start)]
    ip = draw(st.one_of(st.just(""), st.ip_addresses().map(str)))
    shown_ip = draw(st.sampled_from([f"[{ip}]", ip])) if ":" in ip or ip else ""
    proto = draw(st.one_of(st.none(), PROTO))
    container = str(start) if count == 1 else f"{start}-{start + count - 1}"
    spec = container + ("" if proto is None else f"/{proto}")
    if shown_ip or host_text or draw(st.booleans()):
        spec = f"{host_text}:{spec}"
    if shown_ip:
        spec = f"{shown_ip}:{spec}"
    key_proto = (proto or "tcp").lower()
    expected = [(f"{start + i}/{key_proto}", {"HostIp": ip, "HostPort": hosts[i]})
                for i in range(count)]
    return spec, expected


def _render(key: str, binding: dict[str, str]) -> str:
    ip = binding["HostIp"]
    return f"{f'[{ip}]' if ':' in ip else ip}:{binding['HostPort']}:{key}"


@settings(max_examples=400)
@given(valid_specs())
def test_valid_specs_parse_and_round_trip(case: tuple[str, list[tuple[str, dict[str, str]]]]) -> None:
    spec, expected = case
    parsed = parse_publish(spec)
    assert parsed == expected
    for key, binding in parsed:
        assert parse_publish(_render(key, binding)) == [(key, binding)]
    exposed, bindings = publish_body([spec])
    if all(port_key(key)[0] for key in bindings):
        assert validate_bindings(bindings) == bindings
        requests = binding_requests(exposed, bindings, False)
        assert len(requests) == len(parsed)
        assert all(r.host_ip == "" or ipaddress.ip_address(r.host_ip) for r in requests)


@settings(max_examples=400)
@given(st.one_of(st.text(), st.text(alphabet=string.digits + ":-/[]=,.abcdefpt%")))
def test_garbage_raises_only_port_spec_errors(text: str) -> None:
    for parse in (parse_publish, parse_expose, parse_uint16, port_key):
        try:
            parse(text)
        except PortSpecError:
            pass
    try:
        bindings = validate_bindings({text: [{"HostIp": text, "HostPort": text}]})
        binding_requests({text: {}}, bindings, True)
    except PortSpecError:
        pass


@given(st.lists(valid_specs().map(lambda c: c[0]), max_size=4))
def test_publish_body_keeps_every_binding_in_order(specs: list[str]) -> None:
    exposed, bindings = publish_body(specs)
    flat = [pair for spec in specs for pair in parse_publish(spec)]
    assert list(exposed) == sorted({key for key, _ in flat}) == list(bindings)
    for key, entries in bindings.items():
        assert entries == [b for k, b in flat if k == key]
