"""runtime/rootfd.py: paths resolved inside a root by openat2 stay there, through symlinks that
point out, `..`, absolute targets, and a thread swapping a directory with such a symlink."""
from __future__ import annotations

import ctypes
import os
import stat
import threading
from pathlib import Path
from typing import Iterator

import pytest

from tether.runtime import rootfd

_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[rootfd.Root, Path, Path]]:
    """A root with /etc/hosts, an absolute link /abs -> /etc, a climbing link /up -> ../../..,
    a link /out -> the outside directory by its host path, and that outside directory with a
    file, next to the root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("inside\n")
    outside.mkdir()
    (outside / "hosts").write_text("HOST\n")
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../..")
    (root / "out").symlink_to(outside)
    with rootfd.Root.open(root) as r:
        yield r, root, outside


def _read(r: rootfd.Root, path: str) -> bytes:
    fd = r.open_at(path, os.O_RDONLY)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_links_and_dotdot_resolve_inside_the_root(tree) -> None:
    r, root, _ = tree
    assert _read(r, "/abs/hosts") == b"inside\n"
    assert _read(r, "/up/etc/hosts") == b"inside\n"
    assert _read(r, "/../../etc/./hosts") == b"inside\n"
    with pytest.raises(FileNotFoundError):  # the outside dir's host path means nothing inside
        r.open_at("/out/hosts", os.O_RDONLY)
    assert r.resolve("/abs/hosts") == "/etc/hosts"
    assert r.resolve("/up/etc") == "/etc"
    assert r.resolve("/abs", follow_last=False) == "/abs"
    assert r.resolve("/") == "/"
    assert stat.S_ISLNK(r.lstat("/abs").st_mode) and stat.S_ISDIR(r.lstat("/").st_mode)


def test_a_symlink_loop_is_eloop(tree) -> None:
    r, root, _ = tree
    (root / "loop").symlink_to("loop")
    with pytest.raises(OSError) as exc:
        r.resolve("/loop")
    assert exc.value.errno == 40
    with pytest.raises(OSError) as exc:
        r.open_at("/loop", os.O_RDONLY)
    assert exc.value.errno == 40


def test_resolve_path_is_the_containers_view() -> None:
    links = {"/a": "b/c", "/b": "/x", "/x/c": "../y"}
    assert rootfd.resolve_path("/a/f", links.get) == "/y/f"
    assert rootfd.resolve_path("/a", links.get, follow_last=False) == "/a"
    assert rootfd.resolve_path("../../a/..", links.get) == "/"


def test_makedirs_creates_inside_through_links(tree) -> None:
    r, root, outside = tree
    fd = r.makedirs("/abs/new/deeper", 0o700, (os.getuid(), os.getgid()))
    os.close(fd)
    assert (root / "etc" / "new" / "deeper").is_dir()
    assert stat.S_IMODE((root / "etc" / "new").stat().st_mode) == 0o700 & ~_umask()
    fd = r.makedirs("/up/made")
    os.close(fd)
    assert (root / "made").is_dir() and not (outside.parent.parent / "made").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_set_attributes_never_follows_the_entry(tree) -> None:
    r, root, outside = tree
    before = os.stat(outside / "hosts")
    (root / "etc" / "evil").symlink_to(outside / "hosts")
    fd, name = r.parent("/etc/evil")
    try:
        rootfd.set_attributes(fd, name, (os.getuid(), os.getgid()), 0o777, 5_000_000_000)
        rootfd.set_attributes(fd, "hosts", None, 0o604, 7_000_000_000)
    finally:
        os.close(fd)
    after = os.stat(outside / "hosts")
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)
    assert os.lstat(root / "etc" / "evil").st_mtime_ns == 5_000_000_000
    st = os.stat(root / "etc" / "hosts")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o604, 7_000_000_000)


def test_walk_lists_by_fds_without_following(tree) -> None:
    r, root, _ = tree
    (root / "etc" / "sub").mkdir()
    (root / "etc" / "sub" / "f").write_text("f")
    (root / "etc" / "link").symlink_to("/")
    fd = r.open_at("/etc", os.O_PATH | os.O_NOFOLLOW)
    try:
        seen = [(name, stat.S_IFMT(st.st_mode)) for name, st, _ in rootfd.walk(fd, "e")]
    finally:
        os.close(fd)
    assert seen == [("e", stat.S_IFDIR), ("e/hosts", stat.S_IFREG), ("e/link", stat.S_IFLNK),
                    ("e/sub", stat.S_IFDIR), ("e/sub/f", stat.S_IFREG)]


def test_open_regular_refuses_other_types(tree) -> None:
    r, root, _ = tree
    os.mkfifo(root / "fifo")
    fd = r.open_at("/fifo", os.O_PATH | os.O_NOFOLLOW)
    try:
        with pytest.raises(OSError):
            rootfd.open_regular(fd)
    finally:
        os.close(fd)


def test_remove_at_does_not_follow(tree) -> None:
    r, root, outside = tree
    (root / "d").mkdir()
    (root / "d" / "l").symlink_to(outside)
    rootfd.remove_at(r.fd, "d")
    rootfd.remove_at(r.fd, "missing")
    assert not (root / "d").exists() and (outside / "hosts").exists()


def _exchange(a: Path, b: Path) -> int:
    return _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), _RENAME_EXCHANGE)


def test_a_racing_exchange_never_leads_out(tree) -> None:
    """A thread swaps /w (a directory) with /wl (a symlink to the outside dir by its host path,
    then by a climbing relative path) while files are created and chmod'ed under /w: none lands
    outside and the outside file keeps its mode."""
    r, root, outside = tree
    (root / "w").mkdir()
    (root / "wl").symlink_to(outside)
    (root / "wrel").symlink_to("../outside")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            _exchange(root / "w", root / "wl")
            _exchange(root / "w", root / "wrel")
    thread = threading.Thread(target=swap)
    thread.start()
    try:
        for i in range(2000):
            try:
                fd = r.makedirs("/w")
            except OSError:
                continue
            try:
                try:
                    os.close(os.open(f"f{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                                     0o600, dir_fd=fd))
                except FileExistsError:
                    pass
                rootfd.set_attributes(fd, "hosts", None, 0o777, 1)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
    finally:
        stop.set()
        thread.join()
    assert sorted(p.name for p in outside.iterdir()) == ["hosts"]
    assert stat.S_IMODE(os.stat(outside / "hosts").st_mode) != 0o777
    assert any(p.name.startswith("f") for p in root.rglob("f*"))


def test_regular_file_is_what_a_mount_point_may_be(tree) -> None:
    """hosts & co. of a stopped container are bound only onto a regular file: not a symlink
    (with follow_last=False), a directory or nothing; a link on the way resolves inside."""
    r, root, _ = tree
    (root / "etc" / "hostname").symlink_to("/etc/passwd")
    (root / "etc2").symlink_to("/etc")
    found = r.regular_file("/etc2/hosts", follow_last=False)
    assert found is not None
    try:
        assert os.fstat(found).st_ino == os.stat(root / "etc" / "hosts").st_ino
    finally:
        os.close(found)
    for path in ("/etc/hostname", "/etc", "/etc/missing", "/etc/hosts/x"):
        assert r.regular_file(path, follow_last=False) is None
