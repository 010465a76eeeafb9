"""Where runc's `paused` comes from: the container's frozen cgroup."""
from __future__ import annotations

from tether.runtime.conmon import _frozen


def test_v1_freezer(tmp_path):
    (tmp_path / "freezer.state").write_text("FROZEN\n")
    assert _frozen({"freezer": str(tmp_path), "": "/nonexistent"})
    (tmp_path / "freezer.state").write_text("THAWED\n")
    assert not _frozen({"freezer": str(tmp_path)})


def test_v2_freeze_file_only_without_a_v1_freezer(tmp_path):
    (tmp_path / "cgroup.freeze").write_text("1\n")
    assert _frozen({"": str(tmp_path)})
    (tmp_path / "cgroup.freeze").write_text("0\n")
    assert not _frozen({"": str(tmp_path)})


def test_gone_or_unknown_cgroups_are_not_frozen(tmp_path):
    assert not _frozen({})
    assert not _frozen({"freezer": str(tmp_path / "gone")})
