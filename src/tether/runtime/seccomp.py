"""Docker's seccomp profile format -> the OCI `linux.seccomp` section runc compiles.

A profile (tether's default, the daemon's `--seccomp-profile`, or `--security-opt seccomp=FILE`)
is written for every architecture and capability set; a container gets the rules that apply to it,
as moby's setupSeccomp picks them:
- `archMap`: the entry of the daemon's architecture gives `architectures` (it and its
  sub-architectures); a profile may list `architectures` itself instead, never both.
- `includes` / `excludes` of a rule: `caps` against the container's final capability set (every
  included one must be held; any excluded one held drops the rule), `arches` against the daemon's
  architecture in Go's names (amd64, arm64...), `minKernel` ("<kernel>.<major>") against the
  running kernel.
- `name` or `names` (not both). Names the machine's libseccomp does not know are dropped here, as
  runc would skip them, so config.json lists only what is enforced; a rule left without names
  goes.
- `defaultErrnoRet` (the errno of the default action) is kept; Docker 20.10 ignores it, later
  Docker and runc 1.1 honour it.
A profile with neither `defaultAction` nor `syscalls` means no filter (`None`), as in Docker.

Pure: the machine's facts (architecture, kernel, known names) come in as arguments; the cache
lives in tether.runtime.seccomp_host.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tether.rules.portspec import go_quote

# Go's architecture (the daemon's GOARCH, as profiles name it in `arches`) by the kernel's machine.
_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i486": "x86", "i586": "x86",
            "i686": "x86", "aarch64": "arm64", "arm64": "arm64", "armv6l": "arm", "armv7l": "arm",
            "armv8l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
            "s390": "s390", "mips64": "mips64", "riscv64": "riscv64"}

# libseccomp's architecture tokens by Go's architecture name.
_SCMP_ARCH = {"x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM",
              "arm64": "SCMP_ARCH_AARCH64", "mips64": "SCMP_ARCH_MIPS64",
              "ppc": "SCMP_ARCH_PPC", "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
              "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
              "riscv64": "SCMP_ARCH_RISCV64"}

DECODE_PREFIX = "Decoding seccomp profile failed: "


class ProfileError(ValueError):
    """A profile Docker refuses; `str(exc)` is dockerd's text."""


@dataclass(frozen=True)
class Machine:
    """What the translation needs to know about the host."""

    arch: str                              # Go's name: amd64, arm64...
    kernel: tuple[int, int]                # (kernel, major) of the running kernel: 6.1 -> (6, 1)
    known: Callable[[str], bool] = lambda name: True   # does libseccomp know this syscall?


def go_arch(machine: str) -> str:
    """Go's architecture name for `uname -m` (unknown machines keep their own name)."""
    return _GO_ARCH.get(machine, machine)


def kernel_version(release: str) -> tuple[int, int]:
    """(kernel, major) of a release string: "6.1.0-13-amd64" -> (6, 1); minor and suffix ignored."""
    parts = release.split(".", 2)
    digits = [int("".join(ch for ch in p[:3] if ch.isdigit()) or 0) for p in parts[:2]]
    return (digits + [0, 0])[0], (digits + [0, 0])[1]


# ---- decoding: Go's encoding/json into moby's types, with Go's error texts ------------------
_UINT = "uint"
_FILTER = {"caps": "[]string", "arches": "[]string", "minKernel": "*seccomp.KernelVersion"}
_ARG = {"index": "uint", "value": "uint64", "valueTwo": "uint64",
        "op": "specs.LinuxSeccompOperator"}
_SYSCALL = {"name": "string", "names": "[]string", "action": "specs.LinuxSeccompAction",
            "errnoRet": "*uint", "args": "[]*specs.LinuxSeccompArg", "comment": "string",
            "includes": "seccomp.Filter", "excludes": "seccomp.Filter"}
_ARCH = {"architecture": "specs.Arch", "subArchitectures": "[]specs.Arch"}
_PROFILE = {"defaultAction": "specs.LinuxSeccompAction", "defaultErrnoRet": "*uint",
            "architectures": "[]specs.Arch", "archMap": "[]seccomp.Architecture",
            "syscalls": "[]*seccomp.Syscall"}


def _kind(value: Any) -> str:
    """encoding/json's name for a JSON value in its type errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _type_error(value: Any, struct: str, path: str, go_type: str) -> ProfileError:
    return ProfileError(f"{DECODE_PREFIX}json: cannot unmarshal {_kind(value)} into Go struct "
                        f"field {struct}.{path} of type {go_type}")


def _check_value(value: Any, go_type: str, struct: str, path: str) -> None:
    """Is `value` what Go would decode into `go_type`? null decodes into anything; Go's errors
    name the type behind a pointer."""
    if value is None:
        return
    base = go_type.lstrip("*")
    if base.startswith("[]"):
        if not isinstance(value, list):
            raise _type_error(value, struct, path, base)
        for item in value:
            _check_value(item, base[2:], struct, path)
    elif base in ("uint", "uint64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, struct, path, base)
        limit = 1 << 64
        if value != int(value) or not 0 <= value < limit:  # Go names the number here
            raise ProfileError(f"{DECODE_PREFIX}json: cannot unmarshal number {json.dumps(value)} "
                               f"into Go struct field {struct}.{path} of type {base}")
    elif base == "seccomp.KernelVersion":
        if not isinstance(value, str):
            raise ProfileError(f"{DECODE_PREFIX}invalid kernel version: {json.dumps(value)}, "
                               f'expected "<kernel>.<major>": json: cannot unmarshal '
                               f"{_kind(value)} into Go value of type string")
        parse_min_kernel(value)
    elif base in ("string", "specs.LinuxSeccompAction", "specs.Arch",
                  "specs.LinuxSeccompOperator"):
        if not isinstance(value, str):
            raise _type_error(value, struct, path, base)
    else:  # a struct
        if not isinstance(value, dict):
            raise _type_error(value, struct, path, base)
        fields, name = {"seccomp.Filter": (_FILTER, "Filter"),
                        "specs.LinuxSeccompArg": (_ARG, "LinuxSeccompArg"),
                        "seccomp.Syscall": (_SYSCALL, "Syscall"),
                        "seccomp.Architecture": (_ARCH, "Architecture")}[base]
        for key, sub in fields.items():
            if key in value:
                _check_value(value[key], sub, name, f"{path}.{key}")


def parse_min_kernel(text: str) -> tuple[int, int] | None:
    """moby's KernelVersion: "" is none, else "<kernel>.<major>" of two uint8 other than 0.0."""
    if text == "":
        return None
    quoted = json.dumps(text)
    expected = f'invalid kernel version: {quoted}, expected "<kernel>.<major>"'
    parts = text.split(".", 2)
    if len(parts) != 2:
        raise ProfileError(DECODE_PREFIX + expected)
    numbers = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or int(part) > 255:
            why = "value out of range" if part.isascii() and part.isdigit() else "invalid syntax"
            raise ProfileError(f'{DECODE_PREFIX}{expected}: strconv.ParseUint: parsing '
                               f'"{part}": {why}')
        numbers.append(int(part))
    if numbers == [0, 0]:
        raise ProfileError(f"{DECODE_PREFIX}{expected}: version cannot be 0.0")
    return numbers[0], numbers[1]


def _go_char(ch: str) -> str:
    """encoding/json's quoteChar of the byte it stopped at."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    if ord(ch) > 0x7F:
        return f"'\\x{ch.encode(errors='surrogatepass')[0]:02x}'"
    return "'" + go_quote(ch)[1:-1] + "'"


def _open_container(text: str) -> str:
    """'{' or '[': the innermost value still open at the end of `text` (strings skipped)."""
    stack, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _go_syntax_error(text: str, exc: json.JSONDecodeError) -> str:
    """Go's encoding/json text for the syntax error Python's decoder found."""
    pos, msg = exc.pos, exc.msg
    if msg.startswith("Invalid \\escape"):
        pos += 1
    if pos >= len(text) or msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    char = _go_char(text[pos])
    if msg.startswith("Expecting property name"):
        return f"invalid character {char} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {char} after object key"
    if msg.startswith("Expecting ','"):
        where = "object key:value pair" if _open_container(text[:pos]) == "{" else "array element"
        return f"invalid character {char} after {where}"
    if msg.startswith("Extra data"):
        return f"invalid character {char} after top-level value"
    if msg.startswith("Invalid control character"):
        return f"invalid character {char} in string literal"
    if msg.startswith("Invalid \\"):
        return f"invalid character {char} in string escape code"
    return f"invalid character {char} looking for beginning of value"


def _no_constant(name: str) -> None:
    raise json.JSONDecodeError("Expecting value", name, 0)


def load_profile(text: str) -> dict[str, Any]:
    """A profile's JSON text, decoded and type-checked as dockerd decodes it."""
    try:
        profile = json.loads(text, parse_constant=_no_constant)  # Go has no NaN/Infinity
    except json.JSONDecodeError as exc:
        message = (_go_syntax_error(text, exc) if exc.doc == text
                   else f"invalid character {_go_char(exc.doc[0])} looking for beginning of value")
        raise ProfileError(f"{DECODE_PREFIX}{message}") from None
    if profile is None:
        return {}
    if not isinstance(profile, dict):
        raise ProfileError(f"{DECODE_PREFIX}json: cannot unmarshal {_kind(profile)} "
                           "into Go value of type seccomp.Seccomp")
    for key, go_type in _PROFILE.items():
        if key in profile:
            _check_value(profile[key], go_type, "Seccomp", key)
    return profile


# ---- translation ----------------------------------------------------------------------------
def _applies(rule: dict[str, Any], caps: frozenset[str], machine: Machine) -> bool:
    """moby's include/exclude filter of one rule."""
    excludes = rule.get("excludes") or {}
    includes = rule.get("includes") or {}
    if machine.arch in (excludes.get("arches") or []):
        return False
    if any(cap in caps for cap in excludes.get("caps") or []):
        return False
    low = parse_min_kernel(excludes.get("minKernel") or "")
    if low is not None and machine.kernel >= low:
        return False
    arches = includes.get("arches") or []
    if arches and machine.arch not in arches:
        return False
    if not all(cap in caps for cap in includes.get("caps") or []):
        return False
    low = parse_min_kernel(includes.get("minKernel") or "")
    return low is None or machine.kernel >= low


def _architectures(profile: dict[str, Any], machine: Machine) -> list[str]:
    if profile.get("architectures") and profile.get("archMap"):
        raise ProfileError("'architectures' and 'archMap' were specified in the seccomp profile, "
                           "use either 'architectures' or 'archMap'")
    arches = list(profile.get("architectures") or [])
    native = _SCMP_ARCH.get(machine.arch)
    for entry in profile.get("archMap") or []:
        if native and entry.get("architecture") == native:
            arches += [native, *(entry.get("subArchitectures") or [])]
            break
    return arches


def _oci_rule(rule: dict[str, Any], machine: Machine) -> dict[str, Any] | None:
    if rule.get("name") and rule.get("names"):
        raise ProfileError("'name' and 'names' were specified in the seccomp profile, use either "
                           "'name' or 'names'")
    names = [rule["name"]] if rule.get("name") else list(rule.get("names") or [])
    kept = [n for n in names if machine.known(n)]
    if names and not kept:
        return None
    out: dict[str, Any] = {"names": kept, "action": rule.get("action") or ""}
    if rule.get("errnoRet") is not None:
        out["errnoRet"] = rule["errnoRet"]
    args = [{"index": a.get("index") or 0, "value": a.get("value") or 0,
             **({"valueTwo": a["valueTwo"]} if a.get("valueTwo") else {}), "op": a.get("op") or ""}
            for a in rule.get("args") or [] if a is not None]
    if args:
        out["args"] = args
    return out


def to_oci(profile: dict[str, Any], caps: Iterable[str], machine: Machine) -> dict[str, Any] | None:
    """The OCI `linux.seccomp` section of `profile` for a container holding `caps`."""
    rules = [r for r in profile.get("syscalls") or [] if r is not None]
    if not profile.get("defaultAction") and not rules:
        return None
    held = frozenset(caps)
    oci: dict[str, Any] = {"defaultAction": profile.get("defaultAction") or ""}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = _architectures(profile, machine)
    if arches:
        oci["architectures"] = arches
    syscalls = [_oci_rule(r, machine) for r in rules if _applies(r, held, machine)]
    oci["syscalls"] = [r for r in syscalls if r is not None]
    return oci
