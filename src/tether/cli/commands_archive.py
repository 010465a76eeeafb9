"""Archive commands: save, load, export, import: images and filesystems as tar files.

Tars are binary: `save` and `export` refuse to write one to a terminal, as docker does, and
`-o` writes to a temporary file beside the target that is renamed into place only once the
whole archive has arrived, so a failed save never leaves half a file under the wanted name; an
existing target that is not a regular file (`/dev/stdout`, a fifo) is written through instead,
never replaced.
"""
from __future__ import annotations

import os
import stat
import sys
import tempfile
from typing import Any, BinaryIO, Iterable, Iterator

import click

from tether.cli.client import CliError, Response
from tether.cli.common import command, current_app, json_lines, show_progress

REFUSE_TERMINAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def write_output(resp: Response, output: str | None) -> None:
    """The response body to `output` (atomically) or to stdout (never a terminal)."""
    if not output:
        if sys.stdout.isatty():
            raise CliError(REFUSE_TERMINAL)
        sys.stdout.flush()
        for chunk in resp.chunks():
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    if os.path.exists(output) and not stat.S_ISREG(os.stat(output).st_mode):
        with open(output, "wb") as target:  # a device or pipe (/dev/stdout): write through it
            for chunk in resp.chunks():
                target.write(chunk)
        return
    directory = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.", dir=directory)
    except OSError as exc:
        raise CliError(f"failed to save image: {(exc.strerror or str(exc)).lower()}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in resp.chunks():
                fh.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise


def _open_input(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CliError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from exc


def _streams_printed(messages: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Print the `stream` lines (load's "Loaded image: ...") as they come, pass on the rest."""
    for msg in messages:
        if "stream" in msg:
            sys.stdout.write(msg["stream"])
            sys.stdout.flush()
        else:
            yield msg


@command("save", usage="[OPTIONS] IMAGE [IMAGE...]", min_args=1)
@click.option("-o", "--output", default=None,
              help="File to write the archive to (default: stdout, never a terminal)")
@click.argument("images", nargs=-1, required=False)
def save(output: str | None, images: tuple[str, ...]) -> None:
    """Write images and their tags as one tar archive."""
    if not output and sys.stdout.isatty():
        raise CliError(REFUSE_TERMINAL)
    resp = current_app().client.request("GET", "/images/get", {"names": list(images)}, own_connection=True)
    write_output(resp, output)


@command("load", usage="[OPTIONS]")
@click.option("-i", "--input", "input_", default=None, help="Archive file to read (default: stdin)")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, only the names loaded")
def load(input_: str | None, quiet: bool) -> None:
    """Add the images of a `save` archive to the store."""
    if input_ is None and sys.stdin.isatty():
        raise CliError("requested load from stdin, but stdin is empty")
    quiet = quiet or not sys.stdout.isatty()
    source = _open_input(input_) if input_ else sys.stdin.buffer
    with source:
        resp = current_app().client.upload("/images/load", {"quiet": 1 if quiet else 0}, source, "application/x-tar")
        show_progress(_streams_printed(json_lines(resp.chunks())))


@command("export", usage="[OPTIONS] CONTAINER", min_args=1)
@click.option("-o", "--output", default=None,
              help="File to write the archive to (default: stdout, never a terminal)")
@click.argument("container", required=False)
def export(output: str | None, container: str) -> None:
    """Write a container's files as one flat tar archive."""
    if not output and sys.stdout.isatty():
        raise CliError(REFUSE_TERMINAL)
    resp = current_app().client.request("GET", f"/containers/{container}/export", own_connection=True)
    write_output(resp, output)


@command("import", usage="[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", min_args=1)
@click.option("-c", "--change", multiple=True,
              help="Dockerfile instruction for the image config, e.g. 'CMD [\"sh\"]'")
@click.option("-m", "--message", default=None, help="Comment for the image's history entry")
@click.argument("source", required=False)
@click.argument("reference", required=False)
def import_(change: tuple[str, ...], message: str | None, source: str, reference: str | None) -> None:
    """Make a one-layer image from a tar of a root filesystem."""
    client = current_app().client
    query: dict[str, Any] = {"fromSrc": "-", "repo": reference, "message": message,
                             "changes": list(change) or None}
    if source.startswith(("http://", "https://")):
        query["fromSrc"] = source
        resp = client.request("POST", "/images/create", query, own_connection=True)
    elif source == "-":
        resp = client.upload("/images/create", query, sys.stdin.buffer, "application/x-tar")
    else:
        with _open_input(source) as fh:
            resp = client.upload("/images/create", query, fh, "application/x-tar")
    show_progress(json_lines(resp.chunks()))


def register(group: click.Group) -> None:
    """Top-level commands, and their `tether image ...` forms (registered after the image
    commands, whose group this extends)."""
    for cmd in (save, load, export, import_):
        group.add_command(cmd)
    image_group = group.commands["image"]
    assert isinstance(image_group, click.Group)
    for cmd in (save, load, import_):
        image_group.add_command(cmd)
