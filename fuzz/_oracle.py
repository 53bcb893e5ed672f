"""What the Python fuzz harnesses share: checks that ``python -O`` cannot strip, and the entry point."""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris


def expect(condition: object, what: str) -> None:
    """Fail the input (atheris reports the uncaught exception) unless ``condition`` holds."""
    if not condition:
        raise AssertionError(what)


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """Hand ``sys.argv`` (libFuzzer's options, corpus dirs or inputs) and the target to atheris."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
