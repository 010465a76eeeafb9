"""The container runtime driver: OCI spec, users, overlay mounts, conmon + runc, exec and logs.

`Runtime` (conmon.py) is the entry point the containers service uses; the other modules are the
pieces it and the service compose.
"""
from tether.runtime.conmon import Attachment, Runtime
from tether.runtime.execs import ExecProcess
from tether.runtime.oci import build_spec
from tether.runtime.user import resolve_user

__all__ = ["Attachment", "ExecProcess", "Runtime", "build_spec", "resolve_user"]
