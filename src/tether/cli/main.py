"""Entry point of the `tether` CLI: global options, docker-style errors, exit codes.

The command modules share what they need through `tether.cli.common`, never through this module,
which imports them only to register their commands; they import the rest lazily, because this
runs on every invocation.
"""
from __future__ import annotations

import sys
import click

import tether
from tether.cli.client import DEFAULT_HOST, CliError
from tether.cli.common import CONTEXT, App, ArgCountError, DockerGroup


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
                            commands_image, commands_kube, commands_network, commands_pod,
                            commands_registry, commands_system, commands_volume)

    for module in (commands_container, commands_cp, commands_image, commands_archive,
                   commands_registry, commands_build, commands_network, commands_system,
                   commands_volume, commands_kube, commands_pod):
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
