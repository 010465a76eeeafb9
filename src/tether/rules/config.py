"""Pure rules for turning a create request and an image into a container's configuration.

Everything here follows dockerd: the image's config fills what the request left empty
(daemon/commit.go `merge`), the process environment is built the way
`CreateDaemonEnvironment` builds it, and signals and restart policies are parsed with Docker's
texts, so that errors read the same whichever client sent them.
"""
from __future__ import annotations

import signal as _signal
from dataclasses import dataclass
from typing import Any

from tether.rules import portspec
from tether.rules import health
from tether.rules.errors import BadRequest

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def env_key(entry: str) -> str:
    """The variable name of a `KEY=value` (or bare `KEY`) entry."""
    return entry.split("=", 1)[0]


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Apply `overrides` on `base` as Docker does: replace a key in place, append a new key, and
    delete the key for a bare `KEY` without `=`."""
    result = list(base)
    for entry in overrides:
        key = env_key(entry)
        index = next((i for i, e in enumerate(result) if env_key(e) == key), None)
        if "=" not in entry:
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(entry)
        else:
            result[index] = entry
    return result


def merge_image_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Fill the container Config from the image's config where the request left it empty."""
    merged = dict(user)
    user_env = list(user.get("Env") or [])
    keys = {env_key(e) for e in user_env}
    merged["Env"] = user_env + [e for e in image.get("Env") or [] if env_key(e) not in keys]
    if not user.get("Entrypoint"):
        merged["Entrypoint"] = image.get("Entrypoint")
        if not user.get("Cmd"):
            merged["Cmd"] = image.get("Cmd")
    for key in ("WorkingDir", "User", "StopSignal"):
        if not user.get(key) and image.get(key):
            merged[key] = image[key]
    ports = dict(image.get("ExposedPorts") or {})
    ports.update(user.get("ExposedPorts") or {})
    merged["ExposedPorts"] = ports or None
    volumes = dict(image.get("Volumes") or {})
    volumes.update(user.get("Volumes") or {})
    merged["Volumes"] = volumes or None
    labels = dict(image.get("Labels") or {})
    labels.update(user.get("Labels") or {})
    merged["Labels"] = labels
    healthcheck = health.merge(user.get("Healthcheck"), image.get("Healthcheck"))
    if healthcheck is not None:
        merged["Healthcheck"] = healthcheck
    return merged


def validate_create(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """The cheap checks dockerd makes of a (type-checked) create body before it looks at the
    image (daemon/container.go verifyContainerSettings), in its order and with its texts."""
    working_dir = config.get("WorkingDir") or ""
    if working_dir and not working_dir.startswith("/"):
        raise BadRequest(f"the working directory '{working_dir}' is invalid, it needs to be an "
                         "absolute path")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])
    for entry in config.get("Env") or []:
        if not env_key(entry):
            raise BadRequest(f"invalid environment variable: {entry}")
    health.validate(config.get("Healthcheck"))
    for entry in host_config.get("ExtraHosts") or []:
        name, sep, address = entry.partition(":")
        if not sep or not name:
            raise BadRequest(f"bad format for add-host: {portspec.go_quote(entry)}")
        if address != "host-gateway" and portspec.go_parse_ip(address.strip()) is None:
            raise BadRequest(f"invalid IP address in add-host: {portspec.go_quote(address)}")
    try:
        portspec.validate_bindings(host_config.get("PortBindings"))
    except portspec.PortSpecError as exc:
        raise BadRequest(str(exc)) from None


def command_line(config: dict[str, Any]) -> tuple[str, list[str]]:
    """`Path` and `Args` of the container's process: entrypoint then cmd."""
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        raise BadRequest("No command specified")
    return argv[0], argv[1:]


def process_env(env: list[str] | None, hostname: str, tty: bool,
                link_env: list[str] = ()) -> list[str]:
    """The environment of the container's first process (and the base of every exec): the
    daemon's variables under Config.Env."""
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if tty:
        base.append("TERM=xterm")
    return merge_env(base + list(link_env), list(env or []))


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    """A signal given as a number, `KILL` or `SIGKILL` (any case); Docker's error text otherwise."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < _signal.NSIG:
            return number
        raise BadRequest(f"Invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise BadRequest(f"Invalid signal: {value}") from None


@dataclass(frozen=True)
class RestartPolicy:
    """`no`, `always`, `unless-stopped` or `on-failure` with an optional maximum retry count."""

    name: str = "no"
    maximum: int = 0

    @classmethod
    def from_api(cls, value: dict[str, Any] | None) -> RestartPolicy:
        """Validate HostConfig.RestartPolicy with Docker 20.10's messages."""
        value = value or {}
        name = value.get("Name") or "no"
        maximum = int(value.get("MaximumRetryCount") or 0)
        if name not in ("no", "always", "unless-stopped", "on-failure"):
            raise BadRequest(f"invalid restart policy '{name}'")
        if maximum and name != "on-failure":
            raise BadRequest(f"maximum retry count cannot be used with restart policy '{name}'")
        if maximum < 0:
            raise BadRequest("maximum retry count cannot be negative")
        return cls(name, maximum)

    def should_restart(self, exit_code: int, restart_count: int, stopped_by_user: bool) -> bool:
        """Whether a container that just exited is started again (daemon/restartmanager)."""
        if stopped_by_user or self.name == "no":
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.maximum == 0 or restart_count < self.maximum)
        return True
