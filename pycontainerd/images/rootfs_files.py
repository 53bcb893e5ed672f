"""Reading a file of an unpacked image without mounting it (``/etc/passwd`` for user names).

A read-only view of the image's top snapshot gives the directories its
filesystem is made of: one bind-mounted directory, or overlayfs lower
directories (top first). A path is resolved across them as overlayfs would: the
first layer holding it wins; a whiteout (a 0/0 character device) or an opaque
directory (``trusted.overlay.opaque=y``, or ``user.overlay.opaque`` for
unprivileged overlays) above it hides the layers below. Only regular files are
read; a symlink or anything else reads as absent.

:func:`user_files` keeps what it read of ``/etc/passwd`` and ``/etc/group`` per
committed snapshot for the life of the process: a committed snapshot never changes
(and its chain ID names its content), so the next container of the same image needs
no view and no reading.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from pycontainerd import errors
from pycontainerd.api.types import Mount

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = ["USER_FILES", "layer_dirs", "read_from_layers", "snapshot_reader", "user_files"]

#: The files user names are resolved in (containerd's ``WithUser``/``WithAdditionalGIDs``).
USER_FILES = ("/etc/passwd", "/etc/group")
# How many snapshots' user files are kept (a few hundred bytes to a few KiB each).
_USER_FILES_KEPT = 64
_user_files: OrderedDict[tuple[str, str, str, str], dict[str, bytes | None]] = OrderedDict()
_user_files_lock = threading.Lock()

# Files this is used for are small; a bigger one is not a passwd file.
_MAX_FILE = 4 << 20
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def layer_dirs(mounts: Sequence[Mount]) -> list[str] | None:
    """The directories of a view's mounts, top layer first; ``None`` for other mount types."""
    if len(mounts) != 1:
        return None
    mount = mounts[0]
    if mount.type == "bind" or "bind" in mount.options or "rbind" in mount.options:
        return [mount.source]
    if mount.type == "overlay":
        dirs: list[str] = []
        for option in mount.options:
            key, _, value = option.partition("=")
            if key == "upperdir":
                dirs.insert(0, value)
            elif key == "lowerdir":
                dirs.extend(value.split(":"))
        return dirs
    return None


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    for name in _OPAQUE_XATTRS:
        with contextlib.suppress(OSError):
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
    return False


def read_from_layers(dirs: Sequence[str], path: str) -> bytes | None:
    """The content of ``path`` in the union of ``dirs`` (top first), or ``None``."""
    parts = [part for part in path.split("/") if part and part != "."]
    if not parts or ".." in parts:
        return None
    for layer in dirs:
        current = layer
        hidden_below = False
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                break
            if _whiteout(st):
                return None
            if i == len(parts) - 1:
                if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_FILE:
                    return None
                with open(current, "rb") as f:
                    return f.read(_MAX_FILE)
            if not stat.S_ISDIR(st.st_mode):
                return None
            if _opaque(current):
                hidden_below = True
        if hidden_below:
            return None
    return None


@contextlib.contextmanager
def snapshot_reader(client: Client, snapshotter: str, parent: str) -> Iterator[Callable[[str], bytes | None]]:
    """A reader of files of the committed snapshot ``parent``, through a temporary view.

    Raises:
        ValueError: The snapshotter's mounts are not plain directories (files cannot be read).
    """
    key = f"pycontainerd-read-{uuid.uuid4().hex}"
    mounts = client.api.snapshots.view(snapshotter, key, parent=parent)
    try:
        dirs = layer_dirs(mounts)
        if dirs is None:
            raise ValueError(f"cannot read image files from {snapshotter} mounts {mounts!r}")
        yield lambda path: read_from_layers(dirs, path)
    finally:
        with contextlib.suppress(errors.ContainerdError):
            client.api.snapshots.remove(snapshotter, key)


def user_files(client: Client, snapshotter: str, parent: str) -> Callable[[str], bytes | None]:
    """A reader of :data:`USER_FILES` of the committed snapshot ``parent``, read once and kept.

    The first call for a snapshot reads them through a temporary view
    (:func:`snapshot_reader`); later calls for the same daemon, namespace, snapshotter
    and snapshot answer from memory (the last 64 snapshots are kept).

    Raises:
        ValueError: The snapshotter's mounts are not plain directories (files cannot be read).
    """
    key = (client.address, client.namespace, snapshotter, parent)
    with _user_files_lock:
        files = _user_files.get(key)
        if files is not None:
            _user_files.move_to_end(key)
    if files is None:
        with snapshot_reader(client, snapshotter, parent) as read:
            files = {path: read(path) for path in USER_FILES}
        with _user_files_lock:
            _user_files[key] = files
            while len(_user_files) > _USER_FILES_KEPT:
                _user_files.popitem(last=False)
    kept = files
    # Only the user files are kept: asking for another one is a caller's mistake.
    return lambda path: kept[path]
