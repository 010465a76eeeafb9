"""Layer unpacking: whiteouts to overlayfs form, metadata kept, escapes refused. Needs root (mknod,
chown, trusted.* xattrs), which these tests have."""
import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tether.errors import BadRequest
from tether.image import layers


def make_tar(*entries: tuple[str, bytes, dict]) -> bytes:
    """A tar from (name, type, attrs) with `data` in attrs for regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, attrs in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = attrs.pop("data", b"")
            info.size = len(data)
            for key, value in attrs.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack(data: bytes, root: Path) -> Path:
    blob = root / "blob"
    blob.write_bytes(data)
    return layers.unpack_layer(blob, root / "layer")


def test_files_dirs_links_and_metadata(tmp_path: Path) -> None:
    diff = unpack(make_tar(
        ("etc", tarfile.DIRTYPE, {"mode": 0o750, "uid": 7, "gid": 8, "mtime": 1000}),
        ("etc/f", tarfile.REGTYPE, {"data": b"hello", "mode": 0o4755, "uid": 5, "gid": 6, "mtime": 2000,
                                    "pax_headers": {"SCHILY.xattr.user.k": "v"}}),
        ("etc/hard", tarfile.LNKTYPE, {"linkname": "etc/f"}),
        ("etc/sym", tarfile.SYMTYPE, {"linkname": "/outside/target"}),
        ("dev/null", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3, "mode": 0o666}),
        ("fifo", tarfile.FIFOTYPE, {"mode": 0o644}),
        ("/abs/file", tarfile.REGTYPE, {"data": b"x"}),
    ), tmp_path)
    f = os.lstat(diff / "etc/f")
    assert (diff / "etc/f").read_bytes() == b"hello"
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid, f.st_mtime) == (0o4755, 5, 6, 2000)
    assert os.getxattr(diff / "etc/f", "user.k") == b"v"
    assert os.lstat(diff / "etc/hard").st_ino == f.st_ino
    assert os.readlink(diff / "etc/sym") == "/outside/target"
    d = os.lstat(diff / "etc")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, d.st_mtime) == (0o750, 7, 8, 1000)
    dev = os.lstat(diff / "dev/null")
    assert stat.S_ISCHR(dev.st_mode) and (os.major(dev.st_rdev), os.minor(dev.st_rdev)) == (1, 3)
    assert stat.S_ISFIFO(os.lstat(diff / "fifo").st_mode)
    assert (diff / "abs/file").read_bytes() == b"x"


def test_whiteout_and_opaque_dir(tmp_path: Path) -> None:
    diff = unpack(make_tar(
        ("a", tarfile.DIRTYPE, {"mode": 0o755}),
        ("a/.wh.gone", tarfile.REGTYPE, {}),
        ("b", tarfile.DIRTYPE, {"mode": 0o755}),
        ("b/.wh..wh..opq", tarfile.REGTYPE, {}),
        ("b/kept", tarfile.REGTYPE, {"data": b"k"}),
        (".wh..wh.plnk", tarfile.DIRTYPE, {}),
    ), tmp_path)
    gone = os.lstat(diff / "a/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert not (diff / "a/.wh.gone").exists()
    assert os.getxattr(diff / "b", "trusted.overlay.opaque") == b"y"
    assert not (diff / "b/.wh..wh..opq").exists() and (diff / "b/kept").read_bytes() == b"k"
    assert not (diff / ".wh..wh.plnk").exists()


def test_later_entry_replaces_earlier(tmp_path: Path) -> None:
    diff = unpack(make_tar(
        ("x", tarfile.DIRTYPE, {}),
        ("x/inner", tarfile.REGTYPE, {"data": b"1"}),
        ("x", tarfile.REGTYPE, {"data": b"file now"}),
    ), tmp_path)
    assert (diff / "x").read_bytes() == b"file now"


@pytest.mark.parametrize("entries", [
    [("../escape", tarfile.REGTYPE, {"data": b"x"})],
    [("a/../../escape", tarfile.REGTYPE, {"data": b"x"})],
    [("link", tarfile.SYMTYPE, {"linkname": "/tmp"}), ("link/escape", tarfile.REGTYPE, {"data": b"x"})],
    [("link", tarfile.SYMTYPE, {"linkname": ".."}), ("link/escape", tarfile.REGTYPE, {"data": b"x"})],
    [("hard", tarfile.LNKTYPE, {"linkname": "../blob"})],
    [("hard", tarfile.LNKTYPE, {"linkname": "missing"})],
    [("f", tarfile.REGTYPE, {"data": b"x"}), ("f/under", tarfile.REGTYPE, {"data": b"x"})],
])
def test_escapes_refused_and_nothing_left(tmp_path: Path, entries: list) -> None:
    with pytest.raises(BadRequest, match="invalid tar entry"):
        unpack(make_tar(*entries), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]
    assert not (tmp_path.parent / "escape").exists()


def test_unpack_is_done_once(tmp_path: Path) -> None:
    diff = unpack(make_tar(("f", tarfile.REGTYPE, {"data": b"1"})), tmp_path)
    (tmp_path / "blob").write_bytes(make_tar(("g", tarfile.REGTYPE, {"data": b"2"})))
    assert layers.unpack_layer(tmp_path / "blob", tmp_path / "layer") == diff
    assert sorted(p.name for p in diff.iterdir()) == ["f"]


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, lzma.compress, bz2.compress])
def test_decompression_by_magic(compress) -> None:
    data = make_tar(("f", tarfile.REGTYPE, {"data": b"payload" * 100}))
    assert layers.decompressed(io.BytesIO(compress(data))).read() == data


def test_tar_size_counts_files_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(make_tar(
        ("f", tarfile.REGTYPE, {"data": b"12345"}), ("h", tarfile.LNKTYPE, {"linkname": "f"}),
        ("s", tarfile.SYMTYPE, {"linkname": "abc"}), ("d", tarfile.DIRTYPE, {})))
    assert layers.tar_size(tmp_path / "t") == 8
    (tmp_path / "bad").write_bytes(b"not a tar" * 100)
    with pytest.raises(BadRequest, match="invalid tar archive"):
        layers.tar_size(tmp_path / "bad")
