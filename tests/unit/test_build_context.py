"""The build context: the tar a client sends, and the daemon's .dockerignore pass."""
import io
import tarfile
from pathlib import Path

import pytest

from tether.cli.commands_build import context_from_stream, is_archive, parse_build_args
from tether.image.build.context import apply_dockerignore, dockerfile_from_tar, read_dockerfile
from tether.rules.buildcontext import write_context_tar
from tether.rules.errors import ApiError
from tether.rules.units import human_size


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
    with pytest.raises(ApiError, match="Cannot locate specified Dockerfile: nope"):
        dockerfile_from_tar(io.BytesIO(out.getvalue()), "nope")


def test_missing_or_escaping_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="Cannot locate specified Dockerfile: Dockerfile"):
        read_dockerfile(tmp_path, "")
    (tmp_path / "dockerfile").write_text("FROM busybox\n")
    assert read_dockerfile(tmp_path, "Dockerfile") == "FROM busybox\n"
    with pytest.raises(ApiError, match="Cannot locate"):
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


def test_dockerignore_symlink_is_read_inside_the_context(tmp_path: Path) -> None:
    """A `.dockerignore` linking to a host file is resolved inside the context (as dockerd's
    FullPath does): the host file's lines never become patterns."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "host-file").write_text("secret.txt\n")
    (ctx / "secret.txt").write_text("x")
    (ctx / ".dockerignore").symlink_to(tmp_path / "host-file")
    apply_dockerignore(ctx)
    assert (ctx / "secret.txt").exists()
    inside = ctx / (tmp_path / "host-file").relative_to("/")  # the same link, read inside the context
    inside.parent.mkdir(parents=True)
    inside.write_text("secret.txt\n")
    apply_dockerignore(ctx)
    assert not (ctx / "secret.txt").exists()


def test_context_from_stdin_archive_or_dockerfile() -> None:
    """`tether build -`: an archive passes through byte for byte (streamed), a Dockerfile becomes
    a one-file context."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"FROM scratch\n"))
        big = tarfile.TarInfo("big")
        big.size = 3 << 20
        tar.addfile(big, io.BytesIO(bytes(big.size)))
    out = io.BytesIO()
    assert context_from_stream(io.BytesIO(context.getvalue()), out) == "Dockerfile"
    assert out.getvalue() == context.getvalue()
    out = io.BytesIO()
    assert context_from_stream(io.BytesIO(b"FROM busybox\nRUN true\n"), out) == "Dockerfile"
    assert dockerfile_from_tar(io.BytesIO(out.getvalue()), "") == "FROM busybox\nRUN true\n"


def test_dockerfile_outside_the_context_is_forbidden(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    out = io.BytesIO()
    write_context_tar(tmp_path, out, keep=("Dockerfile",))
    for name in ("../Dockerfile", "sub/../../Dockerfile", ".."):
        with pytest.raises(ApiError, match=r"^forbidden path outside the build context: ") as e:
            dockerfile_from_tar(io.BytesIO(out.getvalue()), name)
        assert e.value.status == 500 and e.value.message.endswith(f"{name} ()")
