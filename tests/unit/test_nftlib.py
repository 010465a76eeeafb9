"""nftlib runs a JSON batch in-process (libnftables) or through the nft command: both refuse a
batch nft cannot read with nft's own text, before anything reaches the kernel."""
from __future__ import annotations

import pytest

from tether.network import nftlib

UNKNOWN = b'{"nftables": [{"frobnicate": {"table": {"family": "ip", "name": "t"}}}]}'


def _refusal() -> str:
    with pytest.raises(RuntimeError) as caught:
        nftlib.run(UNKNOWN)
    return str(caught.value)


def test_the_library_is_there():
    assert nftlib._library() is not None  # else every rewrite spawns nft


def test_a_batch_nft_cannot_read_is_refused_with_its_text():
    text = _refusal()
    assert text.startswith("nft failed: ") and "Error: Parsing command array" in text


def test_the_command_answers_alike_without_the_library(monkeypatch):
    in_process = _refusal()
    monkeypatch.setattr(nftlib, "_library", lambda: None)
    assert _refusal() == in_process
