"""The init layer under a container's own layer, and the checks before binding into a root."""
from __future__ import annotations

import os
import stat

from tether.engine.initlayer import MOUNT_POINTS, ensure


def test_init_layer_holds_the_mount_points(tmp_path):
    layer = ensure(tmp_path / "init")
    assert stat.S_IMODE(os.stat(layer / "etc").st_mode) == 0o755
    for point in MOUNT_POINTS:
        st = os.stat(layer / point)
        assert stat.S_ISREG(st.st_mode) and st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0o644


def test_init_layer_is_made_once_and_a_half_made_one_is_redone(tmp_path):
    (tmp_path / "init.tmp" / "junk").mkdir(parents=True)  # what a crash left
    layer = ensure(tmp_path / "init")
    (layer / "etc" / "hosts").write_text("kept")
    assert ensure(tmp_path / "init") == layer and (layer / "etc" / "hosts").read_text() == "kept"
    assert not (tmp_path / "init.tmp").exists()


def test_init_layer_etc_keeps_the_image_etc_attributes(tmp_path):
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    (top / "bin").mkdir(parents=True)
    (bottom / "etc").mkdir(parents=True)
    os.chmod(bottom / "etc", 0o751)
    os.chown(bottom / "etc", 3, 4)
    os.utime(bottom / "etc", (1_500_000_000, 1_500_000_000))
    etc = ensure(tmp_path / "init", [top, bottom]) / "etc"
    st = os.stat(etc)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == \
        (0o751, 3, 4, 1_500_000_000)
