"""tether's help is in its own words: no sentence of a command summary, description or option help
repeats one of the docker CLI's help for the same commands.

Docker's flags, usage lines, output and error texts are interface and kept; its prose is not. The
docker CLI's side comes from running `docker [COMMAND...] --help` (no daemon needed); its
non-terminal output wraps option help at 80 columns, so continuation lines are joined back.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import click
import pytest

from tether.cli import main

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_OPTION = re.compile(r"^\s+(?:-\w, )?--[\w-]+(?: \w+)?\s{2,}(\S.*)$")
_COMMAND = re.compile(r"^\s+[\w-]+\*?\s{2,}(\S.*)$")
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<=[.;!?])\s+")


def sentences(text: str) -> set[str]:
    """A help text's sentences, compared loosely: case, "docker"/"tether", a trailing period and
    a "(default ...)" tail do not count; fragments under three words are too common to judge."""
    found = set()
    for part in [text] + _SENTENCE_END.split(" ".join(text.split())):
        part = re.sub(r"\s*\(default [^)]*\)\s*$", "", part.lower().replace("docker", "tether"))
        part = part.strip().rstrip(".")
        if len(part.split()) >= 3:
            found.add(part)
    return found


def docker_help_texts(text: str) -> list[str]:
    """The description, command summaries and option helps of one `docker ... --help` output."""
    texts: list[str] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("Usage:"):
            section, texts = "description", texts + [""]
        elif _SECTION.match(line):
            section = line.strip()
        elif not line.strip():
            continue
        elif section == "description":
            texts[-1] = f"{texts[-1]} {line.strip()}".lstrip()
        elif section.endswith("Commands:") and (m := _COMMAND.match(line)):
            texts.append(m.group(1))
        elif "Options" in section and (m := _OPTION.match(line)):
            texts.append(m.group(1))
        elif "Options" in section and texts:
            texts[-1] += " " + line.strip()  # an option help wrapped onto the next line
    return texts


def tether_help_texts() -> dict[str, list[str]]:
    """Every command path of the tether CLI ("" for the root) -> its help and option helps."""
    main._register()
    found: dict[str, list[str]] = {}

    def walk(command: click.Command, path: str) -> None:
        found[path] = [command.help or ""] + [p.help or "" for p in command.params
                                               if isinstance(p, click.Option)]
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(main.cli, "")
    return found


def test_sentences_are_compared_loosely_but_whole() -> None:
    assert sentences("Show the Docker version information") == {"show the tether version information"}
    assert sentences("Remove one or more volumes. You cannot remove a volume.") == {
        "remove one or more volumes. you cannot remove a volume", "remove one or more volumes",
        "you cannot remove a volume"}
    assert sentences("Show logs since timestamp (e.g. 42m for 42 minutes)") == {
        "show logs since timestamp (e.g. 42m for 42 minutes)"}
    assert sentences("Username") == set()


def test_docker_help_parsing_joins_wrapped_option_help() -> None:
    text = ("Usage:  docker run [OPTIONS] IMAGE\n\nCreate and run a new container\nfrom an image\n\n"
            "Commands:\n  ls          List volumes\n\nOptions:\n"
            "      --add-host list     Add a custom host-to-IP mapping\n"
            "                          (host:ip)\n  -a, --attach list       Attach to STDIN\n")
    assert docker_help_texts(text) == ["Create and run a new container from an image", "List volumes",
                                       "Add a custom host-to-IP mapping (host:ip)", "Attach to STDIN"]


@pytest.mark.skipif(not os.access(DOCKER, os.X_OK), reason="docker CLI not installed")
def test_no_tether_help_sentence_repeats_the_docker_clis() -> None:
    ours = tether_help_texts()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    theirs: dict[str, str] = {}
    for path in ours:
        done = subprocess.run([DOCKER, *path.split(), "--help"], capture_output=True, text=True,
                              env=env, check=False)
        if done.returncode == 0 and done.stdout.startswith(f"Usage:  docker {path}".rstrip()):
            for text in docker_help_texts(done.stdout):
                for sentence in sentences(text):
                    theirs.setdefault(sentence, f"docker {path}".strip())
    assert len(theirs) > 300  # the docker CLI's help was read, not an error text
    repeated = sorted(f"tether {path}: {s!r} (as {theirs[s]})".replace("tether :", "tether:")
                      for path, texts in ours.items() for text in texts for s in sentences(text)
                      if s in theirs)
    assert repeated == []
