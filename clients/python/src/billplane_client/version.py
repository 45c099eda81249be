"""The package's version, in one place (sent in the User-Agent)."""

__version__ = "0.1.0"
