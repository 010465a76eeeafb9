"""Container commands: run, create, start, attach, stop, restart, kill, rm, logs, exec, wait, rename,
port, ps, inspect, and tether's own `links`. Each sends the requests the docker CLI sends and
prints what it prints."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Iterable

import click

from tether.cli import formatting, limit_flags, process_flags
from tether.cli.client import CliError, Client, DaemonError
from tether.cli.common import (MULTI, TEMPLATE_HELP, command, current_app, err, filters_query, for_each,
                               json_lines, out, render_format)
from tether.cli.healthopts import flags_of, health_options, healthcheck
from tether.cli.runopts import (RunOptions, create_body, link_format_error, mount_flag,
                                qualified_name, split_ref, tagged)
from tether.rules.errors import start_failure_code
from tether.rules.portspec import PortSpecError, parse_uint16
from tether.rules.times import get_timestamp

# ----------------------------------------------------------------------------------------------
# run / create
def _check_links(ctx: click.Context, param: click.Parameter,
                 values: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a malformed --link while parsing flags, as the docker CLI's flag validator does:
    a usage error (docker's usage tail, exit 125) before the daemon is contacted."""
    for value in values:
        reason = link_format_error(value)
        if reason:
            raise click.UsageError(f'invalid argument "{value}" for "--link" flag: {reason}', ctx)
    return values


def _parse_mounts(ctx: click.Context, param: click.Parameter,
                  values: tuple[str, ...]) -> list[dict[str, Any]]:
    """--mount values parsed while reading flags, as the docker CLI's MountOpt: a malformed one
    is a usage error (exit 125) before the daemon is contacted."""
    parsed = []
    for value in values:
        try:
            parsed.append(mount_flag(value))
        except ValueError as exc:
            raise click.UsageError(f'invalid argument "{value}" for "--mount" flag: {exc}',
                                   ctx) from None
    return parsed


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags shared by run and create."""
    decorators = [
        click.option("-i", "--interactive", is_flag=True,
                     help="Keep the container's stdin open, attached or not"),
        click.option("-t", "--tty", is_flag=True, help="Give it a terminal (pty) instead of pipes"),
        click.option("--rm", is_flag=True, help="Delete the container once it exits"),
        click.option("--name", help="Container name (default: a generated adjective_surname)"),
        click.option("-e", "--env", multiple=True,
                     help="KEY=VALUE for the environment; a bare KEY copies this shell's value"),
        click.option("--env-file", multiple=True, help="File of KEY=VALUE lines for the environment"),
        click.option("-w", "--workdir", default="", help="Directory the command starts in"),
        click.option("--entrypoint", default=None,
                     help="Program to run in place of the image's ENTRYPOINT"),
        click.option("-h", "--hostname", default="",
                     help="Hostname the container sees (default: its short ID)"),
        click.option("-l", "--label", multiple=True, help="KEY=VALUE label for the container"),
        click.option("--restart", default="no",
                     help="When to restart it: no, always, unless-stopped or on-failure[:N]"),
        click.option("-u", "--user", default="", help="User to run as: NAME|UID[:GROUP|GID]"),
        click.option("-p", "--publish", multiple=True,
                     help="[IP:][HOST_PORT:]PORT[/PROTO] to publish (IPv4: nftables NAT in the kernel)"),
        click.option("-P", "--publish-all", is_flag=True,
                     help="Publish every exposed port on a free host port"),
        click.option("--expose", multiple=True,
                     help="Declare PORT[-END][/PROTO] open without publishing it"),
        click.option("--link", multiple=True, callback=_check_links,
                     help="NAME[:ALIAS] of a container to link to (see `tether links`)"),
        click.option("--network", "--net", default="default",
                     help="Network to join: bridge (default), host, none or a user-defined one"),
        click.option("--network-alias", "--net-alias", multiple=True,
                     help="Extra DNS name on the user-defined network"),
        click.option("--ip", default="", help="Fixed IPv4 address on a user-defined network"),
        click.option("--ip6", default="", help="Fixed IPv6 address on a user-defined network"),
        click.option("--link-local-ip", multiple=True,
                     help="Extra link-local address (IPv4 or IPv6) on the network's interface"),
        click.option("--add-host", multiple=True, help="HOST:IP line to add to the container's /etc/hosts"),
        click.option("--dns", multiple=True, help="Nameserver for the container's resolv.conf"),
        click.option("-v", "--volume", multiple=True,
                     help="HOST_PATH|VOLUME:DEST[:OPTS] to mount; DEST alone: a new anonymous volume"),
        click.option("--mount", multiple=True, callback=_parse_mounts,
                     help="Mount as a key=value list: type=bind|volume|tmpfs,source=...,target=..."),
        click.option("--tmpfs", multiple=True, help="PATH[:OPTIONS] to mount a fresh tmpfs on"),
        click.option("--volumes-from", multiple=True,
                     help="CONTAINER[:ro|rw] whose volumes to mount too"),
        click.option("--read-only", is_flag=True,
                     help="Make the root filesystem read-only"),
        click.argument("image", required=False),
        click.argument("command", nargs=-1, required=False),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return limit_flags.options(process_flags.options(health_options(fn)))


def _options(params: dict[str, Any], detach: bool) -> RunOptions:
    from tether.cli.tty import terminal_size

    return RunOptions(
        image=params["image"], command=list(params["command"]), detach=detach,
        interactive=params["interactive"], tty=params["tty"], rm=params["rm"], name=params["name"],
        env=list(params["env"]), env_files=list(params["env_file"]), workdir=params["workdir"],
        entrypoint=params["entrypoint"], hostname=params["hostname"], labels=list(params["label"]),
        restart=params["restart"], user=params["user"], publish=list(params["publish"]),
        publish_all=params["publish_all"], expose=list(params["expose"]), links=list(params["link"]),
        network=params["network"], network_aliases=list(params["network_alias"]),
        ip=params["ip"], ip6=params["ip6"], link_local_ips=list(params["link_local_ip"]),
        add_hosts=list(params["add_host"]), dns=list(params["dns"]),
        console_size=terminal_size(1) if params["tty"] else (0, 0),
        volumes=list(params["volume"]), mounts=list(params["mount"]), tmpfs=list(params["tmpfs"]),
        volumes_from=list(params["volumes_from"]), read_only=params["read_only"],
        healthcheck=healthcheck(flags_of(params)),
        process={**process_flags.host_config(params), **limit_flags.host_config(params)},
        mac_address=process_flags.mac_address(params),
    )


def pull(client: Client, ref: str) -> None:
    """POST /images/create?fromImage=... with the stored login for the image's registry (as
    `tether pull` sends it), and show the progress stream on stderr."""
    from tether.cli.credentials import stored_auth_header

    repo, tag = split_ref(ref)
    resp = client.request("POST", "/images/create", {"fromImage": qualified_name(repo), "tag": tag},
                          headers=stored_auth_header(repo), own_connection=True)
    for line in json_lines(resp.chunks()):
        if line.get("errorDetail"):
            raise CliError(line["errorDetail"].get("message", ""))
        status = line.get("status")
        if status:
            err(f"{line['id']}: {status}" if line.get("id") else status)


def create_container(client: Client, opts: RunOptions, body: dict[str, Any]) -> str:
    """Create, pulling the image first when the daemon does not have it (as docker run does)."""
    query = {"name": opts.name}
    try:
        return client.json("POST", "/containers/create", query, body)["Id"]
    except DaemonError as exc:
        if exc.status != 404 or "No such image" not in exc.daemon_message:
            raise
    err(f"Unable to find image '{tagged(opts.image)}' locally")
    pull(client, tagged(opts.image))
    return client.json("POST", "/containers/create", query, body)["Id"]


def _run_error(exc: CliError, code: int = 125) -> CliError:
    return CliError(f"tether: {exc.message}\n\nRun 'tether run --help' for more information", code)


detach_keys_option = click.option("--detach-keys", default="",
                                  help="Keys that detach this terminal (default ctrl-p,ctrl-q)")


def _attach(client: Client, cid: str, stdin: bool, detach_keys: str = ""):
    """The daemon checks the keys (a 400 before the upgrade) and scans for them too."""
    query = {"detachKeys": detach_keys or None, "stderr": 1, "stdin": 1 if stdin else None,
             "stdout": 1, "stream": 1}
    return client.hijack(f"/containers/{cid}/attach", query)


def _check_tty(stdin: bool, tty: bool) -> None:
    """docker's CheckTty: a tty fed from a pipe would never see a detach key or an EOF."""
    if stdin and tty and not os.isatty(0):
        raise CliError("the input device is not a TTY")


def _escape_keys(detach_keys: str) -> bytes:
    """What this side scans for: the default when the keys are invalid (as the docker CLI,
    which leaves the refusal to the daemon)."""
    from tether.rules import detachkeys

    try:
        return detachkeys.parse(detach_keys)
    except ValueError:
        return detachkeys.DEFAULT


def _pump(client: Client, conn: Any, resize_path: str, tty: bool, stdin: bool,
          detach_keys: str = "") -> bool:
    """Copy streams until the output ends; raw mode and resizes when on a terminal.
    True when the user typed the detach keys."""
    from tether.cli.tty import RawTerminal, StreamPump, watch_resize

    pump = StreamPump(conn, tty, sys.stdin.buffer if stdin else None,
                      detach_keys=_escape_keys(detach_keys))
    if not tty:
        pump.run()
        return pump.detached
    stop_watch = (watch_resize(1, lambda h, w: client.request("POST", resize_path, {"h": h, "w": w}))
                  if os.isatty(1) else (lambda: None))
    try:
        if stdin and os.isatty(0):
            with RawTerminal(0):
                pump.run()
        else:
            pump.run()
    finally:
        stop_watch()
    return pump.detached


def run_container(client: Client, opts: RunOptions, detach_keys: str = "") -> int:
    """docker run's sequence: create, attach, wait (headers read), start, stream, exit code."""
    if not opts.detach:
        _check_tty(opts.interactive, opts.tty)
    try:
        cid = create_container(client, opts, create_body(opts))
    except CliError as exc:
        raise _run_error(exc) from exc
    if opts.detach:
        out(cid)
        _start_or_fail(client, cid)
        return 0
    conn = _attach(client, cid, opts.interactive, detach_keys)
    condition = "removed" if opts.rm else "next-exit"
    waiter = client.request("POST", f"/containers/{cid}/wait", {"condition": condition},
                            own_connection=True)
    _start_or_fail(client, cid)
    if _pump(client, conn, f"/containers/{cid}/resize", opts.tty, opts.interactive, detach_keys):
        return 0  # detached: silently, with 0, as docker run
    status = json.loads(waiter.read() or b"{}")
    if (status.get("Error") or {}).get("Message"):
        raise CliError(f"tether: {status['Error']['Message']}", 125)
    return int(status.get("StatusCode", 0))


def _start_or_fail(client: Client, cid: str) -> None:
    try:
        client.request("POST", f"/containers/{cid}/start")
    except DaemonError as exc:
        raise _run_error(exc, start_failure_code(exc.daemon_message, 125)) from exc


@command("run", usage="[OPTIONS] IMAGE [COMMAND] [ARG...]", min_args=1,
               context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Start it in the background and print its ID")
@detach_keys_option
@run_options
def run(detach: bool, detach_keys: str, **params: Any) -> None:
    """Make a container from IMAGE and start it.

    Pulls IMAGE when the daemon lacks it. Ports published with -p are forwarded by nftables NAT in
    the kernel, not copied by a proxy process (IPv4).
    """
    sys.exit(run_container(current_app().client, _options(params, detach), detach_keys))


@command("create", usage="[OPTIONS] IMAGE [COMMAND] [ARG...]", min_args=1,
               context_settings={"allow_interspersed_args": False})
@run_options
def create(**params: Any) -> None:
    """Make a container from IMAGE without starting it; print its ID."""
    opts = _options(params, detach=False)
    try:
        body = create_body(opts)
    except CliError as exc:
        raise CliError(f"tether: {exc.message}\n\nRun 'tether create --help' for more information",
                       125) from exc
    # unlike run, docker create reports the daemon's errors plainly, with exit 1
    out(create_container(current_app().client, opts, body))


# ----------------------------------------------------------------------------------------------
# lifecycle
@command("start", usage="[OPTIONS] CONTAINER [CONTAINER...]", min_args=1)
@click.option("-a", "--attach", is_flag=True, help="Stream its output and exit with its exit code")
@click.option("-i", "--interactive", is_flag=True, help="Also feed this terminal's stdin to it")
@detach_keys_option
@click.argument("containers", **MULTI)
def start(attach: bool, interactive: bool, detach_keys: str, containers: tuple[str, ...]) -> None:
    """Start created or stopped containers, printing each name."""
    client = current_app().client
    if attach or interactive:
        if len(containers) > 1:
            raise CliError("tether: you cannot start and attach multiple containers at once")
        sys.exit(_start_attached(client, containers[0], interactive, detach_keys))
    failed = []
    for name in containers:
        try:
            client.request("POST", f"/containers/{name}/start")
        except CliError as exc:
            err(exc.message)
            failed.append(name)
            continue
        out(name)
    if failed:
        raise CliError(f"Error: failed to start containers: {', '.join(failed)}")


def _start_attached(client: Client, name: str, interactive: bool, detach_keys: str) -> int:
    info = client.json("GET", f"/containers/{name}/json")
    tty = bool(info["Config"].get("Tty"))
    conn = _attach(client, info["Id"], interactive, detach_keys)
    waiter = client.request("POST", f"/containers/{info['Id']}/wait", {"condition": "next-exit"},
                            own_connection=True)
    client.request("POST", f"/containers/{info['Id']}/start")
    if _pump(client, conn, f"/containers/{info['Id']}/resize", tty, interactive, detach_keys):
        return 0  # detached: silently, with 0, as docker start -a
    return int(json.loads(waiter.read() or b"{}").get("StatusCode", 0))


@command("attach", usage="[OPTIONS] CONTAINER", min_args=1)
@detach_keys_option
@click.option("--no-stdin", is_flag=True, help="Only show output: keep this terminal's stdin out")
@click.argument("container", required=False)
def attach(detach_keys: str, no_stdin: bool, container: str) -> None:
    """Connect this terminal to a running container's main process."""
    client = current_app().client
    info = client.json("GET", f"/containers/{container}/json")
    state = info["State"]
    if not state.get("Running"):
        raise CliError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CliError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CliError("You cannot attach to a restarting container, wait until it is running")
    stdin = not no_stdin and bool(info["Config"].get("OpenStdin"))
    tty = bool(info["Config"].get("Tty"))
    _check_tty(not no_stdin, tty)
    waiter = client.request("POST", f"/containers/{info['Id']}/wait", own_connection=True)
    conn = _attach(client, info["Id"], stdin, detach_keys)
    if _pump(client, conn, f"/containers/{info['Id']}/resize", tty, stdin, detach_keys):
        raise CliError("read escape sequence")  # docker attach's word for a detach, exit 1
    sys.exit(int(json.loads(waiter.read() or b"{}").get("StatusCode", 0)))


def _timeout_query(timeout: int | None, signal_name: str | None = None) -> dict[str, Any]:
    return {"t": timeout, "signal": signal_name}


@command("stop", usage="[OPTIONS] CONTAINER [CONTAINER...]", min_args=1)
@click.option("-t", "--time", "--timeout", "timeout", type=int, default=None,
              help="Seconds between the stop signal and SIGKILL (default 10)")
@click.option("-s", "--signal", "signal_name", default=None,
              help="Stop signal instead of the image's STOPSIGNAL or SIGTERM")
@click.argument("containers", **MULTI)
def stop(timeout: int | None, signal_name: str | None, containers: tuple[str, ...]) -> None:
    """Stop running containers: their stop signal, then SIGKILL."""
    client = current_app().client
    for_each(containers, lambda n: client.request("POST", f"/containers/{n}/stop",
                                                  _timeout_query(timeout, signal_name)))


@command("restart", usage="[OPTIONS] CONTAINER [CONTAINER...]", min_args=1)
@click.option("-t", "--time", "--timeout", "timeout", type=int, default=None,
              help="Seconds between the stop signal and SIGKILL (default 10)")
@click.option("-s", "--signal", "signal_name", default=None,
              help="Stop signal instead of the image's STOPSIGNAL or SIGTERM")
@click.argument("containers", **MULTI)
def restart(timeout: int | None, signal_name: str | None, containers: tuple[str, ...]) -> None:
    """Stop containers, then start them again."""
    client = current_app().client
    for_each(containers, lambda n: client.request("POST", f"/containers/{n}/restart",
                                                  _timeout_query(timeout, signal_name)))


@command("kill", usage="[OPTIONS] CONTAINER [CONTAINER...]", min_args=1)
@click.option("-s", "--signal", "signal_name", default=None, help="Signal name or number (default SIGKILL)")
@click.argument("containers", **MULTI)
def kill(signal_name: str | None, containers: tuple[str, ...]) -> None:
    """Send a signal (SIGKILL by default) to running containers."""
    client = current_app().client
    for_each(containers, lambda n: client.request("POST", f"/containers/{n}/kill",
                                                  {"signal": signal_name}))


@command("rm", usage="[OPTIONS] CONTAINER [CONTAINER...]", min_args=1)
@click.option("-f", "--force", is_flag=True, help="Kill it first if it is running")
@click.option("-v", "--volumes", is_flag=True, help="Also delete its anonymous volumes")
@click.option("-l", "--link", is_flag=True, help="Remove the link /PARENT/ALIAS instead of a container")
@click.argument("containers", **MULTI)
def rm(force: bool, volumes: bool, link: bool, containers: tuple[str, ...]) -> None:
    """Delete containers (running ones only with -f)."""
    client = current_app().client
    query = {"force": 1 if force else None, "v": 1 if volumes else None, "link": 1 if link else None}

    errors = []
    for name in containers:
        target = name.strip("/")  # the docker CLI sends "/web/db" as /containers/web/db
        if not target:
            errors.append("container name cannot be empty")
            continue
        try:
            client.request("DELETE", f"/containers/{target}", query)
        except DaemonError as exc:
            if force and exc.status == 404:
                err(exc.message)  # docker 28 reports it but still exits 0
            else:
                errors.append(exc.message)
            continue
        out(name)
    if errors:
        raise CliError("\n".join(errors))


@command("wait", usage="CONTAINER [CONTAINER...]", min_args=1)
@click.argument("containers", **MULTI)
def wait(containers: tuple[str, ...]) -> None:
    """Wait for containers to exit; print each exit code."""
    client = current_app().client
    errors = []
    for name in containers:
        try:
            resp = client.request("POST", f"/containers/{name}/wait", own_connection=True)
            out(str(json.loads(resp.read() or b"{}").get("StatusCode", 0)))
        except CliError as exc:
            errors.append(exc.message)
    if errors:
        raise CliError("\n".join(errors))


@command("rename", usage="CONTAINER NEW_NAME", min_args=1)
@click.argument("container", required=False)
@click.argument("new_name", required=False)
def rename(container: str, new_name: str | None) -> None:
    """Give a container a new name."""
    if not new_name:
        raise CliError("tether: 'tether rename' requires exactly 2 arguments")
    try:
        current_app().client.request("POST", f"/containers/{container}/rename", {"name": new_name})
    except CliError as exc:
        raise CliError(f"{exc.message}\nError: failed to rename container named {container}") from exc


# ----------------------------------------------------------------------------------------------
# logs / exec / port
@command("logs", usage="[OPTIONS] CONTAINER", min_args=1)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output as it comes")
@click.option("-n", "--tail", default="all", help="Only the last N lines ('all': every line)")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its RFC 3339 time")
@click.option("--since", default=None,
              help="Only output after a time: Unix seconds, RFC 3339 or a duration ago (10m)")
@click.option("--until", default=None, help="Only output before a time (same forms as --since)")
@click.argument("container", required=False)
def logs(follow: bool, tail: str, timestamps: bool, since: str | None, until: str | None,
         container: str) -> None:
    """Print what a container wrote to stdout and stderr."""
    from tether.cli.tty import demux, write_all

    client = current_app().client
    info = client.json("GET", f"/containers/{container}/json")
    query = {"stdout": 1, "stderr": 1, "since": _timestamp(since), "until": _timestamp(until),
             "timestamps": 1 if timestamps else None, "follow": 1 if follow else None, "tail": tail}
    resp = client.request("GET", f"/containers/{info['Id']}/logs", query, own_connection=True)
    sys.stdout.flush()
    if info["Config"].get("Tty"):
        for chunk in resp.chunks():
            write_all(1, chunk)
        return
    reader = _ChunkReader(resp.chunks())
    for stream, payload in demux(reader.read):
        write_all(1 if stream == 1 else 2, payload)


class _ChunkReader:
    """File-like `read(n)` over an iterator of byte chunks (for the stdcopy demultiplexer)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.buf = b""

    def read(self, n: int) -> bytes:
        while not self.buf:
            self.buf = next(self.chunks, b"")
            if not self.buf:
                return b""
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _timestamp(value: str | None, now: float | None = None) -> str | None:
    """docker's GetTimestamp (tether.rules.times): what `--since`/`--until` send the daemon."""
    if not value:
        return None
    try:
        return get_timestamp(value, time.time() if now is None else now)
    except ValueError as exc:
        raise CliError(f'invalid value for "since": {value}') from exc


@command("exec", usage="[OPTIONS] CONTAINER COMMAND [ARG...]", min_args=2,
               context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Start the command and return at once, printing nothing")
@click.option("-i", "--interactive", is_flag=True, help="Pass this terminal's stdin to the command")
@click.option("-t", "--tty", is_flag=True, help="Give the command a terminal (pty)")
@click.option("-e", "--env", multiple=True, help="KEY=VALUE for the command's environment")
@click.option("-w", "--workdir", default="", help="Directory the command starts in")
@click.option("-u", "--user", default="", help="NAME|UID[:GROUP|GID] to run the command as")
@detach_keys_option
@click.argument("container", required=False)
@click.argument("command", nargs=-1, required=False)
def exec_(detach: bool, interactive: bool, tty: bool, env: tuple[str, ...], workdir: str, user: str,
          detach_keys: str, container: str, command: tuple[str, ...]) -> None:
    """Start one more process inside a running container."""
    from tether.cli.runopts import env_list
    from tether.cli.tty import terminal_size

    if not command:
        raise CliError("tether: 'tether exec' requires at least 2 arguments")
    if not detach:
        _check_tty(interactive, tty)
    client = current_app().client
    size = list(terminal_size(1)) if tty else None
    body = {"User": user, "Privileged": False, "Tty": tty, "ConsoleSize": size,
            "AttachStdin": interactive and not detach, "AttachStdout": not detach,
            "AttachStderr": not detach, "DetachKeys": detach_keys, "Env": env_list(list(env), []),
            "WorkingDir": workdir, "Cmd": list(command)}
    exec_id = client.json("POST", f"/containers/{container}/exec", body=body)["Id"]
    start_body = {"Detach": detach, "Tty": tty, "ConsoleSize": size}
    if detach:
        client.request("POST", f"/exec/{exec_id}/start", body=start_body)
        return
    conn = client.hijack(f"/exec/{exec_id}/start", body=start_body)
    if _pump(client, conn, f"/exec/{exec_id}/resize", tty, interactive, detach_keys):
        raise CliError("read escape sequence")  # docker exec's word for a detach, exit 1
    sys.exit(int(client.json("GET", f"/exec/{exec_id}/json").get("ExitCode") or 0))


def _port_usage_error() -> CliError:
    path = click.get_current_context().command_path
    return CliError(f"tether: '{path}' requires at least 1 and at most 2 arguments\n\n"
                    f"Usage:  {path} CONTAINER [PRIVATE_PORT[/PROTO]]\n\n"
                    f"Run '{path} --help' for more information", 1)


def port_lines(ports: dict[str, Any], container: str, private_port: str) -> list[str]:
    """docker CLI 28's `port` output from inspect's NetworkSettings.Ports: every binding, or
    those of one PORT[/PROTO] (protocol tcp by default, not lowercased), in natural order."""
    if not private_port:
        lines = [f"{key} -> {formatting.join_host_port(b.get('HostIp', ''), b.get('HostPort', ''))}"
                 for key, bindings in ports.items() for b in bindings or []]
        return sorted(lines, key=formatting.natural_key)
    number, _, proto = private_port.partition("/")
    try:
        parse_uint16(number)
    except PortSpecError as exc:
        raise CliError(f"Error: invalid port ({number}): {exc}") from exc
    bindings = ports.get(f"{number}/{proto or 'tcp'}")
    if not bindings:
        raise CliError(f"Error: No public port '{private_port}' published for {container}")
    return sorted((formatting.join_host_port(b.get("HostIp", ""), b.get("HostPort", ""))
                   for b in bindings), key=formatting.natural_key)


@command("port", usage="CONTAINER [PRIVATE_PORT[/PROTO]]")
@click.argument("args", nargs=-1)
def port(args: tuple[str, ...]) -> None:
    """Show the host addresses a container's ports are published on."""
    if not 1 <= len(args) <= 2:
        raise _port_usage_error()
    container = args[0]
    info = current_app().client.json("GET", f"/containers/{container}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    for line in port_lines(ports, container, args[1] if len(args) > 1 else ""):
        out(line)


# ----------------------------------------------------------------------------------------------
# ps / inspect
_PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
               "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
               "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
               "Networks": "NETWORKS"}


def ps_context(item: dict[str, Any], trunc: bool, now: float) -> dict[str, Any]:
    """The fields `ps --format` templates see (docker's ContainerContext)."""
    row = formatting.ps_row(item, trunc, now, with_size=True)
    labels = item.get("Labels") or {}
    networks = ((item.get("NetworkSettings") or {}).get("Networks") or {})
    return {
        "ID": row[0], "Image": row[1], "Command": row[2], "RunningFor": row[3], "Status": row[4],
        "Ports": row[5], "Names": row[6], "Size": row[7], "State": item.get("State", ""),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(item.get("Created", 0))),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in item.get("Mounts") or []),
        "Networks": ",".join(sorted(networks)),
    }


@command("ps", usage="[OPTIONS]")
@click.option("-a", "--all", "all_", is_flag=True, help="Include stopped and created containers")
@click.option("-l", "--latest", is_flag=True, help="Only the newest container, in any state")
@click.option("-n", "--last", type=int, default=-1, help="Only the N newest containers, in any state")
@click.option("-q", "--quiet", is_flag=True, help="Print container IDs only")
@click.option("-s", "--size", is_flag=True,
              help="Add a SIZE column: the writable layer, and the total with the image")
@click.option("--no-trunc", is_flag=True, help="Show IDs and commands in full")
@click.option("-f", "--filter", "filters", multiple=True,
              help="KEY=VALUE to select by, e.g. status=exited or name=web")
@click.option("--format", "fmt", default=None, help=TEMPLATE_HELP)
def ps(all_: bool, latest: bool, last: int, quiet: bool, size: bool, no_trunc: bool,
       filters: tuple[str, ...], fmt: str | None) -> None:
    """Show running containers (all of them with -a)."""
    limit = 1 if latest else last
    query = {"all": 1 if all_ else None, "limit": limit if limit > 0 else None,
             "size": 1 if size else None, "filters": filters_query(filters)}
    items = current_app().client.json("GET", "/containers/json", query)
    trunc = not no_trunc
    if quiet:
        sys.stdout.write("".join((formatting.short_id(i["Id"]) if trunc else i["Id"]) + "\n"
                                 for i in items))
        return
    now = time.time()
    if fmt and fmt != "table":
        contexts = [ps_context(i, trunc, now) for i in items]
        sys.stdout.write(render_format(fmt, contexts, _PS_HEADERS))
        return
    sys.stdout.write(formatting.ps_table(items, trunc, size, now))


def _lookup(client: Client, name: str, kind: str | None, size: bool) -> dict[str, Any]:
    """docker inspect's search: container, then image (unless --type says which)."""
    if kind in (None, "container"):
        try:
            return client.json("GET", f"/containers/{name}/json", {"size": 1 if size else None})
        except DaemonError as exc:
            if kind or exc.status != 404:
                raise
    if kind in (None, "image"):
        try:
            return client.json("GET", f"/images/{name}/json")
        except DaemonError as exc:
            if kind or exc.status != 404:
                raise
    if kind is None:
        raise CliError(f"Error: No such object: {name}")
    raise CliError(f'"{kind}" is not a valid value for --type', 1)


@command("inspect", usage="[OPTIONS] NAME|ID [NAME|ID...]", min_args=1)
@click.option("-f", "--format", "fmt", default=None, help="Go template run on each object, or 'json'")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), default=None,
              help="Look only for a container, or only for an image")
@click.option("-s", "--size", is_flag=True, help="Add SizeRw and SizeRootFs to containers")
@click.argument("names", **MULTI)
def inspect(fmt: str | None, kind: str | None, size: bool, names: tuple[str, ...]) -> None:
    """Print containers' or images' full JSON records."""
    from tether.cli.inspect_output import print_inspected

    client = current_app().client
    print_inspected(names, lambda name: _lookup(client, name, kind, size), fmt)


# ----------------------------------------------------------------------------------------------
# links (a tether extension)
@command("links", usage="[OPTIONS] [CONTAINER]")
@click.option("--format", "fmt", default="table", help='Output format: "table" or "json"')
@click.argument("args", nargs=-1)
def links(fmt: str, args: tuple[str, ...]) -> None:
    """Show the link graph and any stale link env vars."""
    path = click.get_current_context().command_path
    if len(args) > 1:
        raise CliError(f"tether: '{path}' requires at most 1 argument\n\n"
                       f"Usage:  {path} [OPTIONS] [CONTAINER]\n\n"
                       f"Run '{path} --help' for more information", 1)
    if fmt not in ("table", "json"):
        raise CliError(f'unsupported format "{fmt}": use "table" or "json"', 125)
    endpoint = f"/containers/{args[0]}/links" if args else "/tether/links"
    graph = current_app().client.json("GET", endpoint)
    sys.stdout.write(formatting.go_json_indent(graph) + "\n" if fmt == "json"
                     else formatting.links_table(graph))


def register(group: click.Group) -> None:
    for cmd in (run, create, start, attach, stop, restart, kill, rm, wait, rename, logs, exec_, port,
                ps, inspect, links):
        group.add_command(cmd)
