"""`tether cp`: copy files between a container and the local filesystem, as `docker cp`.

The daemon only archives a container path (GET) or unpacks an archive into a container
directory (PUT); stat-ing both sides and renaming the archive's top entry is the client's job,
and is what gives `cp` its `cp -a` behaviour. The rules live in `cp_rules` (pure) and the host
side in `cp_archive`; both are imported only when `cp` runs, keeping the CLI's start fast.
"""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click

from tether.cli.client import CliError, Client
from tether.cli.common import DockerCommand, current_app, err

USAGE = ("[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
         "\ttether cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
_FLAGS = {"a": "archive", "L": "follow-link", "q": "quiet"}
_FLAG_HELP = {"archive": "-a, --archive", "follow-link": "-L, --follow-link", "quiet": "-q, --quiet"}
_SHORT_ASSIGN = re.compile(r"^-([aLq]*)([aLq])=(.*)$", re.S)
_LONG_ASSIGN = re.compile(r"^--(archive|follow-link|quiet)=(.*)$", re.S)
_STAT_HEADER = "x-docker-container-path-stat"


class CopyCommand(DockerCommand):
    """`cp`'s flags are pflag booleans, so `-q=false` and `--quiet=false` are valid: an explicit
    false matters for -q, whose default depends on stdout being a terminal. Such assignments
    are taken out before click parses the rest and kept in `ctx.meta["cp.flags"]`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from tether.cli.cp_rules import go_bool

        explicit: dict[str, bool] = {}
        kept: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                kept += args[index:]
                break
            short, long_ = _SHORT_ASSIGN.match(arg), _LONG_ASSIGN.match(arg)
            if not short and not long_:
                kept.append(arg)
                continue
            if short:
                if short.group(1):
                    kept.append("-" + short.group(1))
                name, text = _FLAGS[short.group(2)], short.group(3)
            else:
                name, text = long_.group(1), long_.group(2)  # type: ignore[union-attr]
            value = go_bool(text)
            if value is None:
                raise click.UsageError(f'invalid argument "{text}" for "{_FLAG_HELP[name]}" flag: '
                                       f'strconv.ParseBool: parsing "{text}": invalid syntax', ctx)
            explicit[name] = value
        ctx.meta["cp.flags"] = explicit
        return super().parse_args(ctx, kept)


@click.command("cp", cls=CopyCommand, usage=USAGE)
@click.option("-a", "--archive", is_flag=True,
              help="Into a container: keep each file's uid/gid instead of root's")
@click.option("-L", "--follow-link", is_flag=True, help="If SRC_PATH is a symlink, copy what it points to")
@click.option("-q", "--quiet", is_flag=True, default=None,
              help="No 'Successfully copied' line (the default when stdout is not a terminal)")
@click.argument("args", nargs=-1, required=False)
def cp(archive: bool, follow_link: bool, quiet: bool | None, args: tuple[str, ...]) -> None:
    """Copy files or directories into or out of a container.

    A SRC_PATH of '-' unpacks a tar archive read from stdin into the container's directory
    DEST_PATH; a DEST_PATH of '-' writes the container's SRC_PATH to stdout as a tar archive.
    """
    from tether.cli.cp_rules import CopyError, copy_direction, errno_text

    ctx = click.get_current_context()
    if len(args) != 2:
        path = ctx.command_path
        raise CliError(f"tether: '{path}' requires 2 arguments\n\nUsage:  {path} {USAGE}\n\n"
                       f"Run '{path} --help' for more information")
    flags = {"archive": archive, "follow-link": follow_link, "quiet": quiet,
             **ctx.meta.get("cp.flags", {})}
    silent = not sys.stdout.isatty() if flags["quiet"] is None else bool(flags["quiet"])
    try:
        container, container_path, local_path, from_container = copy_direction(*args)
        client = current_app().client
        if from_container:
            copy_from_container(client, container, container_path, local_path,
                                bool(flags["follow-link"]), silent)
        else:
            copy_to_container(client, container, container_path, local_path,
                              bool(flags["follow-link"]), bool(flags["archive"]), silent)
    except CopyError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise CliError(where + errno_text(exc.errno or 0)) from None


def _decode_stat(header: str) -> dict[str, Any]:
    """The container path's stat, from the header the archive routes send."""
    import base64

    stat = json.loads(base64.b64decode(header, validate=True) or b"null")
    if not isinstance(stat, dict) or not isinstance(stat.get("mode", 0), int):
        raise ValueError("not a path stat")
    return stat


def stat_container_path(client: Client, container: str, path: str) -> dict[str, Any] | None:
    """HEAD .../archive; any failure is None, as the docker CLI carries on without the stat
    (the archive request that follows reports what is wrong)."""
    try:
        resp = client.request("HEAD", f"/containers/{container}/archive", {"path": path})
        return _decode_stat(resp.headers.get(_STAT_HEADER, ""))
    except (CliError, ValueError):
        return None


def copy_from_container(client: Client, container: str, src_path: str, dst_path: str,
                        follow_link: bool, quiet: bool) -> None:
    from tether.cli import cp_archive
    from tether.cli.cp_rules import (MODE_DIR, MODE_SYMLINK, CopyError, CopyInfo, copy_summary,
                                     get_rebase_name, link_target_path, prepare_archive_copy,
                                     resolve_local_path, split_path_dir_entry)

    if dst_path != "-":
        dst_path = resolve_local_path(dst_path, os.getcwd())
    cp_archive.validate_output_path(dst_path)
    rebase = ""
    if follow_link:
        stat = stat_container_path(client, container, src_path)
        if stat is not None and stat.get("mode", 0) & MODE_SYMLINK:
            target = link_target_path(src_path, stat.get("linkTarget", ""))
            src_path, rebase = get_rebase_name(src_path, target)
    resp = client.request("GET", f"/containers/{container}/archive", {"path": src_path},
                          own_connection=True)
    try:
        try:
            stat = _decode_stat(resp.headers.get(_STAT_HEADER, ""))
        except ValueError as exc:
            raise CopyError(f"unable to decode container path stat header: {exc}") from None
        if dst_path == "-":
            for chunk in resp.chunks():
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        src = CopyInfo(src_path, True, bool(stat.get("mode", 0) & MODE_DIR), rebase)
        body = cp_archive.CountingReader(resp.chunks())
        failure: Exception | None = None
        try:
            dst = cp_archive.copy_info_destination_path(dst_path)
            dst_dir, rename = prepare_archive_copy(src, dst)
            renames = [(split_path_dir_entry(src_path)[1], rebase)] if rebase else []
            copied = cp_archive.untar(body, dst_dir, renames + ([rename] if rename else []))
        except (CopyError, OSError) as exc:
            failure, copied = exc, body.count
        if not quiet:
            err(copy_summary(copied, dst_path))
        if failure is not None:
            raise failure
    finally:
        resp.reader.sock.close()


def copy_to_container(client: Client, container: str, dst_path: str, src_path: str,
                      follow_link: bool, archive: bool, quiet: bool) -> None:
    from tether.cli import cp_archive
    from tether.cli.cp_rules import (MODE_DIR, MODE_SYMLINK, CopyError, CopyInfo, copy_summary,
                                     link_target_path, prepare_archive_copy, resolve_local_path,
                                     stat_mode_error)

    if src_path != "-":
        src_path = resolve_local_path(src_path, os.getcwd())
    dst = CopyInfo(dst_path)
    stat = stat_container_path(client, container, dst_path)
    if stat is not None and stat.get("mode", 0) & MODE_SYMLINK:
        dst = CopyInfo(link_target_path(dst_path, stat.get("linkTarget", "")))
        stat = stat_container_path(client, container, dst.path)
    if stat is not None:
        problem = stat_mode_error(stat.get("mode", 0))
        if problem:
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory or a '
                            f"regular file: {problem}")
        dst = CopyInfo(dst.path, True, bool(stat.get("mode", 0) & MODE_DIR))
    if src_path == "-":
        if not dst.is_dir:
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory')
        target, content = dst.path, cp_archive.CountingReader(())
        stream: Any = sys.stdin.buffer
    else:
        src = cp_archive.copy_info_source_path(src_path, follow_link)
        target, rename = prepare_archive_copy(src, dst)
        content = cp_archive.CountingReader(cp_archive.tar_resource(src, [rename] if rename else []))
        stream = content
    query = {"path": target, "noOverwriteDirNonDir": "true",
             "copyUIDGID": "true" if archive else None}
    failure: CliError | None = None
    try:
        resp = client.upload(f"/containers/{container}/archive", query, stream, "text/plain",
                             method="PUT")
        resp.read()
        resp.reader.sock.close()
    except CliError as exc:
        failure = exc
    if not quiet:
        err(copy_summary(content.count, f"{container}:{dst.path}"))
    if failure is not None:
        raise failure


def register(group: click.Group) -> None:
    group.add_command(cp)
