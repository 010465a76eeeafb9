"""COPY and ADD on a mounted rootfs, as Docker's legacy copier does them: sources found in the
context (or a stage's or an image's files) with globs per path segment, every path resolved inside
its root so a symlink never leads outside it, directories copied by their contents, ADD's local
tar archives unpacked, owners from `--chown` resolved in the image's own passwd and group files.

The rootfs written is an image's files, so its destinations are reached as runtime/rootfd.py
reaches a container's: openat2 inside an fd of the root, then `*at` calls on the parent's fd
with the entry's own name never followed.
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path

from tether.image import layers
from tether.rules.errors import ApiError
from tether.runtime import rootfd
from tether.runtime.rootfd import Root
from tether.runtime.user import resolve_user

GLOB = set("*?[")


def clean_path(path: str) -> str:
    """An absolute, normalised container path (`..` never above `/`)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def leaves_root(source: str) -> bool:
    """Whether a COPY/ADD source climbs out of its root with `..` (`../x`, `a/../../x`, `/../x`):
    dockerd refuses those ("forbidden path outside the build context") rather than quietly
    reading `x` from the root as `clean_path` would."""
    rel = posixpath.normpath(source.removeprefix("/"))
    return rel == ".." or rel.startswith("../")


def in_root(root: Path, path: str) -> Path:
    """The host path of `path` in a root nothing else writes (a build context, a mounted image
    for COPY --from), its symlinks resolved as inside that root."""
    with Root.open(root) as fd_root:
        return root / fd_root.resolve(path).lstrip("/")


def owner(rootfs: Path, chown: str) -> tuple[int, int]:
    """`--chown=user[:group]` against the image's own passwd and group files; root by default."""
    if not chown:
        return 0, 0
    spec = chown if ":" in chown else f"{chown}:{chown}"
    uid, gid, _, _ = resolve_user(str(rootfs), spec)
    return uid, gid


def find_sources(root: Path, patterns: list[str], cmd: str, from_context: bool) -> list[Path]:
    """The host paths of COPY/ADD sources (globs matched per path segment, as filepath.Match),
    resolved inside `root` so a symlink can never lead outside it."""
    found: list[Path] = []
    for pattern in patterns:
        if not set(pattern) & GLOB and leaves_root(pattern):
            raise ApiError(f"{cmd} failed: forbidden path outside the build context: {pattern} ()")
        rel = clean_path(pattern).lstrip("/")
        if set(rel) & GLOB:
            matches = _glob(root, rel)
        else:
            path = in_root(root, rel)
            matches = [path] if os.path.lexists(path) else []
        if not matches:
            where = "build context or excluded by .dockerignore" if from_context else "source image"
            raise ApiError(f"{cmd} failed: file not found in {where}: stat {pattern}: file does "
                           "not exist")
        found.extend(matches)
    return found


def _glob(root: Path, pattern: str) -> list[Path]:
    segments = pattern.split("/")
    matches = []
    for current, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(current, root)
        depth = 0 if rel == "." else rel.count("/") + 1
        if depth >= len(segments):
            dirs.clear()
            continue
        for name in sorted(dirs + files):
            candidate = name if rel == "." else f"{rel}/{name}"
            parts = candidate.split("/")
            if len(parts) == len(segments) and all(fnmatch.fnmatchcase(p, s)
                                                   for p, s in zip(parts, segments)):
                matches.append(in_root(root, candidate))
    return sorted(matches)


def make_dirs(rootfs: Path, path: str, uid: int, gid: int) -> None:
    """Create the container path `path` (and missing parents, 0755, owned uid:gid)."""
    with Root.open(rootfs) as root:
        os.close(root.makedirs(path, 0o755, (uid, gid)))


def copy_source(rootfs: Path, source: Path, target: str, as_dir: bool, uid: int, gid: int,
                extract: bool) -> None:
    """Copy one source into the rootfs as Docker's copier does: a directory's contents go into
    the destination directory; a file goes into it (dest ending in `/`) or becomes it; with ADD
    a local tar archive is unpacked into the destination."""
    with Root.open(rootfs) as root:
        if extract and source.is_file() and _is_archive(source):
            dest = root.makedirs(target, 0o755, (uid, gid))
            try:
                with open(source, "rb") as f:
                    layers.extract(layers.decompressed(f), Path(f"/proc/self/fd/{dest}"))
            finally:
                os.close(dest)
            return
        if source.is_dir():
            dest = root.makedirs(target, 0o755, (uid, gid))
            try:
                _copy_tree(source, dest, uid, gid)
            finally:
                os.close(dest)
            return
        if as_dir or _is_dir(root, target):
            parent, name = root.makedirs(target, 0o755, (uid, gid)), source.name
        else:
            parent_path, name = rootfd.split(target)
            parent = root.makedirs(parent_path, 0o755, (uid, gid))
        try:
            _copy_entry(source, parent, name, uid, gid)
        finally:
            os.close(parent)


def _is_dir(root: Root, path: str) -> bool:
    try:
        fd = root.open_at(path, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _copy_tree(source: Path, dest: int, uid: int, gid: int) -> None:
    """The entries of directory `source` into the directory fd `dest`."""
    for name in sorted(os.listdir(source)):
        _copy_entry(source / name, dest, name, uid, gid)


def _copy_entry(source: Path, parent: int, name: str, uid: int, gid: int) -> None:
    """`source` as `name` in the directory fd `parent`: what is there goes unless both are
    directories; mode, then owner (which clears set-id bits, as Docker's chown pass does), then
    times from the source."""
    st = os.lstat(source)
    existing = rootfd.lstat_at(parent, name)
    if stat.S_ISDIR(st.st_mode):
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=parent)
            existing = None
        if existing is None:
            os.mkdir(name, stat.S_IMODE(st.st_mode), dir_fd=parent)
        child = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            _copy_tree(source, child, uid, gid)
        finally:
            os.close(child)
    else:
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=parent)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), name, dir_fd=parent)
        else:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600, dir_fd=parent)
            with open(source, "rb") as src, os.fdopen(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    rootfd.set_attributes(parent, name, None, stat.S_IMODE(st.st_mode), None)
    rootfd.set_attributes(parent, name, (uid, gid), None, st.st_mtime_ns, st.st_atime_ns)


def _is_archive(path: Path) -> bool:
    """What ADD auto-extracts: a tar, plain or compressed (Docker's DetectCompression + tar)."""
    try:
        with open(path, "rb") as f:
            with tarfile.open(fileobj=layers.decompressed(f), mode="r|") as tar:
                return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False
