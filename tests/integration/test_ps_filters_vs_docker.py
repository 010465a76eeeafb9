"""`docker ps --filter` against tetherd and against Docker 20.10 (the reference engine): every
key dockerd knows applied as dockerd applies it (before/since cuts, publish/expose with ranges,
is-task, isolation, exited), any other key and any unreadable value refused with dockerd's text.

The same containers are made on both engines, then each listing (names only, so no IDs to
normalise) is compared step by step.
"""
from __future__ import annotations

from typing import Callable, Iterator

import pytest

from conftest import running_daemon
from reference import started

pytestmark = pytest.mark.integration

SETUP: list[tuple[str, ...]] = [
    ("create", "--name", "p1", "-p", "8080:80", "--expose", "90", "busybox", "true"),
    ("run", "-d", "--name", "p2", "busybox", "sleep", "300"),
    ("create", "--name", "p3", "busybox", "true"),
    ("run", "-d", "--name", "p4", "-p", "9090:90/udp", "busybox", "sleep", "300"),
    ("run", "-d", "--name", "p5", "--expose", "7000-7001", "busybox", "sleep", "300"),
    ("run", "--name", "p6", "busybox", "sh", "-c", "exit 3"),
    ("network", "create", "pn"),
    ("run", "-d", "--name", "p7", "--network", "pn", "busybox", "sleep", "300"),
    ("run", "-d", "--name", "p8", "--network", "host", "busybox", "sleep", "300"),
    ("create", "--name", "p9", "--network", "none", "busybox", "true"),
    ("commit", "p2", "pkid"),  # an image made on busybox: busybox's descendant
    ("create", "--name", "p10", "pkid", "true"),
    ("pause", "p8"),
]
FILTERS: list[tuple[str, ...]] = [
    ("bogus=1",),
    ("name=p", "colour=red"),
    ("before=p4",),
    ("since=p2",),
    ("before=p4", "since=p1"),
    ("since=p4", "before=p2"),  # since is met while before still skips: no cut
    ("before=/p5",),
    ("before=nope",),
    ("since=p",),  # a name prefix is no name
    ("publish=9090/udp",),
    ("publish=9090",),
    ("publish=9000-9100/udp",),
    ("expose=80-95/udp",),
    ("expose=7001",),
    ("expose=90/udp", "publish=1"),
    ("publish=80:80",),
    ("expose=x",),
    ("expose=9-8",),
    ("publish=/tcp",),
    ("publish=70000",),
    ("is-task=true",),
    ("is-task=false",),
    ("is-task=bogus",),
    ("isolation=default",),
    ("exited=3",),
    ("exited=x",),
    ("status=exited",),  # a status filter lists stopped containers without -a
    ("status=bogus",),
    ("status=paused",),
    ("status=running",),
    ("health=none", "since=p3"),
    ("label=x", "before=p2"),
    ("network=pn",),
    ("network=p",),  # a network name is matched whole
    ("network=bridge", "network=host"),
    ("network=none",),
    ("name=^p1", "name=/p2$"),
    ("id=[",),
    ("name=p1", "before=p2"),  # dockerd cuts the list that name picked: p2 is not in it
    ("ancestor=busybox",),
    ("ancestor=pkid",),
    ("ancestor=nope",),
    ("ancestor=nope", "ancestor=pkid"),
]
LISTS: list[tuple[str, ...]] = [
    ("ps", *(arg for f in filters for arg in ("--filter", f)), *extra, "--format", "{{.Names}}")
    for filters in FILTERS for extra in ((), ("-a",))
] + [
    ("ps", "-n", "2", "--filter", "since=p1", "--format", "{{.Names}}"),
    ("ps", "-n", "1", "--filter", "before=p5", "--format", "{{.Names}}"),
]


def transcript(docker: Callable[..., object]) -> list[tuple[int, str, str]]:
    for step in SETUP:
        docker(*step)
    network_id = docker("network", "inspect", "-f", "{{.Id}}", "pn").stdout.decode().strip()
    p1 = docker("inspect", "-f", "{{.Id}}", "p1").stdout.decode().strip()
    # an id value is an ID prefix naming one container, then a regular expression over it
    by_id = [("ps", "-a", "--filter", f"id={value}", "--format", "{{.Names}}")
             for value in (p1[:12], p1[10:20], "", ".*")]
    by_id += [("ps", "-a", "--filter", f"network={network_id[:length]}", "--format",
               "{{.Names}}") for length in (64, 5)]
    results = []
    for step in LISTS + by_id:  # the ID steps show no ID: the list is of names
        r = docker(*step)
        results.append((r.returncode, r.stdout.decode(), r.stderr.decode()))
    docker("rm", "-f", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10")
    docker("rmi", "pkid")
    docker("network", "rm", "pn")
    return results


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[list, list]]:
    with started("filters-ps") as ref:
        theirs = transcript(ref.docker)
    with running_daemon() as d:
        ours = transcript(d.docker)
    yield theirs, ours


@pytest.mark.parametrize("index", range(len(LISTS) + 6),
                         ids=[" ".join(s[1:-2]) for s in LISTS]
                         + ["id=ID[:12]", "id=ID[10:20]", "id=", "id=.*", "network=ID",
                            "network=ID[:5]"])
def test_listing(both, index):
    theirs, ours = both
    assert ours[index] == theirs[index]


def test_matches_are_not_vacuous(both):
    """The network ID steps, the ancestor of a committed image and the paused status list their
    containers on the reference engine, so the comparisons above test a match, not two empty
    lists."""
    theirs, _ = both
    assert theirs[-2:] == [(0, "p7\n", "")] * 2
    assert theirs[len(LISTS)] == (0, "p1\n", "")  # an ID prefix names its container
    by_ancestor = LISTS.index(("ps", "--filter", "ancestor=busybox", "-a", "--format",
                               "{{.Names}}"))
    assert "p10\n" in theirs[by_ancestor][1]
    by_status = LISTS.index(("ps", "--filter", "status=paused", "--format", "{{.Names}}"))
    assert theirs[by_status] == (0, "p8\n", "")
