"""The output of every `inspect` command, as docker's cli/command/inspect prints it for all object
kinds: the objects found, then the errors of the names that were not (exit status 1).

One place so that `inspect` and `volume inspect` cannot drift apart: indented JSON by default,
compact JSON for `--format json`, else the template once per object, where an execution error
flushes an empty line first, as docker's inspector does.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Iterable

from tether.cli import formatting
from tether.cli.client import CliError


def print_inspected(names: Iterable[str], lookup: Callable[[str], dict[str, Any]],
                    fmt: str | None,
                    view: Callable[[dict[str, Any]], Any] = lambda obj: obj) -> None:
    """Look each name up (a CliError is that name's error) and print what was found in `fmt`;
    `view` is what a template sees of an object (the JSON forms always print it as it came)."""
    from tether.cli.template import ExecError, Template, TemplateError

    template = None
    if fmt and fmt != "json":
        try:
            template = Template(fmt, missing_key_error=True)
        except TemplateError as exc:
            raise CliError(f"template parsing error: {exc}", 64) from exc
    found, errors = [], []
    for name in names:
        try:
            found.append(lookup(name))
        except CliError as exc:
            errors.append(exc.message)
    if fmt == "json":
        _line(json.dumps(found, ensure_ascii=False, separators=(",", ":")))
    elif template is None:
        _line(formatting.go_json_indent(found) if found else "[]")
    else:
        for obj in found:
            try:
                _line(template.render(view(obj)))
            except ExecError as exc:
                _line("")
                raise CliError(f"template parsing error: {exc}") from exc
    if errors:
        raise CliError("\n".join(errors))


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")
