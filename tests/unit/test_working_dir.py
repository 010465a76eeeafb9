"""The container's working directory is made inside its root, a file in the way is refused
in dockerd's words, and error texts name a container's files by the container's paths, never
by the host's (Paths.hide)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.engine.run_config import make_working_dir
from tether.engine.paths import Paths
from tether.rules.errors import BadRequest


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return root


def test_missing_directories_are_made(rootfs: Path) -> None:
    make_working_dir(rootfs, "/srv/app/data")
    assert (rootfs / "srv" / "app" / "data").is_dir()
    make_working_dir(rootfs, "/srv/app/data")  # an existing directory is fine
    make_working_dir(rootfs, "/")


@pytest.mark.parametrize("cwd", ["/etc/passwd", "/etc/passwd/sub"])
def test_a_file_in_the_way_is_refused_without_host_path(rootfs: Path, cwd: str) -> None:
    with pytest.raises(BadRequest) as info:
        make_working_dir(rootfs, cwd)
    assert info.value.message == f"Cannot mkdir: {cwd} is not a directory"
    assert str(rootfs) not in info.value.message


def test_symlinks_resolve_inside_the_root(rootfs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), rootfs / "escape")        # absolute: means <root>/<outside path>
    os.symlink("../../../..", rootfs / "etc" / "up")   # climbs no higher than the root
    make_working_dir(rootfs, "/escape/made")
    make_working_dir(rootfs, "/etc/up/top")
    assert not (outside / "made").exists()
    assert (rootfs / str(outside).lstrip("/") / "made").is_dir()
    assert (rootfs / "top").is_dir()


@pytest.mark.parametrize(("text", "public"), [
    ("lstat /data/containers/{cid}/rootfs/etc/passwd/sub: not a directory",
     "lstat /etc/passwd/sub: not a directory"),
    ("file exists /data/containers/{cid}/rootfs", "file exists /"),
    ("open /data/containers/{cid}/hosts: denied", "open <host path>: denied"),
    ("mount /data/volumes/v/_data and /run/t/netns/{cid}", "mount /data/volumes/v/_data and <host path>"),
])
def test_paths_hide_shows_container_paths_only(text: str, public: str) -> None:
    cid = "a" * 64
    paths = Paths(Path("/data"), Path("/run/t"))
    assert paths.hide(text.format(cid=cid)) == public
