"""`.dockerignore` patterns with Docker's rules (moby/patternmatcher), pure and stdlib only.

The CLI filters the context it sends with these rules and the daemon applies them again to what
it receives, so both must agree: patterns are cleaned like Go's filepath.Clean, a leading `/` is
dropped, `!` re-includes, later patterns win, and a path is excluded when it or one of its parent
directories matches (so `dir` excludes everything below it).
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_ESCAPED = set(".$+(){}^|")


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _clean(path: str) -> str:
    """Go's filepath.Clean for slash paths."""
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def compile_pattern(text: str) -> re.Pattern[str]:
    """The regular expression patternmatcher builds for one pattern."""
    out = "^"
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "*":
            if text[i + 1:i + 2] == "*":
                i += 1
                if text[i + 1:i + 2] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(text) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in _ESCAPED:
            out += "\\" + ch
        elif ch == "\\":
            if i + 1 < len(text):
                i += 1
                out += re.escape(text[i])
            else:
                out += "\\\\"
        else:
            out += ch
        i += 1
    return re.compile(out + "$", re.S)


def parse(text: str) -> list[Pattern]:
    """The patterns of a .dockerignore file: comments (`#` first) and blank lines skipped."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
            if not line:
                continue
        line = _clean(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
        try:
            regex = compile_pattern(line)
        except re.error:
            continue  # patternmatcher reports bad patterns at match time; such a pattern never matches
        patterns.append(Pattern(line, exclusion, regex))
    return patterns


def excluded(path: str, patterns: list[Pattern]) -> bool:
    """Whether the context path `path` (slash-separated, relative) is left out of the context."""
    path = _clean(path)
    parent = posixpath.dirname(path) or "."
    parent_dirs = parent.split("/")
    matched = False
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue
        match = bool(pattern.regex.match(path))
        if not match and parent != ".":
            match = any(pattern.regex.match("/".join(parent_dirs[:i + 1]))
                        for i in range(len(parent_dirs)))
        if match:
            matched = not pattern.exclusion
    return matched


def may_reinclude(patterns: list[Pattern]) -> bool:
    """True when some `!` pattern could bring back a file below an excluded directory, so a
    walker cannot skip excluded directories wholesale."""
    return any(p.exclusion for p in patterns)
