"""Images made from binaries of the host (Debian packages), for tests and benchmarks.

busybox-static has no UDP tools and no traffic generator, so network tests and benchmarks import
an image holding busybox plus host programs such as socat or iperf3 and every shared library
`ldd` names for them: a tarball made on the spot, as an offline machine allows.
"""
from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

from tether.image.bootstrap import CHANGES, busybox_rootfs_tar


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return {m.group(1) for m in re.finditer(r"(/\S+) \(0x", out)}


def host_binaries_tar(binaries: list[str], trees: list[str] = ()) -> bytes:
    """busybox's rootfs plus `binaries` (full paths) and their libraries, and whole directory
    `trees` (a Python's standard library, say), as one tar."""
    base = io.BytesIO()
    busybox_rootfs_tar(base)
    out = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(base.getvalue())) as src, \
            tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            seen.add(member.name.lstrip("./"))
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        files = set(binaries)
        for binary in binaries:
            files |= _libraries(binary)
        for tree in trees:
            files |= {str(p) for p in Path(tree).rglob("*") if p.is_file() and not p.is_symlink()}
        for path in sorted(files):
            real = Path(path).resolve()
            for parent in reversed(Path(path.lstrip("/")).parents[:-1]):
                if str(parent) not in seen:
                    info = tarfile.TarInfo(str(parent))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    dst.addfile(info)
                    seen.add(str(parent))
            info = dst.gettarinfo(str(real), arcname=path.lstrip("/"))
            with open(real, "rb") as f:
                dst.addfile(info, f)
            seen.add(path.lstrip("/"))
    return out.getvalue()


def import_args() -> list[str]:
    """`-c` options giving the image busybox's ENV and CMD."""
    return [arg for change in CHANGES for arg in ("-c", change)]
