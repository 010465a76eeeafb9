"""The rules of `tether cp` (docker CLI 28's `docker cp` and moby's pkg/archive copy.go), pure.

`cp` is a plain tar archive/extract API underneath; what makes it behave like `cp -a` is the
client deciding, from where the source and the destination are and what they are, which
directory the archive is unpacked into and how its top entry is renamed on the way. Those
decisions are path arithmetic done the way Go's `path/filepath` does it (Clean never keeps a
trailing slash, Base of "" is "."), so the Go helpers are mirrored here: `posixpath` differs in
enough corners (`//a`, trailing slashes) to change what gets copied where.
"""
from __future__ import annotations

import errno as errno_codes
import os
import posixpath
from dataclasses import dataclass

# Go's os.FileMode bits, as the daemon's X-Docker-Container-Path-Stat header carries them
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_IRREGULAR = 1 << 19

_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class CopyError(Exception):
    """A failure worded as the docker CLI prints it (exit status 1)."""


# ---- Go's path/filepath -------------------------------------------------------------------

def go_clean(path: str) -> str:
    """filepath.Clean: like normpath, but a leading `//` is one slash and "" is "."."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def go_base(path: str) -> str:
    """filepath.Base: the last element, trailing slashes ignored; "/" for the root."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


def go_dir(path: str) -> str:
    """filepath.Dir: everything before the last slash, cleaned."""
    return go_clean(path[: path.rfind("/") + 1])


def go_join(*parts: str) -> str:
    """filepath.Join: the non-empty parts joined with "/" and cleaned ("" when all are empty)."""
    kept = [p for p in parts if p]
    return go_clean("/".join(kept)) if kept else ""


def go_split(path: str) -> tuple[str, str]:
    """filepath.Split: (everything up to and including the last slash, the rest)."""
    cut = path.rfind("/") + 1
    return path[:cut], path[cut:]


def go_bool(text: str) -> bool | None:
    """strconv.ParseBool, None for what it refuses."""
    if text in _GO_TRUE:
        return True
    return False if text in _GO_FALSE else None


def errno_text(code: int) -> str:
    """Go's wording of an errno: glibc's strerror with a lower-case first letter."""
    text = os.strerror(code)
    return text[:1].lower() + text[1:]


def path_error(op: str, path: str, exc: OSError) -> CopyError:
    """Go's *PathError text: `lstat /x: no such file or directory`."""
    return CopyError(f"{op} {path}: {errno_text(exc.errno or errno_codes.EIO)}")


def go_quote(text: str) -> str:
    """Go's %q for the paths in untar errors (printable text kept, quotes and backslashes escaped)."""
    body = "".join(c if c.isprintable() and c not in '"\\' else
                   ("\\" + c if c in '"\\' else f"\\x{ord(c):02x}") for c in text)
    return f'"{body}"'


# ---- the copy rules (moby pkg/archive/copy.go) ---------------------------------------------

@dataclass(frozen=True)
class CopyInfo:
    """One side of a copy: where it is, whether it exists and is a directory, and the name its
    archive's top entry must take (set when a symlink was followed to get there)."""

    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


def split_cp_arg(arg: str) -> tuple[str, str]:
    """CONTAINER:PATH or a local path. A local path with a colon must be made explicit with
    `/` or `./` (as scp wants), since container names cannot start with either."""
    if arg.startswith("/"):
        return "", arg
    container, colon, path = arg.partition(":")
    if not colon or container.startswith("."):
        return "", arg
    return container, path


def copy_direction(source: str, destination: str) -> tuple[str, str, str, bool]:
    """(container, container path, local path, from_container) for `cp SRC DEST`."""
    if not source:
        raise CopyError("source can not be empty")
    if not destination:
        raise CopyError("destination can not be empty")
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        raise CopyError("copying between containers is not supported")
    if src_container:
        return src_container, src_path, dst_path, True
    if dst_container:
        return dst_container, dst_path, src_path, False
    raise CopyError("must specify at least one container source")


def has_trailing_separator(path: str) -> bool:
    return path.endswith("/")


def specifies_current_dir(path: str) -> bool:
    return go_base(path) == "."


def asserts_directory(path: str) -> bool:
    """A trailing `/` or `/.` says the path must be a directory."""
    return has_trailing_separator(path) or specifies_current_dir(path)


def preserve_trailing_dot_or_separator(cleaned: str, original: str) -> str:
    """Give a cleaned path back the `/.` or `/` its original ended with: they carry meaning."""
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_separator(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_separator(cleaned) and has_trailing_separator(original):
        cleaned += "/"
    return cleaned


def resolve_local_path(path: str, cwd: str) -> str:
    """filepath.Abs, keeping a trailing `/` or `/.`."""
    absolute = go_clean(path) if path.startswith("/") else go_join(cwd, path)
    return preserve_trailing_dot_or_separator(absolute, path)


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """(directory, entry) of a cleaned path, a final `.` kept as the entry."""
    cleaned = go_clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return go_dir(cleaned), go_base(cleaned)


def get_rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """After following a link: the resolved path with the original's trailing `/.` or `/`,
    and the name the copy must take when resolving changed the last element."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_separator(path) and not has_trailing_separator(resolved):
        resolved += "/"
    rebase = go_base(path) if go_base(path) != go_base(resolved) else ""
    return resolved, rebase


def link_target_path(path: str, link_target: str) -> str:
    """Where a symlink at `path` leads: relative targets are joined with its directory."""
    if link_target.startswith("/"):
        return link_target
    return go_join(split_path_dir_entry(path)[0], link_target)


def prepare_archive_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, tuple[str, str] | None]:
    """The directory to unpack into and the (old, new) renaming of the archive's top entry.

    An existing directory receives the archive as it is; anything else is created (or
    replaced) as the destination's last element, so the top entry takes that name.
    """
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    src_base = src.rebase_name or split_path_dir_entry(src.path)[1]
    if dst.exists and dst.is_dir:
        return dst.path, None
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, (src_base, dst_base)


def rebase_entry(name: str, old: str, new: str) -> str:
    """RebaseArchiveEntries on one name: the first `old` becomes `new` (the root, `/`, is
    replaced as "" so that `new` is prefixed instead of eating the leading slash)."""
    return name.replace("" if old == "/" else old, new, 1)


def stat_mode_error(mode: int) -> str | None:
    """ValidateOutputPathFileMode: devices and irregular files are no copy destination."""
    if mode & MODE_DEVICE:
        return "got a device"
    if mode & MODE_IRREGULAR:
        return "got an irregular file"
    return None


def copy_summary(size: int, destination: str) -> str:
    """The line docker prints on stderr after a copy that is not quiet."""
    from tether.rules.units import human_size

    return f"Successfully copied {human_size(size)} to {destination}"
