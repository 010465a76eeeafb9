"""`HostConfig.SecurityOpt`, read as dockerd 20.10 reads it on a host without AppArmor or SELinux.

Accepted options: `no-new-privileges` (alone, or `=`/`:` and a Go boolean), `seccomp=unconfined`,
`seccomp=<profile JSON>` (the docker CLI reads the file and sends its content), `apparmor=<name>`
(kept for inspect's AppArmorProfile; this host has no AppArmor, so dockerd applies nothing either),
`label=<value>` and a bare `disable` (SELinux labels: none on this host, so ignored as dockerd
does). `:` instead of `=` is dockerd's deprecated separator and still accepted. Anything else is
refused at create with dockerd's texts, as a 500 as dockerd answers it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.rules.errors import ApiError
from tether.rules.portspec import go_quote

UNCONFINED = "unconfined"
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class DaemonSecurity:
    """The daemon's flags: `--seccomp-profile` (its path and JSON text; none: tether's default)
    and `--no-new-privileges` (the default of containers that do not say)."""

    seccomp_profile_path: str = ""
    seccomp_profile: str | None = None
    no_new_privileges: bool = False

    def info_options(self) -> list[str]:
        """`docker info`'s SecurityOptions on this host (no AppArmor, SELinux, userns)."""
        return [f"name=seccomp,profile={self.seccomp_profile_path or 'default'}"]


@dataclass(frozen=True)
class SecurityOptions:
    """What a container's options ask for; None fields fall back to the daemon's settings."""

    no_new_privileges: bool | None = None
    seccomp: str | None = None        # "unconfined", a profile's JSON text, or None
    apparmor: str = ""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {str: "string", int: "number", float: "number", dict: "object",
            list: "array"}.get(type(value), "value")


def _split(opt: str) -> tuple[str, str] | None:
    for sep in ("=", ":"):
        if sep in opt:
            key, _, value = opt.partition(sep)
            return key, value
    return None


def parse(opts: Any) -> SecurityOptions:
    """dockerd's parseSecurityOpt; raises ApiError (500) with its text for an option it refuses."""
    if opts is None:
        return SecurityOptions()
    bad = opts if not isinstance(opts, list) else next((o for o in opts if not isinstance(o, str)),
                                                       None)
    if bad is not None:
        go_type = "[]string" if bad is opts else "string"
        raise ApiError(f"json: cannot unmarshal {_json_kind(bad)} into Go struct field "
                         f"HostConfig.HostConfig.SecurityOpt of type {go_type}")
    nnp: bool | None = None
    seccomp: str | None = None
    apparmor = ""
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":
            continue
        pair = _split(opt)
        if pair is None:
            raise ApiError(f"invalid --security-opt 1: {go_quote(opt)}")
        key, value = pair
        if key == "label":
            continue
        if key == "apparmor":
            apparmor = value
        elif key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges" and value in _GO_TRUE + _GO_FALSE:
            nnp = value in _GO_TRUE
        else:
            raise ApiError(f"invalid --security-opt 2: {go_quote(opt)}")
    return SecurityOptions(no_new_privileges=nnp, seccomp=seccomp, apparmor=apparmor)


def apparmor_profile(opts: Any) -> str:
    """inspect's AppArmorProfile: the `apparmor=` option as given (dockerd shows it even on a
    host without AppArmor), "" for options a record from before this check could still hold."""
    try:
        return parse(opts).apparmor
    except ApiError:
        return ""


def with_generated_label(host_config: dict[str, Any]) -> list[str] | None:
    """SecurityOpt as dockerd stores it: `label=disable` added for a privileged container (or a
    host IPC/PID one) unless the client gave a `label=` option itself."""
    opts = host_config.get("SecurityOpt")
    given = list(opts) if isinstance(opts, list) else []
    if any(o.split("=")[0] == "label" for o in given):
        return opts
    if host_config.get("Privileged") or "host" in (host_config.get("IpcMode"),
                                                   host_config.get("PidMode")):
        return [*given, "label=disable"]
    return opts


def system_paths(host_config: dict[str, Any], masked: tuple[str, ...],
                 readonly: tuple[str, ...]) -> dict[str, list[str] | None]:
    """MaskedPaths and ReadonlyPaths as dockerd stores them at create: the defaults when the
    client sent none (null) for a container that is not privileged, else what it sent (the docker
    CLI's `--security-opt systempaths=unconfined` sends empty lists)."""
    out: dict[str, list[str] | None] = {}
    for key, default in (("MaskedPaths", masked), ("ReadonlyPaths", readonly)):
        value = host_config.get(key)
        bad = value if not isinstance(value, list) else next(
            (v for v in value if not isinstance(v, str)), None)
        if value is not None and bad is not None:
            go_type = "[]string" if bad is value else "string"
            raise ApiError(f"json: cannot unmarshal {_json_kind(bad)} into Go struct field "
                           f"HostConfig.HostConfig.{key} of type {go_type}")
        if value is None and not host_config.get("Privileged"):
            value = list(default)
        out[key] = value
    return out


def seccomp_profile(options: SecurityOptions, privileged: bool,
                    daemon_profile: str | None) -> tuple[bool, str | None]:
    """(filtered?, profile text or None for the built-in default) as dockerd's WithSeccomp:
    privileged and `seccomp=unconfined` containers run without a filter; a container's own
    profile wins over the daemon's `--seccomp-profile`."""
    if privileged or options.seccomp == UNCONFINED:
        return False, None
    if options.seccomp:
        return True, options.seccomp
    return True, daemon_profile
