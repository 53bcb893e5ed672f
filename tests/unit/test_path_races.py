"""Symlink races on the FIFO directory: a racer swaps path components for symlinks during 1,000 creates.

In a user-namespace bundle the remapped root owns the suffixed directories, so
it can swap one of them (the FIFO directory, or a directory above it) for a
symlink to a victim between any two of our calls. A separate process does
exactly that in a tight loop with ``renameat2(RENAME_EXCHANGE)`` (the real
directory and a symlink trade names atomically). Every create must either
succeed in the real directory or fail with a typed ``OSError``, and the victim
must never be touched: nothing created, chmodded or removed there.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pycontainerd.stdio.fifo import FIFOSet

CREATES = 1000

RACER = textwrap.dedent(
    """
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    a, b = (os.fsencode(p) for p in sys.argv[1:3])
    print("go", flush=True)
    while True:
        libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
    """
)


def _has_renameat2() -> bool:
    return hasattr(ctypes.CDLL(None), "renameat2")


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every entry under ``root`` with its mode and ctime: any touch changes it."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, name))
            out.append((os.path.relpath(os.path.join(dirpath, name), root), st.st_mode, st.st_ctime_ns))
    st = os.lstat(root)
    return [*sorted(out), (".", st.st_mode, st.st_ctime_ns)]


@pytest.mark.skipif(not _has_renameat2(), reason="needs renameat2 (glibc >= 2.28)")
@pytest.mark.parametrize("swapped", ["fifo-dir", "parent"])
def test_racing_symlink_swaps_never_touch_the_victim(tmp_path: Path, swapped: str) -> None:
    base = tmp_path / "bundles"
    fifo_dir = base / "ns" / "c1"
    fifo_dir.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim"
    # The same layout under the victim, so that following the symlink would succeed.
    (victim / "c1").mkdir(parents=True)
    (victim / "c1" / "keep").write_bytes(b"victim's file")
    os.mkfifo(victim / "c1" / "p0-stdout", 0o644)  # a FIFO of the victim that must not be removed
    swap_at = fifo_dir if swapped == "fifo-dir" else fifo_dir.parent
    link = swap_at.with_name(swap_at.name + ".swap")
    os.symlink(victim / "c1" if swapped == "fifo-dir" else victim, link)
    real_fd = os.open(fifo_dir, os.O_PATH | os.O_DIRECTORY)  # follows the real directory through renames
    before = _snapshot(victim)
    racer = subprocess.Popen([sys.executable, "-c", RACER, str(swap_at), str(link)], stdout=subprocess.PIPE)
    made = refused = 0
    errnos: set[int | None] = set()
    try:
        assert racer.stdout is not None
        assert racer.stdout.readline() == b"go\n"
        for i in range(CREATES):
            fifos = FIFOSet.new(str(fifo_dir), f"p{i}", stdin=True, terminal=False)
            try:
                pipes = fifos.open()
            except OSError as exc:
                # The path was a symlink (ELOOP), or the directory was not there
                # under its name at that instant (ENOENT): refused, nothing made.
                errnos.add(exc.errno)
                refused += 1
                continue
            made += 1
            for name in (f"p{i}-stdin", f"p{i}-stdout", f"p{i}-stderr"):
                assert stat.S_ISFIFO(os.stat(name, dir_fd=real_fd, follow_symlinks=False).st_mode)
            pipes.cancel()
            for end in (pipes.stdin, pipes.stdout, pipes.stderr):
                if end is not None:
                    end.close()
    finally:
        racer.kill()
        racer.wait()
    assert _snapshot(victim) == before
    assert errnos <= {errno.ELOOP, errno.ENOENT, errno.ENOTDIR}, errnos
    assert made + refused == CREATES
    # Both outcomes happened: the racer really raced.
    assert made > 0
    assert refused > 0
