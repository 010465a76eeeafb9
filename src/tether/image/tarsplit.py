"""A layer tar kept as its unpacked files plus a small record of everything else ("tar-split").

A layer from `docker load`, a build step or a commit is unpacked once; keeping its whole tar too
would write every byte twice. Instead the unpacker's stream is tapped (`Recorder`): every byte
of the uncompressed tar is either recorded verbatim (header blocks, PAX and long-name headers,
padding, the end-of-archive blocks and anything after them, the data of entries that are not
unpacked as files: whiteouts with data, sparse files, ...) or, for the data of a regular file the
unpacker writes, replaced by a reference to that file (its path in the layer and its size).
`reassemble` puts the tar back together, reading each file through an fd resolved inside the
layer's directory (openat2 RESOLVE_IN_ROOT, last component not followed, regular files of the
recorded size only): the files came from a hostile image. The result is checked against the
layer's diff ID as it is produced (`VerifiedReader`): a layer that changed on disk gives an
error, never a wrong tar.

A file's content can be lost later in the same tar: an entry at the same path, a whiteout of it,
or a directory above it being replaced. Before the unpacker removes anything (`clearing`), the
files it would take whose content the record refers to are hard-linked to `kept/<n>` beside
the layer's `diff` dir, so the first content stays readable and the record stays exact.

What cannot be read back from the unpacked files is kept in the record itself, compressed: this
is the fallback for entries the unpacker does not materialise as a file of the same bytes
(whiteouts and markers with data, sparse files, data of unsupported entries, a path written
twice keeps its first content under `kept/`). The undecided bytes held while the unpacker reads
ahead are capped (_MAX_PENDING): only the stored data of one sparse entry can come near it, and
a layer with more than that in one sparse entry is refused rather than held in memory.

The record is a gzip stream of segments: `R` + 8-byte length + bytes (verbatim), `F` + 8-byte
size + 4-byte length + path (a file's data), `E` (the end; a record without it is refused).
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import struct
import tarfile
from typing import BinaryIO, Iterator

from tether.rules.errors import BadRequest
from tether.runtime.rootfd import open_regular, openat2

KEPT_DIR = "kept"
_RAW, _FILE, _END = b"R", b"F", b"E"
_RAW_FLUSH = 1 << 20
_MAX_PENDING = 64 << 20  # undecided bytes held (tarfile read-ahead, data of sparse entries)
_CHUNK = 1 << 20


class LayerChanged(OSError):
    """A stored layer no longer gives the tar its diff ID names."""


class Recorder:
    """Taps the uncompressed tar the unpacker reads (`feed`) and, told by the unpacker which
    entry it is at (`entry`), which data it writes to a file (`content`) and what it is about
    to remove (`clearing`), writes the record to `out` (a binary file the caller owns)."""

    def __init__(self, out: BinaryIO, layer_dir: str) -> None:
        self._out = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0)
        self._layer_dir = layer_dir
        self._pos = 0  # stream offset of _pending[0]
        self._pending = bytearray()
        self._raw = bytearray()
        self._raw_until = 0  # bytes before this offset are known to be verbatim
        self._skip: tuple[int, int, str] | None = None  # data the unpacker is writing to a file
        self._files = 0
        self._latest: dict[str, int] = {}  # path in the layer -> index of its recorded content
        self.kept: list[int] = []

    # --- the stream ---

    def feed(self, data: bytes) -> None:
        self._pending += data
        self._settle()
        if len(self._pending) > _MAX_PENDING:
            raise BadRequest("invalid tar archive: an entry's data is too large to record")

    def content(self, member: tarfile.TarInfo, rel: str) -> None:
        """`member`'s data is about to be written to the layer file `rel` (its headers before
        it are verbatim)."""
        self._raw_until = member.offset_data
        self._skip = (member.offset_data, member.offset_data + member.size, rel)
        self._settle()

    def passed(self, member: tarfile.TarInfo) -> None:
        """The unpacker is done with `member`: its headers are verbatim, and so is the data of
        a regular entry that did not go to a file (tarfile skips it next)."""
        end = member.offset_data
        if member.isreg() and not member.issparse() and (self._skip is None or self._skip[0] != end):
            end += member.size
        self._raw_until = max(self._raw_until, end)
        self._settle()

    def clearing(self, path: str, rel: str) -> None:
        """The unpacker removes `path` (layer path `rel`, a file or a whole directory): keep a
        hard link of every file below it whose recorded content would go."""
        prefix = rel + "/"
        for name in [n for n in self._latest if n == rel or n.startswith(prefix)]:
            index = self._latest.pop(name)
            kept = os.path.join(self._layer_dir, KEPT_DIR)
            if not self.kept:
                os.mkdir(kept, 0o700)
            os.link(path + name[len(rel):], os.path.join(kept, str(index)), follow_symlinks=False)
            self.kept.append(index)

    def close(self) -> None:
        """The stream has ended: what is left is verbatim."""
        if self._skip is not None:
            raise BadRequest("invalid tar archive: unexpected end of data")
        self._raw_until = self._pos + len(self._pending)
        self._settle()
        self._flush_raw()
        self._out.write(_END)
        self._out.close()

    def _settle(self) -> None:
        while self._pending:
            if self._pos < self._raw_until:
                n = min(self._raw_until - self._pos, len(self._pending))
                self._raw += self._pending[:n]
                if len(self._raw) >= _RAW_FLUSH:
                    self._flush_raw()
            elif self._skip is not None and self._skip[0] <= self._pos < self._skip[1]:
                n = min(self._skip[1] - self._pos, len(self._pending))
            else:
                break
            del self._pending[:n]
            self._pos += n
            self._end_of_file()
        self._end_of_file()

    def _end_of_file(self) -> None:
        if self._skip is not None and self._pos >= self._skip[1]:
            start, end, rel = self._skip
            self._skip = None
            self._flush_raw()
            path = os.fsencode(rel)
            self._out.write(_FILE + struct.pack(">QI", end - start, len(path)) + path)
            self._latest[rel] = self._files
            self._files += 1

    def _flush_raw(self) -> None:
        if self._raw:
            self._out.write(_RAW + struct.pack(">Q", len(self._raw)))
            self._out.write(self._raw)
            self._raw.clear()


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise LayerChanged(errno.EIO, "layer record is truncated")
    return data


def reassemble(layer_dir: str, record: str, kept: set[int]) -> Iterator[bytes]:
    """The layer's tar, chunk by chunk, from its record and its unpacked files (see the module
    docstring); not verified here (`VerifiedReader` does)."""
    top = os.open(layer_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        diff = openat2(top, "diff", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            with gzip.open(record, "rb") as f:
                index = 0
                while True:
                    kind = _read_exact(f, 1)
                    if kind == _END:
                        return
                    if kind == _RAW:
                        (length,) = struct.unpack(">Q", _read_exact(f, 8))
                        while length:
                            chunk = _read_exact(f, min(length, _CHUNK))
                            length -= len(chunk)
                            yield chunk
                    elif kind == _FILE:
                        size, name_len = struct.unpack(">QI", _read_exact(f, 12))
                        rel = os.fsdecode(_read_exact(f, name_len))
                        if index in kept:
                            yield from _file_chunks(top, f"{KEPT_DIR}/{index}", size)
                        else:
                            yield from _file_chunks(diff, rel, size)
                        index += 1
                    else:
                        raise LayerChanged(errno.EIO, "layer record is damaged")
        finally:
            os.close(diff)
    finally:
        os.close(top)


def _file_chunks(root: int, rel: str, size: int) -> Iterator[bytes]:
    """The `size` bytes of the regular file `rel` inside `root`, opened without following a
    symlink anywhere out of `root` (nor as the last component)."""
    try:
        path_fd = openat2(root, rel, os.O_PATH | os.O_NOFOLLOW)
        try:
            fd = open_regular(path_fd)  # a device node or fifo swapped in is never opened
        finally:
            os.close(path_fd)
    except OSError as exc:
        raise LayerChanged(exc.errno or errno.EIO, f"layer file {rel!r}: {exc.strerror}") from None
    try:
        if os.fstat(fd).st_size != size:
            raise LayerChanged(errno.EIO, f"layer file {rel!r} is not the one unpacked")
        left = size
        while left:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                raise LayerChanged(errno.EIO, f"layer file {rel!r} is shorter than unpacked")
            left -= len(chunk)
            yield chunk
    finally:
        os.close(fd)


class VerifiedReader(io.RawIOBase):
    """A reader of `size` bytes from `chunks` that must hash to `digest`: the last bytes are
    only handed out once the whole has been checked, so a consumer that reads exactly `size`
    bytes (tarfile.addfile, an upload) never gets a complete wrong blob; more or fewer bytes,
    or another digest, raise LayerChanged."""

    def __init__(self, chunks: Iterator[bytes], size: int, digest: str) -> None:
        self._chunks, self._size, self._digest = chunks, size, digest
        self._hash = hashlib.sha256()
        self._buffer = b""
        self._done = 0  # bytes taken from `chunks`
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._checked:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._check()
                break
            self._hash.update(chunk)
            self._done += len(chunk)
            if self._done > self._size:
                raise LayerChanged(errno.EIO, f"layer {self._digest} is longer than recorded")
            self._buffer = chunk
            if self._done == self._size:
                self._check()
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._done != self._size or f"sha256:{self._hash.hexdigest()}" != self._digest:
            raise LayerChanged(errno.EIO, f"layer {self._digest} does not match its content on disk")
        if next(self._chunks, None) is not None:
            raise LayerChanged(errno.EIO, f"layer {self._digest} is longer than recorded")
