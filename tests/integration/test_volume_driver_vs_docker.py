"""`--volume-driver` (HostConfig.VolumeDriver) against tetherd and Docker 20.10 (docker-py's
test_create_with_volume_driver): it names the driver of the volumes a container's Binds and
Config.Volumes make, so with no such volume any name is kept and shown; with one, a driver
neither engine has fails the create with dockerd's text, and `local` makes local volumes.
A `--mount` volume names its own driver (the local one when none).
"""
from __future__ import annotations

import re

import docker
import pytest

from reference import started

pytestmark = pytest.mark.integration

STEPS = [
    ("create", "--name", "vd", "--volume-driver", "foo", "busybox", "true"),
    ("inspect", "-f", "{{.HostConfig.VolumeDriver}} {{len .Mounts}}", "vd"),
    ("rm", "vd"),
    ("create", "--name", "vdm", "--volume-driver", "foo", "--mount", "type=volume,dst=/data",
     "busybox", "true"),
    ("inspect", "-f", "{{range .Mounts}}{{.Driver}}{{end}}", "vdm"),
    ("rm", "-v", "vdm"),
    ("create", "--name", "vdl", "--volume-driver", "local", "-v", "vdlocal:/data", "busybox"),
    ("inspect", "-f", "{{range .Mounts}}{{.Name}} {{.Driver}}{{end}}", "vdl"),
    ("rm", "vdl"),
    ("volume", "rm", "vdlocal"),
    ("volume", "ls", "-q"),
]


def _normalised(text: bytes) -> str:
    return re.sub(r"\b[0-9a-f]{12,64}\b", "<id>", text.decode())


def _refusals(host: str) -> list[tuple[int, str]]:
    """Creates whose volume would be the unknown driver's, through the API (the docker CLI
    takes their 404 for a missing image and tries a pull)."""
    client = docker.APIClient(base_url=host)
    out = []
    for binds, volumes in (([], ["/data"]), (["vdnamed:/data"], [])):
        with pytest.raises(docker.errors.APIError) as err:
            client.create_container("busybox", "true", volumes=volumes or None,
                                    host_config=client.create_host_config(
                                        volume_driver="foo", binds=binds or None))
        out.append((err.value.status_code, re.sub(r"[0-9a-f]{64}", "<id>",
                                                  err.value.explanation)))
    client.close()
    return out


def test_volume_driver_as_docker(fresh_daemon) -> None:
    # a daemon of its own: the last step lists every volume, and the session daemon holds other
    # tests' anonymous volumes
    daemon = fresh_daemon
    with started("volume-driver") as ref:
        seen = {name: [(r.returncode, _normalised(r.stdout), _normalised(r.stderr))
                       for step in STEPS for r in [run(*step)]]
                for name, run in (("tether", daemon.docker), ("docker", ref.docker))}
        refused = {"tether": _refusals(daemon.host), "docker": _refusals(ref.host)}
    for step, ours, theirs in zip(STEPS, seen["tether"], seen["docker"]):
        assert ours == theirs, step
    assert seen["tether"][1][1] == "foo 0\n"
    assert refused["tether"] == refused["docker"]
