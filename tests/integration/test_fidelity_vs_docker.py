"""Small fidelity items against Docker 20.10: the ports `ps -a` lists for a container whose start
failed, and the loopback of a `--network none` container."""
from __future__ import annotations

import io
import re
import time
from typing import Iterator

import pytest

from reference import ReferenceEngine
from tether.image.bootstrap import CHANGES, busybox_rootfs_tar

pytestmark = pytest.mark.integration
IMAGE = "fidelity-exposed:latest"


@pytest.fixture(scope="module")
def engines(daemon) -> Iterator[dict]:
    ref = ReferenceEngine("routes-fidelity")
    tar = io.BytesIO()
    busybox_rootfs_tar(tar)
    changes = [arg for change in (*CHANGES, "EXPOSE 80") for arg in ("-c", change)]
    try:
        ref.start()
        for docker in (ref.docker, daemon.docker):
            assert docker("import", *changes, "-", IMAGE, input=tar.getvalue()).returncode == 0
        yield {"docker": ref.docker, "tether": daemon.docker}
    finally:
        daemon.docker("rm", "-f", "fid-p", "fid-big-p")
        daemon.docker("rmi", IMAGE)
        ref.stop()


def test_failed_start_keeps_its_ports_in_ps(engines) -> None:
    """`run -d -P img missing-binary`: exit 127, a Created container that `ps -a` lists with the
    ports that start published (both families' lines), while inspect shows none."""
    seen = {}
    for name, docker in engines.items():
        ran = docker("run", "-d", "-p", "8181:80", "-p", "9191:90/udp", "--name", "fid-p",
                     IMAGE, "missing-binary")
        big_p = docker("run", "-d", "-P", "--name", "fid-big-p", IMAGE, "missing-binary")
        listed = docker("ps", "-a", "--filter", "name=fid-", "--format",
                        "{{.Names}} {{.Status}} [{{.Ports}}]").stdout.decode()
        inspected = docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", "fid-p").stdout
        seen[name] = (ran.returncode, big_p.returncode, re.sub(r":\d{5}->", ":<port>->", listed),
                      inspected)
        docker("rm", "-f", "fid-p", "fid-big-p")
    assert seen["tether"] == seen["docker"]
    assert "0.0.0.0:8181->80/tcp" in seen["docker"][2]


def test_network_none_loopback_has_no_ipv6(engines) -> None:
    shown = {name: docker("run", "--rm", "--network", "none", IMAGE, "ip", "addr", "show", "lo")
             for name, docker in engines.items()}
    assert (shown["tether"].returncode, shown["tether"].stdout) == \
        (shown["docker"].returncode, shown["docker"].stdout)
    assert b"inet 127.0.0.1/8" in shown["docker"].stdout and b"inet6" not in shown["docker"].stdout


def test_rmi_emits_untag_and_delete_events(engines) -> None:
    """`docker rmi` of one tag of two (untag), then of the last (untag, delete): dockerd's image
    events, the image's labels on `untag`."""
    tar = io.BytesIO()
    busybox_rootfs_tar(tar)
    seen = {}
    for name, docker in engines.items():
        assert docker("import", "-c", "LABEL tier=test", "-", "fid-rmi:1",
                      input=tar.getvalue()).returncode == 0
        assert docker("tag", "fid-rmi:1", "fid-rmi:2").returncode == 0
        since = str(int(time.time()) - 1)
        removed = [docker("rmi", ref).returncode for ref in ("fid-rmi:1", "fid-rmi:2")]
        out = docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                     "--filter", "type=image", "--format",
                     "{{.Action}} {{json .Actor.Attributes}}").stdout.decode()
        seen[name] = (removed, [re.sub(r"sha256:[0-9a-f]{64}", "<id>", line)
                                for line in out.splitlines() if not line.startswith(("import", "tag"))])
    assert seen["tether"] == seen["docker"]
    assert seen["docker"][1][-1] == 'delete {"name":"<id>"}'
