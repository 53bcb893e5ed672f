"""Shared pytest configuration (the integration fixtures live in tests/integration/conftest.py)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, not in tests/integration/conftest.py, so the option is
    # known however pytest is invoked (that conftest loads late otherwise).
    parser.addoption(
        "--containerd-address",
        default=None,
        help="run integration tests against this containerd socket (also $PYCONTAINERD_TEST_ADDRESS) "
        "instead of a private daemon",
    )
