"""Image commands: images, tag, rmi, and tether's `image bootstrap busybox` (import, save and load
are in commands_archive.py)."""
from __future__ import annotations

import sys
import time
from typing import Any

import click

from tether.cli import formatting
from tether.cli.client import CliError
from tether.cli.common import (TEMPLATE_HELP, DockerGroup, command, current_app, filters_query, json_lines,
                               out, render_format, show_progress)
from tether.cli.runopts import split_ref

_IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
                  "CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST"}


def image_contexts(items: list[dict[str, Any]], trunc: bool, now: float) -> list[dict[str, Any]]:
    """The fields `images --format` templates see (docker's ImageContext)."""
    rows = formatting.image_rows(items, trunc, now)
    return [{"Repository": r[0], "Tag": r[1], "ID": r[2], "CreatedSince": r[3], "Size": r[4],
             "CreatedAt": "", "Digest": "<none>"} for r in rows]


@command("images", usage="[OPTIONS] [REPOSITORY[:TAG]]")
@click.option("-a", "--all", "all_", is_flag=True, help="Include untagged intermediate (build) images")
@click.option("-q", "--quiet", is_flag=True, help="Print image IDs only")
@click.option("--no-trunc", is_flag=True, help="Show image IDs in full")
@click.option("-f", "--filter", "filters", multiple=True, help="KEY=VALUE to select by, e.g. dangling=true")
@click.option("--format", "fmt", default=None, help=TEMPLATE_HELP)
@click.argument("reference", required=False)
def images(all_: bool, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None,
           reference: str | None) -> None:
    """Show the images in the store, with their tags and sizes."""
    filter_values = filters + ((f"reference={reference}",) if reference else ())
    query = {"all": 1 if all_ else None, "filters": filters_query(filter_values)}
    items = current_app().client.json("GET", "/images/json", query)
    trunc = not no_trunc
    if quiet:
        seen: list[str] = []
        for item in items:
            ident = formatting.short_id(item["Id"]) if trunc else item["Id"]
            if ident not in seen:
                seen.append(ident)
        sys.stdout.write("".join(i + "\n" for i in seen))
        return
    now = time.time()
    if fmt and fmt != "table":
        sys.stdout.write(render_format(fmt, image_contexts(items, trunc, now), _IMAGE_HEADERS))
        return
    sys.stdout.write(formatting.images_table(items, trunc, now))


@command("tag", usage="SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", min_args=2)
@click.argument("source", required=False)
@click.argument("target", required=False)
def tag(source: str, target: str | None) -> None:
    """Add the name TARGET_IMAGE to the image SOURCE_IMAGE names."""
    if not target:
        raise CliError("tether: 'tether tag' requires 2 arguments")
    repo, tag_name = split_ref(target)
    current_app().client.request("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag_name})


@command("rmi", usage="[OPTIONS] IMAGE [IMAGE...]", min_args=1)
@click.option("-f", "--force", is_flag=True,
              help="Go ahead despite other tags or stopped containers using it")
@click.option("--no-prune", is_flag=True, help="Keep the parent images that are left untagged")
@click.argument("names", nargs=-1, required=False)
def rmi(force: bool, no_prune: bool, names: tuple[str, ...]) -> None:
    """Untag images; delete those left with no name."""
    client = current_app().client
    errors = []
    query = {"force": 1 if force else None, "noprune": 1 if no_prune else None}
    for name in names:
        try:
            report = client.json("DELETE", f"/images/{name}", query)
        except CliError as exc:
            errors.append(exc.message)
            continue
        for entry in report or []:
            for key in ("Untagged", "Deleted"):
                if key in entry:
                    out(f"{key}: {entry[key]}")
    if errors:
        raise CliError("\n".join(errors))


@click.group("image", cls=DockerGroup)
def image() -> None:
    """List, tag, remove, save, load, import and bootstrap images."""


@image.group("bootstrap", cls=DockerGroup)
def bootstrap() -> None:
    """Make base images without a registry."""


@bootstrap.command("busybox", usage="")
def bootstrap_busybox() -> None:
    """Make busybox:latest from the host's busybox-static."""
    reply = current_app().client.json("POST", "/tether/bootstrap/busybox")
    out(reply["Id"])


@bootstrap.command("debian", usage="[OPTIONS]")
@click.option("--suite", default="bookworm", show_default=True, help="Debian release to install")
@click.option("--include", "packages", multiple=True,
              help="Extra packages to install (comma-separated or repeated)")
@click.option("-t", "--tag", default=None, help="Name and tag of the image (default debian:SUITE)")
def bootstrap_debian(suite: str, packages: tuple[str, ...], tag: str | None) -> None:
    """Make a Debian image with the host's mmdebstrap.

    mmdebstrap runs here, in the CLI, not in the daemon: packages come from the host's network at
    bootstrap time, while the daemon and its containers may have no route out at all. Its tar goes
    to a temporary file first, so that a failed run never leaves a half-made image behind.
    """
    import subprocess
    import tempfile

    from tether.rules.config import DEFAULT_PATH

    include = ",".join(p for group in packages for p in group.split(",") if p)
    argv = ["mmdebstrap", "--quiet", "--variant=minbase", *([f"--include={include}"] if include else []),
            suite, "-"]
    query = {"fromSrc": "-", "repo": tag or f"debian:{suite}",
             "changes": [f"ENV PATH={DEFAULT_PATH}", 'CMD ["bash"]']}
    with tempfile.TemporaryFile(dir="/var/tmp") as tar:
        try:
            code = subprocess.run(argv, stdout=tar).returncode
        except FileNotFoundError as exc:
            raise CliError("mmdebstrap is not installed (apt-get install mmdebstrap)") from exc
        if code:
            raise CliError(f"mmdebstrap failed with exit code {code}")
        tar.seek(0)
        resp = current_app().client.upload("/images/create", query, tar, "application/x-tar")
        show_progress(json_lines(resp.chunks()))  # an import's reply, shown as `import` shows it


for _cmd, _alias in ((images, "ls"), (tag, "tag"), (rmi, "rm")):
    image.add_command(_cmd, _alias)


def register(group: click.Group) -> None:
    for cmd in (images, tag, rmi, image):
        group.add_command(cmd)
