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

from tether.rules.errors import ApiError, BadRequest

DRIVERS = ("json-file", "local", "none")
# the options each driver knows in dockerd (json-file's and local's ValidateLogOpt)
_KNOWN = {"json-file": ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                        "env-regex", "tag"),
          "local": ("max-file", "max-size", "compress")}
_APPLIED = ("max-size", "max-file")
# the local driver's defaults (daemon/logger/local): 20 MB files, five of them
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[bB]?$")
_DECIMAL = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4, "p": 1000 ** 5}


BUILTIN_DRIVERS = ("awslogs", "etwlogs", "fluentd", "gcplogs", "gelf", "journald",
                   "json-file", "local", "logentries", "none", "splunk", "syslog")
# options any driver takes (dockerd's logger.ValidateLogOpts handles them itself)
_GENERIC = ("mode", "max-buffer-size")


def settle(kind: str, config: dict[str, str] | None, default_kind: str,
           default_config: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """dockerd's mergeAndVerifyLogConfig, the merge: an empty Type is the daemon's, and a
    container of the daemon's driver gets the daemon's options it does not set."""
    merged = dict(config or {})
    kind = kind or default_kind or "json-file"
    if kind == default_kind:
        for key, value in (default_config or {}).items():
            merged.setdefault(key, value)
    return kind, merged


def validate(kind: str, config: dict[str, str]) -> None:
    """dockerd's checks of a settled LogConfig, its texts (400): the mode, a driver it does not
    know (looked up as a plugin), json-file's and local's unknown options."""
    if kind == "none":
        return  # dockerd takes any option for none and uses none
    mode = config.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise BadRequest(f"logger: logging mode not supported: {mode}")
    if kind not in BUILTIN_DRIVERS:
        raise BadRequest(f'error looking up logging plugin {kind}: plugin "{kind}" not found')
    for key in config:
        if kind in _KNOWN and key not in _KNOWN[kind] and key not in _GENERIC:
            raise BadRequest(f"unknown log opt '{key}' for json-file log driver"
                             if kind == "json-file" else
                             f"unknown log opt '{key}' for log driver {kind}")


def unapplied(kind: str, config: dict[str, str] | None) -> str | None:
    """What tether does not apply of a LogConfig dockerd would take: `.Type` for a built-in
    driver other than json-file, local and none, `.Config.<key>` for a known option tether
    drops (compression, labels, env, tag, non-blocking mode); None when all is applied.
    Unknown drivers and options are left to `validate`, which has dockerd's texts."""
    kind = kind or "json-file"
    if kind in BUILTIN_DRIVERS and kind not in DRIVERS:
        return ".Type"
    if kind == "none":
        return None
    for key in sorted(config or {}):
        if key == "mode" and (config or {})[key] != "non-blocking":
            continue
        if key in _GENERIC or (key in _KNOWN.get(kind, ()) and key not in _APPLIED):
            return f".Config.{key}"
    return None


NOT_READABLE = "configured logging driver does not support reading"
# what Docker 20.10 writes into an attach that asks a `none`-driver container for its logs
# (it looks for a `none` logger to read from and finds none registered), then ends the attach
ATTACH_NO_LOG = ("Error attaching: failed to get logging factory: logger: no log driver named "
                 "'none' is registered: error looking up logging plugin none: plugin \"none\" "
                 "not found\n")


def reads_nothing(kind: str) -> bool:
    """`--log-driver none`: no log is kept, and `docker logs` is refused (501, NOT_READABLE)."""
    return kind == "none"


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


def writer_size_max(kind: str, config: dict[str, str] | None) -> int | None:
    """The limit conmon applies itself: max-size when one file is kept (conmon starts it anew);
    with more files the daemon rotates and conmon is given none."""
    size, files = limits(kind, config)
    return size if files == 1 else None


def limits(kind: str, config: dict[str, str] | None) -> tuple[int | None, int]:
    """(max-size in bytes or None: unlimited, max-file), checked as the driver checks them when
    the container starts: a bad value fails the start (500) with dockerd's text."""
    config = config or {}
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
