"""Registry commands: pull, push, login, logout.

Credentials live where docker keeps them (`tether.cli.credentials`), so a login by either CLI
serves both. The daemon keeps none: each pull or push sends them in `X-Registry-Auth`. Progress is
shown by `tether.cli.common.show_progress`.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from tether.cli.client import CliError, Client
from tether.cli.common import command, current_app, json_lines, out, plain_lines, show_progress
from tether.cli.credentials import (config_path, load_config, save_config, server_key, stored_auth_header,
                                    with_login, without_login)

def _stream(client: Client, path: str, query: dict[str, Any], image: str, quiet: bool) -> None:
    """POST a pull or push with the stored login for the image's registry; show its progress
    (or, quiet, only fail on its error)."""
    resp = client.request("POST", path, query, headers=stored_auth_header(image), own_connection=True)
    messages = json_lines(resp.chunks())
    if quiet:
        for _ in plain_lines(messages):
            pass
    else:
        show_progress(messages)


def _parse(name: str) -> Any:
    from tether.rules.errors import BadRequest
    from tether.rules import refs

    try:
        return refs.parse_normalized(name)
    except BadRequest as exc:
        raise CliError(exc.message) from exc


# --- commands --------------------------------------------------------------------------------

@command("pull", usage="[OPTIONS] NAME[:TAG|@DIGEST]", min_args=1)
@click.option("-a", "--all-tags", is_flag=True, help="Pull every tag of the repository")
@click.option("-q", "--quiet", is_flag=True, help="Print only the full image name at the end")
@click.argument("name", required=False)
def pull(all_tags: bool, quiet: bool, name: str) -> None:
    """Fetch an image from its registry into the store."""
    ref = _parse(name)
    if all_tags and (ref.tag or ref.digest):
        raise CliError("tag can't be used with --all-tags/-a")
    if not all_tags:
        ref = ref.tag_name_only()
    query = {"fromImage": ref.familiar_name, "tag": ref.digest or ref.tag}
    _stream(current_app().client, "/images/create", query, ref.familiar_name, quiet)
    out(ref.full())


@command("push", usage="[OPTIONS] NAME[:TAG]", min_args=1)
@click.option("-a", "--all-tags", is_flag=True, help="Push every local tag of the repository")
@click.option("-q", "--quiet", is_flag=True, help="No progress, only the name pushed")
@click.argument("name", required=False)
def push(all_tags: bool, quiet: bool, name: str) -> None:
    """Send an image from the store to its registry."""
    ref = _parse(name)
    if all_tags and ref.tag:
        raise CliError("tag can't be used with --all-tags/-a")
    if not all_tags:
        ref = ref.tag_name_only()
    _stream(current_app().client, f"/images/{ref.familiar_name}/push", {"tag": ref.tag}, ref.familiar_name,
            quiet)
    if quiet:
        out(str(ref))


@command("login", usage="[OPTIONS] [SERVER]")
@click.option("-u", "--username", default=None, help="Account name")
@click.option("-p", "--password", default=None,
              help="Secret (visible in ps and history: prefer --password-stdin)")
@click.option("--password-stdin", is_flag=True, help="Read the secret from stdin")
@click.argument("server", required=False)
def login(username: str | None, password: str | None, password_stdin: bool, server: str | None) -> None:
    """Check a registry login and store it (Docker Hub by default)."""
    if password_stdin:
        if password:
            raise CliError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise CliError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        username = click.prompt("Username", err=False).strip()
    if not password:
        password = click.prompt("Password", hide_input=True, err=False)
    if not username or not password:
        raise CliError("Error: Non-null Username Required" if not username else "Error: Password Required")
    key = server_key(server)
    reply = current_app().client.json("POST", "/auth", body={"username": username, "password": password,
                                                      "serveraddress": key})
    path = config_path()
    save_config(path, with_login(load_config(path), key, username, password))
    out(reply.get("Status") or "Login Succeeded")


@command("logout", usage="[SERVER]")
@click.argument("server", required=False)
def logout(server: str | None) -> None:
    """Forget a registry's stored login (Docker Hub by default)."""
    key = server_key(server)
    path = config_path()
    config, found = without_login(load_config(path), key)
    if not found:
        out(f"Not logged in to {key}")
        return
    out(f"Removing login credentials for {key}")
    save_config(path, config)


def register(group: click.Group) -> None:
    for cmd in (pull, push, login, logout):
        group.add_command(cmd)
