"""The build context: the tar a client sends, and the daemon's .dockerignore pass."""
import io
import tarfile
from pathlib import Path

import pytest

from tether.cli.commands_build import is_archive, parse_build_args
from tether.errors import BadRequest
from tether.units import human_size
from tether.image.build.context import (apply_dockerignore, dockerfile_from_tar, read_dockerfile,
                                        write_context_tar)


def _tree(root: Path) -> None:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM busybox\n")
    (root / ".dockerignore").write_text("Dockerfile\nsecret.txt\n*.log\ndir/sub\n!dir/sub/keep.txt\n")
    for name in ("hello.txt", "secret.txt", "x.log", "dir/a.txt", "dir/sub/b.txt", "dir/sub/keep.txt"):
        (root / name).write_text(name)


def test_client_tar_leaves_out_ignored_files_but_keeps_the_build_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    out = io.BytesIO()
    write_context_tar(tmp_path, out, extra={".dockerfile.x": b"FROM scratch\n"}, hidden=True)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = tar.getnames()
        assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())
        ignore = tar.extractfile(".dockerignore").read().decode()  # type: ignore[union-attr]
    assert names.count(".dockerignore") == 1
    assert ignore.endswith("!dir/sub/keep.txt\n\n.dockerfile.x\n")  # the daemon drops it
    names = set(names)
    assert {"Dockerfile", ".dockerignore", "hello.txt", "dir/a.txt", "dir/sub/keep.txt",
            ".dockerfile.x"} <= names
    assert not names & {"secret.txt", "x.log", "dir/sub/b.txt"}


def test_daemon_pass_removes_what_is_excluded_including_the_dockerfile(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert read_dockerfile(tmp_path, "Dockerfile") == "FROM busybox\n"
    apply_dockerignore(tmp_path)
    left = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}
    assert left == {".dockerignore", "hello.txt", "dir", "dir/a.txt", "dir/sub", "dir/sub/keep.txt"}


def test_dockerfile_read_from_the_tar_before_unpacking(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "sub.Dockerfile").write_text("FROM scratch\n")
    out = io.BytesIO()
    write_context_tar(tmp_path, out, keep=("Dockerfile", "sub.Dockerfile"))
    assert dockerfile_from_tar(io.BytesIO(out.getvalue()), "") == "FROM busybox\n"
    assert dockerfile_from_tar(io.BytesIO(out.getvalue()), "./sub.Dockerfile") == "FROM scratch\n"
    with pytest.raises(BadRequest, match="Cannot locate specified Dockerfile: nope"):
        dockerfile_from_tar(io.BytesIO(out.getvalue()), "nope")


def test_missing_or_escaping_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="Cannot locate specified Dockerfile: Dockerfile"):
        read_dockerfile(tmp_path, "")
    (tmp_path / "dockerfile").write_text("FROM busybox\n")
    assert read_dockerfile(tmp_path, "Dockerfile") == "FROM busybox\n"
    with pytest.raises(BadRequest):
        read_dockerfile(tmp_path / "dir", "../dockerfile")


def test_cli_helpers() -> None:
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("a"))
    assert is_archive(plain.getvalue()[:512])
    assert is_archive(b"\x1f\x8b\x08")
    assert not is_archive(b"FROM busybox\n")
    assert parse_build_args(("A=1", "B", "C"), {"B": "env"}) == {"A": "1", "B": "env", "C": None}
    assert human_size(18432, 4) == "18.43kB"  # "Sending build context to Docker daemon  18.43kB"
