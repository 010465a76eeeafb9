"""Docker names made into Kubernetes names (DNS-1035 labels), and collisions refused.

Container names, link aliases and network aliases may hold upper case, `_` and `.`, start with a
digit and run to any length; Pod and Service names must be DNS-1035 labels: lower-case letters,
digits and `-`, a letter first, a letter or digit last, 63 characters at most. The mangling is:
lower-case everything, turn each run of other characters into one `-`, drop dashes at either
end, put `x-` in front of a name that does not start with a letter, cut at 63 characters. Two
different Docker names that mangle to the same Kubernetes name (`my_db` and `my.db`) would make
one object silently stand for both, so that is an error naming both.
"""
from __future__ import annotations

import re

MAX_LENGTH = 63
_VALID = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


class NameCollision(ValueError):
    """Two Docker names give one Kubernetes name."""


def dns1035(name: str) -> str:
    """`name` as a DNS-1035 label, by the rule in this module's docstring."""
    label = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not label[:1].isalpha():
        label = "x-" + label if label else "x"
    return label[:MAX_LENGTH].rstrip("-")


def is_dns1035(name: str) -> bool:
    return len(name) <= MAX_LENGTH and _VALID.fullmatch(name) is not None


class NameTable:
    """The Kubernetes names given out for one kind of object, and the Docker name behind each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._origin: dict[str, str] = {}

    def name(self, docker_name: str) -> str:
        """The Kubernetes name of `docker_name` (a leading `/` ignored); NameCollision when an
        other Docker name already has it."""
        docker_name = docker_name.removeprefix("/")
        label = dns1035(docker_name)
        origin = self._origin.setdefault(label, docker_name)
        if origin != docker_name:
            raise NameCollision(
                f"{self.kind} names {origin!r} and {docker_name!r} both become {label!r} as "
                "Kubernetes names; rename one of them")
        return label
