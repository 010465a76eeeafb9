"""tether: a container engine in Python that speaks the Docker Engine API."""
__version__ = "0.1.0"
