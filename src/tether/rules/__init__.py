"""The rules both the CLI and the daemon follow: pure functions and constants (reference, port
and name grammars, units, times, detach keys, container config, errors), standard library only.

This package is the bottom layer: it imports nothing from the rest of tether, so the CLI can
import it without loading a daemon module (see "Layers" in docs/internals.md).
"""
