"""Errors that services raise and the HTTP layer turns into Docker's `{"message": ...}` replies.

Services speak in these types so that status codes follow dockerd's mapping (404 not found,
400 invalid, 409 conflict, 304 not modified) without the services knowing about HTTP.
"""
from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path


class ApiError(Exception):
    """An error with an HTTP status and the exact text a Docker client shows."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(ApiError):
    status = 404


class BadRequest(ApiError):
    status = 400


class Forbidden(ApiError):
    status = 403


class Conflict(ApiError):
    status = 409


class NotModified(ApiError):
    """304: the request changed nothing (start of a running container, stop of a stopped one)."""

    status = 304

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


def start_failure_code(message: str, default: int) -> int:
    """Docker's exit code for a process that could not be started, read from the runtime's
    message: 127 when the command is not found, 126 when it is not executable, else `default`
    (dockerd records 128 in the container's state; `docker run` exits 125)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return default


def runc_exec_error(stderr: str) -> str | None:
    """runc's own error when `runc --log-format json exec` could not start the process (its
    last `exec failed: ...` JSON log line), or None: the output was the process's."""
    for line in reversed(stderr.splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (isinstance(entry, dict) and entry.get("level") == "error"
                and str(entry.get("msg", "")).startswith("exec failed: ")):
            return str(entry["msg"])
    return None


def exec_start_failure(runc_error: str) -> str:
    """dockerd's text for an exec whose process could not start (written on the exec's stream,
    with exit code 126 whatever the cause)."""
    return f"OCI runtime exec failed: {runc_error}: unknown"


def load_tar_error(reasons: str) -> str:
    """dockerd's in-stream error for a `load` body that is not a tar, from Python's tarfile
    reasons (one per compression tried): Go's tar reader finds a short input cut off
    (`unexpected EOF`), a full block that is no header invalid, and an empty one an archive
    without the `repositories` file of the old format (dockerd names its temp dir there)."""
    if "truncated header" in reasons:
        return "Error processing tar file(exit status 1): unexpected EOF"
    if "empty file" in reasons:
        return f"open {HIDDEN_PATH}/repositories: no such file or directory"
    return "Error processing tar file(exit status 1): archive/tar: invalid tar header"


MOUNT_TYPE_HINT = ("Are you trying to mount a directory onto a file (or vice-versa)? Check if the "
                   "specified host path exists and is the expected type")


def runtime_create_error(runtime_message: str) -> str:
    """dockerd's text around the runtime's own when it could not create a container. A "not a
    directory" (a file bound onto a directory, or the reverse) gets dockerd's hint
    (translateContainerdStartErr), as users search for that sentence."""
    text = f"failed to create shim task: OCI runtime create failed: {runtime_message}: unknown"
    if "not a directory" in text.lower():
        text += ": " + MOUNT_TYPE_HINT
    return text


def runtime_create_status(text: str) -> int:
    """dockerd's status for a runtime's create failure (translateContainerdStartErr): a
    command not found or not runnable and a file/directory mount mismatch are the request's
    fault (400); anything else the runtime refused (a sysctl, an rlimit) is a system error (500)."""
    lowered = text.lower()
    if any(cause in lowered for cause in ("executable file not found", "no such file or directory",
                                          "permission denied", "not a directory")):
        return 400
    return 500


def go_errno_text(exc: OSError) -> str:
    """Go's wording of an errno: the C text with a lower-case first letter ("no space left on
    device", "address already in use")."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def os_error_text(exc: OSError, root: Path | None = None) -> str:
    """A failed file operation in Go's `<op> <path>: <errno text>` shape (dockerd's full-disk
    replies are `write <path>: no space left on device`), without a host path: the file is named
    relative to `root` (the data root) when it lies below it, else by its last element."""
    if exc.errno is None:
        return str(exc)
    if exc.filename is None:
        return go_errno_text(exc)
    path = Path(os.fsdecode(exc.filename))
    try:
        shown = str(path.relative_to(root)) if root is not None else path.name
    except ValueError:
        shown = path.name
    op = "write" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "open"
    return f"{op} {shown}: {go_errno_text(exc)}"


HIDDEN_PATH = "<host path>"
INTERNAL_ERROR = "internal error in tetherd; its log has the details"
"""What a client sees of an unexpected failure: never an exception's text, which may name a
host path or a Python class; the traceback goes to the daemon's log."""


def hide_paths(text: str, hidden: Iterable[str], shown: Iterable[str] = ()) -> str:
    """`text` with every path under one of `hidden` (the daemon's data and exec roots) replaced
    by HIDDEN_PATH, unless it lies under one of `shown`: an OSError's or the runtime's text can
    name where a container's files live on the host, which no client is told. Volumes' paths
    stay (inspect's Mountpoint shows them, and dockerd's mount errors name them). A path ends
    at whitespace, a quote, `:`, `,` or `)`."""
    alternatives = [re.escape(str(root).rstrip("/")) for root in hidden if str(root).rstrip("/")]
    if not alternatives:
        return text
    kept = tuple(str(root).rstrip("/") for root in shown)

    def replace(match: re.Match[str]) -> str:
        path = match[0]
        return path if any(path == root or path.startswith(root + "/") for root in kept) \
            else HIDDEN_PATH
    stop = r"\s'\":,)"
    return re.sub(rf"(?:{'|'.join(alternatives)})(?![^/{stop}])[^{stop}]*", replace, text)
