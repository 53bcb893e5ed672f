"""Mount a snapshot's mounts read-only and describe the tree (for comparing unpacked images)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def mounted(mounts: Sequence[Any]) -> Iterator[str]:
    """Mount ``mounts`` (a snapshot view: one overlay or one bind mount) on a temporary dir."""
    assert len(mounts) == 1, mounts
    mount = mounts[0]
    target = tempfile.mkdtemp(prefix="pcd-view-")
    options = [o for o in mount.options if o not in ("rbind", "bind")]
    if mount.type == "bind":
        argv = ["mount", "--rbind" if "rbind" in mount.options else "--bind", mount.source, target]
    else:
        argv = ["mount", "-t", mount.type, "-o", ",".join(options), mount.source, target]
    subprocess.run(argv, check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", target], check=True, capture_output=True)
        os.rmdir(target)


def tree(root: str) -> dict[str, tuple[Any, ...]]:
    """Every path under ``root``: type, mode, owner, and content hash / link target / user xattrs.

    Hard links show as the same ``inode group`` (the first path sharing the inode).
    """
    out: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            xattrs = tuple(sorted(
                (key, os.getxattr(path, key, follow_symlinks=False))
                for key in os.listxattr(path, follow_symlinks=False) if key.startswith("user.")
            ))
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", st.st_uid, st.st_gid, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(mode), st.st_uid, st.st_gid, xattrs)
            else:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                group = inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 else rel
                out[rel] = ("file", oct(mode), st.st_uid, st.st_gid, digest, group, xattrs)
    return out


@contextlib.contextmanager
def snapshot_view(client: Any, snapshotter: str, parent: str, key: str) -> Iterator[str]:
    """A read-only view of the committed snapshot ``parent``, mounted; removed afterwards.

    The view is held by a lease: nothing else references it, and a garbage collection
    that another client's lease deletion triggers would otherwise remove it.
    """
    with client.api.leases.lease() as lease:
        leased = client.with_lease(lease.id)
        mounts = leased.api.snapshots.view(snapshotter, key, parent=parent)
        try:
            with mounted(mounts) as root:
                yield root
        finally:
            leased.api.snapshots.remove(snapshotter, key)
