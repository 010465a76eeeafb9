"""This machine's side of seccomp: its architecture, kernel, libseccomp, and the translation cache.

runc compiles `linux.seccomp` with libseccomp at every start; what tether can do once is the
translation of a profile for a capability set (tether.runtime.seccomp.to_oci), kept here by the
profile's text (None: the built-in default) and the capabilities.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform
from collections.abc import Iterable
from typing import Any

from tether.runtime import seccomp
from tether.runtime.seccomp_default import default_profile

log = logging.getLogger("tether.seccomp")

_NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name's answer for a name it does not know


@functools.cache
def _resolver() -> Any:
    """libseccomp's name resolver (runc links the same library); None if it cannot be loaded."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        log.warning("libseccomp not found: syscall names are passed to runc unchecked")
        return None
    resolve = lib.seccomp_syscall_resolve_name
    resolve.argtypes = [ctypes.c_char_p]
    resolve.restype = ctypes.c_int
    return resolve


@functools.cache
def knows(name: str) -> bool:
    """Does this machine's libseccomp know the syscall? (runc skips the names it does not.)"""
    resolve = _resolver()
    if resolve is None:
        return True
    try:
        return resolve(name.encode()) != _NR_SCMP_ERROR
    except UnicodeEncodeError:
        return False


@functools.cache
def machine() -> seccomp.Machine:
    uname = platform.uname()
    return seccomp.Machine(arch=seccomp.go_arch(uname.machine),
                           kernel=seccomp.kernel_version(uname.release), known=knows)


@functools.lru_cache(maxsize=16)
def _profile(text: str | None) -> dict[str, Any]:
    return default_profile() if text is None else seccomp.load_profile(text)


@functools.lru_cache(maxsize=64)
def _translated(text: str | None, caps: frozenset[str]) -> dict[str, Any] | None:
    return seccomp.to_oci(_profile(text), caps, machine())


def check(text: str) -> None:
    """Raise seccomp.ProfileError if this profile cannot be used (what does not depend on the
    capabilities: decoding, `architectures` with `archMap`, `name` with `names`)."""
    _translated(text, frozenset())


def oci_section(text: str | None, caps: Iterable[str]) -> dict[str, Any] | None:
    """`linux.seccomp` for a profile (None: tether's default) and a capability set; shared by the
    containers with the same two, so callers must not change it."""
    return _translated(text, frozenset(caps))
