"""Shared pytest configuration (the integration daemon fixture lives in tests/integration/conftest.py)."""
