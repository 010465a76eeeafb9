"""One nftables JSON batch, run by libnftables in the daemon's own process: the thin binding.

`nft -j -f -` as a process costs a fork and exec of the daemon (tens of MB mapped) and nft's own
start-up for every ruleset rewrite, which a container publishing ports waits for at its start;
the library that nft itself is built on runs the same batch (one netlink transaction) in the
calling thread, and so in that thread's network namespace, as the process would be. Where the
library cannot be loaded, the nft command runs instead.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import subprocess
from typing import Any

log = logging.getLogger("tether.network")

_NFT_CTX_DEFAULT = 0
_NFT_CTX_OUTPUT_JSON = 1 << 4


@functools.cache
def _library() -> Any:
    try:
        lib = ctypes.CDLL("libnftables.so.1")
    except OSError:
        log.warning("libnftables not found: firewall changes run the nft command")
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = (ctypes.c_uint32,)
    lib.nft_ctx_free.argtypes = (ctypes.c_void_p,)
    lib.nft_ctx_output_set_flags.argtypes = (ctypes.c_void_p, ctypes.c_uint)
    lib.nft_ctx_buffer_output.argtypes = (ctypes.c_void_p,)
    lib.nft_ctx_buffer_error.argtypes = (ctypes.c_void_p,)
    lib.nft_ctx_get_error_buffer.argtypes = (ctypes.c_void_p,)
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_run_cmd_from_buffer.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    return lib


def run(batch: bytes) -> None:
    """Run a JSON batch (`{"nftables": [...]}`) as one transaction; RuntimeError with nft's
    error text when the kernel or nft refuses it (nothing of it applied)."""
    lib = _library()
    if lib is None:
        done = subprocess.run(["nft", "-j", "-f", "-"], input=batch, capture_output=True,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"nft failed: {done.stderr.decode(errors='replace').strip()}")
        return
    ctx = lib.nft_ctx_new(_NFT_CTX_DEFAULT)  # one context a call: calls come from any thread
    if not ctx:
        raise RuntimeError("nft failed: no libnftables context")
    try:
        lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(ctx)   # kept, not written to the daemon's stdout/stderr
        lib.nft_ctx_buffer_error(ctx)
        if lib.nft_run_cmd_from_buffer(ctx, batch) != 0:
            error = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace").strip()
            raise RuntimeError(f"nft failed: {error}")
    finally:
        lib.nft_ctx_free(ctx)
