"""`docker import --change` / `docker commit --change`: Dockerfile instructions applied to a config.

Docker accepts only the instructions that change metadata (its validCommitCommands list) and runs
them through the same Dockerfile parser as `docker build`, so quoting, `$VAR` expansion, JSON versus
shell form and the error texts below are Docker's.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from tether.rules.errors import BadRequest
from tether.rules.times import go_duration_ns

Config = dict[str, Any]

_SH = ["/bin/sh", "-c"]
_PROTOCOLS = ("tcp", "udp", "sctp")
_WHITESPACE = re.compile(r"\s+")
_HEALTH_OPTIONS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                   "start-interval": "StartInterval"}


# --- words and expansion (Docker's parseWords and shell.Lex.ProcessWord) ---

def split_words(text: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes for the later expansion."""
    words: list[str] = []
    word = ""
    quote = ""
    escaped = False
    for ch in text:
        if escaped:
            word, escaped = word + ch, False
        elif ch == "\\":
            word, escaped = word + ch, True
        elif quote:
            word += ch
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            word, quote = word + ch, ch
        elif ch.isspace():
            if word:
                words.append(word)
            word = ""
        else:
            word += ch
    if word:
        words.append(word)
    return words


def expand(word: str, env: dict[str, str]) -> str:
    """Remove quotes and escapes and substitute `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR:+x}`."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(word):
        ch = word[i]
        if quote == "'" and ch != "'":
            out.append(ch)
        elif ch in "'\"" and quote in ("", ch):
            quote = "" if quote else ch
        elif ch == "\\" and i + 1 < len(word) and (not quote or word[i + 1] in '"$\\'):
            i += 1
            out.append(word[i])
        elif ch == "$":
            value, i = _variable(word, i + 1, env)
            out.append(value)
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _variable(word: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """The value of the variable starting at word[i] (just after `$`) and the index after it."""
    if i < len(word) and word[i] == "{":
        end = word.find("}", i)
        if end < 0:
            raise BadRequest(f"missing '}}' in '{word}'")
        body = word[i + 1:end]
        name, op, alt = re.match(r"^(\w*)(:?[-+]?)(.*)$", body, re.S).groups()  # type: ignore[union-attr]
        value = env.get(name, "")
        if op in (":-", "-"):
            value = value if (value if op == ":-" else name in env) else expand(alt, env)
        elif op in (":+", "+"):
            value = expand(alt, env) if (value if op == ":+" else name in env) else ""
        return value, end + 1
    match = re.match(r"\w+", word[i:])
    if not match:
        return "$", i
    return env.get(match.group(), ""), i + match.end()


def _env_map(config: Config) -> dict[str, str]:
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in config.get("Env") or [])


# --- the instructions ---

def _name_values(instr: str, rest: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `a=b c=d`, or the legacy `name value with spaces`."""
    words = split_words(rest)
    if not words:
        raise BadRequest(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest.strip(), maxsplit=1)
        if len(parts) < 2:
            raise BadRequest(f"{instr} must have two arguments")
        return [(expand(parts[0], env), expand(parts[1], env))]
    pairs = []
    for word in words:
        if "=" not in word:
            raise BadRequest(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        key, value = word.split("=", 1)
        pairs.append((expand(key, env), expand(value, env)))
    return pairs


def _json_or_shell(rest: str) -> list[str]:
    """Exec form when `rest` is a JSON array of strings, else `/bin/sh -c rest` like Docker."""
    text = rest.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return _SH + ([text] if text else [])


def _expanded_words(instr: str, rest: str, env: dict[str, str]) -> list[str]:
    words = [expand(w, env) for w in split_words(rest)]
    if not words:
        raise BadRequest(f"{instr} requires at least one argument")
    return words


def _one_word(instr: str, rest: str, env: dict[str, str]) -> str:
    words = [expand(w, env) for w in split_words(rest)]
    if len(words) != 1:
        raise BadRequest(f"{instr} requires exactly one argument")
    return words[0]


def _env(config: Config, rest: str) -> None:
    env = config.get("Env") or []
    for key, value in _name_values("ENV", rest, _env_map(config)):
        entry = f"{key}={value}"
        index = next((n for n, e in enumerate(env) if e.split("=", 1)[0] == key), None)
        if index is None:
            env.append(entry)
        else:
            env[index] = entry
    config["Env"] = env


def _label(config: Config, rest: str) -> None:
    labels = config.get("Labels") or {}
    labels.update(_name_values("LABEL", rest, _env_map(config)))
    config["Labels"] = labels


def port_specs(spec: str) -> list[str]:
    """`80`, `443/udp`, `8000-8002` (and `ip:host:` prefixes, ignored) -> ["80/tcp", ...]."""
    port, _, proto = spec.rpartition(":")[2].partition("/")
    proto = proto or "tcp"
    if proto.lower() not in _PROTOCOLS:
        raise BadRequest(f"invalid proto: {proto}")
    first, _, last = port.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise BadRequest(f"Invalid containerPort: {port}")
    start, end = int(first), int(last or first)
    if end < start:
        raise BadRequest(f"Invalid range specified for the Port: {port}")
    return [f"{n}/{proto.lower()}" for n in range(start, end + 1)]


def _expose(config: Config, rest: str) -> None:
    ports = config.get("ExposedPorts") or {}
    for word in _expanded_words("EXPOSE", rest, _env_map(config)):
        ports.update({p: {} for p in port_specs(word)})
    config["ExposedPorts"] = ports


def _volume(config: Config, rest: str) -> None:
    exec_form = _json_or_shell(rest)
    paths = (exec_form if exec_form[:2] != _SH
             else _expanded_words("VOLUME", rest, _env_map(config)))
    if not paths:
        raise BadRequest("VOLUME requires at least one argument")
    volumes = config.get("Volumes") or {}
    for path in paths:
        if not path.strip():
            raise BadRequest("VOLUME specified can not be an empty string")
        volumes[path] = {}
    config["Volumes"] = volumes


def _workdir(config: Config, rest: str) -> None:
    requested = _one_word("WORKDIR", rest, _env_map(config))
    if not requested.startswith("/"):
        requested = f"{config.get('WorkingDir') or ''}/{requested}"
    parts: list[str] = []
    for part in requested.split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part not in ("", "."):
            parts.append(part)
    config["WorkingDir"] = "/" + "/".join(parts)


def _user(config: Config, rest: str) -> None:
    config["User"] = _one_word("USER", rest, _env_map(config))


def _cmd(config: Config, rest: str) -> None:
    config["Cmd"] = _json_or_shell(rest)


def _entrypoint(config: Config, rest: str) -> None:
    config["Entrypoint"] = _json_or_shell(rest)


def _onbuild(config: Config, rest: str) -> None:
    trigger = rest.strip()
    first = trigger.split(None, 1)[0].upper() if trigger else ""
    if not first:
        raise BadRequest("ONBUILD requires at least one argument")
    if first == "ONBUILD":
        raise BadRequest("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if first in ("FROM", "MAINTAINER"):
        raise BadRequest(f"{first} isn't allowed as an ONBUILD trigger")
    config["OnBuild"] = (config.get("OnBuild") or []) + [trigger]


def parse_duration(text: str) -> int:
    """A HEALTHCHECK duration (`1m30s`, `500ms`, no sign) in nanoseconds."""
    ns = None if text[:1] in "+-" else go_duration_ns(text)
    if ns is None:
        raise BadRequest(f'time: invalid duration "{text}"')
    return ns


def _health_option(options: dict[str, int], flag: str) -> None:
    """One `--name=value` HEALTHCHECK flag into its Healthcheck field."""
    name, _, value = flag.partition("=")
    if name == "retries":
        if not value.isdigit():
            raise BadRequest(f'strconv.ParseInt: parsing "{value}": invalid syntax')
        options["Retries"] = int(value)
    elif name in _HEALTH_OPTIONS:
        options[_HEALTH_OPTIONS[name]] = parse_duration(value)
    else:
        raise BadRequest(f"Unknown flag: {name}")


def set_healthcheck(config: Config, rest: str) -> None:
    options: dict[str, int] = {}
    text = rest.strip()
    while match := re.match(r"--(\S*)\s*", text):
        _health_option(options, match.group(1))
        text = text[match.end():]
    kind, command = (_WHITESPACE.split(text, maxsplit=1) + [""])[:2]
    if kind.upper() == "NONE":
        if command or options:
            raise BadRequest("HEALTHCHECK NONE takes no arguments")
        config["Healthcheck"] = {"Test": ["NONE"]}
        return
    if kind.upper() != "CMD":
        raise BadRequest(f'Unknown type "{kind.upper()}" in HEALTHCHECK (try CMD)')
    test = _json_or_shell(command)
    test = ["CMD-SHELL", test[2]] if test[:2] == _SH and len(test) == 3 else ["CMD", *test]
    config["Healthcheck"] = {"Test": test, **{k: v for k, v in options.items() if v}}


_INSTRUCTIONS: dict[str, Callable[[Config, str], None]] = {
    "cmd": _cmd, "entrypoint": _entrypoint, "env": _env, "expose": _expose, "healthcheck": set_healthcheck,
    "label": _label, "onbuild": _onbuild, "user": _user, "volume": _volume, "workdir": _workdir,
}


def apply_changes(config: Config, changes: list[str]) -> Config:
    """Apply each `--change` line, in order, to a copy of the container config `config`."""
    result = json.loads(json.dumps(config))
    for change in changes:
        instr, rest = (_WHITESPACE.split(change.strip(), maxsplit=1) + [""])[:2]
        handler = _INSTRUCTIONS.get(instr.lower())
        if handler is None:
            raise BadRequest(f"{instr.lower()} is not a valid change command")
        handler(result, rest)
    return result
