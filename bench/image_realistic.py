#!/usr/bin/env python3
"""Pull, push, save, load and first run of a real Debian image: tetherd against Docker 20.10.

    .venv/bin/python bench/image_realistic.py [--repeat 3] [--no-reference]

The image is a Debian bookworm minbase rootfs made by mmdebstrap (cached as
/var/tmp/tether-bench-debian-minbase.tar, so only the first run needs the Debian mirror apt
uses), split into three layers by path (usr/share, the rest of usr, everything else; a hard
link goes with its target) and pushed gzip-compressed, with tether's library, to Debian's
docker-registry on one storage directory served in tetherd's namespace, in the reference
engine's and on the host. Both engines are driven by the same stock docker CLI. Each round,
per engine: `pull` into an empty store, `run --rm IMAGE /bin/true` (the first container of the
freshly pulled image), `save -o`, `rmi`, `load -i`, `push` to a fresh registry (every blob
uploaded) and `rmi`. The yardsticks: GNU tar `-xzf` of the three compressed layers into an
empty directory (one after the other, as an engine stacks them) and a plain HTTP GET of the
three blobs from the registry on the host. Medians of `--repeat` rounds; MB are MiB of
compressed layers (what the registry serves), except for save/load (MiB of the archive).

`--reference-spread` gives the reference engine's `overlay2/` the inode flag tetherd gives its
`layers/` (FS_TOPDIR_FL, see layers.spread_subtrees): on an ext4 without a journal, where a
file created beside just-removed ones costs several times more, it shows how much of a
difference between the engines is where their layers land on the disk rather than their work.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon  # noqa: E402
from localregistry import registries  # noqa: E402
from reference import ReferenceEngine  # noqa: E402
from test_registry_pushpull import push_from_test_store  # noqa: E402

REFERENCE_NAME = "perf-bench"
ROOTFS = Path("/var/tmp/tether-bench-debian-minbase.tar")
IMAGE_PATH = "bench/debian"


def rootfs_tar() -> Path:
    """The cached minbase rootfs, made once with mmdebstrap from apt's own mirror."""
    if not ROOTFS.exists():
        tmp = ROOTFS.with_suffix(".tmp.tar")
        subprocess.run(["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet", "bookworm", str(tmp)],
                       check=True)
        os.replace(tmp, ROOTFS)
    return ROOTFS


def _bucket(name: str) -> int:
    name = name.lstrip("./")
    if name.startswith("usr/share/"):
        return 1
    if name.startswith("usr/"):
        return 2
    return 0


def split_layers(rootfs: Path) -> list[bytes]:
    """Three uncompressed layer tars of the rootfs, bottom first; directories `usr` and
    `usr/share` are in the layer below the ones that fill them, as a real image's are."""
    outs = [io.BytesIO() for _ in range(3)]
    tars = [tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) for out in outs]
    with tarfile.open(rootfs) as src:
        for member in src:
            index = _bucket(member.linkname if member.islnk() else member.name)
            data = src.extractfile(member) if member.isreg() else None
            tars[index].addfile(member, data)
    for tar in tars:
        tar.close()
    return [out.getvalue() for out in outs]


def median_text(values: list[float], unit: str) -> str:
    return f"median {statistics.median(values):8.2f} {unit} (runs: {', '.join(f'{v:.2f}' for v in values)})"


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def gnu_tar_seconds(files: list[Path], scratch: Path) -> float:
    """GNU tar extracting the gzip layers one after the other, as root keeps owners and modes."""
    target = scratch / "gnutar"
    target.mkdir()
    start = time.perf_counter()
    for path in files:
        subprocess.run(["tar", "-xzf", str(path), "-C", str(target), "--numeric-owner",
                        "--same-permissions", "--xattrs"], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(target)
    return elapsed


def download_seconds(address: str, digests: list[str], keep: Path | None = None) -> float:
    """GET every layer blob once over one connection, dropping the bytes (or keeping them as
    `keep`/layerN.tar.gz)."""
    host, port = address.split(":")
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port))
    for i, digest in enumerate(digests):
        path = f"/v2/{IMAGE_PATH}/blobs/{digest}"
        conn.request("GET", path)
        resp = conn.getresponse()
        while resp.status in (301, 302, 307):
            resp.read()
            conn.request("GET", resp.headers["Location"])
            resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status}")
        out = open(keep / f"layer{i}.tar.gz", "wb") if keep else None
        while chunk := resp.read(1 << 20):
            if out:
                out.write(chunk)
        if out:
            out.close()
    conn.close()
    return time.perf_counter() - start


class Engine:
    """One engine as the docker CLI sees it; every command must succeed."""

    def __init__(self, label: str, docker: Callable[..., subprocess.CompletedProcess], netns: str | None) -> None:
        self.label, self._docker, self.netns = label, docker, netns
        self.times: dict[str, list[float]] = {}

    def run(self, *args: str) -> None:
        result = self._docker(*args, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"{self.label}: docker {' '.join(args)}: {result.stderr.decode(errors='replace')}")

    def measure(self, what: str, *args: str) -> None:
        self.times.setdefault(what, []).append(timed(lambda: self.run(*args)))


def round_for(engine: Engine, name: str, archive: Path) -> None:
    """One round on an engine whose store does not hold the image."""
    engine.measure("pull", "pull", "-q", name)
    engine.measure("first run", "run", "--rm", "--net", "none", name, "/bin/true")
    engine.measure("save", "save", "-o", str(archive), name)
    engine.run("rmi", name)
    engine.measure("load", "load", "-q", "-i", str(archive))
    with registries([engine.netns]) as (reg,):
        target = f"{reg.address}/bench/pushed:v1"
        engine.run("tag", name, target)
        engine.measure("push", "push", target)
        engine.run("rmi", target)
    engine.run("rmi", name)
    archive.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-reference", action="store_true", help="tetherd only")
    p.add_argument("--reference-spread", action="store_true",
                   help="chattr +T the reference engine's overlay2 dir, as tetherd's layers dir")
    args = p.parse_args()
    start_load = os.getloadavg()
    layers = split_layers(rootfs_tar())
    raw_mib = sum(len(layer) for layer in layers) / (1 << 20)
    daemon = Daemon()
    reference = None if args.no_reference else ReferenceEngine(REFERENCE_NAME)
    scratch = Path(tempfile.mkdtemp(prefix="perf-bench-", dir="/var/tmp"))
    try:
        daemon.start()
        engines = [Engine("tetherd", daemon.docker, daemon.netns)]
        if reference is not None:
            reference.start()
            if args.reference_spread:
                subprocess.run(["chattr", "+T", str(reference.data_root / "overlay2")], check=True)
            engines.append(Engine("docker 20.10", reference.docker, reference.name))
        namespaces = [None] + [e.netns for e in engines]
        with registries(namespaces) as regs:
            name = f"{regs[0].address}/{IMAGE_PATH}:v1"
            push_from_test_store(scratch / "store", name, layers)
            digests = _served_digests(regs[0].address)
            download_seconds(regs[0].address, digests, keep=scratch)
            blobs = sorted(scratch.glob("layer*.tar.gz"))
            mib = sum(path.stat().st_size for path in blobs) / (1 << 20)
            yard: dict[str, list[float]] = {"GNU tar -xzf": [], "registry GET": []}
            for _ in range(args.repeat):
                for engine in engines:
                    round_for(engine, name, scratch / "image.tar")
                yard["GNU tar -xzf"].append(gnu_tar_seconds(blobs, scratch))
                yard["registry GET"].append(download_seconds(regs[0].address, digests))
        load1, load5, _ = os.getloadavg()
        print(f"image: Debian bookworm minbase, 3 layers, {raw_mib:.1f} MiB of tar, {mib:.1f} MiB gzip "
              f"(load average 1/5 min at the start {start_load[0]:.2f}/{start_load[1]:.2f}, at the end "
              f"{load1:.2f}/{load5:.2f}, {args.repeat} rounds"
              f"{', reference overlay2 spread' if args.reference_spread else ''})")
        for what in ("pull", "first run", "save", "load", "push"):
            for engine in engines:
                times = engine.times[what]
                rate = f"  {mib / statistics.median(times):7.1f} MB/s" if what in ("pull", "push") else ""
                print(f"{what:10} {engine.label:13} {median_text(times, 's')}{rate}")
        for what, times in yard.items():
            print(f"{what:23} {median_text(times, 's')}  {mib / statistics.median(times):7.1f} MB/s")
    finally:
        daemon.destroy()
        if reference is not None:
            reference.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _served_digests(address: str) -> list[str]:
    """The layer digests the registry's manifest names (the push compresses the layers itself)."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", f"/v2/{IMAGE_PATH}/manifests/v1",
                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    manifest = json.loads(conn.getresponse().read())
    conn.close()
    return [layer["digest"] for layer in manifest["layers"]]


if __name__ == "__main__":
    main()
