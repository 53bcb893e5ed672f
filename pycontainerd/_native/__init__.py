"""The bindings tier: the only importer of the compiled module ``pycontainerd._native._ffi``.

.. warning::
   Hazardous materials. These are thin, C-shaped calls with raw file
   descriptors and no safety net. Use :mod:`pycontainerd.stdio.fifo`,
   :mod:`pycontainerd.bundle` and :mod:`pycontainerd.stdio` instead.

Every C function returns ``>= 0`` on success and ``-errno`` on failure;
:func:`check` turns the latter into the matching :class:`OSError` subclass
(PEP 3151 picks ``FileExistsError``, ``PermissionError`` and so on).
Per-concern bindings live in the submodules of this package.
"""

from __future__ import annotations

import os
from typing import Any

from pycontainerd._version import __version__

try:
    from pycontainerd._native._ffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "pycontainerd's native module is not built; run `pip install -e .` in the source tree"
    ) from exc

#: The cffi FFI object and library, for the binding submodules only.
FFI: Any = ffi
LIB: Any = lib

NATIVE_VERSION: str = ffi.string(lib.PCD_VERSION).decode()
if __version__ != NATIVE_VERSION:
    raise ImportError(
        f"pycontainerd native module version {NATIVE_VERSION!r} does not match the package "
        f"version {__version__!r}: a stale in-place build; rebuild with `pip install -e .`"
    )


def os_error(err: int, filename: str | bytes | None = None) -> OSError:
    """Build (not raise) the ``OSError`` subclass for a positive errno value.

    Args:
        err: The errno value (positive).
        filename: The path the failing call acted on, if any.

    Returns:
        The exception, for the caller to raise.
    """
    if filename is None:
        return OSError(err, os.strerror(err))
    return OSError(err, os.strerror(err), filename)


def check(rc: int, filename: str | bytes | None = None) -> int:
    """Return ``rc`` when it is ``>= 0``; raise the OSError for ``-rc`` otherwise.

    Args:
        rc: A C function's return value (``-errno`` on failure).
        filename: The path to report in the error.

    Returns:
        ``rc`` unchanged.

    Raises:
        OSError: The matching subclass, with ``filename`` set.
    """
    if rc < 0:
        raise os_error(-rc, filename)
    return rc


__all__ = ["FFI", "LIB", "NATIVE_VERSION", "check", "os_error"]
