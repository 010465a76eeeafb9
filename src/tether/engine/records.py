"""The container record: what tetherd knows about one container, and Docker's views of it.

One record per container is kept as JSON (see `tether.state`). The record holds the typed spec
(tether.spec: Config merged with the image, HostConfig with dockerd's defaults), written in the
API's shape, plus the state the daemon tracks; `inspect()` and `summary()` render the shapes
dockerd returns for `GET /containers/{id}/json` and `GET /containers/json`.

Records written before the typed spec (no `spec_version`) held the two parts as the client sent
them; `migrate_v1` reads them into the spec with the defaults dockerd stores (which is what those
containers ran with: tether applied none of the others).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tether.engine.mountspec import MountPoint
from tether.engine.securityopt import apparmor_profile
from tether.rules.health import Health
from tether.rules.times import ZERO_TIME, parse_rfc3339
from tether.rules import apitypes
from tether.rules.units import human_duration
from tether.spec import create
from tether.spec.types import Config, HostConfig

SPEC_VERSION = 2  # 1 (absent): Config and HostConfig as sent; 2: the typed spec

@dataclass
class State:
    """Docker's State block; `status` is one of created, running, restarting, exited, removing, dead.

    `paused` is kept apart from `status` (a paused container is still running, as in dockerd's
    State) and saved with the record, so that a daemon restarted while the container is frozen
    knows it without asking runc first; runc's own state (`paused`) says the same.
    """

    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False
    paused: bool = False
    health: Health | None = None   # only for a container with a probe, once started

    def __post_init__(self) -> None:
        if isinstance(self.health, dict):   # as read back from the record
            self.health = Health.from_json(self.health)

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting")

    def view(self) -> dict[str, Any]:
        return {
            "Status": "paused" if self.paused else self.status,
            "Running": self.status in ("running", "restarting"),
            "Paused": self.paused,
            "Restarting": self.status == "restarting",
            "OOMKilled": self.oom_killed,
            "Dead": self.status == "dead",
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
            **({"Health": self.health.view()} if self.health is not None else {}),
        }

    def status_text(self, now: float | None = None) -> str:
        """The `Status` column of `docker ps`: "Up 2 minutes", "Exited (0) 5 seconds ago"."""
        now = time.time() if now is None else now
        if self.status == "running":
            up = "Up " + human_duration(now - parse_rfc3339(self.started_at))
            if self.paused:
                return up + " (Paused)"
            return f"{up} ({self.health.text()})" if self.health is not None else up
        if self.status == "restarting":
            ago = human_duration(now - parse_rfc3339(self.finished_at))
            return f"Restarting ({self.exit_code}) {ago} ago"
        if self.status == "removing":
            return "Removal In Progress"
        if self.status == "dead":
            return "Dead"
        if self.status == "exited":
            if self.finished_at == ZERO_TIME:
                return "Created"
            ago = human_duration(now - parse_rfc3339(self.finished_at))
            return f"Exited ({self.exit_code}) {ago} ago"
        return "Created"


# the record's fields every view relies on, and their JSON types
_FIELD_TYPES = (("id", str), ("name", str), ("created", str), ("image_id", str),
                ("path", str), ("args", list), ("network", dict), ("networks", dict),
                ("mounts", list))


def _spec_part(value: Any, go_type: apitypes.Struct) -> dict[str, Any]:
    """A stored Config or HostConfig, held to the API's Go types: a damaged one raises."""
    if not isinstance(value, dict):
        raise ValueError(f"a record's {go_type.short} is a JSON object")
    return apitypes.check(value, go_type)


def migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A record of the first format as one of the current: its Config and HostConfig (the
    request as sent, merged with the image) keep their values; HostConfig gets the defaults
    dockerd stores at create, which inspect used to add on the fly (json-file, `no` restart)."""
    data = dict(data)
    host_config = HostConfig.from_api(_spec_part(data.get("host_config"), apitypes.HOST_CONFIG))
    create.apply_defaults(host_config)
    data["host_config"] = host_config.to_api(omit=False)
    data["spec_version"] = SPEC_VERSION
    return data


@dataclass
class Container:
    """One container's record. `name` carries Docker's leading slash."""

    id: str
    name: str
    created: str
    image_id: str
    config: Config
    host_config: HostConfig
    path: str
    args: list[str]
    state: State = field(default_factory=State)
    restart_count: int = 0
    stopped_by_user: bool = False
    has_been_started: bool = False
    network: dict[str, Any] = field(default_factory=dict)   # the endpoint (NetworkManager.connect)
    # user-defined networks by ID, in connection order: {Name, Aliases, IPAMConfig, Links, State}
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_ifindex: int = 0   # the N of the next ethN in the current run's namespace
    link_ips: dict[str, str] = field(default_factory=dict)  # link name -> child address at start
    started_link_env: list[str] = field(default_factory=list)  # the link vars PID 1 got
    mounts: list[dict[str, Any]] = field(default_factory=list)  # the mount plan (MountPoint)

    def to_json(self) -> dict[str, Any]:
        """The record: the spec in the API's shape, every field written."""
        data: dict[str, Any] = {"spec_version": SPEC_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (Config, HostConfig)):
                data[f.name] = value.to_api(omit=False)
            else:
                data[f.name] = asdict(value) if f.name == "state" else value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Container:
        """The record as written by `to_json` (or by a tether before the typed spec: migrated);
        one of another shape (a damaged file) raises ValueError or TypeError, so that it is set
        aside rather than half understood."""
        if not isinstance(data, dict) or not isinstance(data.get("state", {}), dict):
            raise ValueError("a container record is a JSON object with a state object")
        if "spec_version" not in data:
            data = migrate_v1(data)
        data = dict(data)
        if data.pop("spec_version") != SPEC_VERSION:
            raise ValueError("a container record of an unknown version")
        data["state"] = State(**data.get("state", {}))
        data["config"] = Config.from_api(_spec_part(data.get("config"), apitypes.CONTAINER_CONFIG))
        data["host_config"] = HostConfig.from_api(_spec_part(data.get("host_config"),
                                                             apitypes.HOST_CONFIG))
        c = cls(**data)
        wrong = [name for name, kind in _FIELD_TYPES if not isinstance(getattr(c, name), kind)]
        if wrong or not isinstance(c.state.status, str):
            raise ValueError(f"container record fields of the wrong type: {wrong or ['state']}")
        return c

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def network_mode(self) -> str:
        """`bridge`, `none`, `host` or a user network's name (`default` and an empty value mean
        the bridge)."""
        mode = self.host_config.network_mode or "default"
        return "bridge" if mode == "default" else mode

    @property
    def on_user_network(self) -> bool:
        """Whether the embedded resolver serves the container (resolv.conf, DNS sockets): it
        is, or was once, on a user-defined network."""
        return bool(self.networks) or self.network_mode not in ("bridge", "none", "host") \
            and not self.network_mode.startswith("container:")  # its donor's resolv.conf

    @property
    def tty(self) -> bool:
        return self.config.tty

    @property
    def mount_points(self) -> list[MountPoint]:
        return [MountPoint.from_json(m) for m in self.mounts]

    def mounts_view(self) -> list[dict[str, Any]]:
        return [mp.view() for mp in self.mount_points]

    def inspect(self, paths: dict[str, str], network: dict[str, Any]) -> dict[str, Any]:
        """Docker's `GET /containers/{id}/json` body."""
        host_config = self.host_config.to_api()  # Go's omitempty fields left out when empty
        host_config["NetworkMode"] = self.host_config.network_mode or "default"
        if host_config["PortBindings"] is None:
            host_config["PortBindings"] = {}
        return {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "State": self.state.view(),
            "Image": self.image_id,
            "ResolvConfPath": paths["resolv"],
            "HostnamePath": paths["hostname"],
            "HostsPath": paths["hosts"],
            "LogPath": paths["log"],
            "Name": self.name,
            "RestartCount": self.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": apparmor_profile(self.host_config.security_opt),
            "ExecIDs": None,
            "HostConfig": host_config,
            "GraphDriver": {"Name": "overlay2", "Data": {
                "MergedDir": paths["rootfs"], "UpperDir": paths["upper"], "WorkDir": paths["work"]}},
            "Mounts": self.mounts_view(),
            "Config": self.config.to_api(),
            "NetworkSettings": network,
        }

    def summary(self, networks: dict[str, Any], ports: list[dict[str, Any]]) -> dict[str, Any]:
        """One item of Docker's `GET /containers/json`; `networks` is NetworkSettings.Networks."""
        # dockerd quotes the arguments that hold a space, and only those
        command = " ".join([self.path, *(f"'{a}'" if " " in a else a for a in self.args)])
        return {
            "Id": self.id,
            "Names": [self.name],
            "Image": self.config.image,
            "ImageID": self.image_id,
            "Command": command,
            "Created": int(parse_rfc3339(self.created)),
            "Ports": ports,
            "Labels": self.config.labels or {},
            "State": "paused" if self.state.paused else self.state.status,
            "Status": self.state.status_text(),
            "HostConfig": {"NetworkMode": self.host_config.network_mode or "default"},
            "NetworkSettings": {"Networks": networks},
            "Mounts": self.mounts_view(),
        }
