"""Health checks' rules: the settings a container's Healthcheck means, dockerd's create-time
checks, and how a probe's result moves `State.Health` (daemon/health.go, Docker 20.10).

Pure, so that the state machine (start period, retries, the five-entry log, the 4096-byte output
cut) is unit-tested without a container; tether.engine.health runs the probes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tether.rules.errors import BadRequest

SECOND = 10**9
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 10**6        # dockerd's container.MinimumDuration, 1ms
MAX_OUTPUT = 4096               # bytes of a probe's output kept, then "..."
MAX_LOG = 5                     # results kept in State.Health.Log

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, NONE)   # dockerd's IsValidHealthString

_FIELDS = ("Interval", "Timeout", "StartPeriod", "Retries")


def merge(user: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's Healthcheck: the request's, each field left zero taken from the image's
    (dockerd's merge of the image config at create)."""
    if not user:
        return dict(image) if image else user
    if not image:
        return user
    merged = dict(user)
    if not merged.get("Test"):
        merged["Test"] = image.get("Test")
    for key in _FIELDS:
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def validate(health: dict[str, Any] | None) -> None:
    """dockerd's validateHealthCheck, in its order and with its texts (400)."""
    if not health:
        return
    for key in ("Interval", "Timeout"):
        _check_duration(health, key)
    if (health.get("Retries") or 0) < 0:
        raise BadRequest("Retries in Healthcheck cannot be negative")
    _check_duration(health, "StartPeriod")


def _check_duration(health: dict[str, Any], key: str) -> None:
    value = health.get(key) or 0
    if value != 0 and value < MINIMUM_DURATION:
        raise BadRequest(f"{key} in Healthcheck cannot be less than 1ms")


@dataclass(frozen=True)
class Settings:
    """What one container's probing runs: the command and its timing, defaults applied."""

    command: list[str]
    interval: int
    timeout: int
    start_period: int
    retries: int


def settings(config: dict[str, Any]) -> Settings | None:
    """The probe of a container Config, or None when it has none: no Healthcheck, an empty
    Test, `NONE`, or a type dockerd does not know (it logs and runs nothing)."""
    health = config.get("Healthcheck") or {}
    test = list(health.get("Test") or [])
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    command = test[1:]
    if test[0] == "CMD-SHELL":
        command = list(config.get("Shell") or ["/bin/sh", "-c"]) + command
    if not command:
        return None
    return Settings(command=command,
                    interval=health.get("Interval") or DEFAULT_INTERVAL,
                    timeout=health.get("Timeout") or DEFAULT_TIMEOUT,
                    start_period=health.get("StartPeriod") or DEFAULT_START_PERIOD,
                    retries=health.get("Retries") if (health.get("Retries") or 0) > 0
                    else DEFAULT_RETRIES)


@dataclass
class Health:
    """`State.Health`: saved with the container's record, shown by inspect and ps."""

    status: str = STARTING
    failing_streak: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Health:
        health = cls(**data)
        if not isinstance(health.status, str) or not isinstance(health.log, list):
            raise ValueError("a health record has a status string and a log list")
        return health

    def view(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": list(self.log)}

    def text(self) -> str:
        """What `docker ps` adds to "Up ...": `health: starting`, `healthy`, `unhealthy`."""
        return "health: starting" if self.status == STARTING else self.status


def at_start(config: dict[str, Any], health: Health | None) -> Health | None:
    """A (re)start: starting again with no failures, the log kept (initHealthMonitor); a
    container without a probe keeps what it had."""
    if settings(config) is None:
        return health
    health = health or Health()
    health.status, health.failing_streak = STARTING, 0
    return health


def at_stop(health: Health | None) -> Health | None:
    """Probing stopped (exit, pause): dockerd marks the container unhealthy "for compatibility
    reasons" (CloseMonitorChannel), the streak and log kept, no event."""
    if health is not None:
        health.status = UNHEALTHY
    return health


def output_text(data: bytes) -> str:
    """A probe's stdout and stderr as stored: the first 4096 bytes, "..." when cut."""
    text = data[:MAX_OUTPUT].decode("utf-8", "replace")
    return text + "..." if len(data) > MAX_OUTPUT else text


def timeout_output(duration: str) -> str:
    """The log's Output for a probe killed at its timeout (`duration` as Go prints it; Docker
    20.10 keeps none of the probe's own output then)."""
    return f"Health check exceeded timeout ({duration})"


def record(health: Health, result: dict[str, Any], probe: Settings,
           since_start_ns: int) -> bool:
    """Add one probe result ({Start, End, ExitCode, Output}) to `health` (handleProbeResult);
    `since_start_ns` is the probe's start less the container's. True when the status changed
    (dockerd then emits `health_status: <status>`)."""
    old = health.status
    health.log = [*health.log, result][-MAX_LOG:]
    if result["ExitCode"] == 0:
        health.failing_streak = 0
        health.status = HEALTHY
    elif not (health.status == STARTING and since_start_ns < probe.start_period):
        # a failure within the start period of a container never healthy yet does not count
        health.failing_streak += 1
        if health.failing_streak >= probe.retries:
            health.status = UNHEALTHY
    return health.status != old


def filter_value(health: Health | None) -> str:
    """The value the `health` filter of GET /containers/json compares: `none` without one."""
    return health.status if health is not None else NONE


def check_filter(values: list[str]) -> None:
    for value in values:
        if value not in FILTER_VALUES:
            raise BadRequest(f"Unrecognised filter value for health: {value}")
