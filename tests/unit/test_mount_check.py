"""is_mounted asks the file (statx) instead of reading /proc/self/mountinfo: both must agree.

Other work on the host mounts and unmounts meanwhile, so a disagreement counts only when it
holds on a second look."""
from __future__ import annotations

from pathlib import Path

from tether.runtime import mounts


def _mount_targets() -> set[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        return {mounts._unescape(line.split(" ", 5)[4]) for line in mountinfo}


def _disagreeing(paths: list[Path]) -> list[Path]:
    """The paths where statx and one reading of mountinfo differ, and a second look too."""
    targets = _mount_targets()
    first = [p for p in paths if mounts.is_mounted(p) != (str(p) in targets)]
    return [p for p in first if mounts.is_mounted(p) != mounts._in_mountinfo(p)]


def test_the_kernel_can_tell_here():
    assert mounts._mount_root(Path("/")) is True  # else every check falls back to mountinfo


def test_every_mount_of_this_namespace_is_seen():
    targets = [Path(t) for t in _mount_targets()]
    assert _disagreeing(targets) == []


def test_what_is_not_a_mount_point_is_not_seen():
    targets = _mount_targets()
    ordinary = [p for parent in ("/", "/usr", "/etc", "/sys", "/dev")
                for p in sorted(Path(parent).iterdir()) if str(p) not in targets]
    assert ordinary
    assert not any(mounts.is_mounted(p) for p in ordinary if p.parent != Path("/dev"))
    assert _disagreeing(ordinary) == []


def test_a_plain_directory_a_missing_path_and_a_symlink(tmp_path: Path):
    assert not mounts.is_mounted(tmp_path / "rootfs")           # not there yet
    (tmp_path / "rootfs").mkdir()
    assert not mounts.is_mounted(tmp_path / "rootfs")
    (tmp_path / "file").write_text("")
    assert not mounts.is_mounted(tmp_path / "file" / "below")   # ENOTDIR
    (tmp_path / "proc").symlink_to("/proc")
    assert mounts.is_mounted(tmp_path / "proc")                 # as realpath() resolves it


def test_mountinfo_answers_when_statx_cannot(monkeypatch):
    monkeypatch.setattr(mounts, "_mount_root", lambda target: None)
    assert mounts.is_mounted(Path("/proc"))
    assert not mounts.is_mounted(Path("/proc/self"))
