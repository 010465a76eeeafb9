"""Layer tars: decompression by magic, and safe unpacking into overlayfs' on-disk form.

A layer tar comes from outside (import, load, pull), so unpacking must never write outside the
layer directory: `..` that climbs above the root is refused, absolute names are taken relative to
the root (as tar and Docker do), entries below a symlinked or non-directory parent are refused, and
hard links may only point at files inside the layer. Docker/OCI whiteouts become what overlayfs
understands: `.wh.<name>` a 0/0 character device `<name>`, `.wh..wh..opq` the xattr
`trusted.overlay.opaque=y` on its directory.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import secrets
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Callable

from tether.errors import BadRequest

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_COMPRESSORS: tuple[tuple[bytes, Callable[[BinaryIO], BinaryIO]], ...] = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f)),  # type: ignore[arg-type,return-value]
    (b"\xfd7zXZ\x00", lzma.LZMAFile),  # type: ignore[arg-type]
    (b"BZh", bz2.BZ2File),  # type: ignore[arg-type]
)
_MAGIC_LEN = max(len(magic) for magic, _ in _COMPRESSORS)


class _Prefixed(io.RawIOBase):
    """A reader that first returns bytes already read (the sniffed magic), then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[:len(data)] = data
        return len(data)


def decompressed(fileobj: BinaryIO) -> BinaryIO:
    """`fileobj` read through gzip, xz or bzip2 if its first bytes say so, as Docker's
    DecompressStream does; plain tars pass through."""
    head = b""
    while len(head) < _MAGIC_LEN:
        chunk = fileobj.read(_MAGIC_LEN - len(head))
        if not chunk:
            break
        head += chunk
    stream = io.BufferedReader(_Prefixed(head, fileobj))
    for magic, opener in _COMPRESSORS:
        if head.startswith(magic):
            return opener(stream)
    return stream


def tar_size(path: Path) -> int:
    """The layer's size as Docker reports it: bytes of regular files plus symlink targets."""
    total = 0
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.isreg():
                    total += member.size
                elif member.issym():
                    total += len(member.linkname)
    except tarfile.TarError as exc:
        raise BadRequest(f"invalid tar archive: {exc}") from exc
    return total


def unpack_layer(tar_path: Path, layer_dir: Path) -> Path:
    """Unpack `tar_path` into `layer_dir/diff` once; return that diff dir.

    The work happens in a temporary sibling that is renamed into place, so a crash leaves either a
    whole layer or a `.tmp-` directory that ImageStore removes at start-up, never half a layer.
    """
    diff = layer_dir / "diff"
    if layer_dir.exists():
        return diff
    tmp = layer_dir.with_name(f".tmp-{layer_dir.name}-{secrets.token_hex(4)}")
    try:
        (tmp / "diff").mkdir(parents=True)
        with open(tar_path, "rb") as f:
            extract(f, tmp / "diff")
        os.rename(tmp, layer_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return diff


def extract(fileobj: BinaryIO, root: Path) -> None:
    """Extract a layer tar stream into the existing directory `root`, whiteouts converted."""
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                path = _extract_member(tar, member, root)
                if path is not None and member.isdir():
                    directories.append((path, member))
    except tarfile.TarError as exc:
        raise BadRequest(f"invalid tar archive: {exc}") from exc
    for path, member in reversed(directories):
        os.utime(path, ns=(int(member.mtime * 10**9),) * 2, follow_symlinks=False)


def _components(name: str) -> list[str]:
    """The entry's path inside the layer as components; refuses to climb above the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if not parts:
                raise BadRequest(f"invalid tar entry {name!r}: path escapes the layer")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return parts


def _parent_dir(root: Path, parts: list[str], name: str) -> Path:
    """The real directory that will hold `parts[-1]`, creating missing parents; symlinked or
    non-directory parents are refused so nothing can be written outside `root`."""
    current = root
    for part in parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise BadRequest(f"invalid tar entry {name!r}: parent {part!r} is not a directory")
    return current


def _clear(path: Path, keep_dir: bool) -> None:
    """Remove what is at `path`, unless it is a directory and a directory is wanted there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(path)
    else:
        os.unlink(path)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> Path | None:
    """Create one entry; returns its path, or None for entries that make nothing (root, markers)."""
    parts = _components(member.name)
    if not parts:
        return None
    parent = _parent_dir(root, parts, member.name)
    base = parts[-1]
    if base == OPAQUE_MARKER:
        os.setxattr(parent, OPAQUE_XATTR, b"y")
        return None
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        return None
    if base.startswith(WHITEOUT_PREFIX):
        path = parent / base[len(WHITEOUT_PREFIX):]
        _clear(path, keep_dir=False)
        os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        return None
    path = parent / base
    _clear(path, keep_dir=member.isdir())
    _create(tar, member, path, root)
    _apply_metadata(member, path)
    return path


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, root: Path) -> None:
    """Make the filesystem object itself (content, but not yet owner, mode and times)."""
    if member.isdir():
        if not path.exists():
            os.mkdir(path, 0o700)
    elif member.isreg():
        source = tar.extractfile(member)
        assert source is not None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        target_parts = _components(member.linkname)
        target = _parent_dir(root, target_parts, member.linkname) / target_parts[-1] if target_parts else root
        if not os.path.lexists(target):
            raise BadRequest(f"invalid tar entry {member.name!r}: bad hard link target {member.linkname!r}")
        os.link(target, path, follow_symlinks=False)
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
        raise BadRequest(f"invalid tar entry {member.name!r}: unsupported type {member.type!r}")


def _apply_metadata(member: tarfile.TarInfo, path: Path) -> None:
    """Owner, then mode (chown clears set-id bits), xattrs, mtime: what a layer must preserve."""
    if member.islnk():
        return
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    if not member.issym():
        os.chmod(path, member.mode)
    for key, value in member.pax_headers.items():
        if key.startswith(_XATTR_PAX_PREFIX):
            _set_xattr(path, key[len(_XATTR_PAX_PREFIX):], value.encode("utf-8", "surrogateescape"))
    if not member.isdir():
        os.utime(path, ns=(int(member.mtime * 10**9),) * 2, follow_symlinks=False)


def _set_xattr(path: Path, name: str, value: bytes) -> None:
    """Set one xattr; a filesystem or namespace that cannot hold it is skipped, as Docker does."""
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EPERM):
            raise
