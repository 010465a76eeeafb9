"""The containers of one daemon in memory, their names, and their records on disk.

Every service finds containers here (`get` by ID, name or unique prefix) and writes records
through here: `save` for facts (an exit, a start, a pause, a stop asked for: memory follows the
kernel, and a record a full data root refuses is kept under the exec root and retried every
second until it lands), `save_or_fail` for requested changes (written before they are applied,
a failure is dockerd's `write <path>: no space left on device` and changes nothing).
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from tether.rules import names as naming
from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.rules.errors import ApiError, BadRequest, Conflict, NotFound, os_error_text
from tether.state import read_json, write_json_atomic

log = logging.getLogger("tether.containers")
RECORD_RETRY_INTERVAL = 1.0  # seconds between attempts to write records a full disk refused


class ContainerRegistry:
    """Lookup by ID and name (link names included), and the records' writes."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}  # `/name` and `/parent/alias` -> container ID
        self._unsaved: set[str] = set()   # containers whose last record write failed
        self._flusher: asyncio.Task | None = None

    # ---- lookup -------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """Find a container by full ID, name (with or without `/`) or unique ID prefix."""
        if not ref:  # dockerd's GetContainer: e.g. a network connect body without Container
            raise BadRequest('invalid name or ID supplied: ""')
        if ref in self._containers:
            return self._containers[ref]
        cid = self._names.get("/" + ref.lstrip("/"))
        if cid in self._containers:
            return self._containers[cid]
        if re.fullmatch(r"[0-9a-f]+", ref):
            matches = [c for cid, c in self._containers.items() if cid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise BadRequest(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def find(self, cid: str) -> Container | None:
        """The container with this full ID, if it is (still) known."""
        return self._containers.get(cid)

    def all(self) -> list[Container]:
        return list(self._containers.values())

    def add(self, c: Container) -> None:
        self._containers[c.id] = c
        self._names[c.name] = c.id

    def discard(self, c: Container) -> None:
        """Forget a removed container: its record's pending copy and its own name go too."""
        del self._containers[c.id]
        self._forget_unsaved(c.id)
        self._names.pop(c.name, None)

    def name_holder(self, name: str) -> str | None:
        """The container ID a `/name` (or link name) is taken by."""
        return self._names.get(name)

    def reserve_name(self, name: str | None, cid: str) -> str:
        """`/name` for a new or renamed container: checked, or generated when none is given
        (not yet bound: the caller binds it once its record is written)."""
        if not name:
            return "/" + naming.generate_name(lambda n: "/" + n in self._names, cid)
        if not naming.valid_name(name):
            raise BadRequest(naming.invalid_name_message(name.lstrip("/")))
        name = "/" + name.lstrip("/")
        holder = self._names.get(name)
        if holder:
            raise Conflict(f'Conflict. The container name "{name}" is already in use by container '
                           f'"{holder}". You have to remove (or rename) that container to be able '
                           "to reuse that name.")
        return name

    def bind_name(self, name: str, cid: str) -> None:
        self._names[name] = cid

    def unbind_name(self, name: str) -> None:
        self._names.pop(name, None)

    # ---- records ------------------------------------------------------------------------

    def save(self, c: Container) -> None:
        """Write the record of something that already happened. The kernel's state is the
        truth and stays so in memory: when the write fails (a full data root) the record is
        kept meanwhile under the exec root, another filesystem that the next daemon reads
        first, and retried until it lands (`_flush`)."""
        data = c.to_json()
        try:
            self._write(c.id, data)
        except OSError as exc:
            if c.id not in self._unsaved:
                log.warning("container record not written, will retry", extra={"ctx": {
                    "id": c.id, "error": os_error_text(exc, self.paths.data_root)}})
            try:
                write_json_atomic(self.paths.pending_record(c.id), data, sync="data")
            except OSError:
                log.exception("container record not kept either", extra={"ctx": {"id": c.id}})
            self._mark_unsaved(c.id)

    def save_or_fail(self, c: Container, data: dict[str, Any] | None = None) -> None:
        """Write a record a change asked for (`data`, the record with the change) before the
        change is applied: when the write fails the request fails with dockerd's text and
        nothing changes, in memory or on disk."""
        try:
            self._write(c.id, c.to_json() if data is None else data)
        except OSError as exc:
            raise self.disk_error(exc) from None

    def disk_error(self, exc: OSError) -> ApiError:
        """dockerd's `write <path>: no space left on device` (500), the path relative to the
        data root: a reply never shows where the data root is."""
        return ApiError(os_error_text(exc, self.paths.data_root), 500)

    def read_record(self, cid: str) -> Container:
        """A container's record: the one a full data root refused, kept under the exec root,
        when there is one (it is newer; it is written to the data root as soon as it can be),
        else the data root's."""
        pending = self.paths.pending_record(cid)
        try:
            c = Container.from_json(read_json(pending))
        except FileNotFoundError:
            return Container.from_json(read_json(self.paths.record(cid)))
        except Exception as exc:  # cut short by a crash: the data root's is the one
            log.warning("unreadable pending record ignored", extra={"ctx": {"id": cid,
                                                                           "error": str(exc)}})
            pending.unlink(missing_ok=True)
            return Container.from_json(read_json(self.paths.record(cid)))
        self._mark_unsaved(cid)
        return c

    def drop_stale_pending(self) -> None:
        """Records kept under the exec root for containers that are gone."""
        for kept in self.paths.pending_records.glob("*.json"):
            if kept.stem not in self._containers:
                kept.unlink()

    def close(self) -> None:
        """The daemon exits: a last try for the records a full disk refused (else the next
        daemon reads the copies kept under the exec root)."""
        if self._flusher is not None:
            self._flusher.cancel()
        self._write_unsaved()

    def _write(self, cid: str, data: dict[str, Any]) -> None:
        """The record in the data root; the copy kept under the exec root is then stale. Its
        data is fsynced, not its directory (tether.state: a power loss may give back the record
        before, whole, which recovery reconciles as after any crash)."""
        write_json_atomic(self.paths.record(cid), data, sync="data")
        if cid in self._unsaved:
            self._forget_unsaved(cid)

    def _mark_unsaved(self, cid: str) -> None:
        self._unsaved.add(cid)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def _forget_unsaved(self, cid: str) -> None:
        self._unsaved.discard(cid)
        self.paths.pending_record(cid).unlink(missing_ok=True)

    async def _flush(self) -> None:
        """Retry the records a full disk refused until all are written."""
        while self._unsaved:
            await asyncio.sleep(RECORD_RETRY_INTERVAL)
            self._write_unsaved()

    def _write_unsaved(self) -> None:
        """Write the records a full disk refused, stopping at the first that still fails."""
        for cid in list(self._unsaved):
            c = self._containers.get(cid)
            if c is None:
                self._forget_unsaved(cid)
                continue
            try:
                self._write(cid, c.to_json())
            except OSError:
                return
            log.info("container record written", extra={"ctx": {"id": cid}})
