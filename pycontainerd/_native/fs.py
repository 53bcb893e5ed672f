"""C-shaped bindings for ``csrc/fifo.c`` and ``csrc/bundle.c``.

.. warning::
   Hazardous materials: raw file descriptors, no validation of paths beyond
   what the C code refuses. Use :mod:`pycontainerd.fifo` and
   :mod:`pycontainerd.bundle` instead.

Each function calls exactly one C function (cffi releases the GIL around
it) and turns its ``-errno`` into the matching :class:`OSError` subclass
with ``filename`` set to the exact path involved.
"""

from __future__ import annotations

import errno
import os

from pycontainerd._native import FFI, LIB, check, os_error

#: ``detail`` codes of :func:`bundle_userns` refusals (see csrc/bundle.h).
WRONG_OWNER: int = LIB.PCD_BUNDLE_WRONG_OWNER
WRITABLE: int = LIB.PCD_BUNDLE_WRITABLE


def open_dir(path: str) -> int:
    """Open ``path`` as an ``O_PATH|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC`` fd for the ``*at`` calls below.

    A symlink planted as the directory's last component is refused rather than
    followed (``O_NOFOLLOW``), so the FIFOs are never made in a directory an
    attacker chose.

    Args:
        path: The directory.

    Returns:
        The fd; the caller closes it.

    Raises:
        OSError: From open(2), e.g. ``FileNotFoundError``, ``NotADirectoryError``
            (a symlink in the last component included).
    """
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


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


def _sub_path(components: list[str], index: int, first_suffixed: int, suffix: str) -> str:
    """The path of component ``index`` (``/`` for -1) as the walk spelled it."""
    used = [c + suffix if 0 <= first_suffixed <= i else c for i, c in enumerate(components[: index + 1])]
    return "/" + "/".join(used)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c]


def mkdir_all_new(path: str, mode: int, uid: int, gid: int) -> None:
    """Create the missing directories of ``path``; ``pcd_mkdir_all_new``.

    Args:
        path: Absolute, normalized path.
        mode: Exact mode of each created directory.
        uid: Owner of each created directory.
        gid: Group of each created directory.

    Raises:
        OSError: With ``filename`` = the failing sub-path (``ELOOP`` for a symlink,
            ``NotADirectoryError`` for a non-directory component).
    """
    failed = FFI.new("int *")
    rc = LIB.pcd_mkdir_all_new(os.fsencode(path), mode, uid, gid, failed)
    if rc < 0:
        raise os_error(-rc, _sub_path(_components(path), failed[0], -1, ""))


def mkdir_chown(path: str, mode: int, uid: int, gid: int) -> None:
    """Create (or re-own) the directory ``path``; ``pcd_mkdir_chown``.

    Args:
        path: Absolute, normalized path whose parents exist.
        mode: Exact mode of the directory.
        uid: Owner of the directory.
        gid: Group of the directory.

    Raises:
        OSError: With ``filename`` = the failing sub-path (``FileNotFoundError``
            for a missing parent).
    """
    failed = FFI.new("int *")
    rc = LIB.pcd_mkdir_chown(os.fsencode(path), mode, uid, gid, failed)
    if rc < 0:
        raise os_error(-rc, _sub_path(_components(path), failed[0], -1, ""))


def bundle_userns(path: str, uid: int, gid: int) -> str:
    """Walk ``path`` for a remapped root; ``pcd_bundle_userns``.

    Args:
        path: Absolute, normalized path.
        uid: Host uid of the container's root.
        gid: Host gid of the container's root.

    Returns:
        The path actually prepared (components from the first one that was
        missing or not traversable by others carry ``.<uid>.<gid>``).

    Raises:
        PermissionError: An existing suffixed directory has the wrong owner or is
            writable by group or others (``filename`` = that directory).
        OSError: Any other failure, ``filename`` = the failing sub-path.
    """
    failed = FFI.new("int *")
    first = FFI.new("int *")
    detail = FFI.new("int *")
    rc = LIB.pcd_bundle_userns(os.fsencode(path), uid, gid, failed, first, detail)
    components = _components(path)
    suffix = f".{uid}.{gid}"
    if rc < 0:
        where = _sub_path(components, failed[0], first[0], suffix)
        if rc == -errno.EPERM and detail[0] == WRONG_OWNER:
            raise PermissionError(errno.EPERM, f"exists but is not owned by {uid}:{gid}", where)
        if rc == -errno.EPERM and detail[0] == WRITABLE:
            raise PermissionError(errno.EPERM, "exists but group or others can write it", where)
        raise os_error(-rc, where)
    return _sub_path(components, len(components) - 1, first[0], suffix)


__all__ = [
    "WRITABLE",
    "WRONG_OWNER",
    "bundle_userns",
    "fifo_create",
    "fifo_open_path",
    "fifo_reopen",
    "mkdir_all_new",
    "mkdir_chown",
    "open_dir",
]
