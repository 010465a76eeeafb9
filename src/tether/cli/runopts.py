"""Turn `run`/`create` flags into the create body the docker CLI sends (engine-api.md §2.1).

Pure functions, so the mapping from argv to JSON is unit-tested without a daemon. -p/--expose
follow the docker CLI's grammar through tether.rules.portspec, shared with the daemon.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.cli.client import CliError
from tether.cli.process_flags import check_namespace_modes
from tether.rules.portspec import PortSpecError, parse_expose, publish_body


@dataclass
class RunOptions:
    """The subset of `docker run` flags tether understands."""

    image: str
    command: list[str] = field(default_factory=list)
    detach: bool = False
    interactive: bool = False
    tty: bool = False
    rm: bool = False
    name: str | None = None
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    workdir: str = ""
    entrypoint: str | None = None
    hostname: str = ""
    labels: list[str] = field(default_factory=list)
    restart: str = "no"
    user: str = ""
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    expose: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    network: str = "default"
    network_aliases: list[str] = field(default_factory=list)
    ip: str = ""
    ip6: str = ""
    link_local_ips: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    console_size: tuple[int, int] = (0, 0)
    volumes: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)  # parsed by mount_flag
    tmpfs: list[str] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)
    read_only: bool = False
    healthcheck: dict[str, Any] | None = None   # from cli/healthopts.py's flags
    process: dict[str, Any] = field(default_factory=dict)  # cli/process_flags.py's HostConfig
    mac_address: str = ""


def env_list(pairs: list[str], files: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """docker's ReadKVEnvStrings: env files first, then -e; a bare `KEY` takes the CLI's value
    and is dropped when the CLI has none."""
    env = os.environ if environ is None else environ
    lines: list[str] = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise CliError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from exc
        lines += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    out = []
    for item in lines + list(pairs):
        if "=" in item:
            out.append(item)
        elif item in env:
            out.append(f"{item}={env[item]}")
    return out


def link_format_error(value: str) -> str | None:
    """Why docker's ParseLink refuses a --link value, or None when it is valid. Only the shape is
    checked here (the daemon resolves the names): "db", "db:alias", even ":" pass; "" and values
    with more than one ":" do not."""
    if not value:
        return "empty string specified for links"
    if value.count(":") > 1:
        return f"bad format for links: {value}"
    return None


def split_map(values: Iterable[str], sep: str = "=") -> dict[str, str]:
    """`KEY<sep>VALUE` flags as a map, the later of a repeated key winning, a value without
    `sep` a key with an empty value: `--label`, `volume create --opt`, `--tmpfs PATH:OPTIONS`."""
    result: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition(sep)
        result[key] = value
    return result


def restart_policy(text: str) -> dict[str, Any]:
    """"on-failure:3" -> {"Name": "on-failure", "MaximumRetryCount": 3}."""
    name, _, count = text.partition(":")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise CliError(f"invalid restart policy format: {text}", code=125)
    if count and name != "on-failure":
        raise CliError("invalid restart policy format: maximum retry count can only be used with"
                       " 'on-failure'", code=125)
    try:
        retries = int(count) if count else 0
    except ValueError as exc:
        raise CliError("invalid restart policy format: maximum retry count must be an integer",
                       code=125) from exc
    return {"Name": name, "MaximumRetryCount": retries}


def publish_map(specs: list[str]) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """-p values -> (PortBindings, published port keys), with the docker CLI's grammar and its
    errors (exit 125, raised before the daemon is contacted)."""
    try:
        exposed, bindings = publish_body(specs)
    except PortSpecError as exc:
        raise CliError(str(exc), code=125) from exc
    return bindings, list(exposed)


def exposed_ports(published: list[str], expose: list[str]) -> dict[str, dict[str, Any]]:
    """Config.ExposedPorts: every published port plus each --expose value, keys sorted as Go's
    JSON encoder writes them."""
    keys = set(published)
    try:
        for spec in expose:
            keys.update(parse_expose(spec))
    except PortSpecError as exc:
        raise CliError(str(exc), code=125) from exc
    return {key: {} for key in sorted(keys)}


def _volume_source(spec: str) -> str:
    """The source part of a `-v` value as the docker CLI's ParseVolume reads it (a drive-like
    `c:` stays in a section), with its errors; "" for an anonymous volume (`-v /data`)."""
    if not spec:
        raise CliError("invalid empty volume spec", code=125)
    if len(spec) <= 2:
        return ""
    sections: list[str] = []
    buffer = ""
    for index, char in enumerate(spec + "\0"):
        if char == ":" and len(buffer) == 1 and buffer.isalpha():
            buffer += char
        elif char in (":", "\0"):
            if not buffer:
                raise CliError(f"invalid spec: {spec}: empty section between colons", code=125)
            if len(sections) == 2 and char == ":":
                raise CliError(f"invalid spec: {spec}: too many colons", code=125)
            sections.append(buffer)
            buffer = ""
        else:
            buffer += char
    return sections[0] if len(sections) > 1 else ""


def volume_flags(values: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """-v values -> (HostConfig.Binds, Config.Volumes) as the docker CLI splits them: a value
    with a source is a bind (a `./relative` host path made absolute), one without is an
    anonymous volume; repeated values count once."""
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in dict.fromkeys(values):
        source = _volume_source(spec)
        if not source:
            volumes[spec] = {}
            continue
        if source.startswith(".") or source == "..":
            spec = os.path.abspath(source) + spec[len(source):]
        binds.append(spec)
    return binds, volumes


def _go_bool(key: str, value: str) -> bool:
    """strconv.ParseBool's spellings."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def mount_flag(value: str) -> dict[str, Any]:
    """One `--mount` value -> a HostConfig.Mounts object, with the docker CLI's MountOpt rules
    and texts (ValueError; the caller words it as a flag error)."""
    import csv

    fields = next(csv.reader([value]), [])
    mount: dict[str, Any] = {"Type": "volume"}
    groups: dict[str, dict[str, Any]] = {}

    def group(name: str) -> dict[str, Any]:
        if name not in groups:
            groups[name] = {"Labels": {}, "DriverConfig": {}} if name == "VolumeOptions" else {}
        return groups[name]

    for item in fields:
        key, sep, val = item.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                group("VolumeOptions")["NoCopy"] = True
            elif key == "bind-nonrecursive":
                group("BindOptions")["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{item}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            mount["Source"] = os.path.abspath(val) if val == "." or val.startswith("./") else val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _go_bool(key, val)
        elif key == "consistency":
            mount["Consistency"] = val.lower()
        elif key == "bind-propagation":
            group("BindOptions")["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            group("BindOptions")["NonRecursive"] = _go_bool(key, val)
        elif key == "volume-nocopy":
            try:
                group("VolumeOptions")["NoCopy"] = _go_bool(key, val)
            except ValueError:
                raise ValueError(f"invalid value for volume-nocopy: {val}") from None
        elif key in ("volume-label", "volume-opt"):
            options = group("VolumeOptions")
            target = options["Labels"] if key == "volume-label" else \
                options["DriverConfig"].setdefault("Options", {})
            k, _, v = val.partition("=")
            if k:
                target[k] = v
        elif key == "volume-driver":
            group("VolumeOptions")["DriverConfig"]["Name"] = val
        elif key == "tmpfs-size":
            from tether.rules.units import ram_in_bytes
            try:
                group("TmpfsOptions")["SizeBytes"] = ram_in_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                group("TmpfsOptions")["Mode"] = int(val, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{item}'")
    if not mount["Type"]:
        raise ValueError("type is required")
    if not mount.get("Target"):
        raise ValueError("target is required")
    for name, prefix, kind in (("VolumeOptions", "volume", "volume"), ("BindOptions", "bind", "bind"),
                               ("TmpfsOptions", "tmpfs", "tmpfs")):
        if name in groups and mount["Type"] != kind:
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{mount['Type']}'")
    if "VolumeOptions" in groups and not groups["VolumeOptions"]["Labels"]:
        del groups["VolumeOptions"]["Labels"]  # an empty map is omitted from the JSON
    mount.update(groups)
    return mount


def create_body(opts: RunOptions, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The POST /containers/create body for these options, keyed as the docker CLI sends it."""
    bindings, published = publish_map(opts.publish)
    exposed = exposed_ports(published, opts.expose)
    binds, anonymous = volume_flags(opts.volumes)
    attach_out = not opts.detach
    entrypoint = None if opts.entrypoint is None else [opts.entrypoint]
    body: dict[str, Any] = {
        "Hostname": opts.hostname,
        "Domainname": "",
        "User": opts.user,
        "AttachStdin": opts.interactive and not opts.detach,
        "AttachStdout": attach_out,
        "AttachStderr": attach_out,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": opts.interactive and not opts.detach,
        "Env": env_list(opts.env, opts.env_files, environ),
        "Cmd": list(opts.command) or None,
        "Image": opts.image,
        "Volumes": anonymous or None,
        "WorkingDir": opts.workdir,
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": split_map(opts.labels),
        "HostConfig": {
            "Binds": binds or None,
            "NetworkMode": opts.network,
            "PortBindings": bindings,
            "RestartPolicy": restart_policy(opts.restart),
            "AutoRemove": opts.rm,
            "PublishAllPorts": opts.publish_all,
            "Links": list(opts.links) or None,
            "Dns": list(opts.dns),
            "ExtraHosts": list(opts.add_hosts) or None,
            "ConsoleSize": list(opts.console_size),
            "VolumesFrom": list(opts.volumes_from) or None,
            "ReadonlyRootfs": opts.read_only,
        },
        "NetworkingConfig": {"EndpointsConfig": {opts.network: endpoint_config(opts)}},
    }
    if exposed:
        body["ExposedPorts"] = exposed
    if opts.mounts:
        body["HostConfig"]["Mounts"] = list(opts.mounts)
    if opts.tmpfs:
        body["HostConfig"]["Tmpfs"] = split_map(opts.tmpfs, ":")
    if opts.healthcheck is not None:
        body["Healthcheck"] = opts.healthcheck
    body["HostConfig"].update(opts.process)
    check_namespace_modes(body["HostConfig"])
    if opts.mac_address:  # API 1.44: in the endpoint settings of the container's network
        body["NetworkingConfig"]["EndpointsConfig"][opts.network]["MacAddress"] = opts.mac_address
    return body


BUILTIN_NETWORKS = ("default", "bridge", "host", "none")


def ipam_request(ip: str, ip6: str, link_local: list[str]) -> dict[str, Any]:
    """EndpointSettings.IPAMConfig from `--ip`, `--ip6` and `--link-local-ip` ({}: none)."""
    config: dict[str, Any] = {}
    if ip:
        config["IPv4Address"] = ip
    if ip6:
        config["IPv6Address"] = ip6
    if link_local:
        config["LinkLocalIPs"] = list(link_local)
    return config


def endpoint_config(opts: RunOptions) -> dict[str, Any]:
    """The EndpointsConfig entry of the container's network: `--network-alias`, `--ip` and, on a
    user-defined network, the links (the docker CLI's parseNetworkOpts)."""
    user_defined = opts.network not in BUILTIN_NETWORKS and not opts.network.startswith(
        "container:")
    if opts.network_aliases and not user_defined:
        raise CliError("network-scoped aliases are only supported for user-defined networks",
                       code=125)
    config: dict[str, Any] = {}
    ipam_config = ipam_request(opts.ip, opts.ip6, opts.link_local_ips)
    if ipam_config:
        config["IPAMConfig"] = ipam_config
    if user_defined and opts.links:
        config["Links"] = list(opts.links)
    if opts.network_aliases:
        config["Aliases"] = list(opts.network_aliases)
    return config


def tagged(ref: str) -> str:
    """reference.FamiliarString(TagNameOnly(ref)): add ":latest" when there is no tag/digest."""
    if "@" in ref or ":" in ref.rsplit("/", 1)[-1]:
        return ref
    return f"{ref}:latest"


def qualified_name(name: str) -> str:
    """The fully qualified repository the docker CLI pulls: busybox -> docker.io/library/busybox."""
    first, sep, _ = name.partition("/")
    if not sep:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def split_ref(ref: str) -> tuple[str, str]:
    """"repo:tag" -> (repo, tag), tag "latest" by default; digests stay in the repo part."""
    if "@" in ref:
        return ref, ""
    head, sep, tail = ref.rpartition(":")
    if sep and "/" not in tail:
        return head, tail
    return ref, "latest"

