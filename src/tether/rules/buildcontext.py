"""The build context as a client packs it for POST /build: the directory's files in Docker's
order, less what `.dockerignore` excludes (Docker's CLI keeps the Dockerfile and .dockerignore in
the tar even when listed: the daemon needs them). The daemon applies the same file again
(tether.image.build.context), so a client that did not filter gets Docker's result anyway.

Standard library only: `tether build` packs the context with it, and the CLI imports no daemon
module.
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from tether.rules import dockerignore

IGNORE_FILE = ".dockerignore"
DEFAULT_DOCKERFILE = "Dockerfile"


def entries(root: Path) -> list[str]:
    """Every path below `root`, relative and slash-separated, parents first, names sorted."""
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(current, root)
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(current, d))]:
            found.append(name if rel == "." else f"{rel}/{name}")
        found.extend(d if rel == "." else f"{rel}/{d}" for d in dirs
                     if not os.path.islink(os.path.join(current, d)))
    return sorted(found)


def write_context_tar(directory: Path, out: BinaryIO, keep: tuple[str, ...] = (DEFAULT_DOCKERFILE,),
                      extra: dict[str, bytes] | None = None, hidden: bool = False) -> None:
    """Tar `directory` for POST /build, leaving out what .dockerignore excludes except the
    files named in `keep` (the Dockerfile); `extra` adds files that are not in the directory
    (a Dockerfile given with `-f` from outside the context, or from stdin). With `hidden`, the
    extra files are appended to the tar's .dockerignore, as the docker CLI does, so the daemon
    drops them from the context once it has read them."""
    ignore = directory / IGNORE_FILE
    ignore_text = ignore.read_text() if ignore.is_file() else None
    patterns = dockerignore.parse(ignore_text or "")
    always = {IGNORE_FILE, *keep}
    extra = dict(extra or {})
    if hidden and extra:
        extra[IGNORE_FILE] = ((IGNORE_FILE if ignore_text is None else ignore_text) + "".join(
            f"\n{name}\n" for name in extra)).encode()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries(directory):
            if rel in extra or (rel not in always and dockerignore.excluded(rel, patterns)):
                continue
            info = tar.gettarinfo(str(directory / rel), arcname=rel)
            info.uid = info.gid = 0  # as the docker CLI: ownership is the daemon's choice
            info.uname = info.gname = ""
            info.mtime = int(info.mtime)  # whole seconds: no PAX record for each entry
            if info.isreg():
                with open(directory / rel, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
