"""`docker build` with the legacy builder's behaviour: context, Dockerfile instructions, layer
cache, file copies and commits, one module each (see docs/internals.md). The step executor that
runs them with the engine's containers is an engine service: tether.engine.builder."""
