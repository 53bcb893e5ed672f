"""C-shaped bindings for ``csrc/fifo.c``: FIFOs made and opened relative to a directory fd.

.. warning::
   Hazardous materials: raw file descriptors, no validation of paths beyond
   what the C code refuses. Use :mod:`pycontainerd.stdio.fifo` instead.

Each function calls exactly one C function (cffi releases the GIL around
it) and turns its ``-errno`` into the matching :class:`OSError` subclass
with ``filename`` set to the exact path involved.
"""

from __future__ import annotations

import os

from pycontainerd._native import FFI, LIB, check


def open_dir(path: str) -> int:
    """Open the directory ``path`` as an ``O_PATH`` fd for the ``*at`` calls below; ``pcd_open_dir``.

    Walked from ``/`` one component at a time with ``O_NOFOLLOW``: a symlink in
    any component is refused rather than followed, so the FIFOs are never made
    in a directory an attacker chose (in a user-namespace bundle the remapped
    root owns directories above the FIFO directory and could swap one).

    Args:
        path: The directory (absolute).

    Returns:
        The fd; the caller closes it.

    Raises:
        OSError: ``FileNotFoundError``, ``NotADirectoryError``, ``ELOOP`` for a
            symlink component, ``EINVAL`` for a relative path or a ``.``/``..``
            component; ``filename`` is ``path``.
    """
    return check(LIB.pcd_open_dir(os.fsencode(path)), path)


def fifo_create(dirfd: int, name: str, mode: int, path: str) -> tuple[int, bool]:
    """Make (or reuse) the FIFO ``name`` in ``dirfd``; ``pcd_fifo_create``.

    Args:
        dirfd: Directory fd from :func:`open_dir`.
        name: The FIFO's name in that directory.
        mode: The exact mode of a new FIFO (set with fchmod, umask-independent).
        path: The full path, for error messages.

    Returns:
        ``(fd, created)``: an ``O_RDONLY|O_NONBLOCK|O_CLOEXEC`` read end the caller
        owns, and whether this call made the node.

    Raises:
        FileExistsError: ``name`` exists and is not a FIFO (a symlink included).
        OSError: Any other mkfifoat/openat/fstat/fchmod failure.
    """
    created = FFI.new("int *")
    fd = check(LIB.pcd_fifo_create(dirfd, os.fsencode(name), mode, created), path)
    return fd, bool(created[0])


def fifo_open_path(dirfd: int, name: str, path: str) -> tuple[int, int, int]:
    """Open an ``O_PATH`` handle on the FIFO ``name`` in ``dirfd``; ``pcd_fifo_open_path``.

    Args:
        dirfd: Directory fd from :func:`open_dir`.
        name: The FIFO's name in that directory.
        path: The full path, for error messages.

    Returns:
        ``(fd, dev, ino)``: the handle (the caller closes it) and its identity.

    Raises:
        FileExistsError: ``name`` is not a FIFO (a symlink included).
        OSError: Any other openat/fstat failure.
    """
    dev = FFI.new("uint64_t *")
    ino = FFI.new("uint64_t *")
    fd = check(LIB.pcd_fifo_open_path(dirfd, os.fsencode(name), dev, ino), path)
    return fd, int(dev[0]), int(ino[0])


def fifo_reopen(path_fd: int, flags: int, dev: int, ino: int, path: str) -> int:
    """Open the FIFO behind ``path_fd`` via ``/proc/self/fd``; ``pcd_fifo_reopen``.

    Blocks (with the GIL released) until the peer opens unless ``flags`` has
    ``O_NONBLOCK``.

    Args:
        path_fd: Handle from :func:`fifo_open_path`.
        flags: ``os.O_RDONLY``/``os.O_WRONLY`` plus optional ``os.O_NONBLOCK``;
            ``O_CLOEXEC`` is always added.
        dev: The handle's ``st_dev``.
        ino: The handle's ``st_ino``.
        path: The FIFO's path, for error messages.

    Returns:
        The new fd; the caller owns it.

    Raises:
        OSError: ``ESTALE`` when the handle no longer names that FIFO, ``ENXIO``
            for a non-blocking write end without reader, or the open's errno.
    """
    return check(LIB.pcd_fifo_reopen(path_fd, flags, dev, ino), path)


__all__ = ["fifo_create", "fifo_open_path", "fifo_reopen", "open_dir"]
