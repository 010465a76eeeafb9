"""`tether build`: the context tarred here (with .dockerignore), sent to POST /build, and the
build's stream printed as docker's legacy builder client prints it."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from tether.cli.client import CliError
from tether.cli.common import command, current_app, json_lines

_TAR_MAGIC_OFFSET = 257
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def is_archive(head: bytes) -> bool:
    """What the docker CLI takes for a context archive on stdin (else it is a Dockerfile)."""
    return head.startswith(_COMPRESSED) or head[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar"


def parse_build_args(values: tuple[str, ...], environ: dict[str, str]) -> dict[str, str | None]:
    """`--build-arg k=v`, or `--build-arg k` taking k from the environment (None if unset)."""
    args: dict[str, str | None] = {}
    for value in values:
        key, sep, val = value.partition("=")
        args[key] = val if sep else environ.get(key)
    return args


def _context_from_dir(path: Path, dockerfile: str | None, out: BinaryIO) -> str:
    """Tar a context directory; returns the Dockerfile's name inside the tar."""
    from tether.rules.buildcontext import DEFAULT_DOCKERFILE, write_context_tar

    if not path.is_dir():
        raise CliError(f'unable to prepare context: path "{path}" not found')
    if dockerfile is None:
        name = DEFAULT_DOCKERFILE
        write_context_tar(path, out)
        return name
    file = Path(dockerfile)
    if not file.is_absolute():
        file = Path.cwd() / file
    if not file.is_file():
        raise CliError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                       f"lstat {file}: no such file or directory")
    try:
        name = str(file.resolve().relative_to(path.resolve()))
        write_context_tar(path, out, keep=(name,))
    except ValueError:  # outside the context: sent under a random name, as the docker CLI does
        name = f".dockerfile.{os.urandom(10).hex()}"
        write_context_tar(path, out, extra={name: file.read_bytes()}, hidden=True)
    return name


def context_from_stream(source: BinaryIO, out: BinaryIO) -> str:
    """`tether build -`: `source` is a context archive, copied through as it comes (it may be
    large: never held whole), or a Dockerfile alone, made a context of that one file; the name
    of the Dockerfile in the context."""
    import shutil
    import tempfile

    from tether.rules.buildcontext import DEFAULT_DOCKERFILE, write_context_tar

    head = source.read(512)
    if is_archive(head):
        out.write(head)
        shutil.copyfileobj(source, out)
        return DEFAULT_DOCKERFILE
    with tempfile.TemporaryDirectory() as empty:
        write_context_tar(Path(empty), out, extra={DEFAULT_DOCKERFILE: head + source.read()})
    return DEFAULT_DOCKERFILE


@command("build", usage="[OPTIONS] PATH | URL | -", min_args=1)
@click.option("-t", "--tag", "tags", multiple=True, help="NAME[:TAG] for the result (repeatable)")
@click.option("-f", "--file", "dockerfile", default=None,
              help="Dockerfile to use (default: PATH/Dockerfile)")
@click.option("--build-arg", "build_args", multiple=True,
              help="KEY=VALUE for an ARG; a bare KEY copies this shell's value")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label for the image")
@click.option("--no-cache", is_flag=True, help="Run every step again instead of reusing cached ones")
@click.option("--target", default=None, help="Stop after the stage of this name")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID")
@click.option("--rm/--no-rm", "rm", default=True, help="Delete the step containers if the build succeeds")
@click.option("--force-rm", is_flag=True, help="Delete the step containers even if it fails")
@click.option("--iidfile", default=None, help="File to write the image ID to")
@click.argument("context_path", required=False)
def build(tags: tuple[str, ...], dockerfile: str | None, build_args: tuple[str, ...],
          labels: tuple[str, ...], no_cache: bool, target: str | None, quiet: bool, rm: bool,
          force_rm: bool, iidfile: str | None, context_path: str) -> None:
    """Turn a Dockerfile and its context into an image.

    tether runs the classic builder (as DOCKER_BUILDKIT=0); an instruction it cannot carry out,
    such as ADD from a URL, is refused with an error, never skipped.
    """
    import tempfile  # here, not at the top: every tether command imports this module

    from tether.rules.units import human_size

    client = current_app().client
    with tempfile.TemporaryFile() as tar:
        if context_path == "-":
            name = context_from_stream(sys.stdin.buffer, tar)
        else:
            name = _context_from_dir(Path(context_path), dockerfile, tar)
        size = tar.tell()
        tar.seek(0)
        if not quiet:
            sys.stdout.write(f"Sending build context to Docker daemon  {human_size(size, 4)}\r\r\n")
            sys.stdout.flush()
        query: dict[str, Any] = {
            "t": list(tags) or None, "dockerfile": name, "version": "1",
            "buildargs": json.dumps(parse_build_args(build_args, dict(os.environ))) if build_args else None,
            "labels": json.dumps(dict(l.partition("=")[::2] for l in labels)) if labels else None,
            "nocache": 1 if no_cache else None, "target": target, "q": 1 if quiet else None,
            "rm": None if rm else 0, "forcerm": 1 if force_rm else None}
        resp = client.upload("/build", query, tar, "application/x-tar")
        image_id = _print_stream(resp.chunks())
    if iidfile and image_id:
        Path(iidfile).write_text(image_id)


def _print_stream(chunks: Any) -> str:
    """Print `stream` text as it comes; an `errorDetail` ends the build with its code. Returns
    the image ID from the `aux` message."""
    image_id = ""
    for message in json_lines(chunks):
        if message.get("errorDetail") or message.get("error"):
            detail = message.get("errorDetail") or {}
            sys.stdout.flush()
            raise CliError(detail.get("message") or message.get("error", ""), detail.get("code") or 1)
        if "aux" in message:
            image_id = (message["aux"] or {}).get("ID", image_id)
        elif "stream" in message:
            sys.stdout.write(message["stream"])
            sys.stdout.flush()
        elif "status" in message and not (message.get("progressDetail") or {}).get("current"):
            # a FROM image being pulled: docker's plain-text progress, without the bars
            ident = f"{message['id']}: " if message.get("id") else ""
            sys.stdout.write(f"{ident}{message['status']}\n")
    return image_id


def register(group: click.Group) -> None:
    group.add_command(build)
