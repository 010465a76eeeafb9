"""What the CLI's command modules share: the click command classes with docker's usage lines,
the per-invocation App, output helpers, --filter and --format handling, and the rendering of the
daemon's JSON progress streams (rich bars on a terminal, imported only then: start-up time
matters; docker's plain status lines otherwise). Command modules import this, never each other or `main`, so
`main` can register them without an import circle."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Iterable

import click

from tether.cli import formatting
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
            from tether.cli.daemon_start import may_autostart, start_daemon

            start = start_daemon if may_autostart(self.host, DEFAULT_HOST) else None
            self._client = Client(self.host, start=start)
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


MULTI = dict(nargs=-1, required=False)
TEMPLATE_HELP = "Go template run on each row ('table TEMPLATE' adds headers)"


def current_app() -> App:
    return click.get_current_context().find_object(App)  # type: ignore[return-value]


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def for_each(names: Iterable[str], action: Callable[[str], None]) -> None:
    """Apply `action` to each name, printing it on success; errors are reported together at the
    end with exit 1, as docker does for stop/rm/kill/restart."""
    errors = []
    for name in names:
        try:
            action(name)
        except CliError as exc:
            errors.append(exc.message)
            continue
        out(name)
    if errors:
        raise CliError("\n".join(errors))


def json_lines(chunks: Iterable[bytes]) -> Iterable[dict[str, Any]]:
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        yield json.loads(buf)


def render_format(fmt: str, contexts: list[dict[str, Any]], headers: dict[str, str]) -> str:
    """docker's --format: "table ..." gives an aligned table with a header, else one line each."""
    from tether.cli.template import Template, TemplateError

    table = fmt.startswith("table")
    source = fmt[5:].lstrip() if table else fmt
    try:
        template = Template(source.replace("\\t", "\t").replace("\\n", "\n"), missing_key_error=True)
        lines = [template.render(ctx) for ctx in contexts]
        header = template.render(headers) if table else ""
    except TemplateError as exc:
        raise CliError(f"template parsing error: {exc}", 64) from exc
    if not table:
        return "".join(line + "\n" for line in lines)
    return formatting.tabwrite([row.split("\t") for row in [header] + lines])


def filters_query(values: tuple[str, ...]) -> str | None:
    if not values:
        return None
    result: dict[str, dict[str, bool]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise CliError(f"invalid argument \"{value}\" for \"-f, --filter\" flag: bad format of"
                           f" filter (expected name=value)", 125)
        result.setdefault(key.strip().lower(), {})[val] = True
    return json.dumps(result)


# --- progress --------------------------------------------------------------------------------

_FINISHED = frozenset({"Download complete", "Pull complete", "Pushed"})


def _raise_error(msg: dict[str, Any]) -> None:
    """An error line ends the stream: the CLI exits with its message."""
    if msg.get("errorDetail") or msg.get("error"):
        raise CliError((msg.get("errorDetail") or {}).get("message") or msg.get("error", ""))


def plain_lines(messages: Iterable[dict[str, Any]]) -> Iterable[str]:
    """docker's non-terminal display: status lines, `id: status` for layers, no progress bars
    or aux records; an error message ends the stream as a CliError."""
    for msg in messages:
        _raise_error(msg)
        if "aux" in msg or msg.get("progressDetail", {}).get("total") is not None:
            continue
        status = msg.get("status", "")
        yield f"{msg['id']}: {status}" if msg.get("id") else status


def show_progress(messages: Iterable[dict[str, Any]]) -> None:
    """Render the daemon's progress stream: rich bars on a terminal, plain lines elsewhere."""
    if not sys.stdout.isatty():
        for line in plain_lines(messages):
            out(line)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  transient=False) as progress:
        tasks: dict[str, Any] = {}
        totals: dict[str, int] = {}
        for msg in messages:
            _raise_error(msg)
            if "aux" in msg:
                continue
            ident, status = msg.get("id"), msg.get("status", "")
            if "progressDetail" not in msg:  # not a layer's: a line of its own, as docker prints it
                progress.console.print(f"{ident}: {status}" if ident else status, markup=False,
                                       highlight=False)
                continue
            detail = msg.get("progressDetail") or {}
            if ident not in tasks:
                tasks[ident] = progress.add_task(f"{ident}: {status}", total=None)
            update: dict[str, Any] = {"description": f"{ident}: {status}"}
            if detail.get("total"):
                update.update(total=detail["total"], completed=detail.get("current", 0))
                totals[ident] = detail["total"]
            elif status in _FINISHED and ident in totals:
                update["completed"] = totals[ident]
            progress.update(tasks[ident], **update)
