"""The package version: the single source read by pyproject.toml and the native build."""

__version__ = "0.1.0"
