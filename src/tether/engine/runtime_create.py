"""Handing a container's prepared bundle to the runtime: runc create under conmon with the
container's log settings, dockerd's status for what runc refuses, then the limits runc 1.1 reads
from config.json without writing them (limits.write_runc_ignored)."""
from __future__ import annotations

from pathlib import Path

from tether.engine import limits
from tether.engine.records import Container
from tether.rules import log_options
from tether.rules.errors import ApiError, BadRequest, runtime_create_error, runtime_create_status
from tether.runtime import cgroups
from tether.runtime.conmon import Runtime


async def create(runtime: Runtime, c: Container, bundle: Path, log_path: Path) -> None:
    """`runc create` of the bundle; the process waits for `runtime.start`."""
    logging_ = c.host_config.log_config
    try:
        await runtime.create(c.id, bundle, tty=c.tty, stdin=c.config.open_stdin,
                             # dockerd closes stdin at a client's EOF only without a tty: a
                             # detach must leave it open
                             stdin_once=c.config.stdin_once and not c.tty,
                             log_path=None if log_options.reads_nothing(logging_.type)
                             else log_path,
                             log_size_max=log_options.writer_size_max(logging_.type,
                                                                      logging_.config))
    except RuntimeError as exc:
        text = runtime_create_error(str(exc))
        raise ApiError(text, runtime_create_status(text)) from exc
    try:
        limits.write_runc_ignored(lambda: runtime.cgroup_paths(c.id), c.host_config.resources)
    except cgroups.UpdateError as exc:
        raise BadRequest(str(exc)) from None
