"""The host side of `tether cp`: stat the local paths, tar a local source, untar into a local
destination, as the docker CLI does it with moby's pkg/archive.

The archive is built block by block rather than with `TarFile.add`: Python pads a tar to 10 KiB
records while Go's writer stops after the two zero blocks, and the byte count is what the
"Successfully copied" line reports. Headers are USTAR when the entry fits, PAX otherwise, the
choice Go's writer makes. Unpacking follows moby's Untar with the CLI's options (no chown,
never a directory replaced by a file or the reverse) and its refusals to write outside the
destination.
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import BinaryIO, Iterable, Iterator

from tether.cli.cp_rules import (CopyError, CopyInfo, get_rebase_name, go_base, go_clean,
                                 go_dir, go_join, go_quote, go_split, has_trailing_separator,
                                 link_target_path, path_error, rebase_entry, split_path_dir_entry)

Renames = list[tuple[str, str]]
_BLOCK = 512
_CHUNK = 65536
_MAX_LINKS = 255
_MAX_DEST_LINKS = 10  # CopyInfoDestinationPath's own limit


class CountingReader:
    """A file object over byte chunks that counts what was read (the copied size)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buf += chunk
        cut = len(self._buf) if size < 0 else size
        data, self._buf = self._buf[:cut], self._buf[cut:]
        self.count += len(data)
        return data


# ---- local paths ----------------------------------------------------------------------------

def eval_symlinks(path: str) -> str:
    """filepath.EvalSymlinks with its errors: the lstat that failed, or a bare "not a
    directory" when a non-directory has more path after it."""
    vol = "/" if path.startswith("/") else ""
    dest, start, links = vol, len(vol), 0
    while start < len(path):
        while start < len(path) and path[start] == "/":
            start += 1
        end = path.find("/", start)
        end = len(path) if end < 0 else end
        part = path[start:end]
        start = end
        if not part or part == ".":
            continue
        if part == "..":
            cut = dest.rfind("/")
            if cut < len(vol) or dest[cut + 1:] == "..":
                dest += ("/" if len(dest) > len(vol) else "") + ".."
            else:
                dest = dest[:cut]
            continue
        dest += ("/" if dest and not dest.endswith("/") else "") + part
        try:
            st = os.lstat(dest)
        except OSError as exc:
            raise path_error("lstat", dest, exc) from None
        if not stat.S_ISLNK(st.st_mode):
            if not stat.S_ISDIR(st.st_mode) and end < len(path):
                raise CopyError("not a directory")
            continue
        links += 1
        if links > _MAX_LINKS:
            raise CopyError("EvalSymlinks: too many links")
        link = os.readlink(dest)
        path = link + path[end:]
        if link.startswith("/"):
            vol = dest = "/"
            start = 1
        else:
            cut = dest.rfind("/")
            dest = vol if cut < len(vol) else dest[:cut]
            start = 0
    return go_clean(dest)


def copy_info_source_path(path: str, follow_link: bool) -> CopyInfo:
    """A local source: with -L the whole path is resolved (the copy keeps the link's name),
    without it only the directories leading to the last element."""
    rebase = ""
    if follow_link:
        resolved, rebase = get_rebase_name(path, eval_symlinks(path))
    else:
        parent, base = go_split(path)
        resolved = eval_symlinks(parent) + "/" + base
        if has_trailing_separator(path) and go_base(path) != go_base(resolved):
            rebase = go_base(path)
    try:
        st = os.lstat(resolved)
    except OSError as exc:
        raise path_error("lstat", resolved, exc) from None
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rebase)


def copy_info_destination_path(path: str) -> CopyInfo:
    """A local destination, symlinks at its end followed; it may be missing if its parent
    directory exists."""
    original = path
    for _ in range(_MAX_DEST_LINKS + 2):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            break
        except OSError as exc:
            raise path_error("lstat", path, exc) from None
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))
        path = link_target_path(path, os.readlink(path))
    else:
        raise CopyError(f"too many symlinks in {original}")
    parent = split_path_dir_entry(path)[0]
    try:
        parent_st = os.stat(parent)
    except OSError as exc:
        raise path_error("stat", parent, exc) from None
    if not stat.S_ISDIR(parent_st.st_mode):
        raise CopyError("not a directory")
    return CopyInfo(path)


def validate_output_path(path: str) -> None:
    """The CLI's ValidateOutputPath: the parent directory must exist, and an existing
    destination must be a directory or a file (a fifo or socket passes, a device does not)."""
    parent = go_dir(go_clean(path))
    if parent not in ("", "."):
        try:
            os.stat(parent)
        except FileNotFoundError:
            raise CopyError(f'invalid output path: directory "{parent}" does not exist') from None
        except OSError:
            pass
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise path_error("stat", path, exc) from None
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        raise CopyError(f'invalid output path: "{path}" must be a directory or a regular file: '
                        "got a device")


# ---- archiving a local source ---------------------------------------------------------------

def tar_resource(info: CopyInfo, renames: Renames) -> Iterator[bytes]:
    """The archive of one local file or directory, its names rebased as moby's TarResource
    (the link's name with -L) and then `renames` (the destination's name)."""
    source_dir, base = split_path_dir_entry(info.path)
    renames = ([(base, info.rebase_name)] if info.rebase_name else []) + renames
    seen: dict[tuple[int, int], str] = {}
    root = source_dir.rstrip("/") + "/" + base
    for host, rel in _walk(root, base):
        name = rel
        for old, new in renames:
            name = rebase_entry(name, old, new)
        block = _entry(host, name, seen)
        if block is not None:
            yield from block
    yield b"\0" * (2 * _BLOCK)


def _walk(root: str, rel: str) -> Iterator[tuple[str, str]]:
    """filepath.WalkDir from `root` in lexical order, symlinks not followed; unreadable
    directories are skipped as docker logs and skips them."""
    yield root, rel
    try:
        st = os.lstat(root)
        if not stat.S_ISDIR(st.st_mode):
            return
        names = sorted(os.listdir(root), key=os.fsencode)
    except OSError:
        return
    for name in names:
        yield from _walk(f"{root.rstrip('/')}/{name}", f"{rel}/{name}")


def _entry(host: str, name: str, seen: dict[tuple[int, int], str]) -> Iterator[bytes] | None:
    """Header and data of one file, as moby's addTarFile (owner ids without names, mtime in
    whole seconds, a second name of an inode as a hard link); sockets are skipped."""
    try:
        st = os.lstat(host)
    except OSError:
        return None
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return None
    info = tarfile.TarInfo(name + "/" if stat.S_ISDIR(mode) and not name.endswith("/") else name)
    info.mode, info.uid, info.gid = stat.S_IMODE(mode), st.st_uid, st.st_gid
    info.mtime, info.uname, info.gname = int(st.st_mtime), "", ""
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(host)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        info.type, info.size = tarfile.REGTYPE, st.st_size
    if not stat.S_ISDIR(mode) and st.st_nlink > 1:
        first = seen.setdefault((st.st_dev, st.st_ino), name)
        if first != name:
            info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
    return _blocks(host, info)


def _blocks(host: str, info: tarfile.TarInfo) -> Iterator[bytes]:
    yield header(info)
    if info.type != tarfile.REGTYPE or not info.size:
        return
    remaining = info.size
    with open(host, "rb") as src:
        while remaining:
            data = src.read(min(_CHUNK, remaining))
            if not data:
                raise CopyError(f"archive/tar: missed writing {remaining} bytes")
            remaining -= len(data)
            yield data
    yield b"\0" * (-info.size % _BLOCK)


def header(info: tarfile.TarInfo) -> bytes:
    """USTAR when the entry fits it (ASCII names, no overlong name or number), else PAX."""
    if (info.name + info.linkname).isascii() and _ustar_splittable(info.name):
        try:
            return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:
            pass
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _ustar_splittable(name: str) -> bool:
    """Go's splitUSTARPath: a name over 100 bytes fits USTAR only as a prefix (at most 155)
    and a non-empty rest (at most 100) cut at the last slash within the first 156 bytes.
    Python would also cut a directory's trailing slash off as an empty rest; Go does not."""
    if len(name) <= 100:
        return True
    length = min(len(name), 156)
    if length == len(name) and name.endswith("/"):
        length -= 1
    cut = name.rfind("/", 0, length)
    return 0 < cut <= 155 and 0 < len(name) - cut - 1 <= 100


# ---- unpacking into a local destination -----------------------------------------------------

def untar(source: BinaryIO, dest: str, renames: Renames) -> int:
    """moby's Untar(NoLchown, NoOverwriteDirNonDir) of `source` into directory `dest`, each
    entry renamed by `renames` first. Modes and times come from the archive, owners do not.

    Returns the archive's length up to its end marker, what Go's reader consumes (and the
    docker CLI reports): padding after the marker is not part of the copy."""
    dest = go_clean(dest)
    directories: list[tuple[str, tarfile.TarInfo]] = []
    with tarfile.open(fileobj=source, mode="r|*") as tar:  # type: ignore[call-overload]
        for member in tar:
            name = member.name
            for old, new in renames:
                name = rebase_entry(name, old, new)
                if member.islnk():
                    member.linkname = rebase_entry(member.linkname, old, new)
            name = go_clean(name)
            parent = go_join(dest, go_dir(name))
            if not os.path.lexists(parent):
                os.makedirs(parent, 0o755, exist_ok=True)
            path = go_join(dest, name)
            if os.path.relpath(path, dest).startswith("../"):
                raise CopyError(f"{go_quote(name)} is outside of {go_quote(dest)}")
            if _make_room(path, dest, name, member):
                continue
            _create(tar, member, path, dest)
            if member.isdir():
                directories.append((path, member))
        consumed = tar.offset + 2 * _BLOCK
    for path, member in directories:
        _set_times(path, member)
    return consumed


def _make_room(path: str, dest: str, name: str, member: tarfile.TarInfo) -> bool:
    """Clear the way for an entry; True when it is the destination itself (left as it is)."""
    try:
        existing = os.lstat(path)
    except OSError:
        return False
    is_dir = stat.S_ISDIR(existing.st_mode)
    if is_dir and not member.isdir():
        raise CopyError(f"cannot overwrite directory {go_quote(path)} with non-directory "
                        f"{go_quote(dest)}")
    if not is_dir and member.isdir():
        raise CopyError(f"cannot overwrite non-directory {go_quote(path)} with directory "
                        f"{go_quote(dest)}")
    if is_dir and name == ".":
        return True
    if not is_dir:
        os.unlink(path)
    return False


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, dest: str) -> None:
    mode = member.mode & 0o7777
    if member.isdir():
        if not os.path.lexists(path):  # an existing directory is merged into
            os.mkdir(path, mode)
    elif member.isreg():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, mode)
        with os.fdopen(fd, "wb") as out:
            src = tar.extractfile(member)
            while src is not None and (data := src.read(_CHUNK)):
                out.write(data)
    elif member.ischr() or member.isblk() or member.isfifo():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
        os.mknod(path, kind | mode, os.makedev(member.devmajor, member.devminor))
    elif member.islnk():
        target = go_join(dest, member.linkname)
        if not target.startswith(dest):
            raise CopyError(f"invalid hardlink {go_quote(target)} -> {go_quote(member.linkname)}")
        os.link(target, path, follow_symlinks=False)
        return  # the inode already has the first name's mode and times
    elif member.issym():
        if not go_join(go_dir(path), member.linkname).startswith(dest):
            raise CopyError(f"invalid symlink {go_quote(path)} -> {go_quote(member.linkname)}")
        os.symlink(member.linkname, path)
    else:
        raise CopyError(f"unhandled tar header type {ord(member.type)}")
    _set_xattrs(path, member)
    if not member.issym():
        os.chmod(path, mode)
    _set_times(path, member)


def _set_xattrs(path: str, member: tarfile.TarInfo) -> None:
    """SCHILY.xattr records; a filesystem or a user that cannot take them is no error."""
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(path, key[len("SCHILY.xattr."):],
                            value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise


def _set_times(path: str, member: tarfile.TarInfo) -> None:
    """mtime from the archive (before 1970 becomes the epoch), atime the later of the two."""
    mtime = max(float(member.mtime), 0.0)
    atime = max(float(member.pax_headers.get("atime", mtime)), mtime)
    os.utime(path, ns=(int(atime * 1e9), int(mtime * 1e9)), follow_symlinks=not member.issym())
