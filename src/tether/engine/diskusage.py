"""Disk usage: `GET /system/df` and the container sizes of `ps -s` and `inspect -s`.

Sizes are counted as dockerd 20.10 counts them with overlay2: a container's SizeRw is its upper
dir measured by moby's `directory.Size` (regular files and symlinks by their length, a hard-linked
inode once, directories and empty files not at all); SizeRootFs adds the image's size. An
image's SharedSize is what its layers share with other images; LayersSize counts each layer once.
"""
from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from tether.runtime import rootfd
from tether.runtime.rootfd import Root

VolumesDf = Callable[[], Awaitable[list[dict[str, Any]]]]


def directory_size(root: Path) -> int:
    """moby's pkg/directory.Size: a walk that never follows symlinks; an entry gone while it
    is measured counts as nothing. A running container changes its upper dir meanwhile, so it
    is walked by fds (runtime/rootfd.py): a swapped-in link never leads the walk to the host."""
    seen: set[int] = set()
    total = 0
    try:
        fd_root = Root.open(root)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    with fd_root:
        top = fd_root.open_at("/", os.O_PATH | os.O_DIRECTORY)
        try:
            for _, st, _ in rootfd.walk(top, ""):
                if stat.S_ISDIR(st.st_mode) or st.st_size == 0 or st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
                total += st.st_size
        finally:
            os.close(top)
    return total


def shared_sizes(layers_of: dict[str, list[str]], layer_size: Callable[[str], int]
                 ) -> dict[str, int]:
    """Per image: the size of its layers that some other image also has."""
    users = Counter(layer for layers in layers_of.values() for layer in set(layers))
    return {image: sum(layer_size(layer) for layer in set(layers) if users[layer] > 1)
            for image, layers in layers_of.items()}


def layers_size(layers_of: dict[str, list[str]], layer_size: Callable[[str], int]) -> int:
    """Every layer once, however many images have it."""
    return sum(layer_size(layer) for layer in {l for ls in layers_of.values() for l in ls})


def with_sizes(item: dict[str, Any], size_rw: int, image_size: int) -> dict[str, Any]:
    """A container list item with dockerd's size fields (SizeRw omitted when zero: omitempty)."""
    if size_rw:
        item["SizeRw"] = size_rw
    item["SizeRootFs"] = size_rw + image_size
    return item


def image_items(images: Iterable[dict[str, Any]], containers_per_image: Counter,
                shared: dict[str, int]) -> list[dict[str, Any]]:
    """Image summaries with the counts only df computes (`docker images` shows -1 for them)."""
    return [{**img, "Containers": containers_per_image[img["Id"]],
             "SharedSize": shared.get(img["Id"], 0)} for img in images]
