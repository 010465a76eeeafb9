"""Prune everywhere, the docker CLI against tetherd and Docker 20.10: `container prune` (label and
until filters), `image prune` (dangling, then `-a`), `builder prune`, `volume prune`, `network
prune`, `system prune` with and without `-a --volumes`: the same objects go, the same space is
reported reclaimed, the same events are emitted.

IDs differ between engines (creation times are in them), so outputs are compared with each ID
replaced by the name of the object it belongs to, or by `<id>`; dockerd removes `image prune -a`
candidates in Go's map order, so those lines are compared as sets. Each engine is a fresh one:
a prune takes everything it is allowed to.
"""
from __future__ import annotations

import json
import re
import time
from typing import Callable

import pytest

from reference import ReferenceEngine, reference_fixture

pytestmark = pytest.mark.integration

HEX = re.compile(r"(sha256:)?[0-9a-f]{64}|\b[0-9a-f]{12}\b")


reference = reference_fixture("routes-prune")


def _names(docker: Callable) -> dict[str, str]:
    """Every container's full ID -> its name, to read prune output by name."""
    out = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}").stdout.decode()
    return dict(line.split() for line in out.splitlines())


def _normalised(text: bytes, names: dict[str, str]) -> list[str]:
    lines = []
    for line in text.decode().splitlines():
        for cid, name in names.items():
            line = line.replace(cid, name)
        lines.append(HEX.sub("<id>", line))
    return lines


def _events(docker: Callable, since: str) -> list[str]:
    out = docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                 "--format", "{{json .}}").stdout.decode()
    kept = []
    for line in out.splitlines():
        event = json.loads(line)
        if event["Type"] in ("container", "image", "volume", "network", "builder") and \
                event["Action"] in ("destroy", "prune", "delete", "untag"):
            attrs = {k: v for k, v in event["Actor"]["Attributes"].items() if k in ("reclaimed",)}
            kept.append(f'{event["Type"]} {event["Action"]} {json.dumps(attrs, sort_keys=True)}')
    return sorted(kept)


def _scenario(docker: Callable) -> dict[str, object]:
    """The same steps on one engine; what each step printed, normalised."""
    results: dict[str, object] = {}
    since = str(int(time.time()) - 1)
    docker("run", "--name", "big", "--label", "a=1", "busybox",
           "sh", "-c", "dd if=/dev/zero of=/f bs=1k count=100 2>/dev/null")
    docker("run", "--name", "small", "--label", "b=2", "busybox", "sh", "-c", "echo hi > /g")
    docker("run", "-d", "--name", "running", "busybox", "sleep", "300")
    docker("create", "--name", "created", "--label", "a=2", "busybox")
    names = _names(docker)
    for step, args in [("label", ["--filter", "label=a=1"]), ("label!", ["--filter", "label!=b"]),
                       ("until", ["--filter", "until=2000-01-01"]), ("all", [])]:
        r = docker("container", "prune", "-f", *args)
        results[f"container prune {step}"] = (r.returncode, _normalised(r.stdout, names),
                                              r.stderr.decode())
    results["left"] = sorted(_names(docker).values())
    docker("rm", "-f", "running")

    docker("run", "--name", "maker", "busybox", "sh", "-c", "dd if=/dev/zero of=/h bs=1k count=50 2>/dev/null")
    docker("commit", "maker", "dang:1")
    docker("commit", "maker", "dang:1")            # the first commit is left dangling
    docker("run", "--name", "child", "dang:1", "sh", "-c", "echo x > /i")
    docker("commit", "child", "kid:1")
    docker("rm", "maker", "child")
    docker("create", "--name", "user", "dang:1")  # keeps dang:1 from `prune -a`
    r = docker("image", "prune", "-f")
    results["image prune"] = (r.returncode, _normalised(r.stdout, {}))
    r = docker("image", "prune", "-f", "--filter", "until=2000-01-01", "-a")
    results["image prune -a until"] = (r.returncode, _normalised(r.stdout, {}))
    r = docker("image", "prune", "-a", "-f")
    lines = _normalised(r.stdout, {})
    results["image prune -a"] = (r.returncode, sorted(lines[1:-2]), lines[-1])
    results["images left"] = sorted(docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split())
    docker("rm", "user")

    r = docker("builder", "prune", "-f")
    results["builder prune"] = (r.returncode, r.stdout.decode(), r.stderr.decode())

    docker("volume", "create", "named")
    docker("run", "--name", "anon", "-v", "/data", "busybox", "true")
    docker("rm", "anon")
    docker("network", "create", "n1")
    r = docker("system", "prune", "-f")
    results["system prune"] = (r.returncode, _normalised(r.stdout, {}))
    results["volumes after system prune"] = len(docker("volume", "ls", "-q").stdout.split())
    docker("run", "--name", "again", "busybox", "true")
    r = docker("system", "prune", "-a", "-f", "--volumes")
    lines = _normalised(r.stdout, {})
    results["system prune -a --volumes"] = (r.returncode, sorted(lines))
    results["volumes left"] = docker("volume", "ls", "-q").stdout.decode().split()
    results["events"] = _events(docker, since)
    return results


def test_prunes_as_docker(fresh_daemon, reference: ReferenceEngine, monkeypatch) -> None:
    # the reference speaks API 1.41, where volume prune takes every unused volume
    monkeypatch.setenv("DOCKER_API_VERSION", "1.41")
    ours = _scenario(fresh_daemon.docker)
    theirs = _scenario(reference.docker)
    assert ours["events"] == theirs["events"]
    assert ours == theirs


def test_volume_prune_from_api_1_42_takes_anonymous_volumes_only(fresh_daemon) -> None:
    """dockerd 23+ (API 1.42+): `volume prune` removes only anonymous volumes (made without a
    name, by the API or by a container's `-v /path`), `--all` the named ones too. Docker 20.10
    cannot answer at 1.42, so this is checked on tetherd alone, against dockerd 23's rule. A
    daemon of its own: prune takes every anonymous volume, also those other tests keep."""
    daemon = fresh_daemon
    assert daemon.docker("volume", "create", "named-vp").returncode == 0
    anonymous = daemon.docker("volume", "create").stdout.decode().strip()
    labels = daemon.docker("volume", "inspect", "--format", "{{json .Labels}}", anonymous)
    assert labels.stdout.decode().strip() == '{"com.docker.volume.anonymous":""}'
    r = daemon.docker("volume", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines()[:2] == ["Deleted Volumes:", anonymous]
    assert daemon.docker("volume", "inspect", "named-vp").returncode == 0
    r = daemon.docker("volume", "prune", "-f", "--all")
    assert "named-vp" in r.stdout.decode().splitlines()
