"""The package's face: ``import pycontainerd`` is cheap, and every public name and submodule is reachable."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pycontainerd

SUBMODULES = ("api", "bundle", "client", "container", "daemon", "errors", "events", "idmap", "images", "oci",
              "registry", "stdio", "task", "testing", "testing_images", "testing_registry", "typeurl")


def fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (this one has imported everything already)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_submodules_are_attributes_after_import_pycontainerd() -> None:
    out = fresh(
        "import sys, pycontainerd\n"
        "print('pycontainerd.stdio' in sys.modules)\n"
        "print(pycontainerd.stdio.null().needs_fifos)\n"
        "print(pycontainerd.oci.build is not None)\n"
    )
    # Imported on first use only, then a plain attribute.
    assert out.split() == ["False", "False", "True"]


@pytest.mark.parametrize("name", SUBMODULES)
def test_every_public_submodule(name: str) -> None:
    module = getattr(pycontainerd, name)
    assert module.__name__ == f"pycontainerd.{name}"
    assert name in dir(pycontainerd)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pycontainerd.nope  # noqa: B018
    with pytest.raises(AttributeError):
        pycontainerd._stdio  # noqa: B018


def test_public_names() -> None:
    for name in pycontainerd.__all__:
        assert getattr(pycontainerd, name) is not None
