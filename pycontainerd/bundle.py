"""Bundle directories: libcontainerd's ``prepareBundleDir`` and idtools' mkdir helpers, race-safe.

moby's walk stats and chowns by path, following symlinks, so anyone who can
write to a walked directory can plant ``<comp>.<uid>.<gid> -> /etc`` and have
it chowned to the remapped root. Here the walk runs in C on directory fds
(``openat`` with ``O_DIRECTORY|O_NOFOLLOW``, ``mkdirat``, ``fstat``, ``fchown``
and ``fchmod`` on fds of new directories), and:

* a symlink where a directory is expected is refused (``ELOOP``), as is any
  other non-directory (``NotADirectoryError``); ``filename`` is the exact
  sub-path. Pass a path without symlinks (resolve it once with
  :func:`os.path.realpath` if it has some, e.g. ``/var/run``);
* nothing the call did not create is ever chowned or chmodded (except by
  :func:`mkdir_and_chown`, whose idtools contract is to re-own its target);
* an existing ``<comp>.<uid>.<gid>`` is accepted only if it is a real directory
  owned by uid:gid that group and others cannot write (``PermissionError``);
* on failure, the directories the call created are removed, deepest first.

Modes are exact (set with fchmod), whatever the umask.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import Final

from pycontainerd import _rules
from pycontainerd._native import bundle as _bundle

#: The largest valid uid/gid: ``(uid_t)-1`` means "unchanged" to chown(2).
MAX_ID: Final = 2**32 - 2
_PATH_MAX: Final = _rules.PATH_MAX


def _normalize(path: str | os.PathLike[str]) -> str:
    """Normalize once: absolute, no NUL, ``.`` and empty components dropped, ``..`` refused."""
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"path must be a str path, not {type(p).__name__}")
    if "\0" in p:
        raise ValueError(f"path contains a NUL byte: {p!r}")
    if not p.startswith("/"):
        raise ValueError(f"path must be absolute: {p!r}")
    components = [c for c in p.split("/") if c not in ("", ".")]
    if ".." in components:
        raise ValueError(f"path must not contain '..' components: {p!r}")
    normalized = "/" + "/".join(components)
    if len(os.fsencode(normalized)) >= _PATH_MAX:
        raise ValueError(f"path longer than PATH_MAX ({_PATH_MAX} bytes)")
    return normalized


def _check_id(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{what} {value} out of range 0..{MAX_ID}")


def _check_mode(mode: int) -> None:
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise TypeError(f"mode must be an int, not {type(mode).__name__}")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {mode:#o} out of range 0..0o7777")


def mkdir_all_and_chown_new(path: str | os.PathLike[str], mode: int, uid: int, gid: int) -> None:
    """Create ``path`` and its missing parents; chown and chmod only what was created.

    idtools' ``MkdirAllAndChownNew``: every directory this call creates gets
    exactly ``mode`` and owner ``uid:gid``; existing ones, the target included,
    are left untouched.

    Args:
        path: Absolute path without ``..`` components.
        mode: Permission bits of created directories (``0..0o7777``).
        uid: Owner of created directories.
        gid: Group of created directories.

    Raises:
        ValueError: Relative path, ``..`` component, NUL, out-of-range mode or id.
        TypeError: An argument has the wrong type.
        NotADirectoryError: A component is not a directory (``filename`` = its path).
        OSError: ``ELOOP`` for a symlinked component, or another failure (``filename``
            = the failing sub-path); created directories are removed again.
    """
    norm = _normalize(path)
    _check_mode(mode)
    _check_id(uid, "uid")
    _check_id(gid, "gid")
    _bundle.mkdir_all_new(norm, mode, uid, gid)


def mkdir_and_chown(path: str | os.PathLike[str], mode: int, uid: int, gid: int) -> None:
    """Create the directory ``path`` (its parent must exist) owned by ``uid:gid`` with ``mode``.

    idtools' ``MkdirAndChown``: if ``path`` already is a directory it is
    chowned (when different) and chmodded to ``mode`` instead; never
    ``FileExistsError``. The existing directory is reached through an
    ``O_NOFOLLOW`` fd, so a symlink is refused rather than followed.

    Args:
        path: Absolute path without ``..`` components, not ``/``.
        mode: Permission bits (``0..0o7777``).
        uid: Owner.
        gid: Group.

    Raises:
        ValueError: Relative path, ``/``, ``..`` component, NUL, out-of-range mode or id.
        TypeError: An argument has the wrong type.
        FileNotFoundError: A parent is missing (``filename`` = the first missing one).
        NotADirectoryError: A component is not a directory.
        OSError: ``ELOOP`` for a symlinked component, or another failure.
    """
    norm = _normalize(path)
    if norm == "/":
        raise ValueError("refusing to re-own /")
    _check_mode(mode)
    _check_id(uid, "uid")
    _check_id(gid, "gid")
    _bundle.mkdir_chown(norm, mode, uid, gid)


def prepare_bundle_dir(path: str | os.PathLike[str], uid: int, gid: int) -> str:
    """Prepare a container's bundle directory for its root ``uid:gid`` (libcontainerd semantics).

    * ``uid == gid == 0``: :func:`mkdir_all_and_chown_new` with mode 0755 and
      owner 0:0; returns ``path`` (normalized).
    * Otherwise (user namespace): walk from ``/``. A component that exists as
      a directory others can traverse (other-execute bit) is used as is. The
      first one that is missing or lacks that bit, and every deeper one, is
      replaced by ``<component>.<uid>.<gid>``, created 0700 and owned by
      ``uid:gid`` (an existing one must be a directory owned by ``uid:gid``
      that group and others cannot write). Returns the resulting path, which
      callers must use for the bundle and its FIFOs.

    Args:
        path: Absolute path without ``..`` components.
        uid: Host uid of the container's root (see :func:`pycontainerd.idmap.spec_user`).
        gid: Host gid of the container's root.

    Returns:
        The bundle directory actually prepared.

    Raises:
        ValueError: Relative path, ``..`` component, NUL, or an id out of ``0..2**32-2``.
        TypeError: An argument has the wrong type.
        PermissionError: An existing suffixed directory has the wrong owner or is
            writable by group or others (``filename`` = that directory).
        NotADirectoryError: A component is not a directory (``filename`` = its path).
        OSError: ``ELOOP`` for a symlinked component, or another failure (``filename``
            = the failing sub-path); created directories are removed again.
    """
    norm = _normalize(path)
    _check_id(uid, "uid")
    _check_id(gid, "gid")
    if uid == 0 and gid == 0:
        _bundle.mkdir_all_new(norm, 0o755, 0, 0)
        return norm
    return _bundle.bundle_userns(norm, uid, gid)


def lock_dir_fd(path: str | os.PathLike[str], *, missing_ok: bool = False) -> int:
    """The descriptor :func:`process_lock` flocks: the bundle directory, opened without following a symlink.

    Args:
        path: The bundle directory.
        missing_ok: Return -1 for a missing directory instead of raising.

    Returns:
        The descriptor (the caller closes it, which releases a lock), or -1.

    Raises:
        OSError: The directory cannot be opened.
    """
    try:
        return os.open(os.fspath(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if not missing_ok:
            raise
        return -1


@contextlib.contextmanager
def process_lock(path: str | os.PathLike[str], *, missing_ok: bool = False) -> Iterator[None]:
    """Hold the bundle directory's lock while a task or exec is created in it, or deleted.

    Two creators racing for one process id (two threads, or two programs) would
    both pass the "does it exist?" check, both make and open the same FIFO paths,
    and the loser's clean-up would then remove the paths the winner's shim is
    about to open. With the lock held from that check until the Create/Exec RPC
    has answered, the second creator finds the first one's process and is
    refused before it touches a path.

    Two deleters of one process race at the shim instead: on containerd 1.6 the
    first Delete can make the shim exit before it answers ("ttrpc: closed"), so
    neither caller learns that it won. Under the lock only one Delete is in
    flight, and a process gone after ours failed that way was deleted by ours.

    The lock is ``flock(2)`` on the directory itself (no lock file in the
    bundle), released when the holder exits for whatever reason.

    Args:
        path: The bundle directory.
        missing_ok: Without a directory (removed since), go on without the lock.

    Raises:
        OSError: The directory cannot be opened (``filename`` says which).
    """
    fd = lock_dir_fd(path, missing_ok=missing_ok)
    if fd < 0:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = [
    "MAX_ID",
    "lock_dir_fd",
    "mkdir_all_and_chown_new",
    "mkdir_and_chown",
    "prepare_bundle_dir",
    "process_lock",
]
