"""The host side of `tether cp` on temporary directories: Go's EvalSymlinks and the CLI's path
checks with their texts, the archive it sends (Go's sizes, hard links, renames) and moby's
Untar rules when unpacking."""
from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tether.cli.cp_archive import (CountingReader, copy_info_destination_path,
                                   copy_info_source_path, eval_symlinks, tar_resource, untar,
                                   validate_output_path)
from tether.cli.cp_rules import CopyError, CopyInfo

STAMP = 1577934245


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a").write_text("A\n")
    (tmp_path / "src" / "a").chmod(0o600)
    os.link(tmp_path / "src" / "a", tmp_path / "src" / "ha")
    os.symlink("a", tmp_path / "src" / "la")
    (tmp_path / "src" / "sub" / "b").write_text("B\n")
    os.symlink("src", tmp_path / "srcl")
    os.symlink("/nowhere", tmp_path / "dangling")
    (tmp_path / "file").write_text("x")
    for path in [tmp_path / "src" / "a", tmp_path / "src" / "sub" / "b", tmp_path / "src"]:
        os.utime(path, (STAMP, STAMP))
    return tmp_path


def test_eval_symlinks(tree: Path) -> None:
    assert eval_symlinks(f"{tree}/srcl/sub/") == f"{tree}/src/sub"
    assert eval_symlinks(f"{tree}/src/la") == f"{tree}/src/a"
    assert eval_symlinks(f"{tree}/src/sub/../la") == f"{tree}/src/a"
    with pytest.raises(CopyError, match=f"^lstat {tree}/nosuch: no such file or directory$"):
        eval_symlinks(f"{tree}/nosuch/x")
    with pytest.raises(CopyError, match="^not a directory$"):
        eval_symlinks(f"{tree}/file/")
    with pytest.raises(CopyError, match="^lstat /nowhere: no such file or directory$"):
        eval_symlinks(f"{tree}/dangling")


def test_copy_info_source_path(tree: Path) -> None:
    assert copy_info_source_path(f"{tree}/srcl", False) == CopyInfo(f"{tree}/srcl", True, False)
    assert copy_info_source_path(f"{tree}/srcl", True) == CopyInfo(f"{tree}/src", True, True,
                                                                   "srcl")
    assert copy_info_source_path(f"{tree}/srcl/", False) == CopyInfo(f"{tree}/src/", True, True,
                                                                     "srcl")
    with pytest.raises(CopyError, match=f"^lstat {tree}/nosuch: no such file or directory$"):
        copy_info_source_path(f"{tree}/nosuch", False)


def test_copy_info_destination_path(tree: Path) -> None:
    assert copy_info_destination_path(f"{tree}/srcl") == CopyInfo(f"{tree}/src", True, True)
    assert copy_info_destination_path(f"{tree}/new") == CopyInfo(f"{tree}/new")
    assert copy_info_destination_path(f"{tree}/src/la") == CopyInfo(f"{tree}/src/a", True, False)
    with pytest.raises(CopyError, match=f"^stat {tree}/no: no such file or directory$"):
        copy_info_destination_path(f"{tree}/no/new")
    os.symlink("loop", tree / "loop")
    with pytest.raises(CopyError, match=f"^too many symlinks in {tree}/loop$"):
        copy_info_destination_path(f"{tree}/loop")


def test_validate_output_path(tree: Path) -> None:
    validate_output_path(f"{tree}/new")
    validate_output_path(f"{tree}/src/")
    validate_output_path("-")
    with pytest.raises(CopyError, match=f'^invalid output path: directory "{tree}/no" does not'):
        validate_output_path(f"{tree}/no/x")
    with pytest.raises(CopyError, match=f"^stat {tree}/file/x: not a directory$"):
        validate_output_path(f"{tree}/file/x")
    with pytest.raises(CopyError, match='"/dev/null" must be a directory or a regular file: got'):
        validate_output_path("/dev/null")


def _members(data: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, m.type, m.mode, m.linkname, m.size) for m in tar]


def test_a_file_archives_to_gos_size(tree: Path) -> None:
    data = b"".join(tar_resource(CopyInfo(f"{tree}/file", True, False), [("file", "renamed")]))
    assert len(data) == 2048  # header, one data block, the end marker: no record padding
    assert _members(data) == [("renamed", tarfile.REGTYPE, 0o644, "", 1)]


def test_a_directory_archive(tree: Path) -> None:
    info = copy_info_source_path(f"{tree}/srcl", True)
    data = b"".join(tar_resource(info, []))
    assert _members(data) == [
        ("srcl", tarfile.DIRTYPE, 0o755, "", 0), ("srcl/a", tarfile.REGTYPE, 0o600, "", 2),
        ("srcl/ha", tarfile.LNKTYPE, 0o600, "srcl/a", 0), ("srcl/la", tarfile.SYMTYPE, 0o777, "a", 0),
        ("srcl/sub", tarfile.DIRTYPE, 0o755, "", 0), ("srcl/sub/b", tarfile.REGTYPE, 0o644, "", 2)]
    assert len(data) == 512 * 8 + 1024
    dot = b"".join(tar_resource(CopyInfo(f"{tree}/src/.", True, True), [(".", "new")]))
    assert [m[0] for m in _members(dot)][:2] == ["new", "new/a"]


def test_long_names_go_ustar_then_pax(tree: Path) -> None:
    deep = tree / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / "f").write_text("")
    ustar = b"".join(tar_resource(CopyInfo(str(tree / ("d" * 90)), True, True), []))
    assert len(ustar) == 3 * 512 + 1024  # split into prefix and name, no extended header
    long_ = b"".join(tar_resource(CopyInfo(str(tree / ("d" * 90)), True, True),
                                  [("d" * 90, "x" * 200)]))
    assert len(long_) > len(ustar)
    assert _members(long_)[-1][0] == "x" * 200 + "/" + "e" * 90 + "/f"
    # a 107-byte directory name: Python could store it as a prefix and an empty name, Go
    # (and so the size docker reports) uses an extended header
    one_dir = b"".join(tar_resource(CopyInfo(str(tree / "src" / "sub"), True, True),
                                    [("sub", "r" * 107)]))
    assert len(one_dir) == (3 + 2) * 512 + 1024


def _tar(*entries: tuple[str, bytes, int, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, mode, data in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, STAMP
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = data.decode()
                tar.addfile(info)
    return buf.getvalue()


def test_untar_renames_and_keeps_modes_and_times(tmp_path: Path) -> None:
    data = _tar(("d", tarfile.DIRTYPE, 0o751, b""), ("d/f", tarfile.REGTYPE, 0o4755, b"hi"),
                ("d/l", tarfile.SYMTYPE, 0o777, b"f"), ("d/h", tarfile.LNKTYPE, 0o755, b"d/f"))
    saved = os.umask(0o077)  # the archive's modes win over the umask
    try:
        consumed = untar(CountingReader([data]), str(tmp_path), [("d", "new")])
    finally:
        os.umask(saved)
    assert consumed == 512 * 5 + 1024 < len(data)  # the 10 KiB record padding is not counted
    new = tmp_path / "new"
    assert stat.S_IMODE(new.stat().st_mode) == 0o751 and new.stat().st_mtime == STAMP
    assert stat.S_IMODE((new / "f").stat().st_mode) == 0o4755
    assert (new / "f").read_bytes() == b"hi" and (new / "f").stat().st_mtime == STAMP
    assert os.readlink(new / "l") == "f"
    assert (new / "h").stat().st_ino == (new / "f").stat().st_ino


def test_untar_merges_into_existing_directories(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("old")
    tmp_path.chmod(0o700)
    untar(CountingReader([_tar((".", tarfile.DIRTYPE, 0o777, b""),
                               ("keep", tarfile.REGTYPE, 0o600, b"new"))]), str(tmp_path), [])
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700  # `.` leaves the destination alone
    assert (tmp_path / "keep").read_text() == "new"


@pytest.mark.parametrize("entries, text", [
    ([("x", tarfile.REGTYPE, 0o644, b"")], 'cannot overwrite directory "{d}/x" with non-directory "{d}"'),
    ([("file", tarfile.DIRTYPE, 0o755, b"")],
     'cannot overwrite non-directory "{d}/file" with directory "{d}"'),
    ([("../up", tarfile.REGTYPE, 0o644, b"")], '"../up" is outside of "{d}"'),
    ([("s", tarfile.SYMTYPE, 0o777, b"../../etc")], 'invalid symlink "{d}/s" -> "../../etc"'),
    ([("h", tarfile.LNKTYPE, 0o644, b"../file")], 'invalid hardlink "{p}/file" -> "../file"'),
])
def test_untar_refusals(tmp_path: Path, entries: list, text: str) -> None:
    dest = tmp_path / "dest"
    (dest / "x").mkdir(parents=True)
    (dest / "file").write_text("")
    (tmp_path / "file").write_text("")
    with pytest.raises(CopyError) as caught:
        untar(CountingReader([_tar(*entries)]), str(dest), [])
    assert str(caught.value) == text.format(d=dest, p=tmp_path)
    assert not (tmp_path / "up").exists()
