"""A stored layer read back as what save and push send: its uncompressed tar (diff ID
verified) or, for a pulled layer, the compressed blob the registry sent.

Three forms are read (see intake.py for the first two):
- a pulled layer: `layers/<hex>/blob`, decompressed on the fly;
- a loaded, built or imported layer: its tar-split record and unpacked files;
- a layer stored by an older tether: the uncompressed tar at `blobs/sha256/<hex>` (read as it
  is, as it was before; its unpacked dir, if any, is not needed).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from tether.image import layers
from tether.image.intake import BLOB, RECORD, TAR_SPLIT
from tether.image.tarsplit import VerifiedReader, reassemble
from tether.state import read_json

_CHUNK = 1 << 20


@dataclass
class StoredLayer:
    """Where one layer's bytes are: its dir (`layers/<hex>`) and the older form's tar."""

    diff_id: str
    layer_dir: Path
    legacy_tar: Path

    def record(self) -> dict[str, Any] | None:
        """The layer's layer.json, None for a layer in the older form (or none at all)."""
        try:
            return dict(read_json(self.layer_dir / RECORD))
        except FileNotFoundError:
            return None

    def exists(self) -> bool:
        return (self.layer_dir / RECORD).exists() or self.legacy_tar.exists()

    def tar_size(self) -> int:
        """Bytes of the uncompressed tar (what a saved archive holds)."""
        record = self.record()
        return int(record["tar_size"]) if record is not None else self.legacy_tar.stat().st_size

    def size(self) -> int:
        """The size Docker reports (regular files' bytes and symlink targets)."""
        record = self.record()
        return int(record["size"]) if record is not None else layers.tar_size(self.legacy_tar)

    def blob(self) -> tuple[Path, dict[str, Any]] | None:
        """The compressed blob a registry sent (its file and descriptor), for a pulled layer."""
        record = self.record()
        if record is None or "blob" not in record:
            return None
        return self.layer_dir / BLOB, dict(record["blob"])

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        """The uncompressed tar, checked against the diff ID as it is read (LayerChanged when
        the stored bytes or files no longer give it); the older form is read as it is."""
        record = self.record()
        if record is None:
            with open(self.legacy_tar, "rb") as f:
                yield f
            return
        with contextlib.ExitStack() as stack:
            if "blob" in record:
                blob = stack.enter_context(open(self.layer_dir / BLOB, "rb"))
                chunks = _chunks(layers.decompressed(blob))
            else:
                chunks = reassemble(str(self.layer_dir), str(self.layer_dir / TAR_SPLIT),
                                    {int(i) for i in record.get("kept", [])})
            stack.callback(chunks.close)
            yield io.BufferedReader(VerifiedReader(chunks, int(record["tar_size"]), self.diff_id),  # type: ignore[misc]
                                    _CHUNK)


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(_CHUNK):
        yield chunk
