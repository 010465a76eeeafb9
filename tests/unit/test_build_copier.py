"""COPY/ADD's rules on plain directories: sources, globs, symlinks kept inside, destinations."""
import io
import os
import tarfile
from pathlib import Path

import pytest

from tether.image.build.copier import clean_path, copy_source, find_sources, leaves_root
from tether.rules.errors import ApiError

ME = (os.getuid(), os.getgid())


def _context(root: Path) -> Path:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    (root / "dir" / "sub" / "c.txt").write_text("c")
    (root / "escape").symlink_to("/etc")
    return root


def test_sources_globs_and_symlinks_stay_inside(tmp_path: Path) -> None:
    root = _context(tmp_path / "ctx")
    assert [p.name for p in find_sources(root, ["*.txt"], "COPY", True)] == ["a.txt", "b.txt"]
    assert [p.name for p in find_sources(root, ["dir/*/c.txt"], "COPY", True)] == ["c.txt"]
    with pytest.raises(ApiError, match="COPY failed: file not found in build context or excluded by "
                                       ".dockerignore: stat escape/passwd: file does not exist"):
        find_sources(root, ["escape/passwd"], "COPY", True)  # /etc of the context, not the host's
    assert clean_path("a/../../b/./c") == "/b/c"


@pytest.mark.parametrize("source, leaves", [
    ("../x", True), ("a/../../x", True), ("/../x", True), ("..", True), ("./../x", True),
    ("a/../x", False), ("/x", False), ("..x", False), ("x/..", False), (".", False),
])
def test_leaves_root(source: str, leaves: bool) -> None:
    assert leaves_root(source) is leaves


@pytest.mark.parametrize("source", ["../a.txt", "dir/../../a.txt", "/../a.txt"])
def test_sources_above_the_context_are_forbidden_as_dockerd_says(tmp_path: Path, source: str) -> None:
    """dockerd 20.10: `COPY failed: forbidden path outside the build context: ../x ()`; the
    file of the same name in the context (or next to it) is not taken instead."""
    root = _context(tmp_path / "ctx")
    (tmp_path / "a.txt").write_text("outside")
    with pytest.raises(ApiError) as raised:
        find_sources(root, [source], "COPY", True)
    assert raised.value.message == f"COPY failed: forbidden path outside the build context: {source} ()"
    assert [p.name for p in find_sources(root, ["dir/../a.txt"], "ADD", True)] == ["a.txt"]


def test_destinations(tmp_path: Path) -> None:
    root, rootfs = _context(tmp_path / "ctx"), tmp_path / "rootfs"
    rootfs.mkdir()
    copy_source(rootfs, root / "dir", "/app", False, *ME, False)          # a dir: its contents
    copy_source(rootfs, root / "a.txt", "/app/", True, *ME, False)        # into a directory
    copy_source(rootfs, root / "b.txt", "/app/renamed", False, *ME, False)  # becomes the file
    found = sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("*"))
    assert found == ["app", "app/a.txt", "app/renamed", "app/sub", "app/sub/c.txt"]


def test_add_unpacks_local_archives_copy_does_not(tmp_path: Path) -> None:
    archive = tmp_path / "x.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("in.txt")
        info.size, info.uid, info.gid = 2, *ME
        tar.addfile(info, io.BytesIO(b"hi"))
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    copy_source(rootfs, archive, "/add/", True, *ME, True)
    copy_source(rootfs, archive, "/copy/", True, *ME, False)
    assert (rootfs / "add" / "in.txt").read_text() == "hi"
    assert (rootfs / "copy" / "x.tar").read_bytes() == archive.read_bytes()
