"""Mounts and cgroups: what lies under a directory, and the cgroup hierarchies' top level."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os

__all__ = ["cgroup_roots", "mounts_under", "top_cgroups", "umount"]

_MNT_DETACH = 2


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in our mount namespace, innermost (latest) first."""
    prefix = path.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape_mountinfo(line.split()[4])
            if point == path or point.startswith(prefix):
                found.append(point)
    return list(reversed(found))


def cgroup_roots() -> list[str]:
    """Mount points of the cgroup hierarchies (v1 controllers and/or the v2 tree)."""
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            if post.split()[:1] in (["cgroup"], ["cgroup2"]) and fields[3] == "/":
                roots.append(_unescape_mountinfo(fields[4]))
    return roots


def top_cgroups() -> set[str]:
    names: set[str] = set()
    for root in cgroup_roots():
        with contextlib.suppress(OSError):
            names.update(
                os.path.join(root, e.name) for e in os.scandir(root) if e.is_dir(follow_symlinks=False)
            )
    return names


def umount(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        # EINVAL: no longer a mount point (a parent's detach took it); ENOENT: gone.
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, os.strerror(err), path)

