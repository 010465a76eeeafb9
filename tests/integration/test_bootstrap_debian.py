"""`tether image bootstrap debian`: mmdebstrap on the host, its tar imported by the daemon (which has
no route out), and the image runs what `--include` put in it. Packages come from Debian's archive,
the one source this machine may install from."""
from __future__ import annotations

import pytest

from harness import Daemon

pytestmark = pytest.mark.integration


def test_bootstrap_debian_with_an_extra_package(daemon: Daemon) -> None:
    made = daemon.tether("image", "bootstrap", "debian", "--include", "python3", "-t", "deb-py:test",
                         timeout=600)
    assert made.returncode == 0, made.stderr
    try:
        status, image = daemon.api("GET", "/images/deb-py:test/json")
        assert status == 200, image
        config = image["Config"]
        assert config["Cmd"] == ["bash"]
        assert config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        ran = daemon.tether("run", "--rm", "deb-py:test", "python3", "-c",
                            "import sys; print(sys.version_info[:2])")
        assert (ran.returncode, ran.stdout) == (0, b"(3, 11)\n"), ran.stderr
        release = daemon.tether("run", "--rm", "deb-py:test", "cat", "/etc/debian_version")
        assert release.stdout.startswith(b"12."), release
    finally:
        daemon.tether("rmi", "deb-py:test")


def test_bootstrap_debian_reports_a_failed_mmdebstrap(daemon: Daemon) -> None:
    made = daemon.tether("image", "bootstrap", "debian", "--suite", "no-such-suite", "-t", "deb-bad:x",
                         timeout=300)
    assert made.returncode == 1
    assert b"mmdebstrap failed with exit code" in made.stderr
    assert daemon.api("GET", "/images/deb-bad:x/json")[0] == 404
