"""Layer unpacking: whiteouts to overlayfs form, metadata kept, escapes refused. Needs root (mknod,
chown, trusted.* xattrs), which these tests have."""
import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import zstandard

from tether.image import layers
from tether.rules.errors import BadRequest


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
    [("link", tarfile.SYMTYPE, {"linkname": "/tmp"}), ("link/escape", tarfile.REGTYPE, {"data": b"x"})],
    [("link", tarfile.SYMTYPE, {"linkname": ".."}), ("link/escape", tarfile.REGTYPE, {"data": b"x"})],
    [("d", tarfile.DIRTYPE, {}), ("link", tarfile.SYMTYPE, {"linkname": "d"}),
     ("link/f", tarfile.REGTYPE, {"data": b"x"})],
    [("hard", tarfile.LNKTYPE, {"linkname": "../blob"})],
    [("hard", tarfile.LNKTYPE, {"linkname": "missing/deeper/file"})],
    [("d", tarfile.DIRTYPE, {}), ("hard", tarfile.LNKTYPE, {"linkname": "d"})],
    [("s", tarfile.SYMTYPE, {"linkname": "/etc"}), ("hard", tarfile.LNKTYPE, {"linkname": "s/passwd"})],
    [("f", tarfile.REGTYPE, {"data": b"x"}), ("f/under", tarfile.REGTYPE, {"data": b"x"})],
    # a directory already checked (a file was written in it) and then replaced by a symlink
    # must be checked again: the unpacker remembers checked directories
    [("d/a/f", tarfile.REGTYPE, {"data": b"x"}), ("d", tarfile.SYMTYPE, {"linkname": "/nonexistent-dir"}),
     ("d/a/escape", tarfile.REGTYPE, {"data": b"x"})],
    [("d/a/f", tarfile.REGTYPE, {"data": b"x"}), ("d/a", tarfile.SYMTYPE, {"linkname": "/nonexistent-dir"}),
     ("d/a/escape", tarfile.REGTYPE, {"data": b"x"})],
    [("d/f", tarfile.REGTYPE, {"data": b"x"}), ("d", tarfile.REGTYPE, {"data": b"file"}),
     ("d/f2", tarfile.REGTYPE, {"data": b"x"})],
    [("d/sub/f", tarfile.REGTYPE, {"data": b"x"}), (".wh.d", tarfile.REGTYPE, {}),
     ("d/sub/g", tarfile.REGTYPE, {"data": b"x"})],
    [("sda", tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0})],
    [("mem", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 1})],
    [("tun", tarfile.CHRTYPE, {"devmajor": 10, "devminor": 200})],
])
def test_escapes_and_devices_refused_and_nothing_left(tmp_path: Path, entries: list) -> None:
    with pytest.raises(BadRequest, match="invalid tar entry"):
        unpack(make_tar(*entries), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]
    assert not (tmp_path.parent / "escape").exists()


def test_large_file_content_is_whole(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + b"tail"
    diff = unpack(make_tar(("big", tarfile.REGTYPE, {"data": data, "mode": 0o640, "mtime": 5})), tmp_path)
    assert (diff / "big").read_bytes() == data
    st_ = os.lstat(diff / "big")
    assert (stat.S_IMODE(st_.st_mode), st_.st_mtime) == (0o640, 5)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    data = make_tar(("f", tarfile.REGTYPE, {"data": b"x" * 5000}))
    with pytest.raises(BadRequest, match="invalid tar archive"):
        unpack(data[:2048], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]


def test_dot_dot_stops_at_the_layer_root(tmp_path: Path) -> None:
    """As in Docker's chroot: `..` above the root is the root, so the entry lands inside."""
    diff = unpack(make_tar(
        ("../escape", tarfile.REGTYPE, {"data": b"1"}),
        ("a/../../../up", tarfile.REGTYPE, {"data": b"2"}),
        ("hard", tarfile.LNKTYPE, {"linkname": "../../escape"}),
    ), tmp_path)
    assert sorted(p.name for p in diff.iterdir()) == ["escape", "hard", "up"]
    assert (diff / "up").read_bytes() == b"2"
    assert os.lstat(diff / "hard").st_ino == os.lstat(diff / "escape").st_ino
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


def test_harmless_character_devices_are_kept(tmp_path: Path) -> None:
    diff = unpack(make_tar(*[(f"dev/{name}", tarfile.CHRTYPE, {"devmajor": major, "devminor": minor,
                                                               "mode": 0o666})
                             for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
                                                        ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
                                                        ("console", 5, 1), ("ptmx", 5, 2))]), tmp_path)
    for name in ("null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"):
        st = os.lstat(diff / "dev" / name)
        assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666


def test_unpack_is_done_once(tmp_path: Path) -> None:
    diff = unpack(make_tar(("f", tarfile.REGTYPE, {"data": b"1"})), tmp_path)
    (tmp_path / "blob").write_bytes(make_tar(("g", tarfile.REGTYPE, {"data": b"2"})))
    assert layers.unpack_layer(tmp_path / "blob", tmp_path / "layer") == diff
    assert sorted(p.name for p in diff.iterdir()) == ["f"]


def zstd_frames(data: bytes) -> bytes:
    """Two zstd frames, as a parallel compressor may write: both must be read."""
    half = len(data) // 2
    compressor = zstandard.ZstdCompressor()
    return compressor.compress(data[:half]) + compressor.compress(data[half:])


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, lzma.compress, bz2.compress,
                                      zstd_frames])
def test_decompression_by_magic(compress) -> None:
    data = make_tar(("f", tarfile.REGTYPE, {"data": b"payload" * 100}))
    assert layers.decompressed(io.BytesIO(compress(data))).read() == data


def test_zstd_layer_unpacks(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(zstandard.ZstdCompressor().compress(make_tar(("f", tarfile.REGTYPE, {"data": b"z"}))))
    with open(blob, "rb") as f:
        (tmp_path / "plain").write_bytes(layers.decompressed(f).read())
    diff = layers.unpack_layer(tmp_path / "plain", tmp_path / "layer")
    assert (diff / "f").read_bytes() == b"z"


def test_tar_size_counts_files_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(make_tar(
        ("f", tarfile.REGTYPE, {"data": b"12345"}), ("h", tarfile.LNKTYPE, {"linkname": "f"}),
        ("s", tarfile.SYMTYPE, {"linkname": "abc"}), ("d", tarfile.DIRTYPE, {})))
    assert layers.tar_size(tmp_path / "t") == 8
    (tmp_path / "bad").write_bytes(b"not a tar" * 100)
    with pytest.raises(BadRequest, match="invalid tar archive"):
        layers.tar_size(tmp_path / "bad")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["..", ".", "", "a", "b", "/"]), min_size=1, max_size=6)
                .map("/".join), min_size=1, max_size=4))
def test_any_name_lands_inside_the_layer(names: list[str]) -> None:
    """Whatever `..`, `.`, `/` and empty parts a name holds, its file lands below the root."""
    with tempfile.TemporaryDirectory() as tmp:
        outside = Path(tmp)
        root = outside / "root"
        root.mkdir()
        data = make_tar(*[(name, tarfile.REGTYPE, {"data": b"x"}) for name in names])
        try:
            layers.extract(io.BytesIO(data), root)
        except BadRequest:
            pass  # a later name may want a file as its parent: refused, still inside
        assert sorted(p.name for p in outside.iterdir()) == ["root"]


def lower_layer(root: Path, name: str, *entries: tuple[str, bytes, dict]) -> Path:
    blob = root / f"{name}.tar"
    blob.write_bytes(make_tar(*entries))
    return layers.unpack_layer(blob, root / name)


def test_implied_directories_look_as_they_do_below(tmp_path: Path) -> None:
    """`etc/f` without `etc`: the new layer's etc has the lower etc's owner, mode and mtime."""
    bottom = lower_layer(tmp_path, "bottom",
                         ("etc", tarfile.DIRTYPE, {"mode": 0o750, "uid": 7, "gid": 8, "mtime": 1000}),
                         ("etc/deep", tarfile.DIRTYPE, {"mode": 0o700, "mtime": 2000}),
                         ("gone", tarfile.DIRTYPE, {"mode": 0o700}), ("opq/in", tarfile.DIRTYPE, {"mode": 0o700}),
                         ("listed", tarfile.DIRTYPE, {"mode": 0o700}))
    middle = lower_layer(tmp_path, "middle", (".wh.gone", tarfile.REGTYPE, {}),
                         ("opq", tarfile.DIRTYPE, {"mode": 0o711}), ("opq/.wh..wh..opq", tarfile.REGTYPE, {}))
    blob = tmp_path / "top.tar"
    blob.write_bytes(make_tar(
        ("etc/f", tarfile.REGTYPE, {"data": b"x"}), ("etc/deep/g", tarfile.REGTYPE, {"data": b"y"}),
        ("gone/h", tarfile.REGTYPE, {}), ("opq/in/i", tarfile.REGTYPE, {}), ("new/j", tarfile.REGTYPE, {}),
        ("listed/k", tarfile.REGTYPE, {}), ("listed", tarfile.DIRTYPE, {"mode": 0o705, "mtime": 5})))
    top = layers.unpack_layer(blob, tmp_path / "top", [middle, bottom])
    look = lambda rel: (lambda st: (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)))(  # noqa: E731
        os.lstat(top / rel))
    assert look("etc") == (0o750, 7, 8, 1000) and look("etc/deep") == (0o700, 0, 0, 2000)
    assert look("listed") == (0o705, 0, 0, 5)  # its own entry wins, even after its contents
    assert look("opq")[:3] == (0o711, 0, 0)  # from the middle layer, the first that has it
    for hidden in ("gone", "opq/in", "new"):  # whited out, under an opaque dir, nowhere below
        assert look(hidden)[:3] == (0o755, 0, 0), hidden
