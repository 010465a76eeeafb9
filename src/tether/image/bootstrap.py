"""`busybox:latest` built offline from Debian's busybox-static, so tether works with no registry.

The rootfs follows the Docker Hub busybox image: the binary at /bin/busybox, every applet hard-linked
where `busybox --list-full` puts it (bin, sbin, usr/bin, usr/sbin; top-level ones such as `linuxrc`
are left out), the same /etc/passwd and /etc/group, and the usual empty directories.

Determinism: every entry's mtime and the image's `created` time are the busybox binary's mtime
(dpkg sets it from the package, so it only changes with a new busybox), entries are written in
sorted order with root ownership and no user/group names, so the same binary always gives the same
layer diff_id and the same image ID. Bootstrapping again therefore finds the existing image and
only (re)tags it.
"""
from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from tether.image.store import Image, ImageStore, rfc3339_nano
from tether.rules.config import DEFAULT_PATH

BUSYBOX = Path("/bin/busybox")
TAG = "busybox:latest"
PATH_ENV = f"PATH={DEFAULT_PATH}"  # as Docker Hub's busybox, and dockerd's default
CHANGES = [f"ENV {PATH_ENV}", 'CMD ["sh"]']

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:daemon
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""
DIRECTORIES = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
}


def _applets(busybox: Path) -> list[str]:
    """Applet paths relative to / (`usr/bin/wc`), from the binary itself."""
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    return sorted(p for p in out.split() if "/" in p and p != "bin/busybox")


def _info(name: str, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def busybox_rootfs_tar(dest: BinaryIO, busybox: Path = BUSYBOX) -> None:
    """Write the busybox rootfs as an uncompressed tar to `dest` (also usable with `docker import`)."""
    mtime = int(busybox.stat().st_mtime)
    files = {"etc/passwd": PASSWD.encode(), "etc/group": GROUP.encode()}
    with tarfile.open(fileobj=dest, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(DIRECTORIES):
            tar.addfile(_info(name, tarfile.DIRTYPE, DIRECTORIES[name], mtime))
        binary = _info("bin/busybox", tarfile.REGTYPE, 0o755, mtime)
        binary.size = busybox.stat().st_size
        with open(busybox, "rb") as f:
            tar.addfile(binary, f)
        for applet in _applets(busybox):
            link = _info(applet, tarfile.LNKTYPE, 0o755, mtime)
            link.linkname = "bin/busybox"
            tar.addfile(link)
        for name in sorted(files):
            info = _info(name, tarfile.REGTYPE, 0o644, mtime)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))


def bootstrap_busybox(store: ImageStore, busybox: Path = BUSYBOX) -> Image:
    """Create (or find again) `busybox:latest` from the local busybox-static binary."""
    created = rfc3339_nano(busybox.stat().st_mtime_ns // 10**9 * 10**9)
    with tempfile.TemporaryFile(dir=store.root) as tmp:
        busybox_rootfs_tar(tmp, busybox)
        tmp.seek(0)
        return store.import_tar(tmp, TAG, CHANGES, "", created=created)

