"""The `tether` command-line client: a docker-compatible client of the Engine API."""
