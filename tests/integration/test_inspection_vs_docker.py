"""diff, cp, top, stats --no-stream and events (--since, --until, --filter) through the docker
CLI against tetherd and against the reference engine, compared once normalised (IDs, addresses,
pids and times). `diff` is compared as a set: Docker 20.10's overlay2 lists changes in the order
of a Go map, which is not stable."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference import reference_fixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from scenario import normalise  # noqa: E402

pytestmark = pytest.mark.integration


reference = reference_fixture("i5insp")


def _docker(host: str, *args: str) -> tuple[int, str, str]:
    r = subprocess.run(["docker", "-H", host, *args], capture_output=True, timeout=90)
    return r.returncode, normalise(r.stdout.decode()), normalise(r.stderr.decode())


def _digits_out(outcome: tuple[int, str, str]) -> tuple[int, str, str]:
    """top's pids, times and memory figures differ from run to run."""
    code, out, err = outcome
    return code, re.sub(r"\d+", "<N>", out), err


def _sorted(outcome: tuple[int, str, str]) -> tuple[int, list[str], str]:
    code, out, err = outcome
    return code, sorted(out.splitlines()), err


def _session(host: str, tmp: Path) -> dict[str, object]:
    d = lambda *args: _docker(host, *args)  # noqa: E731
    seen: dict[str, object] = {}
    start = int(time.time()) + 1  # a second of its own: earlier events (an import) stay out
    time.sleep(start - time.time())
    t0 = str(start)
    d("run", "-d", "--name", "i5i-run", "-l", "tier=web", "busybox", "sh", "-c",
      "mkdir -p /data/sub; echo hi > /data/sub/f; rm /bin/sync; echo x >> /etc/profile; "
      "exec sleep 600")
    d("run", "--name", "i5i-done", "busybox", "sh", "-c", "echo x > /etc/motd")
    d("run", "-d", "--name", "i5i-wd", "-w", "/made/here", "busybox", "sleep", "600")
    d("exec", "i5i-run", "true")  # the shell has done its work once an exec has run
    for name in ("i5i-run", "i5i-done", "i5i-wd"):
        seen[f"diff {name}"] = _sorted(d("diff", name))
    seen["top"] = _digits_out(d("top", "i5i-run"))
    seen["top -o"] = _digits_out(d("top", "i5i-run", "-o", "pid,comm"))
    seen["top stopped"] = d("top", "i5i-done")
    seen["stats"] = d("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "i5i-run")
    seen["cp out"] = d("cp", "i5i-run:/data/sub/f", str(tmp / "f"))
    seen["cp out content"] = (tmp / "f").read_text()
    seen["cp stopped hosts"] = d("cp", "i5i-done:/etc/hosts", str(tmp / "hosts"))
    seen["cp stopped hosts content"] = normalise((tmp / "hosts").read_text())
    seen["cp in"] = d("cp", str(tmp / "f"), "i5i-done:/copied")
    seen["diff after cp in"] = _sorted(d("diff", "i5i-done"))
    seen["cp missing"] = d("cp", "i5i-run:/nope", str(tmp / "nope"))
    d("pause", "i5i-run")
    d("unpause", "i5i-run")
    d("stop", "-t", "1", "i5i-run")
    d("rm", "i5i-done")
    until = str(int(time.time()) + 1)
    fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"
    for label, filters in {
        "all": [], "container": ["--filter", "container=i5i-run"],
        "die": ["--filter", "event=die", "--filter", "event=stop"],
        "network": ["--filter", "type=network"], "label": ["--filter", "label=tier=web"],
        "image": ["--filter", "image=busybox", "--filter", "event=create"],
        "unknown key": ["--filter", "colour=red", "--filter", "container=i5i-done"],
    }.items():
        seen[f"events {label}"] = d("events", "--since", t0, "--until", until, *filters,
                                    "--format", fmt)
    return seen


def test_inspection_commands_vs_docker(daemon, reference, tmp_path):
    results = {}
    for engine, host in (("docker", reference.host), ("tether", daemon.host)):
        (tmp_path / engine).mkdir()
        try:
            results[engine] = _session(host, tmp_path / engine)
        finally:
            _docker(host, "rm", "-f", "i5i-run", "i5i-done", "i5i-wd")
    for key, value in results["docker"].items():
        assert results["tether"][key] == value, key
    assert results["tether"]["diff i5i-run"][1] == [
        "A /data", "A /data/sub", "A /data/sub/f", "A /etc/profile", "C /bin", "C /etc",
        "D /bin/sync"]
    assert results["tether"]["cp stopped hosts content"].endswith("\n<IP>\t<ID>")
    assert results["tether"]["events network"][1].splitlines()[:2] == [
        "network connect bridge", "network connect bridge"]
