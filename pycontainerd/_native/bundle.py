"""C-shaped bindings for ``csrc/bundle.c``: the race-safe mkdir/chown walks of a bundle path.

.. warning::
   Hazardous materials: no validation of paths beyond what the C code
   refuses. Use :mod:`pycontainerd.bundle` instead.

Each function calls exactly one C function (cffi releases the GIL around
it) and turns its ``-errno`` into the matching :class:`OSError` subclass
with ``filename`` set to the exact path involved.
"""

from __future__ import annotations

import errno
import os

from pycontainerd._native import FFI, LIB, os_error

#: ``detail`` codes of :func:`bundle_userns` refusals (see csrc/bundle.h).
WRONG_OWNER: int = LIB.PCD_BUNDLE_WRONG_OWNER
WRITABLE: int = LIB.PCD_BUNDLE_WRITABLE


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


__all__ = ["WRITABLE", "WRONG_OWNER", "bundle_userns", "mkdir_all_new", "mkdir_chown"]
