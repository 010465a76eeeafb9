#!/usr/bin/env python3
"""Pull throughput from a local registry (and build time, cold and warm).

    .venv/bin/python bench/pull_build.py [--mb 96] [--layers 3] [--repeat 3] [--reference]

Pull: an image of `--layers` layers holding `--mb` MB of incompressible data in all is pushed
(with tether's library) to a docker-registry on a storage directory shared by a registry process
in tetherd's namespace (and in the reference engine's with --reference). Each round pulls it with
`POST /images/create` and removes it again (so every round downloads every layer); the figure is
MB of layer tars per second of the whole pull (download, digest checks, decompression, store;
random data compresses to about its own size).
"""
from __future__ import annotations

import argparse
import io
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

REFERENCE_NAME = "i6a-bench"
BUILD_REFERENCE_NAME = "i6b-bench"


def random_layers(total_mb: int, count: int) -> list[bytes]:
    """Layers of random bytes (gzip cannot shrink them: the registry serves `total_mb`)."""
    per_layer = total_mb * (1 << 20) // count
    layers = []
    for i in range(count):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(f"bench/data{i}")
            info.size = per_layer
            tar.addfile(info, io.BytesIO(os.urandom(per_layer)))
        layers.append(buf.getvalue())
    return layers


def pull_rounds(pull, remove, repeat: int, megabytes: float) -> list[float]:
    """MB/s of `repeat` pulls, each from an empty store."""
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        pull()
        rates.append(megabytes / (time.perf_counter() - start))
        remove()
    return rates


def bench_pull(args: argparse.Namespace) -> None:
    layers = random_layers(args.mb, args.layers)
    daemon = Daemon()
    reference = ReferenceEngine(REFERENCE_NAME) if args.reference else None
    scratch = Path(tempfile.mkdtemp(prefix="i6a-bench-", dir="/var/tmp"))
    try:
        daemon.start()
        if reference is not None:
            reference.start()
        namespaces = [None, daemon.netns] + ([reference.name] if reference else [])
        with registries(namespaces) as regs:
            name = f"{regs[0].address}/bench/pull:v1"
            push_from_test_store(scratch / "store", name, layers)
            compressed = sum(len(layer) for layer in layers) / (1 << 20)

            def tether_pull() -> None:
                result = daemon.tether("pull", "-q", name, timeout=600)
                if result.returncode != 0:
                    raise RuntimeError(result.stderr.decode())

            rates = pull_rounds(tether_pull, lambda: daemon.tether("rmi", name), args.repeat, compressed)
            print(f"pull   tether  {compressed:6.1f} MB in {args.layers} layers: "
                  f"median {statistics.median(rates):7.1f} MB/s (runs: {', '.join(f'{r:.1f}' for r in rates)})")
            if reference is not None:
                def docker_pull() -> None:
                    reference.docker("pull", "-q", name, check=True, timeout=600)

                rates = pull_rounds(docker_pull, lambda: reference.docker("rmi", name), args.repeat, compressed)
                print(f"pull   docker  {compressed:6.1f} MB in {args.layers} layers: "
                      f"median {statistics.median(rates):7.1f} MB/s (runs: {', '.join(f'{r:.1f}' for r in rates)})")
    finally:
        daemon.destroy()
        if reference is not None:
            reference.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def build_rounds(build, repeat: int) -> list[float]:
    """Seconds of `repeat` builds; `build()` raises on failure."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        build()
        times.append(time.perf_counter() - start)
    return times


def bench_build(args: argparse.Namespace) -> None:
    """Build time of the tests' multi-stage Dockerfile (21 steps: 2 RUNs in started containers,
    11 more steps that create one, 5 COPY/ADD) through `tether build`: cold (`--no-cache`, every
    step runs) and warm (every step from the cache); with --reference, the same through the
    docker CLI's legacy builder on Docker 20.10."""
    from buildcontext import STEPS, make_context

    daemon = Daemon()
    reference = ReferenceEngine(BUILD_REFERENCE_NAME) if args.reference else None
    scratch = Path(tempfile.mkdtemp(prefix="i6b-bench-", dir="/var/tmp"))
    try:
        daemon.start()
        status, body = daemon.api("POST", "/tether/bootstrap/busybox", timeout=120)
        if status != 200:
            raise RuntimeError(f"bootstrap failed: {body}")
        context = str(make_context(scratch / "context"))
        def docker_cli(host: str) -> Callable[..., subprocess.CompletedProcess]:
            return lambda *a: subprocess.run(["docker", *a], capture_output=True, timeout=600,
                                             env={**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"})

        engines = [("tether CLI -> tetherd", lambda *a: daemon.tether(*a, timeout=600)),
                   ("docker CLI -> tetherd", docker_cli(daemon.host))]
        if reference is not None:
            reference.start()
            engines.append(("docker CLI -> Docker", docker_cli(reference.host)))
        for name, cli in engines:
            def build(*flags: str, cli=cli) -> None:
                result = cli("build", *flags, "--build-arg", "BUILD_NO=1", context)
                if result.returncode != 0:
                    raise RuntimeError(result.stderr.decode())
            cold = build_rounds(lambda: build("--no-cache"), args.repeat)
            warm = build_rounds(build, args.repeat)
            for label, times in (("cold", cold), ("warm", warm)):
                print(f"build  {name:21}  {STEPS} steps {label}: median {statistics.median(times):6.2f} s "
                      f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    finally:
        daemon.destroy()
        if reference is not None:
            reference.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=96, help="image size in MB (random, incompressible)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--reference", action="store_true", help="also time Docker 20.10 pulling the same image")
    p.add_argument("--only", choices=("pull", "build"), default=None, help="run one part only")
    args = p.parse_args()
    if args.only != "build":
        bench_pull(args)
    if args.only != "pull":
        bench_build(args)


if __name__ == "__main__":
    main()
