"""Embedded DNS from inside containers, through the docker CLI, against tetherd and Docker 20.10:
busybox `nslookup` and `ping` must print the same after normalisation.

On a user-defined network `dnsd-bb` resolves `dnsd-aa` by name, network alias, `--link` alias and
short ID, gets a PTR for its address, and pings it by name; the link adds only a name (no
environment variables, no hosts line); a container on another network resolves none of it.
Raw queries sent from `dnsd-bb`'s namespace compare the replies field by field (flags, TTLs,
empty answers, FORMERR and NOTIMP forms, what is dropped). The scenario runs once per engine
(module fixture) and each step is compared on its own; IDs and addresses are mapped to the
container they belong to, since the engines allocate them apart.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from typing import Callable, Iterator

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from reference import started
from tether.network import netns

pytestmark = pytest.mark.integration

Docker = Callable[..., subprocess.CompletedProcess]
NET, OTHER = "dnsdiff", "dnsdiff-other"
AA, BB, CC = "dnsd-aa", "dnsd-bb", "dnsd-cc"


def _scenario(docker: Docker) -> dict[str, tuple[int, str]]:
    """Every step's (exit code, output) on one engine, IDs and addresses named."""
    def ok(*args: str) -> str:
        r = docker(*args)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout.decode()

    made: list[str] = []
    nets: list[str] = []
    try:
        for net in (NET, OTHER):
            ok("network", "create", net)
            nets.append(net)
        for name, opts in ((AA, ["--network", NET, "--network-alias", "dnsd-al"]),
                           (BB, ["--network", NET, "--link", f"{AA}:dnsd-lk"]),
                           (CC, ["--network", OTHER])):
            ok("run", "-d", "--name", name, *opts, "busybox", "sleep", "600")
            made.append(name)
        names: dict[str, str] = {}
        for name in made:
            info = json.loads(ok("inspect", name))[0]
            names[info["Id"]] = name
            names[info["Id"][:12]] = name
            for endpoint in info["NetworkSettings"]["Networks"].values():
                names[endpoint["IPAddress"]] = name
                names[".".join(reversed(endpoint["IPAddress"].split(".")))] = f"{name} reversed"
        aa_id = next(key for key, value in names.items() if value == AA and len(key) == 12)
        aa_ip = next(key for key, value in names.items() if value == AA and "." in key)

        def named(text: str) -> str:
            return re.sub(r"[0-9a-f]{64}|[0-9a-f]{12}|\d+\.\d+\.\d+\.\d+",
                          lambda m: f"<{names[m.group()]}>" if m.group() in names
                          else m.group(), text)

        def step(*args: str) -> tuple[int, str]:
            """busybox nslookup sends A and AAAA at once and prints each answer as it comes:
            the blocks are sorted, their order is the network's, not the resolver's."""
            r = docker("exec", *args, timeout=120)
            blocks = named(r.stdout.decode() + r.stderr.decode()).split("\n\n")
            return r.returncode, "\n\n".join(sorted(blocks))

        steps = {
            "name": step(BB, "nslookup", AA),
            "alias": step(BB, "nslookup", "dnsd-al"),
            "link": step(BB, "nslookup", "dnsd-lk"),
            "short id": step(BB, "nslookup", aa_id),
            "ptr": step(BB, "nslookup", aa_ip),
            "ping": step(BB, "sh", "-c", f"ping -c 1 -W 5 {AA} | head -n 1"),
            "resolv.conf": step(BB, "cat", "/etc/resolv.conf"),
            "no link env": step(BB, "sh", "-c", "env | grep -ci dnsd || true"),
            "no link hosts line": step(BB, "sh", "-c", "grep -c dnsd /etc/hosts || true"),
        }
        # an answer `nslookup` prints for no name of the other network (only its exit code is
        # compared: with no upstream Docker 20.10 lets the query time out, tether says SERVFAIL)
        steps["other network"] = (step(CC, "nslookup", AA)[0], "")
        steps["other network ptr"] = (step(CC, "nslookup", aa_ip)[0], "")
        pid = json.loads(ok("inspect", BB))[0]["State"]["Pid"]
        for label, packet, tcp in _wire_queries(aa_ip):
            steps[f"wire: {label}"] = (0, named(_ask_from(pid, packet, tcp)))
        return steps
    finally:
        if made:
            docker("rm", "-f", *made)
        for net in nets:
            docker("network", "rm", net)


def _wire_queries(aa_ip: str) -> list[tuple[str, bytes, bool]]:
    """Raw queries whose replies are compared field by field: (label, message, over TCP)."""
    def q(name: str, qtype: str = "A", **header: int) -> bytes:
        record = DNSRecord.question(name, qtype)
        for key, value in header.items():
            setattr(record.header, key, value)
        return bytes(record.pack())

    two = DNSRecord.question(AA)
    two.add_question(DNSRecord.question(BB).q)
    edns = DNSRecord.question(AA)
    edns.add_ar(EDNS0(udp_len=4096))
    reverse = ".".join(reversed(aa_ip.split("."))) + ".in-addr.arpa"
    return [("A", q(AA), False), ("A over TCP", q(AA), True),
            ("A upper case", q(AA.upper()), False), ("A trailing dot", q(AA + "."), False),
            ("A rd=0", q(AA, rd=0), False),
            ("A with EDNS", bytes(edns.pack()), False), ("AAAA", q(AA, "AAAA"), False),
            ("MX", q(AA, "MX"), False), ("TXT", q(AA, "TXT"), False), ("ANY", q(AA, "ANY"), False),
            ("PTR", q(reverse, "PTR"), False), ("two questions", bytes(two.pack()), False),
            ("opcode 2", q(AA, opcode=2), False), ("a reply", q(AA, qr=1), False),
            ("header only", q(AA)[:14], False)]


def _ask_from(pid: int, packet: bytes, tcp: bool) -> str:
    """The reply to `packet` sent to 127.0.0.11:53 from the network namespace of process `pid`,
    as comparable text; "unanswered" for no reply in 2 s or a SERVFAIL (with no upstream Docker
    20.10 lets forwarded queries time out where tether says SERVFAIL; the unit tests pin which)."""
    def work() -> bytes | None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            netns.enter(fd)
        finally:
            os.close(fd)
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(2)
            sock.connect(("127.0.0.11", 53))
            try:
                if tcp:
                    sock.sendall(len(packet).to_bytes(2, "big") + packet)
                    return sock.recv(4096)[2:]
                sock.send(packet)
                return sock.recv(4096)
            except TimeoutError:
                return None
    raw = netns.in_own_thread(work, "dns-diff")
    if raw is None:
        return "unanswered"
    r = DNSRecord.parse(raw)
    if r.header.rcode == RCODE.SERVFAIL:
        return "unanswered"
    h = r.header
    flags = " ".join(f for f in ("qr", "aa", "tc", "rd", "ra") if getattr(h, f))
    same_id = raw[:2] == packet[:2]
    lines = [f"{RCODE.get(h.rcode)} opcode={h.opcode} flags={flags} id-kept={same_id}",
             *(f"Q {qq.qname} {QTYPE.get(qq.qtype)}" for qq in r.questions),
             *(f"AN {rr.rname} {QTYPE.get(rr.rtype)} {rr.ttl} {rr.rdata}" for rr in r.rr),
             f"AR {len(r.ar)} NS {len(r.auth)}"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def both(daemon) -> Iterator[dict[str, dict[str, tuple[int, str]]]]:
    with started("i7b-dns") as ref:
        yield {"docker": _scenario(ref.docker), "tether": _scenario(daemon.docker)}


@pytest.mark.parametrize("step", ["name", "alias", "link", "short id", "ptr", "ping",
                                  "resolv.conf", "no link env", "no link hosts line",
                                  "other network", "other network ptr",
                                  *(f"wire: {label}" for label, _, _ in _wire_queries("1.2.3.4"))])
def test_step_matches_docker(both, step: str) -> None:
    assert both["tether"][step] == both["docker"][step]


def test_the_scenario_resolved_something(both) -> None:
    """Equal outputs could be equal failures: the name and the PTR must really answer."""
    code, out = both["docker"]["name"]
    assert code == 0 and f"Address: <{AA}>" in out
    code, out = both["docker"]["ptr"]
    assert code == 0 and f"name = {AA}.{NET}" in out
    assert both["docker"]["other network"][0] != 0
    wire = {step[len("wire: "):]: out for step, (_, out) in both["docker"].items()
            if step.startswith("wire: ")}
    assert f"AN {AA}. A 600 <{AA}>" in wire["A"]
    assert wire["AAAA"].startswith("NOERROR") and "AN " not in wire["AAAA"]
    assert wire["two questions"].startswith("FORMERR")
    assert (wire["TXT"], wire["a reply"]) == ("unanswered", "unanswered")
