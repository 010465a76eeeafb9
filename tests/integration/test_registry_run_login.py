"""`tether run` of an image the daemon lacks pulls it with the login `tether login` stored, as
`tether pull` does (docker run sends X-Registry-Auth from ~/.docker/config.json too)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from localregistry import forget_test_images, registries

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _forget_pushed_images(daemon) -> Iterator[None]:
    yield
    forget_test_images(daemon)


def test_run_pulls_a_missing_image_with_the_stored_login(daemon, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with registries([daemon.netns], users={"alice": "s3cret"}) as (reg,):
        name = f"{reg.address}/i6a/i6r-run:v1"
        assert daemon.tether("tag", "busybox", name).returncode == 0
        logged_in = daemon.tether("login", "-u", "alice", "-p", "s3cret", reg.address)
        assert logged_in.returncode == 0, logged_in.stderr
        assert daemon.tether("push", name).returncode == 0
        assert daemon.tether("rmi", name).returncode == 0

        ran = daemon.tether("run", "--rm", name, "echo", "pulled with the login")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.decode() == "pulled with the login\n"
        assert f"Unable to find image '{name}' locally" in ran.stderr.decode()
        assert daemon.api("GET", f"/images/{name}/json")[0] == 200

        assert daemon.tether("rmi", name).returncode == 0
        (tmp_path / "config.json").write_text(json.dumps({"auths": {}}))
        anonymous = daemon.tether("run", "--rm", name, "true")
        assert anonymous.returncode != 0
        assert "no basic auth credentials" in anonymous.stderr.decode()
        assert daemon.api("GET", f"/images/{name}/json")[0] == 404
