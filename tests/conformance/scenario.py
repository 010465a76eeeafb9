"""Scenario files and output normalisation for the conformance runner (pure: unit-testable).

A scenario is a text file with one docker CLI command a line (without the leading `docker`),
`#` comments and blank lines ignored. The same commands run against tetherd and a reference
Docker; what legitimately differs between two engines (IDs, addresses, ephemeral ports,
generated names, times, column padding that follows those) is normalised away before comparing.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    scenario: str
    index: int
    line: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.line)

    @property
    def case_id(self) -> str:
        return f"{self.scenario}:{self.index:02d}:{self.line}"


def parse(name: str, text: str) -> list[Step]:
    """The commands of one scenario in order; comments (whole-line or trailing) are dropped."""
    steps = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        steps.append(Step(name, len(steps), line))
    return steps


def load(directory: Path) -> list[Step]:
    return [step for path in sorted(directory.glob("*.txt"))
            for step in parse(path.stem, path.read_text())]


_RULES: list[tuple[str, str]] = [
    (r"tetherd?", "docker"),
    (r"\b[0-9a-f]{64}\b", "<ID>"),
    (r"\b[0-9a-f]{12}\b", "<ID>"),
    (r"\b(?:172|10)\.\d+\.\d+\.\d+\b", "<IP>"),
    (r"\b\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?", "<TIME>"),
    (r"(?<=:)(?:3[2-9]|[4-6]\d)\d{3}\b", "<PORT>"),
    (r"(?<![\w.-])[a-z]+_[a-z]+(?![\w.-])", "<NAME>"),
    (r"Less than a second|About an? \w+|\d+ (?:second|minute|hour|day|week|month|year)s?",
     "<DUR>"),
]


def normalise(text: str) -> str:
    """Engine-independent form of a command's output, line by line, trailing blanks dropped."""
    lines = []
    for line in text.splitlines():
        for pattern, repl in _RULES:
            line = re.sub(pattern, repl, line)
        lines.append(re.sub(r" {2,}", "  ", line).rstrip())
    return "\n".join(lines)
