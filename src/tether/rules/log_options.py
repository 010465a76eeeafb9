"""HostConfig.LogConfig as dockerd 20.10 settles and checks it, and what tether applies of it.

dockerd fills an empty Type with the daemon's `--log-driver` (and, for that driver, the missing
options with its `--log-opt`s), refuses an unknown driver or option at create (400), and refuses
a bad value when the driver starts, i.e. at the container's start (500, "failed to initialize
logging driver: ..."). tether's drivers are json-file (the default), local and none; each keeps
its log in conmon's k8s-file format. `max-size` with `max-file` 1 is conmon's own limit (it
starts the file anew when the next line would pass it, json-file's rotation with one file); with
more files the daemon rotates (engine/logrotation.py). `local` defaults to 20 MB and 5 files, as
dockerd's. Options tether cannot apply (compression, labels and env attributes, tags) are refused
at create with a text that names them instead of being dropped.
"""
from __future__ import annotations

import re
from typing import Any

from tether.rules.errors import ApiError, BadRequest

DRIVERS = ("json-file", "local", "none")
# the options each driver knows in dockerd (json-file's and local's ValidateLogOpt)
_KNOWN = {"json-file": ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                        "env-regex", "tag"),
          "local": ("max-file", "max-size", "compress")}
_APPLIED = ("max-size", "max-file", "mode")
# the local driver's defaults (daemon/logger/local): 20 MB files, five of them
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[bB]?$")
_DECIMAL = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4, "p": 1000 ** 5}


def settle(log_config: dict[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    """dockerd's mergeAndVerifyLogConfig: the driver and options a container is created with."""
    given = dict(log_config or {})
    config = dict(given.get("Config") or {})
    kind = given.get("Type") or default.get("Type") or "json-file"
    if kind == default.get("Type"):
        for key, value in (default.get("Config") or {}).items():
            config.setdefault(key, value)
    validate(kind, config)
    return {"Type": kind, "Config": config}


def validate(kind: str, config: dict[str, str]) -> None:
    """Create-time checks with dockerd's texts (400); options tether cannot apply are named."""
    if kind == "none":
        return  # dockerd takes any option for none and uses none
    mode = config.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise BadRequest(f"logger: logging mode not supported: {mode}")
    if kind not in DRIVERS:
        raise BadRequest(f'error looking up logging plugin {kind}: plugin "{kind}" not found')
    for key in config:
        if key == "mode":
            continue
        if key not in _KNOWN[kind]:
            raise BadRequest(f"unknown log opt '{key}' for json-file log driver"
                             if kind == "json-file" else
                             f"unknown log opt '{key}' for log driver {kind}")
        if key not in _APPLIED:
            raise BadRequest(f"log opt '{key}' of the {kind} log driver is not supported by "
                             "tether")
    if mode == "non-blocking":
        raise BadRequest("logger: logging mode non-blocking is not supported by tether")


NOT_READABLE = "configured logging driver does not support reading"


def reads_nothing(host_config: dict[str, Any]) -> bool:
    """`--log-driver none`: no log is kept, and `docker logs` is refused (501, NOT_READABLE)."""
    return (host_config.get("LogConfig") or {}).get("Type") == "none"


def parse_size(text: str) -> int:
    """go-units FromHumanSize: decimal units, `invalid size: '<text>'` otherwise."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"invalid size: '{text}'")
    number, unit = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    return int(value * _DECIMAL[(unit or "").lower()])


def writer_size_max(log_config: dict[str, Any]) -> int | None:
    """The limit conmon applies itself: max-size when one file is kept (conmon starts it anew);
    with more files the daemon rotates and conmon is given none."""
    size, files = limits(log_config)
    return size if files == 1 else None


def limits(log_config: dict[str, Any]) -> tuple[int | None, int]:
    """(max-size in bytes or None: unlimited, max-file), checked as the driver checks them when
    the container starts: a bad value fails the start (500) with dockerd's text."""
    kind = log_config.get("Type")
    config = log_config.get("Config") or {}
    if kind == "none":
        return None, 1
    if kind == "local":
        config = {**_LOCAL_DEFAULTS, **config}
    try:
        size = parse_size(config["max-size"]) if "max-size" in config else None
        if size is not None and size <= 0:
            raise ValueError("max-size must be a positive number")
        files = config.get("max-file")
        if files is not None:
            if not re.fullmatch(r"[+-]?[0-9]+", files):
                raise ValueError(f'strconv.Atoi: parsing "{files}": invalid syntax')
            if int(files) < 1:
                raise ValueError("max-file cannot be less than 1")
    except ValueError as exc:
        detail = str(exc)
        if kind == "local" and detail.startswith("invalid size"):
            detail = f"invalid value for max-size: {config['max-size']}: {detail}"
        raise ApiError(f"failed to initialize logging driver: {detail}") from None
    if size is None:
        return None, 1  # json-file: without max-size nothing rotates
    return size, int(files) if files is not None else 1
