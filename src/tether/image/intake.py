"""A layer arriving (pull, load, build step, commit, import): read once, unpacked as it is read,
with only what is needed to give its tar back later written beside the files.

What a layer's dir (`layers/<diff-id hex>/`, see store.py) keeps besides its `diff`:
- `layer.json`: the tar's size (`tar_size`), the size Docker reports (`size`), and either the
  compressed blob as a registry sent it (`blob`: digest, mediaType, size; the bytes in `blob`)
  or the tar-split record (`tar-split.gz`, see tarsplit.py) with the files it had to keep
  (`kept`); and, until an image names it, the empty marker `unrecorded`.
- A pulled layer keeps the registry's compressed bytes (teed into `blob` while they are
  decompressed and unpacked): push sends them as they are and save decompresses them. Any other
  layer keeps its tar-split record: save and push read the tar back from the unpacked files.

Nothing is fsync'ed, as dockerd does not: the layer is unpacked into a `.tmp-` dir that becomes
the layer's dir by one rename once its files and records are complete (and the store names it
in an image only after that), a crash leaves a `.tmp-` dir that start-up removes, and whatever
reads a layer back checks it against its diff ID (and a pushed blob against its digest at the
registry), so a file a power loss tore gives an error, never a wrong tar.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from tether.image import layers
from tether.image.layers import LAYER_DIR_MODE, PreparedLayer
from tether.image.tarsplit import Recorder
from tether.rules.errors import BadRequest

RECORD = "layer.json"
BLOB = "blob"
TAR_SPLIT = "tar-split.gz"
UNRECORDED = "unrecorded"  # removed once an image names the layer; start-up collects the rest
_CHUNK = 1 << 20


class _Tee:
    """Reads through to `source`, writing every byte to `out`: the blob as it was sent."""

    def __init__(self, source: BinaryIO, out: BinaryIO) -> None:
        self.source, self.out, self.size = source, out, 0

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.out.write(data)
        self.size += len(data)
        return data


class _Tap:
    """The uncompressed tar as the unpacker reads it: hashed (the diff ID), counted, and fed
    to the tar-split recorder if there is one."""

    def __init__(self, source: BinaryIO, recorder: Recorder | None) -> None:
        self.source, self.recorder = source, recorder
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.hash.update(data)
        self.size += len(data)
        if self.recorder is not None and data:
            self.recorder.feed(data)
        return data


class _Observer:
    """The size Docker reports for a layer (regular files' bytes and symlink targets, as
    layers.tar_size counts), summed as the entries pass, and the recorder's hooks."""

    def __init__(self, recorder: Recorder | None) -> None:
        self.recorder = recorder
        self.size = 0

    def content(self, member: tarfile.TarInfo, rel: str) -> None:
        if self.recorder is not None:
            self.recorder.content(member, rel)

    def passed(self, member: tarfile.TarInfo) -> None:
        if member.isreg():
            self.size += member.size
        elif member.issym():
            self.size += len(member.linkname)
        if self.recorder is not None:
            self.recorder.passed(member)

    def clearing(self, path: str, rel: str) -> None:
        if self.recorder is not None:
            self.recorder.clearing(path, rel)


def receive(fileobj: BinaryIO, layers_root: Path, expected: str | None,
            blob: dict[str, Any] | None = None) -> tuple[str, PreparedLayer]:
    """Unpack the (possibly compressed) layer tar `fileobj` into a `.tmp-` dir under
    `layers_root`, keeping the blob as sent when `blob` (its registry descriptor) is given,
    else the tar-split record; its diff ID and the prepared layer (see layers.PreparedLayer).
    A diff ID other than `expected` is refused and leaves nothing."""
    tmp = layers_root / f".tmp-{secrets.token_hex(8)}"
    os.mkdir(tmp, LAYER_DIR_MODE)
    try:
        os.mkdir(tmp / "diff", 0o755)
        with open(tmp / (BLOB if blob is not None else TAR_SPLIT), "wb") as kept:
            source: Any = _Tee(fileobj, kept) if blob is not None else fileobj
            recorder = None if blob is not None else Recorder(kept, str(tmp))
            tap = _Tap(layers.decompressed(source), recorder)
            observer = _Observer(recorder)
            implied = layers.extract_entries(tap, str(tmp / "diff"), observer)  # type: ignore[arg-type]
            while tap.read(_CHUNK):
                pass  # what follows the end-of-archive blocks is part of the tar (and its diff ID)
            while source.read(_CHUNK):
                pass  # bytes after a compressed stream: read, so a verifying source sees its end
            if recorder is not None:
                recorder.close()
        diff_id = f"sha256:{tap.hash.hexdigest()}"
        if expected is not None and diff_id != expected:
            raise BadRequest(f"layer tar hashes to {diff_id}, expected {expected}")
        record: dict[str, Any] = {"tar_size": tap.size, "size": observer.size}
        if blob is not None:
            record["blob"] = {"digest": blob["digest"], "mediaType": blob.get("mediaType", ""),
                              "size": source.size}
        else:
            record["kept"] = recorder.kept if recorder is not None else []
        (tmp / RECORD).write_text(json.dumps(record))
        (tmp / UNRECORDED).touch()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return diff_id, PreparedLayer(layers_root / diff_id.split(":", 1)[1], tmp, implied)
