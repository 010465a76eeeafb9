"""tetherd: the daemon. Flags like dockerd's, logfmt logs on stderr, the Engine API on a unix socket.

SIGTERM and SIGINT stop the daemon and leave containers running: they live under conmon, and the
next daemon finds them again through their records (`ContainerService.load`).
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import fcntl
import grp
import logging
import os
import re
import resource
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from tether.api.absent import AbsentRoutes
from tether.api.archives import ArchiveRoutes
from tether.api.build import BuildRoutes
from tether.api.containers import ContainerRoutes
from tether.api.distribution import DistributionRoutes
from tether.api.events import EventRoutes
from tether.api.execs import ExecRoutes
from tether.api.http import Router, serve
from tether.api.images import ImageRoutes
from tether.api.inspection import InspectionRoutes
from tether.api.networks import NetworkRoutes
from tether.api.prune import PruneRoutes
from tether.api.system import SystemRoutes
from tether.api.volumes import VolumeRoutes
from tether.engine.container_files import ContainerFiles
from tether.engine.containers import ContainerService
from tether.engine.events import EventBus
from tether.engine.execs import ExecService
from tether.engine.health import HealthService
from tether.engine.images import ImageService
from tether.engine.paths import Paths, make_private
from tether.engine.prune import Pruner
from tether.engine.recovery import Recovery
from tether.engine.securityopt import DaemonSecurity
from tether.engine.volumes import VolumeService
from tether.image.store import ImageStore
from tether.network import dns
from tether.network.manager import NetworkManager
from tether.network.resolver import EmbeddedResolver
from tether.rules import log_options
from tether.rules.errors import ApiError
from tether.rules.process_options import DaemonDefaults, parse_ulimit
from tether.runtime import seccomp_host
from tether.runtime.conmon import Runtime
from tether.runtime.seccomp import ProfileError

DEFAULT_HOST = "unix:///run/tether/tether.sock"
DEFAULT_SOCKET_GROUP = "docker"
log = logging.getLogger("tether.daemon")


class LogfmtFormatter(logging.Formatter):
    """`time=... level=info msg="..." key=value`: one line an event, easy to grep and to parse."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = {"time": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                  "msg": record.getMessage(), "logger": record.name}
        fields.update(getattr(record, "ctx", {}))
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={_quote(v)}" for k, v in fields.items())


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(ch in text for ch in ' "=\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _flag(value: str) -> bool:
    """A dockerd boolean flag's value (`--icc=false`): anything but false, 0 or no is true."""
    return value.lower() not in ("false", "0", "no")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tetherd", description="tether daemon (Docker Engine API)")
    p.add_argument("--data-root", default="/var/lib/tether", help="persistent state")
    p.add_argument("--exec-root", default="/run/tether", help="runtime state")
    p.add_argument("-H", "--host", default=DEFAULT_HOST, help="unix:///path of the API socket")
    p.add_argument("--bridge", default="tether0", help="the default bridge's device name")
    p.add_argument("--bip", default=None, help="the bridge's address and subnet, e.g. 172.20.0.1/16")
    p.add_argument("--iptables", "--nat", dest="nat", default=True, type=_flag,
                   help="program NAT for published ports (false: no firewall changes)")
    p.add_argument("--icc", default=True, type=_flag,
                   help="inter-container communication on the bridge (false: only linked pairs)")
    _ipv6_flags(p)
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append", default=[],
                   help="a registry (host[:port] or CIDR) to reach over plain HTTP or unverified TLS")
    # -- seccomp and no-new-privileges (issue 11)
    p.add_argument("--seccomp-profile", default="", metavar="PATH",
                   help="a seccomp profile (Docker's JSON format) in place of the built-in one")
    p.add_argument("--no-new-privileges", nargs="?", const=True, default=False, type=_flag,
                   help="no-new-privileges for containers whose --security-opt does not say")
    # -- process and log defaults for containers (issue 13)
    p.add_argument("--default-ulimit", dest="default_ulimits", action="append", default=[],
                   metavar="NAME=SOFT[:HARD]", help="a ulimit for containers that do not set it")
    p.add_argument("--init", nargs="?", const=True, default=False, type=_flag,
                   help="run an init as PID 1 in containers whose --init does not say")
    p.add_argument("--init-path", default="", metavar="PATH",
                   help="the init binary (default: docker-init, else tini-static, on PATH)")
    p.add_argument("--log-driver", default="json-file", help="containers' default log driver")
    p.add_argument("--log-opt", dest="log_opts", action="append", default=[],
                   metavar="KEY=VALUE", help="an option of the default log driver")
    # --
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("-G", "--group", default=DEFAULT_SOCKET_GROUP,
                   help="the group (name or GID) that may use the API socket; empty: root's only")
    args = p.parse_args(argv)
    if args.ipv6 and not args.fixed_cidr_v6:  # dockerd's refusal, word for word
        p.exit(1, "failed to start daemon: Error initializing network controller: IPv6 is "
                  "enabled for the default bridge, but no subnet is configured. Specify an IPv6 "
                  "subnet using --fixed-cidr-v6\n")
    return args


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise SystemExit(f"tetherd: only unix:// hosts are supported, got {host!r}")
    return host[len("unix://"):]


def _security(args: argparse.Namespace) -> DaemonSecurity:
    """The daemon's seccomp profile, read and checked once: a profile that cannot be used stops
    the daemon here (as dockerd does for a missing file) rather than every container start."""
    text = None
    if args.seccomp_profile:
        try:
            text = Path(args.seccomp_profile).read_text()
            seccomp_host.check(text)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise SystemExit(f"tetherd: opening seccomp profile ({args.seccomp_profile}) failed: "
                             f"open {args.seccomp_profile}: {reason}") from None
        except (ProfileError, UnicodeDecodeError) as exc:
            raise SystemExit(f"tetherd: seccomp profile ({args.seccomp_profile}): {exc}") from None
    return DaemonSecurity(seccomp_profile_path=args.seccomp_profile, seccomp_profile=text,
                          no_new_privileges=args.no_new_privileges)


def process_defaults(args: argparse.Namespace) -> DaemonDefaults:
    """The container defaults of tetherd's flags, checked once: a bad one stops the daemon with
    dockerd's text rather than failing every container."""
    ulimits = {}
    for text in args.default_ulimits:
        try:
            ulimit = parse_ulimit(text)
        except ValueError as exc:
            raise SystemExit(f'tetherd: invalid argument "{text}" for "--default-ulimit" flag: '
                             f"{exc}") from None
        ulimits[ulimit["Name"]] = ulimit
    options = {}
    for text in args.log_opts:
        key, sep, value = text.partition("=")
        if not sep:
            raise SystemExit(f'tetherd: invalid argument "{text}" for "--log-opt" flag: '
                             "invalid key value pair format in log opts")
        options[key] = value
    try:
        log_options.validate(args.log_driver, options)
        unapplied = log_options.unapplied(args.log_driver, options)
        if unapplied:
            raise SystemExit(f"tetherd: tether does not support HostConfig.LogConfig{unapplied}"
                             " yet")
        log_options.limits(args.log_driver, options)
    except ApiError as exc:
        raise SystemExit(f"tetherd: {exc.message}") from None
    return DaemonDefaults(ulimits=ulimits, init=args.init, init_path=args.init_path,
                          log_config={"Type": args.log_driver, "Config": options})


def socket_gid(group: str, sock: str, lookup: Callable[[str], grp.struct_group] = grp.getgrnam) -> int:
    """The GID the API socket is given, as dockerd picks it: the group of that name, else a
    number taken as a GID. An empty name means the daemon's own group; so does the default
    `docker` when there is no such group (with a warning); any other unknown group is fatal."""
    try:
        return lookup(group).gr_gid
    except KeyError:
        pass
    if re.fullmatch(r"[0-9]+", group):
        return int(group)
    if group and group != DEFAULT_SOCKET_GROUP:
        raise SystemExit(f"tetherd: failed to load listeners: group {group} not found")
    if group:
        log.warning(f"could not change group {sock} to {group}: group {group} not found")
    return os.getgid()


def _raise_open_files_limit() -> None:
    """Every API connection, container stream and log holds an fd: take the hard limit, as Go
    programs (dockerd) do at start, instead of a login shell's 1024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(16)
        path.write_text(value + "\n")
        return value


def _lock(exec_root: Path) -> int:
    """One daemon per exec root: a second one would fight over the same containers."""
    exec_root.mkdir(parents=True, exist_ok=True)
    fd = os.open(exec_root / "tetherd.pid", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"tetherd: another daemon is running with exec root {exec_root}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _upstreams(resolv_conf: Path) -> list[str]:
    """Where the embedded resolver sends names it does not know: the host's nameservers."""
    try:
        return dns.upstreams(resolv_conf.read_text())
    except OSError:
        return dns.upstreams("")


async def _forget_names_on_changes(events: EventBus, resolver: EmbeddedResolver) -> None:
    """The resolver remembers lookups; any engine event (start, die, rename, network connect
    or disconnect, destroy...) may change a name, so each one drops what it remembers."""
    queue = events.subscribe()
    try:
        while True:
            await queue.get()
            resolver.forget()
    finally:
        events.unsubscribe(queue)


def _ipv6_flags(p: argparse.ArgumentParser) -> None:
    """dockerd's IPv6 flags. `--ip6tables` is experimental in Docker 20.10 and off by default;
    tether follows later Docker (on by default with --ipv6): its ip6 nftables table."""
    p.add_argument("--ipv6", nargs="?", const=True, default=False, type=_flag,
                   help="IPv6 addresses on the default bridge (needs --fixed-cidr-v6)")
    p.add_argument("--fixed-cidr-v6", default=None, type=_ipv6_subnet, metavar="CIDR",
                   help="the default bridge's IPv6 subnet, e.g. 2001:db8:1::/64 (without "
                        "--ipv6 only shown, as dockerd does)")
    p.add_argument("--ip6tables", nargs="?", const=True, default=True, type=_flag,
                   help="IPv6 NAT, isolation and published ports by nftables (false: none; "
                        "IPv6 host ports then go through the userland proxy)")


def _ipv6_subnet(text: str) -> str:
    try:
        ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid IPv6 subnet {text!r}") from None
    return text


async def run(args: argparse.Namespace) -> None:
    sock = socket_path(args.host)
    gid = socket_gid(args.group, sock)
    security = _security(args)
    defaults = process_defaults(args)
    paths = Paths(Path(args.data_root), Path(args.exec_root))
    make_private(paths)
    lock_fd = _lock(paths.exec_root)
    images = ImageStore(paths.images)
    network = NetworkManager(paths.network, bridge=args.bridge, bip=args.bip,
                             nat=args.nat, icc=args.icc, enable_ipv6=args.ipv6,
                             fixed_cidr_v6=args.fixed_cidr_v6, ip6tables=args.ip6tables)
    await network.setup()
    events = EventBus()
    volumes = VolumeService(paths.volumes, events=events)
    containers = ContainerService(paths, images, Runtime(paths.runtime), network, volumes,
                                  events=events)
    containers.security = security
    containers.creation.process_defaults = defaults
    volumes.referrers = containers.volume_users
    resolver = EmbeddedResolver(containers.attachment.lookup, containers.attachment.reverse,
                                _upstreams(containers.files.host_resolv))
    containers.attachment.resolver = resolver
    forgetting = asyncio.create_task(_forget_names_on_changes(events, resolver))
    execs = ExecService(containers)
    health = HealthService(containers, execs)
    probing = asyncio.create_task(health.follow())
    await Recovery(containers).load()
    health.resume()
    router = Router(hide=paths.hide)
    AbsentRoutes(containers).register(router)  # first: its checkpoint routes are under /containers/{id}
    SystemRoutes(containers, images, _daemon_id(paths.data_root), str(paths.data_root),
                 volumes.disk_usage).register(router)
    ContainerRoutes(containers).register(router)
    EventRoutes(events).register(router)
    ExecRoutes(execs).register(router)
    image_service = ImageService(images, events, containers.users_of_image,
                                 args.insecure_registries)
    ImageRoutes(image_service).register(router)
    files = ContainerFiles(containers, image_service)
    BuildRoutes(image_service, containers, files).register(router)
    archive_routes = ArchiveRoutes(image_service, files)
    archive_routes.register(router)
    DistributionRoutes(image_service, archive_routes.import_image).register(router)
    InspectionRoutes(containers, files).register(router)
    VolumeRoutes(volumes).register(router)
    NetworkRoutes(containers).register(router)
    PruneRoutes(Pruner(containers, images)).register(router)
    Path(sock).parent.mkdir(parents=True, exist_ok=True)
    server = await serve(router, sock, gid=gid)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("API listening", extra={"ctx": {"socket": sock, "pid": os.getpid()}})
    await stop.wait()
    log.info("shutting down; containers keep running")
    server.close()
    await containers.shutdown()
    forgetting.cancel()
    probing.cancel()
    await resolver.close()
    await network.shutdown()
    Path(sock).unlink(missing_ok=True)
    (paths.exec_root / "tetherd.pid").unlink(missing_ok=True)
    os.close(lock_fd)


def _watch_children_by_pidfd() -> None:
    """Python 3.11's asyncio waits for each child process (runc calls, execs, health probes)
    with a thread of its own blocked in waitpid; a pidfd on the loop does it with none, as
    Python 3.12 does by default."""
    if sys.version_info < (3, 12):
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(args.log_level, args.log_level.upper())
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("pyroute2").setLevel(logging.WARNING)  # a line per netlink message at debug
    if os.geteuid() != 0:
        raise SystemExit("tetherd: must run as root (it mounts filesystems and makes namespaces)")
    # dockerd's umask too: what tetherd makes without an explicit mode (a container's upper dir,
    # the root its container sees; hosts and resolv.conf) must not depend on the caller's umask
    os.umask(0o022)
    _raise_open_files_limit()
    _watch_children_by_pidfd()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
