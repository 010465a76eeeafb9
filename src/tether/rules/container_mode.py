"""Docker's `container:<name|id>` namespace modes (NetworkMode, IpcMode, PidMode): one rule for
reading the donor container out of a mode, shared by the engine (which joins the donor's
namespaces), the field-support table, `kube generate` and the CLI's own flag checks."""
from __future__ import annotations

from typing import Any

PREFIX = "container:"


def donor(mode: Any) -> str:
    """The container a `container:<name|id>` mode names; "" for any other mode, for a mode that
    is not a string (an untrusted inspect document) and for a bare `container:`."""
    return mode[len(PREFIX):] if isinstance(mode, str) and mode.startswith(PREFIX) else ""
