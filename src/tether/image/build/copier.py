"""COPY and ADD on a mounted rootfs, as Docker's legacy copier does them: sources found in the
context (or a stage's or an image's files) with globs per path segment, every path resolved inside
its root so a symlink never leads outside it, directories copied by their contents, ADD's local
tar archives unpacked, owners from `--chown` resolved in the image's own passwd and group files.
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path

from tether.engine.archive import resolve_in_root
from tether.errors import ApiError
from tether.image import layers
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
            path = resolve_in_root(root, rel)
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
                matches.append(resolve_in_root(root, candidate))
    return sorted(matches)


def make_dirs(rootfs: Path, path: str, uid: int, gid: int) -> Path:
    """Create the container path `path` (and missing parents, 0755, owned uid:gid)."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = f"{current.rstrip('/')}/{part}"
        host = resolve_in_root(rootfs, current)
        if not os.path.lexists(host):
            os.mkdir(host, 0o755)
            os.chown(host, uid, gid)
    return resolve_in_root(rootfs, path)


def copy_source(rootfs: Path, source: Path, target: str, as_dir: bool, uid: int, gid: int,
              extract: bool) -> None:
    """Copy one source into the rootfs as Docker's copier does: a directory's contents go into
    the destination directory; a file goes into it (dest ending in `/`) or becomes it; with ADD
    a local tar archive is unpacked into the destination."""
    if extract and source.is_file() and _is_archive(source):
        dest = make_dirs(rootfs, target, uid, gid)
        with open(source, "rb") as f:
            layers.extract(layers.decompressed(f), dest)
        return
    if source.is_dir():
        dest = make_dirs(rootfs, target, uid, gid)
        _copy_tree(source, dest, uid, gid)
        return
    existing = resolve_in_root(rootfs, target)
    if as_dir or existing.is_dir():
        parent = make_dirs(rootfs, target, uid, gid)
        dest = parent / source.name
    else:
        parent = make_dirs(rootfs, os.path.dirname(target) or "/", uid, gid)
        dest = parent / os.path.basename(target)
    _copy_entry(source, dest, uid, gid)


def _copy_tree(source: Path, dest: Path, uid: int, gid: int) -> None:
    for name in sorted(os.listdir(source)):
        _copy_entry(source / name, dest / name, uid, gid)


def _copy_entry(source: Path, dest: Path, uid: int, gid: int) -> None:
    st = os.lstat(source)
    if stat.S_ISDIR(st.st_mode):
        if not dest.is_dir() or dest.is_symlink():
            if os.path.lexists(dest):
                dest.unlink()
            os.mkdir(dest, stat.S_IMODE(st.st_mode))
        _copy_tree(source, dest, uid, gid)
        os.chmod(dest, stat.S_IMODE(st.st_mode))
    else:
        if os.path.lexists(dest) and not (dest.is_dir() and not dest.is_symlink()):
            dest.unlink()
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), dest)
        else:
            shutil.copyfile(source, dest)
            os.chmod(dest, stat.S_IMODE(st.st_mode))
    os.chown(dest, uid, gid, follow_symlinks=False)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _is_archive(path: Path) -> bool:
    """What ADD auto-extracts: a tar, plain or compressed (Docker's DetectCompression + tar)."""
    try:
        with open(path, "rb") as f:
            with tarfile.open(fileobj=layers.decompressed(f), mode="r|") as tar:
                return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False
