"""Registry logins where docker keeps them: `~/.docker/config.json` (or `$DOCKER_CONFIG`), as
`{"auths": {"<server>": {"auth": base64("user:password")}}}`, so a login by either CLI serves
both. Every command that makes the daemon pull or push (`pull`, `push`, and `run`/`create` of a
missing image) sends the stored login for the image's registry in `X-Registry-Auth`, as docker
does: the daemon keeps none. Pure rules, but for the file they live in.
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from tether.cli.client import CliError

INDEX_SERVER = "https://index.docker.io/v1/"
DEFAULT_DOMAIN = "docker.io"


def config_path(environ: dict[str, str] | None = None) -> Path:
    """docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(directory) / "config.json"


def server_key(server: str | None) -> str:
    """The `auths` key docker files a server under: Docker Hub's legacy URL, else the host."""
    if not server:
        return INDEX_SERVER
    host = server.split("://", 1)[-1].split("/", 1)[0]
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return INDEX_SERVER
    return host


def registry_of(image: str) -> str:
    """The registry a (familiar) image name lives on, as docker's splitDockerDomain sees it."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DEFAULT_DOMAIN


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise CliError(f"loading config file {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def save_config(path: Path, config: dict[str, Any]) -> None:
    """Write atomically with mode 0600 (the file holds passwords), keeping unknown keys."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent="\t")
    os.replace(tmp, path)


def with_login(config: dict[str, Any], server: str, username: str, password: str) -> dict[str, Any]:
    """The config with a login for `server` added (docker's `auth` field)."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths = dict(config.get("auths") or {})
    auths[server_key(server)] = {"auth": auth}
    return {**config, "auths": auths}


def without_login(config: dict[str, Any], server: str) -> tuple[dict[str, Any], bool]:
    """The config without `server`'s login, and whether there was one."""
    auths = dict(config.get("auths") or {})
    found = auths.pop(server_key(server), None) is not None
    return {**config, "auths": auths}, found


def auth_for(config: dict[str, Any], registry: str) -> dict[str, str] | None:
    """The AuthConfig docker sends for an image on `registry`, from the stored login."""
    key = server_key(registry)
    for name, entry in (config.get("auths") or {}).items():
        if server_key(name) == key and isinstance(entry, dict) and entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return {"username": user, "password": password, "serveraddress": key}
    return None


def registry_auth_header(auth: dict[str, str] | None) -> dict[str, str]:
    """`X-Registry-Auth`: base64url of the AuthConfig JSON (nothing when anonymous)."""
    if auth is None:
        return {}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()}


def stored_auth_header(image: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The `X-Registry-Auth` header for pulling or pushing `image` (a familiar name) with the
    login stored for its registry; nothing when there is none."""
    return registry_auth_header(auth_for(load_config(config_path(environ)), registry_of(image)))
