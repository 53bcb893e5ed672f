"""pycontainerd: a fast, typed Python client for containerd."""

from pycontainerd._version import __version__

__all__ = ["__version__"]
