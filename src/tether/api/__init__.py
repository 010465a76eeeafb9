"""The Engine API: an h11 server on a unix socket, and the routes that map HTTP to services."""
