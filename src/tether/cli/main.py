"""Entry point of the `tether` CLI: global options, docker-style errors, exit codes.

Only the standard library and click are imported here; the command modules import what they
need lazily, because this runs on every invocation.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import click

import tether
from tether.cli.client import DEFAULT_HOST, CliError, Client, resolve_host

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


class App:
    """Per-invocation state shared by the commands: the endpoint and a lazily made client."""

    def __init__(self, host: str | None) -> None:
        self.host = resolve_host(host)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from tether.cli.daemon_start import may_autostart

            self._client = Client(self.host, autostart=may_autostart(self.host, DEFAULT_HOST))
        return self._client


class DockerCommand(click.Command):
    """A click command with docker's usage line ("tether run [OPTIONS] IMAGE ...")."""

    def __init__(self, *args: Any, usage: str = "[OPTIONS]", min_args: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).update(CONTEXT)
        super().__init__(*args, **kwargs)
        self.docker_usage = usage
        self.min_args = min_args

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            rest = super().parse_args(ctx, args)
        except click.UsageError as exc:
            # click's option parser raises "requires an argument" without a context: without
            # this one the error would show the top-level usage instead of this command's
            exc.ctx = exc.ctx or ctx
            raise
        first = next((p for p in self.params if isinstance(p, click.Argument)), None)
        if self.min_args and first is not None and not ctx.params.get(first.name or ""):
            raise ArgCountError(ctx, self.min_args)
        return rest


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], DockerCommand]:
    """click.command making a DockerCommand."""
    return click.command(name, cls=DockerCommand, **kwargs)  # type: ignore[return-value]


class DockerGroup(click.Group):
    """Group whose subcommands default to DockerCommand."""

    command_class = DockerCommand
    group_class = type


class ArgCountError(click.UsageError):
    """docker's "'docker run' requires at least 1 argument" (exit 1)."""

    def __init__(self, ctx: click.Context, count: int) -> None:
        noun = "argument" if count == 1 else "arguments"
        super().__init__(f"requires at least {count} {noun}", ctx)
        self.count = count


def usage_error_text(exc: click.UsageError) -> tuple[str, int]:
    """Word click's parse errors as docker's cobra-based CLI does, with its exit codes."""
    ctx = exc.ctx
    path = ctx.command_path if ctx else "tether"
    usage = getattr(ctx.command, "docker_usage", "[OPTIONS]") if ctx else "[OPTIONS] COMMAND"
    usage_line = f"Usage:  {path} {usage}"
    if isinstance(exc, ArgCountError):
        noun = "argument" if exc.count == 1 else "arguments"
        return (f"tether: '{path}' requires at least {exc.count} {noun}\n\n{usage_line}\n\n"
                f"See '{path} --help' for more information", 1)
    if isinstance(exc, click.NoSuchOption):
        message = f"unknown flag: {exc.option_name}"
    elif isinstance(exc, click.BadOptionUsage) and "requires an argument" in exc.message:
        message = f"flag needs an argument: {exc.option_name}"
    else:
        message = exc.format_message()
    return (f"{message}\n\n{usage_line}\n\nRun '{path} --help' for more information", 125)


def version_line() -> str:
    """`tether --version`'s line, shaped as `docker --version`'s ("Docker version 28.2.2, build
    e6534b4"), less the build. tether.__version__ is the one place the version is written
    (pyproject.toml reads it), and reading it costs no import of importlib.metadata."""
    return f"tether version {tether.__version__}"


@click.group(cls=DockerGroup, context_settings=CONTEXT, invoke_without_command=True,
             no_args_is_help=True)
@click.option("-H", "--host", metavar="unix:///PATH",
              help="tetherd's socket (else $TETHER_HOST, $DOCKER_HOST, " + DEFAULT_HOST + ")")
@click.option("-v", "--version", "show_version", is_flag=True,
              help="Print tether's version and exit")
@click.pass_context
def cli(ctx: click.Context, host: str | None, show_version: bool) -> None:
    """Run and manage containers through tetherd, a container engine in Python.

    \b
    tether takes the docker CLI's flags and prints its output formats, and tetherd speaks the
    Docker Engine API, so docker, its SDK and docker-compose drive tetherd too. Where it differs:
    - published IPv4 ports are forwarded by nftables NAT in the kernel, not by a proxy;
    - `tether links` shows which containers link to which, and link variables gone stale;
    - `cp`, `export` and `commit` reach a container's files only through descriptors opened
      inside its root, so a container that swaps in symlinks cannot point them at the host.
    """
    if ctx.invoked_subcommand is None:
        # as docker's root command: -v answers only when no command follows (`-v ps` runs ps)
        if not show_version:
            ctx.fail("Missing command.")
        click.echo(version_line())
        return
    ctx.obj = App(host)


def _register() -> None:
    from tether.cli import (commands_archive, commands_build, commands_container, commands_cp,
                            commands_image, commands_network, commands_registry, commands_system,
                            commands_volume)

    for module in (commands_container, commands_cp, commands_image, commands_archive,
                   commands_registry, commands_build, commands_network, commands_system,
                   commands_volume):
        module.register(cli)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors are printed docker's way and turned into its exit codes."""
    _register()
    try:
        cli.main(args=argv, prog_name="tether", standalone_mode=False)
    except click.UsageError as exc:
        text, code = usage_error_text(exc)
        print(text, file=sys.stderr)
        sys.exit(code)
    except CliError as exc:
        if exc.message:
            print(exc.message, file=sys.stderr)
        sys.exit(exc.code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
