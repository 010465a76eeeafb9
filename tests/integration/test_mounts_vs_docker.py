"""Mounts side by side: the docker CLI against Docker 20.10 and against tetherd.

Binds, named and anonymous volumes, tmpfs, --volumes-from, --read-only and docker cp through
volumes and binds: the same commands on both engines, outputs compared after the paths that
must differ (data roots, random IDs) are normalised. Error texts are compared whole.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from reference import side_by_side

pytestmark = pytest.mark.integration

ENGINES = ("docker", "tether")
_HEX = re.compile(r"\b[0-9a-f]{64}\b")
_VOLUMES = re.compile(r"/\S*?/volumes/")


def norm(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return _HEX.sub("<id>", _VOLUMES.sub("<volumes>/", text))


@pytest.fixture(scope="module")
def engines(daemon) -> Iterator[dict]:
    with side_by_side("i8b-mounts", daemon.docker) as both:
        tar = _volume_image_tar()
        for name in ENGINES:
            r = both[name]("import", "-c", "VOLUME /data", "-c", 'CMD ["sh"]', "-",
                           "i8b-volimg:latest", input=tar)
            assert r.returncode == 0, r.stderr
        yield both
        for name in ENGINES:
            both[name]("rmi", "-f", "i8b-volimg:latest")


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="i8b-mounts-", dir="/var/tmp"))
    try:
        (path / "in").mkdir()
        (path / "in" / "file").write_text("from the host\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Names:
    """Unique container and volume names for one test, removed from both engines after it."""

    def __init__(self, engines: dict) -> None:
        self.engines = engines
        self.tag = uuid.uuid4().hex[:8]
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def container(self, base: str) -> str:
        self.containers.append(f"i8b-{base}-{self.tag}")
        return self.containers[-1]

    def volume(self, base: str) -> str:
        self.volumes.append(f"i8b-{base}-{self.tag}")
        return self.volumes[-1]

    def clean(self) -> None:
        for name in ENGINES:
            run = self.engines[name]
            if self.containers:
                run("rm", "-f", "-v", *self.containers)
            if self.volumes:
                run("volume", "rm", "-f", *self.volumes)


@pytest.fixture
def names(engines) -> Iterator[Names]:
    n = Names(engines)
    try:
        yield n
    finally:
        n.clean()


def _volume_image_tar() -> bytes:
    """busybox's files would be simpler, but an image of our own shows ownership and modes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, kind: bytes, mode: int, uid: int, data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, uid, 1700000000
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("bin", tarfile.DIRTYPE, 0o755, 0)
        for tool in ("sh", "ls", "cat", "stat", "find", "echo", "touch", "sort", "grep", "cut"):
            busybox = Path("/bin/busybox").read_bytes() if tool == "sh" else b""
            if tool == "sh":
                add("bin/sh", tarfile.REGTYPE, 0o755, 0, busybox)
            else:
                info = tarfile.TarInfo(f"bin/{tool}")
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, "bin/sh", 0o755
                tar.addfile(info)
        add("data", tarfile.DIRTYPE, 0o750, 123)
        add("data/hello", tarfile.REGTYPE, 0o640, 7, b"seeded\n")
        add("data/sub", tarfile.DIRTYPE, 0o700, 0)
        add("data/sub/deep", tarfile.REGTYPE, 0o600, 0, b"deep\n")
    return buf.getvalue()


def both(engines: dict, *args: str, input: bytes | None = None) -> dict[str, tuple]:
    results = {}
    for name in ENGINES:
        r = engines[name](*args, input=input)
        results[name] = (r.returncode, norm(r.stdout), norm(r.stderr))
    return results


def same(engines: dict, *args: str, input: bytes | None = None) -> tuple:
    results = both(engines, *args, input=input)
    assert results["tether"] == results["docker"], args
    return results["docker"]


def inspect(engines: dict, name: str) -> dict[str, dict]:
    views = {}
    for engine in ENGINES:
        r = engines[engine]("inspect", name)
        assert r.returncode == 0, r.stderr
        item = json.loads(norm(r.stdout))[0]
        host = item["HostConfig"]
        views[engine] = {
            "Mounts": sorted(item["Mounts"], key=lambda m: m["Destination"]),
            "Binds": sorted(host["Binds"] or []), "HostMounts": host.get("Mounts"),
            "Tmpfs": host.get("Tmpfs"), "VolumesFrom": host["VolumesFrom"],
            "ReadonlyRootfs": host["ReadonlyRootfs"], "Volumes": item["Config"]["Volumes"]}
    return views


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["-v", "foo/bar:/x"], ["-v", "/x:rel"], ["-v", "/x:/y:bogus"], ["-v", "/x:/"],
    ["-v", "/x:/y", "-v", "/z:/y"], ["-v", "/x:/y:rw,ro"], ["-v", "a:b:c:d"],
    ["-v", "name:/y:rprivate"], ["-v", "/x:/y:ro,Z,rshared,nocopy"],
    ["-v", "/x:/y", "--tmpfs", "/y"], ["-v", "/x:/y", "--mount", "type=bind,src=/tmp,target=/y"],
    ["--mount", "type=bind,source=/nonexist-i8b,target=/x"], ["--mount", "type=bind,target=/x"],
    ["--mount", "type=bind,source=rel,target=/x"], ["--mount", "type=tmpfs,source=/x,target=/y"],
    ["--mount", "type=foo,target=/x"], ["--mount", "type=volume,target=rel"],
    ["--mount", "type=bind,src=/tmp,dst=/x,bind-propagation=bogus"],
    ["--mount", "type=bind,src=/tmp,target=/"], ["--mount", "src=/tmp,target=/y"],
    ["--tmpfs", "rel"], ["--volumes-from", "i8b-nosuch"], ["--volumes-from", "x:bogus"],
    ["--volumes-from", "x:rshared"],
    # the docker CLI's own checks
    ["-v", "/x:/y:ro:extra"], ["-v", ":/x"],
    ["--mount", "type=volume,src=v1,dst=/x,bind-propagation=rshared"],
    ["--mount", "type=tmpfs,target=/y,tmpfs-size=abc"],
])
def test_create_errors(engines, args):
    rc, out, err = same(engines, "create", *args, "busybox")
    assert rc != 0 and err and not out


@pytest.mark.parametrize("args, text", [
    (["--tmpfs", "/x:foo=bar"], 'invalid tmpfs option ["foo" "bar"]'),
    (["-v", "{host}:/d:rshared"], "is mounted on / but it is not a shared mount"),
    (["-v", "{host}:/d:slave"], "is mounted on / but it is not a shared or slave mount"),
    (["-v", "{host}/in/file:/etc"], "not a directory: unknown: Are you trying to mount a "
                                    "directory onto a file (or vice-versa)?"),
])
def test_errors_at_start(engines, names, host_dir, args, text):
    """Both engines here see the host's / as a private mount."""
    c = names.container("start-error")
    args = [a.replace("{host}", str(host_dir)) for a in args]
    same(engines, "create", "--name", c, *args, "busybox", "true")
    rc, _, err = same(engines, "start", c)
    assert rc == 1 and text in err


# ---- inspect --------------------------------------------------------------------------------

def test_inspect_reports_every_form(engines, names, host_dir):
    c = names.container("full")
    named, labelled = names.volume("named"), names.volume("labelled")
    (host_dir / "b").mkdir()
    src = host_dir / "in"
    same(engines, "create", "--name", c, "-v", f"{src}:/a:ro,z", "-v", f"{named}:/n1",
         "-v", "/anon1", "-v", f"{named}:/n2:ro,nocopy", "-v", f"{host_dir}/b:/b:rslave",
         "--mount", f"type=bind,src={src},dst=/ma,readonly",
         "--mount", f"type=volume,src={labelled},dst=/mv,volume-nocopy,volume-label=k=v",
         "--mount", "type=volume,dst=/manon",
         "--mount", "type=tmpfs,dst=/mt,tmpfs-size=1m,tmpfs-mode=0700",
         "--tmpfs", "/t1", "--tmpfs", "/t2:size=2m,noexec", "--read-only", "busybox")
    views = inspect(engines, c)
    assert views["tether"] == views["docker"]
    assert len(views["docker"]["Mounts"]) == 9


def test_image_volume_and_plain_container(engines, names):
    c, plain = names.container("imgvol"), names.container("plain")
    same(engines, "create", "--name", c, "i8b-volimg")
    same(engines, "create", "--name", plain, "busybox")
    for name in (c, plain):
        views = inspect(engines, name)
        assert views["tether"] == views["docker"]


# ---- what the container sees ----------------------------------------------------------------

def test_content_seen_inside(engines, names, host_dir):
    vol = names.volume("content")
    writer, reader = names.container("writer"), names.container("reader")
    script = ("cat /a/file; touch /a/new 2>&1; echo data > /v/f; "
              "grep -E ' /(t|mt|v|a) ' /proc/mounts | cut -d' ' -f2-4 | sort")
    same(engines, "run", "--name", writer, "-v", f"{host_dir}/in:/a:ro", "-v", f"{vol}:/v",
         "--tmpfs", "/t:size=64k", "--mount", "type=tmpfs,dst=/mt,tmpfs-mode=0711",
         "busybox", "sh", "-c", script)
    rc, out, _ = same(engines, "run", "--name", reader, "-v", f"{vol}:/v:ro", "busybox", "sh",
                      "-c", "cat /v/f; touch /v/g 2>&1; stat -c '%a' /mt 2>&1")
    assert out.startswith("data\n")


def test_missing_host_directory_is_created(engines, names, host_dir):
    for engine in ENGINES:
        c = names.container(f"mkdir-{engine}")
        target = host_dir / engine / "made" / "here"
        r = engines[engine]("run", "--name", c, "-v", f"{target}:/m", "busybox", "sh", "-c",
                            "echo x > /m/f")
        assert r.returncode == 0, r.stderr
        assert oct(target.stat().st_mode & 0o7777) == "0o755"
        assert (target / "f").read_text() == "x\n"


def test_copy_up_seeds_new_volumes(engines, names):
    fresh, anon = names.container("seed"), names.container("anon")
    vol = names.volume("seed")
    listing = "find /data | sort | while read f; do stat -c '%n %a %u %g %s' $f; done"
    rc, out, _ = same(engines, "run", "--name", fresh, "-v", f"{vol}:/data", "i8b-volimg", "sh",
                       "-c", listing)
    assert "/data/hello 640 7 7 7" in out and "/data 750 123 123" in out
    same(engines, "run", "--name", anon, "i8b-volimg", "sh", "-c", listing)
    same(engines, "run", "--rm", "-v", f"{vol}:/data:nocopy", "i8b-volimg", "sh", "-c", listing)
    # an existing volume that holds data is not seeded again
    same(engines, "run", "--rm", "-v", f"{vol}:/data/sub", "i8b-volimg", "sh", "-c", listing)


def test_volumes_from(engines, names, host_dir):
    data, reader, ro = names.container("data"), names.container("from"), names.container("ro")
    vol = names.volume("shared")
    same(engines, "create", "--name", data, "-v", "/anon", "-v", f"{vol}:/named",
         "-v", f"{host_dir}/in:/bound", "busybox")
    same(engines, "run", "--name", reader, "--volumes-from", data, "busybox", "sh", "-c",
         "echo a > /anon/a; echo n > /named/n; ls /bound")
    same(engines, "run", "--name", ro, "--volumes-from", f"{data}:ro", "busybox", "sh", "-c",
         "cat /anon/a /named/n; touch /anon/b 2>&1")
    for name in (reader, ro):
        views = inspect(engines, name)
        assert views["tether"] == views["docker"]



def test_volumes_from_a_container_removed_later(engines, names):
    """The inheritor keeps the anonymous volume when its source goes with `rm -v` (in use: not
    an error), and takes it with its own `rm -v`; --volumes-from a removed container fails."""
    source, heir = names.container("gone-source"), names.container("heir")
    same(engines, "create", "--name", source, "-v", "/anon", "busybox")
    same(engines, "run", "--name", heir, "--volumes-from", source, "busybox", "sh", "-c",
         "echo kept > /anon/f")
    [anonymous] = [m["Name"] for m in json.loads(engines["tether"]("inspect", heir).stdout)[0]
                   ["Mounts"]]
    same(engines, "rm", "-v", source)
    assert same(engines, "start", "-a", heir)[0] == 0
    assert same(engines, "run", "--rm", "--volumes-from", heir, "busybox", "cat",
                "/anon/f")[1] == "kept\n"
    same(engines, "create", "--volumes-from", source, "busybox")
    assert engines["tether"]("volume", "inspect", anonymous).returncode == 0
    same(engines, "rm", "-v", heir)
    assert engines["tether"]("volume", "inspect", anonymous).returncode == 1

def test_read_only_root(engines, names):
    c = names.container("ro")
    same(engines, "run", "--name", c, "--read-only", "--tmpfs", "/run", "busybox", "sh", "-c",
         "touch /x 2>&1; echo >> /etc/hosts 2>&1; echo >> /etc/hostname 2>&1; "
         "echo ok > /run/f && cat /run/f; echo >> /dev/shm/x && echo shm")


def test_rm_v_removes_anonymous_volumes_only(engines, names):
    c = names.container("rmv")
    vol = names.volume("kept")
    same(engines, "create", "--name", c, "-v", "/anon", "-v", f"{vol}:/named",
         "--mount", "type=volume,dst=/manon", "busybox")
    counts = {}
    for engine in ENGINES:
        run = engines[engine]
        made = [json.loads(run("inspect", c).stdout)[0]["Mounts"]]
        names_ = sorted(m["Name"] for m in made[0])
        assert run("rm", "-v", c).returncode == 0
        listed = run("volume", "ls", "-q").stdout.decode().split()
        counts[engine] = [name in listed for name in names_]
    assert counts["tether"] == counts["docker"]


# ---- docker cp ------------------------------------------------------------------------------

@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_cp_through_volumes_and_binds(engines, names, host_dir, running):
    c = names.container("cp")
    vol = names.volume("cp")
    cmd = ["sleep", "600"] if running else ["true"]
    same(engines, "run", "-d", "--name", c, "-v", f"{vol}:/vol", "-v", f"{host_dir}/in:/ro:ro",
         "busybox", *cmd)
    if not running:
        same(engines, "wait", c)
    payload = host_dir / "payload.txt"
    payload.write_text("copied in\n")
    same(engines, "cp", str(payload), f"{c}:/vol/")
    same(engines, "cp", str(payload), f"{c}:/ro/")
    members = {}
    for engine in ENGINES:
        r = engines[engine]("cp", f"{c}:/ro/file", "-")
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
            # Docker adds Go's file type bits to the mode field; Python's tarfile cannot
            members[engine] = [(m.name, m.mode & 0o7777, m.size, tar.extractfile(m).read())
                               for m in tar]
    assert members["tether"] == members["docker"] == [("file", 0o644, 14, b"from the host\n")]
    for engine in ENGINES:
        out = host_dir / f"out-{engine}"
        r = engines[engine]("cp", f"{c}:/vol/payload.txt", str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_text() == "copied in\n"
    rc, listing, _ = same(engines, "run", "--rm", "-v", f"{vol}:/vol", "busybox", "ls", "/vol")
    assert listing == "payload.txt\n"


def test_volume_mount_events(engines, names):
    vol = names.volume("events")
    c = names.container("events")
    events = {}
    for engine in ENGINES:
        run = engines[engine]
        start = str(int(time.time()) - 1)
        assert run("run", "--name", c, "-v", f"{vol}:/d:ro", "-v", "/anon", "busybox",
                   "true").returncode == 0
        r = run("events", "--since", start, "--until", str(int(time.time()) + 1),
                "--filter", "type=volume", "--filter", "event=mount", "--format",
                "{{.Action}} {{json .Actor.Attributes}}")
        cid = json.loads(run("inspect", c).stdout)[0]["Id"]
        mine = [line for line in r.stdout.decode().splitlines() if cid in line]
        events[engine] = sorted(norm(line) for line in mine)
    assert events["tether"] == events["docker"] and len(events["docker"]) == 2


def test_ps_volume_filter(engines, names, host_dir):
    vol = names.volume("ps")
    user, other = names.container("ps-user"), names.container("ps-other")
    same(engines, "create", "--name", user, "-v", f"{vol}:/data", "-v", f"{host_dir}/in:/b",
         "busybox")
    same(engines, "create", "--name", other, "busybox")
    for value in (vol, "/data", f"{host_dir}/in", "/b", "/in", "nothing"):
        rc, listed, _ = same(engines, "ps", "-a", "--filter", f"volume={value}", "--format",
                             "{{.Names}}")
        assert (user in listed) == (value not in ("/in", "nothing")) and other not in listed


def test_volume_over_a_file_of_the_image(engines, names):
    """dockerd refuses an anonymous volume of Config.Volumes over a file of the image, and a new
    (empty) volume there too, when it comes to copy into it; a volume holding data is not
    copied into, so nothing is refused. The refused creates leave no volume but the named one."""
    named = names.volume("over-file")
    before = {name: set(engines[name]("volume", "ls", "-q").stdout.split()) for name in ENGINES}
    results = both(engines, "create", "-v", "/etc/passwd", "busybox", "true")
    over_named = both(engines, "create", "-v", f"{named}:/etc/passwd", "busybox", "true")
    results.update({f"{k}-named": v for k, v in over_named.items()})
    left = {name: set(engines[name]("volume", "ls", "-q").stdout.split()) - before[name]
            for name in ENGINES}
    same(engines, "run", "--rm", "-v", f"{named}:/d", "busybox", "touch", "/d/data")
    holder = names.container("over-file")
    rc, _, _ = same(engines, "create", "--name", holder, "-v", f"{named}:/etc/passwd", "busybox")
    # dockerd names the file by its host path, tether by the container's (no host path leaves it)
    paths = re.compile(r"(?:/\S+)?/etc/passwd")
    seen = {k: (rc_, paths.sub("<root>/etc/passwd", err)) for k, (rc_, _, err) in results.items()}
    assert seen["tether"] == seen["docker"] == (
        1, "Error response from daemon: cannot mount volume over existing file, file exists "
           "<root>/etc/passwd\n")
    assert seen["tether-named"] == seen["docker-named"] == (
        1, "Error response from daemon: source <root>/etc/passwd is not directory\n")
    assert left["tether"] == left["docker"] == {named.encode()}
    assert rc == 0
