"""The legacy builder's layer cache: a step is skipped when an image exists whose parent is the
current image and whose ContainerConfig equals the one the step would record.

That config carries the instruction as recorded (`/bin/sh -c #(nop) ENV a=b`, RUN's command with
its build args) and, for COPY and ADD, a content hash of the sources, so an unchanged Dockerfile
over an unchanged context finds every step again. As in Docker, `FROM scratch` steps look among
the images that have no parent, and the newest match wins.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from tether.image.store import Image, ImageStore
from tether.rules.errors import NotFound

# fields moby's compare() ignores: they differ between two runs of the same step
_IGNORED = ("Hostname", "Image")


def _key(config: dict[str, Any]) -> dict[str, Any]:
    """What compare() looks at; no labels and empty labels are the same (it compares lengths)."""
    key = {k: v for k, v in config.items() if k not in _IGNORED}
    key["Labels"] = key.get("Labels") or {}
    return key


def lookup(store: ImageStore, parent_id: str, container_cfg: dict[str, Any],
           sources: list[Image] | None = None) -> Image | None:
    """The cached image for a step, or None. With `sources` (the build's `cache_from` images
    that exist), a hit counts only if it is one of them or an ancestor of one, as moby's
    ImageCache does over its local cache: no source, no hit."""
    wanted = _key(container_cfg)
    matches = [img for img in store.children(parent_id)
               if _key(img.config.get("container_config") or {}) == wanted
               and (sources is None or any(_in_chain(store, img.id, s) for s in sources))]
    return max(matches, key=lambda img: img.config.get("created", ""), default=None)


def _in_chain(store: ImageStore, image_id: str, source: Image) -> bool:
    """Whether `image_id` is `source` or one of its parents (build steps, commits)."""
    current: Image | None = source
    while current is not None:
        if current.id == image_id:
            return True
        try:
            current = store.resolve(current.parent) if current.parent else None
        except NotFound:
            return False
    return False


def _hash_tree(digest: Any, path: Path, rel: str) -> None:
    """Feed one file or directory tree (names, types, modes, link targets, contents) to `digest`;
    owners and times are left out, as tarsum does for the legacy cache."""
    st = os.lstat(path)
    digest.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
    if stat.S_ISLNK(st.st_mode):
        digest.update(os.readlink(path).encode())
    elif stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    elif stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            _hash_tree(digest, path / name, f"{rel}/{name}")
    digest.update(b"\0")


def source_hash(sources: list[Path]) -> str:
    """`file:<hex>`, `dir:<hex>` or `multi:<hex>`: what COPY/ADD record for their sources."""
    hashes = []
    for source in sources:
        digest = hashlib.sha256()
        _hash_tree(digest, source, "")
        hashes.append(digest.hexdigest())
    if len(sources) == 1:
        kind = "dir" if sources[0].is_dir() and not sources[0].is_symlink() else "file"
        return f"{kind}:{hashes[0]}"
    return "multi:" + hashlib.sha256("".join(hashes).encode()).hexdigest()
