"""The Dockerfile as the legacy builder sees it: parsed by the `dockerfile` package (Docker's own
parser), split into meta ARGs and stages, plus the pure rules that turn an instruction into what
the builder records: the `ContainerConfig.Cmd` / history text (`/bin/sh -c #(nop) ...`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import dockerfile

from tether.image.changes import expand, split_words
from tether.rules.errors import BadRequest
from tether.rules.times import go_duration

SHELL = ["/bin/sh", "-c"]
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
SUPPORTED = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
             "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile command: `cmd` upper-case, `flags` as `{name: value}`, `args` the words."""

    cmd: str
    original: str
    flags: dict[str, str]
    args: tuple[str, ...]
    json_form: bool
    literal: bool = False  # `--label` options: their values are not expanded

@dataclass
class Stage:
    base: str                      # as written (expanded later with the meta args)
    name: str                      # lower-case `AS` name, or "" for none
    index: int
    original: str                  # the FROM line, for `Step i/N : FROM ...`
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]
    stages: list[Stage]

    def steps(self) -> int:
        """The `N` of `Step i/N`: meta ARGs, every FROM and every instruction."""
        return len(self.meta_args) + sum(1 + len(s.instructions) for s in self.stages)


def _flags(raw: tuple[str, ...], cmd: str, line: int) -> dict[str, str]:
    allowed = {"COPY": {"from", "chown", "chmod"}, "ADD": {"chown", "chmod"}, "FROM": {"platform"},
               "HEALTHCHECK": {"interval", "timeout", "start-period", "retries"}}
    flags = {}
    for flag in raw:
        name, _, value = flag.removeprefix("--").partition("=")
        if name not in allowed.get(cmd, set()):
            raise BadRequest(f"dockerfile parse error line {line}: Unknown flag: {name}")
        flags[name] = value
    return flags


def parse(text: str, target: str = "", labels: dict[str, str] | None = None) -> Dockerfile:
    """Parse a Dockerfile into meta ARGs and stages, cut after the `target` stage if given;
    `labels` (`--label`) become LABEL steps at the end of the last stage, sorted by key, as
    dockerd adds them. Errors are dockerd's, raised before the build starts."""
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise BadRequest(f"failed to parse dockerfile: {exc}") from None
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for c in commands:
        if c.cmd not in SUPPORTED:
            raise BadRequest(f"dockerfile parse error line {c.start_line}: unknown instruction: {c.cmd}")
        if c.cmd == "ONBUILD":
            _check_trigger(c.sub_cmd, c.start_line)
        inst = Instruction(c.cmd, c.original, _flags(c.flags, c.sub_cmd or c.cmd, c.start_line),
                           tuple(c.value), c.json)
        if inst.cmd == "FROM":
            stages.append(_stage(inst, len(stages)))
        elif not stages:
            if inst.cmd != "ARG":
                raise BadRequest("no build stage in current context")
            meta.append(inst)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        raise BadRequest("the Dockerfile (Dockerfile) cannot be empty")
    if target:
        wanted = [s.index for s in stages if s.name == target.lower()]
        if not wanted:
            raise BadRequest(f"failed to reach build target {target} in Dockerfile")
        stages = stages[:wanted[0] + 1]
    for key, value in sorted((labels or {}).items()):
        stages[-1].instructions.append(Instruction("LABEL", f"LABEL {key}={value}", {}, (key, value),
                                                   False, literal=True))
    return Dockerfile(meta, stages)


def _check_trigger(sub_cmd: str | None, line: int) -> None:
    """dockerd's refusals of an ONBUILD trigger."""
    prefix = f"dockerfile parse error line {line}: "
    if not sub_cmd:
        raise BadRequest(prefix + "ONBUILD requires at least one argument")
    if sub_cmd == "ONBUILD":
        raise BadRequest(prefix + "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if sub_cmd in ("FROM", "MAINTAINER"):
        raise BadRequest(prefix + f"{sub_cmd} isn't allowed as an ONBUILD trigger")


def trigger(text: str) -> Instruction:
    """An ONBUILD trigger (`RUN echo hi`) parsed as the instruction it is."""
    return parse(f"FROM scratch\n{text}\n").stages[0].instructions[0]


def _stage(inst: Instruction, index: int) -> Stage:
    args = inst.args
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise BadRequest(f"invalid name for build stage: \"{args[2]}\", name can't start with a "
                             "number or contain symbols")
        return Stage(args[0], name, index, inst.original)
    if len(args) != 1:
        raise BadRequest("FROM requires either one or three arguments")
    return Stage(args[0], "", index, inst.original)


# --- what the builder records for each instruction ---

def go_quote_list(items: list[str]) -> str:
    """Go's `%q` of a []string: `["sh" "-c"]`."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def nop(text: str, shell: list[str] = SHELL) -> list[str]:
    """ContainerConfig.Cmd of a metadata-only step (history `/bin/sh -c #(nop)  TEXT`), with
    the stage's SHELL."""
    return [*shell, "#(nop) ", text]


def nop_layer(text: str, shell: list[str] = SHELL) -> list[str]:
    """ContainerConfig.Cmd of WORKDIR, COPY and ADD (one string: `#(nop) TEXT`)."""
    return [*shell, f"#(nop) {text}"]


def command_form(inst: Instruction, shell: list[str] = SHELL) -> list[str]:
    """RUN, CMD, ENTRYPOINT: the exec form as written, or `SHELL TEXT` (`/bin/sh -c TEXT`)."""
    if inst.json_form:
        return list(inst.args)
    return [*shell, *inst.args]


def go_list(items: list[str]) -> str:
    """Go's `%v` of a []string: `[/bin/sh -c]`."""
    return "[" + " ".join(items) + "]"


_RUNE_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 39: "\\'", 92: "\\\\"}


def go_rune(value: int) -> str:
    """Go's `%q` of an int (a quoted character literal): `'\\x03'`, `'A'`."""
    if value in _RUNE_ESCAPES:
        return f"'{_RUNE_ESCAPES[value]}'"
    if 0x20 <= value < 0x7f:
        return f"'{chr(value)}'"
    if value < 0x80:
        return f"'\\x{value:02x}'"
    return f"'\\u{value:04x}'" if value <= 0xFFFF else f"'\\U{value:08x}'"


def healthcheck_text(health: dict[str, object]) -> str:
    """HEALTHCHECK's history text: Go's `%q` of the *HealthConfig (Test, Interval, Timeout,
    StartPeriod, Retries)."""
    durations = " ".join(f'"{go_duration(int(health.get(k) or 0))}"'  # type: ignore[call-overload]
                         for k in ("Interval", "Timeout", "StartPeriod"))
    return (f"HEALTHCHECK &{{{go_quote_list(list(health['Test']))} {durations} "  # type: ignore[call-overload]
            f"{go_rune(int(health.get('Retries') or 0))}}}")  # type: ignore[call-overload]


def pairs(inst: Instruction, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV and LABEL arguments (the parser gives key, value, key, value...), expanded."""
    if not inst.args or len(inst.args) % 2:
        raise BadRequest(f"{inst.cmd} requires at least one argument")
    words = list(inst.args) if inst.literal else [expand(w, env) for w in inst.args]
    return list(zip(words[::2], words[1::2]))


def arg_default(inst: Instruction, env: dict[str, str]) -> tuple[str, str | None]:
    """ARG name[=default]: the name and the expanded default (None when there is none)."""
    if len(inst.args) != 1:
        raise BadRequest("ARG requires exactly one argument")
    name, sep, value = inst.args[0].partition("=")
    return name, expand(value, env) if sep else None


def words(inst: Instruction, env: dict[str, str]) -> list[str]:
    """The expanded words of EXPOSE, USER, WORKDIR, VOLUME (exec form kept as written)."""
    if inst.json_form:
        return list(inst.args)
    return [expand(w, env) for arg in inst.args for w in split_words(arg)]


def copy_sources(inst: Instruction, env: dict[str, str]) -> tuple[list[str], str]:
    """COPY/ADD sources and destination, expanded; Docker's error for a missing destination."""
    values = [expand(w, env) for w in inst.args] if not inst.json_form else list(inst.args)
    if len(values) < 2:
        raise BadRequest(f"{inst.cmd} requires at least two arguments, but only one was provided. "
                         "Destination could not be determined.")
    return values[:-1], values[-1]


def copy_comment(cmd: str, chown: str, source_hash: str, dest: str) -> str:
    """The history text of COPY/ADD, with Docker's missing space after `--chown=...`."""
    chown_text = f"--chown={chown}" if chown else ""
    return f"{cmd} {chown_text}{source_hash} in {dest} "


def build_arg_prefix(args: dict[str, str]) -> list[str]:
    """`|N k=v ...` that RUN's recorded command starts with when build args are in effect."""
    if not args:
        return []
    items = sorted(f"{k}={v}" for k, v in args.items())
    return [f"|{len(items)}", *items]


def expose_text(ports: list[str]) -> str:
    return "EXPOSE " + " ".join(sorted(ports))
