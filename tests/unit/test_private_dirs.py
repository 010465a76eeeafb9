"""The data root's and exec root's modes (engine/paths.py), the API socket's group (daemon.py)
and its listen backlog (api/http.py)."""
from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest

from tether.api.http import listen_backlog
from tether.daemon import socket_gid
from tether.engine.paths import DATA_ROOT_MODES, EXEC_ROOT_MODES, Paths, make_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_fresh_roots_are_made_private(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "a" / "data", tmp_path / "run")
    make_private(paths)
    for root, modes in ((paths.data_root, DATA_ROOT_MODES), (paths.exec_root, EXEC_ROOT_MODES)):
        for relative, mode in modes:
            if not relative.endswith("*"):
                assert _mode(root / relative) == mode, relative
    assert _mode(paths.data_root) == 0o710 and _mode(paths.exec_root) == 0o711
    assert _mode(paths.containers) == 0o710 and _mode(paths.images) == 0o700
    assert _mode(paths.volumes) == 0o701 and _mode(paths.exec_root / "bundles") == 0o700


def test_an_open_old_root_is_closed_and_content_keeps_its_modes(tmp_path: Path) -> None:
    """What an older tetherd left: every dir 0755; the content below the guards is not ours to
    change (a merged dir shows the image's root mode, a volume's _data is its containers')."""
    paths = Paths(tmp_path / "data", tmp_path / "run")
    open_dirs = [paths.data_root, paths.upper("c1"), paths.rootfs("c1"), paths.images / "layers" / "l1" / "diff",
                 paths.volumes / "v1" / "_data", paths.network, paths.builder / "w1",
                 paths.exec_root / "runtime" / "ctr", paths.bundle("c1"), paths.exec_root / "netns"]
    for d in open_dirs:
        d.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (paths.containers / "link").symlink_to(outside)
    (paths.volumes / "metadata").write_text("")
    for d in [*open_dirs, outside, *(p for d in open_dirs for p in d.parents if tmp_path in p.parents)]:
        d.chmod(0o755)
    (paths.volumes / "metadata").chmod(0o644)
    make_private(paths)
    assert _mode(paths.data_root) == 0o710
    assert _mode(paths.container("c1")) == 0o710 and _mode(paths.containers) == 0o710
    assert _mode(paths.images) == 0o700 and _mode(paths.images / "layers") == 0o710
    assert _mode(paths.images / "layers" / "l1") == 0o710
    assert _mode(paths.volumes) == 0o701 and _mode(paths.volumes / "v1") == 0o701
    assert _mode(paths.network) == 0o750 and _mode(paths.builder) == 0o700
    assert _mode(paths.exec_root) == 0o711 and _mode(paths.exec_root / "runtime") == 0o700
    assert _mode(paths.exec_root / "bundles") == 0o700 and _mode(paths.exec_root / "netns") == 0o700
    for content in (paths.upper("c1"), paths.rootfs("c1"), paths.images / "layers" / "l1" / "diff",
                    paths.volumes / "v1" / "_data", paths.bundle("c1"), outside):
        assert _mode(content) == 0o755, content
    assert _mode(paths.volumes / "metadata") == 0o644


def test_make_private_sets_dockerds_modes_whatever_they_were(tmp_path: Path) -> None:
    """dockerd 20.10 too: a 0700 data root and a 0751 overlay2/ are 0710 after its start."""
    paths = Paths(tmp_path / "data", tmp_path / "run")
    paths.containers.mkdir(parents=True)
    paths.containers.chmod(0o777)
    paths.data_root.chmod(0o700)
    make_private(paths)
    assert _mode(paths.data_root) == 0o710 and _mode(paths.containers) == 0o710


def _groups(known: dict[str, int]):
    def lookup(name: str) -> grp.struct_group:
        if name not in known:
            raise KeyError(name)
        return grp.struct_group((name, "x", known[name], []))
    return lookup


def test_socket_group_as_dockerd_picks_it() -> None:
    lookup = _groups({"docker": 107, "staff": 50, "123": 77})
    assert socket_gid("docker", "/run/x.sock", lookup) == 107
    assert socket_gid("staff", "/run/x.sock", lookup) == 50
    assert socket_gid("123", "/run/x.sock", lookup) == 77  # a name first, then a number
    assert socket_gid("4242", "/run/x.sock", lookup) == 4242  # a GID no group has is used as it is
    assert socket_gid("", "/run/x.sock", lookup) == os.getgid()


def test_socket_group_default_may_be_missing_another_may_not(caplog: pytest.LogCaptureFixture) -> None:
    lookup = _groups({})
    assert socket_gid("docker", "/run/x.sock", lookup) == os.getgid()
    assert "could not change group /run/x.sock to docker: group docker not found" in caplog.text
    for bad in ("nosuchgroup", "-5", "12a", " 5"):
        with pytest.raises(SystemExit, match=f"^tetherd: failed to load listeners: group {bad} not found$"):
            socket_gid(bad, "/run/x.sock", lookup)


def test_listen_backlog_is_the_kernels_somaxconn() -> None:
    assert listen_backlog() == int(Path("/proc/sys/net/core/somaxconn").read_text())
