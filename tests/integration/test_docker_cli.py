"""The stock docker CLI (28.x) with DOCKER_HOST pointing at tetherd."""
from __future__ import annotations

import json
import subprocess

import pytest

from test_lifecycle import out

pytestmark = pytest.mark.integration


def test_docker_cli_drives_tether(daemon, tmp_path):
    assert "1.44" in out(daemon.docker("version", "--format", "{{.Server.APIVersion}}"))
    r = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo fg; exit 3")
    assert (r.returncode, r.stdout) == (3, b"fg\n"), r.stderr
    r = daemon.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo end", input=b"in\n")
    assert (r.returncode, r.stdout) == (0, b"in\nend\n"), r.stderr
    cid = out(daemon.docker("run", "-d", "--name", "dcli", "busybox", "sh", "-c",
                            "echo hello; sleep 60"))
    try:
        ps = out(daemon.docker("ps", "-a"))
        assert cid[:12] in ps and "dcli" in ps
        assert "hello" in out(daemon.docker("logs", "dcli"))
        assert out(daemon.docker("exec", "dcli", "cat", "/etc/hostname")) == cid[:12]
        assert daemon.docker("exec", "dcli", "sh", "-c", "exit 4").returncode == 4
        r = daemon.docker("exec", "-i", "dcli", "cat", input=b"piped\n")
        assert r.stdout == b"piped\n"
        body = json.loads(out(daemon.docker("inspect", "dcli")))
        assert body[0]["Id"] == cid
        assert out(daemon.docker("inspect", "-f", "{{.State.Status}}", "dcli")) == "running"
    finally:
        assert out(daemon.docker("rm", "-f", "dcli")) == "dcli"
    rootfs = tmp_path / "r"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "busybox").write_bytes(open("/bin/busybox", "rb").read())
    (rootfs / "bin" / "busybox").chmod(0o755)
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
    image_id = out(daemon.docker("import", "-", "dimported:1", input=tar))
    assert image_id.startswith("sha256:")
    assert "dimported" in out(daemon.docker("images"))
    r = daemon.docker("run", "--rm", "dimported:1", "/bin/busybox", "echo", "ok")
    assert r.stdout == b"ok\n", r.stderr
    out(daemon.docker("rmi", "dimported:1"))
    r = daemon.docker("rm", "-f", "nosuch")
    assert b"No such container: nosuch" in r.stderr
