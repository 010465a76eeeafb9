"""`tether cp`'s pure rules: Go's path arithmetic, argument splitting, where an archive is
unpacked and how its top entry is renamed, as docker CLI 28 and moby's copy.go decide them."""
from __future__ import annotations

import errno

import pytest

from tether.cli.cp_rules import (MODE_DEVICE, MODE_DIR, MODE_IRREGULAR, CopyError, CopyInfo,
                                 asserts_directory, copy_direction, copy_summary,
                                 get_rebase_name, go_base, go_bool, go_clean, go_dir, go_join,
                                 go_quote, go_split, link_target_path, path_error,
                                 prepare_archive_copy, preserve_trailing_dot_or_separator,
                                 rebase_entry, resolve_local_path, split_cp_arg,
                                 split_path_dir_entry, stat_mode_error)


@pytest.mark.parametrize("path, clean, base, dir_", [
    ("", ".", ".", "."), ("/", "/", "/", "/"), ("//a//b/", "/a/b", "b", "/a/b"),
    ("a/./b/../c", "a/c", "c", "a"), ("/a/b/", "/a/b", "b", "/a/b"), ("x", "x", "x", "."),
    ("/../a", "/a", "a", "/"), ("../a", "../a", "a", ".."),
])
def test_go_path_helpers(path: str, clean: str, base: str, dir_: str) -> None:
    assert (go_clean(path), go_base(path), go_dir(path)) == (clean, base, dir_)


def test_go_join_and_split() -> None:
    assert go_join("/a", "", "b/", "../c") == "/a/c"
    assert go_join("", "") == ""
    assert go_split("/a/b") == ("/a/", "b")
    assert go_split("/a/b/") == ("/a/b/", "")
    assert go_split("b") == ("", "b")


@pytest.mark.parametrize("text, value", [
    ("true", True), ("T", True), ("1", True), ("False", False), ("0", False), ("f", False),
    ("yes", None), ("", None), ("tRue", None),
])
def test_go_bool(text: str, value: bool | None) -> None:
    assert go_bool(text) is value


@pytest.mark.parametrize("arg, split", [
    ("c1:/etc/passwd", ("c1", "/etc/passwd")), ("c1:", ("c1", "")), ("/abs:odd", ("", "/abs:odd")),
    ("./file:name", ("", "./file:name")), ("../up:x", ("", "../up:x")), ("plain", ("", "plain")),
    ("-", ("", "-")), ("c1:rel:colon", ("c1", "rel:colon")),
])
def test_split_cp_arg(arg: str, split: tuple[str, str]) -> None:
    assert split_cp_arg(arg) == split


def test_copy_direction() -> None:
    assert copy_direction("c:/a", "out") == ("c", "/a", "out", True)
    assert copy_direction("-", "c:/dir") == ("c", "/dir", "-", False)
    for src, dst, text in [("a", "b", "must specify at least one container source"),
                           ("c:/a", "d:/b", "copying between containers is not supported"),
                           ("", "c:/b", "source can not be empty"),
                           ("c:/a", "", "destination can not be empty")]:
        with pytest.raises(CopyError, match=f"^{text}$"):
            copy_direction(src, dst)


@pytest.mark.parametrize("cleaned, original, result", [
    ("/a/b", "a/b/", "/a/b/"), ("/a/b", "a/b/.", "/a/b/."), ("/", "/.", "/."),
    ("/a", "a", "/a"), ("/a/.", "a/.", "/a/."), ("/", "/", "/"),
])
def test_preserve_trailing_dot_or_separator(cleaned: str, original: str, result: str) -> None:
    assert preserve_trailing_dot_or_separator(cleaned, original) == result


def test_resolve_local_path_keeps_what_the_user_asserted() -> None:
    assert resolve_local_path("out/", "/home/u") == "/home/u/out/"
    assert resolve_local_path("./out/.", "/home/u") == "/home/u/out/."
    assert resolve_local_path("/x//y/../z", "/home/u") == "/x/z"
    assert resolve_local_path(".", "/home/u") == "/home/u/."


def test_asserts_directory_and_split_path_dir_entry() -> None:
    assert asserts_directory("/a/") and asserts_directory("/a/.") and not asserts_directory("/a")
    assert split_path_dir_entry("/a/b/.") == ("/a/b", ".")
    assert split_path_dir_entry("/a/b/") == ("/a", "b")
    assert split_path_dir_entry("/") == ("/", "/")


@pytest.mark.parametrize("path, resolved, result", [
    ("/dl", "/d", ("/d", "dl")), ("/dl/", "/d", ("/d/", "dl")), ("/dl/.", "/d", ("/d/.", "")),
    ("/d/lnk", "/d/f", ("/d/f", "lnk")), ("/same", "/x/same", ("/x/same", "")),
])
def test_get_rebase_name(path: str, resolved: str, result: tuple[str, str]) -> None:
    assert get_rebase_name(path, resolved) == result


def test_link_target_path_joins_relative_targets_with_the_link_directory() -> None:
    assert link_target_path("/d/lnk", "f") == "/d/f"
    assert link_target_path("/d/lnk", "../e/./g") == "/e/g"
    assert link_target_path("/d/lnk", "/abs") == "/abs"


FILE, DIR = CopyInfo("/src/file", True, False), CopyInfo("/src/dir", True, True)


@pytest.mark.parametrize("src, dst, result", [
    (FILE, CopyInfo("/out", True, True), ("/out", None)),
    (DIR, CopyInfo("/out/", True, True), ("/out/", None)),
    (FILE, CopyInfo("/out/f", True, False), ("/out", ("file", "f"))),
    (FILE, CopyInfo("/out/new"), ("/out", ("file", "new"))),
    (DIR, CopyInfo("/out/new"), ("/out", ("dir", "new"))),
    (DIR, CopyInfo("/out/new/"), ("/out", ("dir", "new"))),
    (CopyInfo("/src/dir/.", True, True), CopyInfo("/out/new"), ("/out", (".", "new"))),
    (CopyInfo("/d/f", True, False, "lnk"), CopyInfo("/out/x"), ("/out", ("lnk", "x"))),
])
def test_prepare_archive_copy(src: CopyInfo, dst: CopyInfo, result: tuple) -> None:
    assert prepare_archive_copy(src, dst) == result


@pytest.mark.parametrize("src, dst, text", [
    (DIR, CopyInfo("/out/f", True, False), "cannot copy directory"),
    (FILE, CopyInfo("/out/new/"), "no such directory"),
    (FILE, CopyInfo("/out/new/."), "no such directory"),
])
def test_prepare_archive_copy_refusals(src: CopyInfo, dst: CopyInfo, text: str) -> None:
    with pytest.raises(CopyError, match=f"^{text}$"):
        prepare_archive_copy(src, dst)


@pytest.mark.parametrize("name, old, new, result", [
    ("src/a", "src", "dst", "dst/a"), ("src", "src", "dst", "dst"), ("./a", ".", "x", "x/a"),
    ("srcsrc/src", "src", "d", "dsrc/src"), ("etc/passwd", "/", "root", "rootetc/passwd"),
])
def test_rebase_entry_replaces_the_first_occurrence(name: str, old: str, new: str,
                                                    result: str) -> None:
    assert rebase_entry(name, old, new) == result


def test_stat_mode_error() -> None:
    assert stat_mode_error(MODE_DIR | 0o755) is None
    assert stat_mode_error(0o644) is None
    assert stat_mode_error(MODE_DEVICE | (1 << 21) | 0o666) == "got a device"
    assert stat_mode_error(MODE_IRREGULAR) == "got an irregular file"


def test_texts() -> None:
    assert copy_summary(2048, "c1:/tmp") == "Successfully copied 2.05kB to c1:/tmp"
    assert copy_summary(0, "/out") == "Successfully copied 0B to /out"
    assert str(path_error("lstat", "/x", OSError(errno.ENOENT, "x"))) == \
        "lstat /x: no such file or directory"
    assert go_quote('a"b\\c\x01') == '"a\\"b\\\\c\\x01"'
