"""Static C programs for what busybox cannot do inside a container: raw syscalls (seccomp probes),
renameat2 races against the daemon. Compiled with the host's gcc (`make install` brings gcc and
libc6-dev) as static binaries, so they run in any image; a test binds one into its container
(`-v PATH:/probe:ro`). The `cbin` fixture compiles into a directory removed at the session's end."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path


class StaticBinaries:
    """Compiles C sources once per session, keyed by their text."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tether-cbin-"))
        self.dir.chmod(0o755)  # a test may run a binary as an unprivileged host user

    def build(self, name: str, source: str) -> Path:
        """The path of `source` compiled with `gcc -static` (named `name-<hash of source>`)."""
        out = self.dir / f"{name}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"
        if not out.exists():
            src = out.with_suffix(".c")
            src.write_text(source)
            done = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(src)],
                                  capture_output=True, text=True)
            src.unlink()
            if done.returncode != 0:
                raise RuntimeError(f"gcc failed for {name}:\n{done.stderr}")
        return out

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
