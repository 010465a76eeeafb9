"""A build context whose multi-stage Dockerfile uses every instruction tether's builder supports:
ARG before FROM, FROM ... AS, ARG with and without a default, WORKDIR, COPY (several sources,
a directory, --chown, --from), ADD (a local tar, auto-extracted, and a plain file), RUN in shell and
exec form (the first one deletes a file, so its layer has a whiteout), ENV, LABEL, EXPOSE, VOLUME,
USER, ENTRYPOINT and CMD, and a .dockerignore."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

DOCKERFILE = """\
ARG BASE=busybox
FROM ${BASE} AS build
ARG GREETING=hi
WORKDIR /src
COPY hello.txt dir ./
RUN echo "$GREETING" > /src/out.txt && rm -f /src/a.txt
FROM busybox
LABEL org.example.title="demo app" version=1
ENV APP_HOME=/app PATH=/app/bin:$PATH
ARG BUILD_NO
WORKDIR $APP_HOME
COPY --from=build /src/out.txt /src/hello.txt ./
COPY --chown=1000:1000 dir/ /app/data/
ADD archive.tar /app/extracted/
ADD hello.txt /app/added.txt
RUN ["sh", "-c", "echo build $BUILD_NO > /app/build.txt"]
EXPOSE 8080 53/udp
VOLUME ["/data"]
USER 1000
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/out.txt"]
"""
STEPS = 21
CACHED_STEPS = STEPS - 3  # every step but the meta ARG and the two FROMs


def make_context(root: Path) -> Path:
    """Write the context under `root` (fixed file times, so two engines see the same files)."""
    (root / "dir" / "sub").mkdir(parents=True)
    files = {"hello.txt": "hello\n", "dir/a.txt": "a\n", "dir/sub/b.txt": "b\n",
             "secret.txt": "secret\n", "ignored.log": "x\n", ".dockerignore": "secret.txt\n*.log\n",
             "Dockerfile": DOCKERFILE}
    for name, text in files.items():
        (root / name).write_text(text)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("in.txt")
        info.size, info.mtime, info.mode = 6, 1700000000, 0o644
        tar.addfile(info, io.BytesIO(b"intar\n"))
    (root / "archive.tar").write_bytes(archive.getvalue())
    for path in [root, *root.rglob("*")]:
        os.utime(path, (1700000000, 1700000000), follow_symlinks=False)
    return root
