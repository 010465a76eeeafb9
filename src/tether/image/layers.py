"""Layer tars: decompression by magic, and safe unpacking into overlayfs' on-disk form.

A layer tar comes from outside (import, load, pull), so unpacking must never write outside the
layer directory: absolute names and `..` are resolved against the layer's root as Docker's chroot
resolves them (`/a` and `../a` both mean `<layer>/a`), entries below a symlinked or non-directory
parent are refused (Docker's chroot would follow the link inside the layer; no real layer needs
that), and hard links may only point at files (not directories) already unpacked in the same
layer. Device nodes are refused except the harmless character devices a container's device
cgroup lets it use (null, zero, full, random, urandom, tty, console, ptmx): a layer is data from
anywhere, and a block device node in it would be a door to the host's disks for whoever can read
the layer directory (Docker creates them and relies on the device cgroup alone). Docker/OCI
whiteouts become what overlayfs understands: `.wh.<name>` a 0/0 character device `<name>`,
`.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.
"""
from __future__ import annotations

import bz2
import errno
import fcntl
import gzip
import io
import lzma
import os
import secrets
import shutil
import stat
import struct
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Protocol, Sequence

from tether.rules.errors import BadRequest

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX = "SCHILY.xattr."
# (major, minor) of the character devices a layer may carry; 0/0 is an overlay-form whiteout.
SAFE_CHAR_DEVICES = frozenset({(0, 0), (1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)})
# A layer's dir, the guard of its diff: the diff keeps the layer's own root mode and may hold
# setuid files, so only root (and root's group, as dockerd's overlay2/<id>) may pass.
LAYER_DIR_MODE = 0o710
# FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (_IOR/_IOW('f', 1/2, long) on 64-bit) and FS_TOPDIR_FL
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def _zstd_reader(fileobj: BinaryIO) -> BinaryIO:
    """zstd, imported on the first zstd layer: most images never carry one."""
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(fileobj, read_across_frames=True)  # type: ignore[return-value]


_COMPRESSORS: tuple[tuple[bytes, Callable[[BinaryIO], BinaryIO]], ...] = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f)),  # type: ignore[arg-type,return-value]
    (b"\x28\xb5\x2f\xfd", _zstd_reader),
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
    """`fileobj` read through gzip, zstd, xz or bzip2 if its first bytes say so, as Docker's
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


def spread_subtrees(path: Path) -> None:
    """Mark `path` as the top of unrelated directory trees (FS_TOPDIR_FL, `chattr +T`), so
    that ext4 places each new subdirectory (a layer being unpacked) in a block group of its
    own choosing instead of beside its siblings. Without a journal, ext4 steps over every inode
    of the group freed in the last seconds on each inode it allocates (`recently_deleted`): a
    layer unpacked beside the ones an rmi had just removed took 6-10 s instead of 1.5 s. Only a
    placement hint: a path that cannot be opened as a directory of its own (a symlink to
    another disk, say) or a filesystem without the flag leaves the store as it was, and the
    daemon comes up all the same."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
        if not flags & _FS_TOPDIR_FL:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags | _FS_TOPDIR_FL))
    except OSError:
        pass  # a hint the filesystem does not take: unpacking works the same, only slower
    finally:
        os.close(fd)


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


def unpack_layer(tar_path: Path, layer_dir: Path, lowers: Sequence[Path] = ()) -> Path:
    """Unpack `tar_path` into `layer_dir/diff` once; return that diff dir. `lowers` are the diff
    dirs of the layers below, top first (see `extract`)."""
    prepared = prepare_layer(tar_path, layer_dir)
    if prepared is None:
        return layer_dir / "diff"
    try:
        return prepared.finish(lowers)
    finally:
        prepared.discard()


@dataclass
class PreparedLayer:
    """A layer unpacked into a temporary sibling of its dir, all but the directories it only
    implies, which take their look from the layers below (see `extract`). Preparing needs no
    other layer, so the layers of a pull are prepared at once, each as it arrives; `finish`
    then goes bottom up. A crash leaves a `.tmp-` directory that ImageStore removes at
    start-up, never half a layer.

    Concurrent pulls of one layer share it (`share`): each user `discard`s it when done (after
    `finish` or instead), and the temporary dir goes with the last one."""

    layer_dir: Path
    tmp: Path
    implied: list[str]
    users: int = 1
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def finish(self, lowers: Sequence[Path]) -> Path:
        """Give the implied directories their look in `lowers` and move the layer into place
        (unless another unpack of it got there first); the layer's diff dir."""
        with self._guard:
            if not self.layer_dir.exists():
                _style_implied(str(self.tmp / "diff"), self.implied, lowers)
                os.rename(self.tmp, self.layer_dir)
        return self.layer_dir / "diff"

    def share(self) -> bool:
        """One more user, unless the last one discarded it already."""
        with self._guard:
            if self.users <= 0:
                return False
            self.users += 1
            return True

    def discard(self) -> None:
        """This user is done; the last one removes what was not moved into place."""
        with self._guard:
            self.users -= 1
            if self.users <= 0:
                shutil.rmtree(self.tmp, ignore_errors=True)


def prepare_layer(tar_path: Path, layer_dir: Path) -> PreparedLayer | None:
    """Unpack `tar_path` next to `layer_dir` (see PreparedLayer); None if the layer is there."""
    if layer_dir.exists():
        return None
    tmp = layer_dir.with_name(f".tmp-{layer_dir.name}-{secrets.token_hex(4)}")
    try:
        os.mkdir(tmp, LAYER_DIR_MODE)
        os.mkdir(tmp / "diff", 0o755)
        with open(tar_path, "rb") as f:
            implied = extract_entries(f, str(tmp / "diff"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreparedLayer(layer_dir, tmp, implied)


def extract(fileobj: BinaryIO, root: Path, lowers: Sequence[Path] = ()) -> None:
    """Extract a layer tar stream into the existing directory `root`, whiteouts converted.

    A layer may list `etc/a` without `etc` (umoci writes such diffs). The directory it implies
    must still exist in this layer's own dir, and overlayfs shows the topmost one: it gets the
    owner, mode and mtime the same directory has in `lowers`, so the image looks as a tool that
    applies layers in place (umoci, containerd) shows it, not as a fresh 0755 root directory.
    """
    _style_implied(str(root), extract_entries(fileobj, str(root)), lowers)


class EntryObserver(Protocol):
    """Told what the unpacker does with the tar's bytes (tarsplit.Recorder)."""

    def content(self, member: tarfile.TarInfo, rel: str) -> None: ...

    def passed(self, member: tarfile.TarInfo) -> None: ...

    def clearing(self, path: str, rel: str) -> None: ...


def extract_entries(fileobj: BinaryIO, top: str, observer: EntryObserver | None = None) -> list[str]:
    """Every entry of the tar under `top`; the directories only implied by entries (made 0755),
    deepest last. `observer` hears of every file's data, entry and removal.

    Paths are plain strings and directories already checked are remembered (`_Dirs`): a real
    layer has thousands of small files, and per-entry pathlib objects and an lstat of every
    parent of every entry cost more than writing the files.
    """
    dirs = _Dirs(observer)
    directories: list[tuple[str, tarfile.TarInfo]] = []
    implied: list[str] = []
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                path = _extract_member(tar, member, top, implied, dirs)
                if observer is not None:
                    observer.passed(member)
                if path is not None and member.isdir():
                    directories.append((path, member))
    except tarfile.TarError as exc:
        raise BadRequest(f"invalid tar archive: {exc}") from exc
    listed = {path for path, _ in directories}
    # given by their own entry, or replaced by a later one: not implied after all
    implied = [path for path in implied if path not in listed and stat.S_ISDIR(_lstat_mode(path))]
    for path, member in reversed(directories):
        os.utime(path, ns=(int(member.mtime * 10**9),) * 2, follow_symlinks=False)
    return implied


def _style_implied(top: str, implied: list[str], lowers: Sequence[Path]) -> None:
    """Owner, mode and mtime of each implied directory as the same directory has below."""
    for path in reversed(implied):
        below = _visible_below(tuple(path[len(top) + 1:].split("/")), lowers)
        if below is not None:
            st = os.lstat(below)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, stat.S_IMODE(st.st_mode))
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))


class _Dirs:
    """Paths this extraction has seen to be real directories (made by it or lstat'ed), so a
    parent is checked once, not once per entry below it. Only removing a directory can make
    an entry wrong (a later entry may replace it by a symlink): then everything is forgotten."""

    def __init__(self, observer: EntryObserver | None = None) -> None:
        self.known: set[str] = set()
        self.observer = observer

    def forget(self) -> None:
        self.known.clear()


def _visible_below(parts: tuple[str, ...], lowers: Sequence[Path]) -> Path | None:
    """The directory at `parts` in the view `lowers` (top first) give, resolved as overlayfs
    does: the first layer holding something on the path decides; a file or a whiteout there
    hides the layers below, and so does an opaque directory above a path it lacks."""
    for lower in lowers:
        current, opaque = lower, False
        for part in parts:
            current = current / part
            mode = _lstat_mode(current)
            if not mode:
                break
            if not stat.S_ISDIR(mode):
                return None
            opaque = opaque or _is_opaque(current)
        else:
            return current
        if opaque:
            return None
    return None


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _components(name: str) -> list[str]:
    """The entry's path inside the layer as components. `..` stops at the root, as it does in
    the chroot Docker unpacks layers in: `../escape` lands at `<layer>/escape`."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return parts


def _parent_dir(root: str, parts: list[str], name: str, implied: list[str], dirs: _Dirs) -> str:
    """The real directory that will hold `parts[-1]`, creating missing parents (noted in
    `implied`); symlinked or non-directory parents are refused so nothing can be written
    outside `root`."""
    current = root
    known = dirs.known
    for part in parts[:-1]:
        current = current + "/" + part
        if current in known:
            continue
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            os.chmod(current, 0o755)  # Docker's mode for an implied directory, whatever the umask
            implied.append(current)
            known.add(current)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise BadRequest(f"invalid tar entry {name!r}: parent {part!r} is not a directory")
        known.add(current)
    return current


def _clear(path: str, rel: str, keep_dir: bool, dirs: _Dirs) -> None:
    """Remove what is at `path` (`rel` in the layer), unless it is a directory and a directory
    is wanted there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            if dirs.observer is not None:
                dirs.observer.clearing(path, rel)
            dirs.forget()
            shutil.rmtree(path)
    else:
        if dirs.observer is not None:
            dirs.observer.clearing(path, rel)
        os.unlink(path)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str,
                    implied: list[str], dirs: _Dirs) -> str | None:
    """Create one entry; returns its path, or None for entries that make nothing (root, markers)."""
    parts = _components(member.name)
    if not parts:
        return None
    parent = _parent_dir(root, parts, member.name, implied, dirs)
    base = parts[-1]
    if base == OPAQUE_MARKER:
        os.setxattr(parent, OPAQUE_XATTR, b"y")
        return None
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        return None
    if base.startswith(WHITEOUT_PREFIX):
        path = parent + "/" + base[len(WHITEOUT_PREFIX):]
        _clear(path, "/".join([*parts[:-1], base[len(WHITEOUT_PREFIX):]]), False, dirs)
        os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        return None
    path = parent + "/" + base
    rel = "/".join(parts)
    _clear(path, rel, member.isdir(), dirs)
    if member.isreg():
        if dirs.observer is not None and not member.issparse():  # sparse data stays in the record
            dirs.observer.content(member, rel)
        _write_file(tar, member, path)
        return path
    _create(member, path, root)
    _apply_metadata(member, path)
    return path


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
    """A regular file: content, then owner, mode, xattrs and mtime, all through its one fd (no
    further path lookups for the commonest entry)."""
    source = tar.extractfile(member)
    assert source is not None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        left = member.size
        while left > 0:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise tarfile.ReadError("unexpected end of data")
            left -= len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode)
        _set_xattrs(member, fd)
        os.utime(fd, ns=(int(member.mtime * 10**9),) * 2)
    finally:
        os.close(fd)


def _create(member: tarfile.TarInfo, path: str, root: str) -> None:
    """Make the filesystem object itself (but not yet owner, mode and times) for entries other
    than regular files."""
    if member.isdir():
        if not os.path.lexists(path):
            os.mkdir(path, 0o700)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        os.link(_link_target(root, member), path, follow_symlinks=False)
    elif member.ischr() and (member.devmajor, member.devminor) in SAFE_CHAR_DEVICES:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.ischr() or member.isblk():
        kind = "character" if member.ischr() else "block"
        raise BadRequest(f"invalid tar entry {member.name!r}: {kind} device "
                         f"{member.devmajor}:{member.devminor} is not allowed in a layer")
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
        raise BadRequest(f"invalid tar entry {member.name!r}: unsupported type {member.type!r}")


def _link_target(root: str, member: tarfile.TarInfo) -> str:
    """The file a hard link entry names: already unpacked in this layer, reached through real
    directories only, and not a directory itself. Nothing is created on the way."""
    parts = _components(member.linkname)
    current = root
    for part in parts[:-1]:
        current = current + "/" + part
        if not stat.S_ISDIR(_lstat_mode(current)):
            break
    else:
        if parts:
            target = current + "/" + parts[-1]
            mode = _lstat_mode(target)
            if mode and not stat.S_ISDIR(mode):
                return target
    raise BadRequest(f"invalid tar entry {member.name!r}: bad hard link target {member.linkname!r}")


def _lstat_mode(path: str | Path) -> int:
    """The st_mode of `path` without following it; 0 when there is nothing there."""
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return 0


def _apply_metadata(member: tarfile.TarInfo, path: str) -> None:
    """Owner, then mode (chown clears set-id bits), xattrs, mtime: what a layer must preserve."""
    if member.islnk():
        return
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    if not member.issym():
        os.chmod(path, member.mode)
    _set_xattrs(member, path)
    if not member.isdir():
        os.utime(path, ns=(int(member.mtime * 10**9),) * 2, follow_symlinks=False)


def _set_xattrs(member: tarfile.TarInfo, target: str | int) -> None:
    """The entry's PAX xattrs on `target` (a path, not followed, or an fd); a filesystem or
    namespace that cannot hold one is skipped, as Docker does."""
    for key, value in member.pax_headers.items():
        if key.startswith(_XATTR_PAX_PREFIX):
            name = key[len(_XATTR_PAX_PREFIX):]
            data = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, data)
                else:
                    os.setxattr(target, name, data, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
