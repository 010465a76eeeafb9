"""`docker build` with the legacy builder's behaviour: context, Dockerfile instructions, layer
cache and the step executor, one module each (see docs/internals.md)."""
