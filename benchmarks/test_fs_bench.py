"""pytest-benchmark: the native FIFO creation and bundle stat-walk against pure-Python equivalents.

Run with ``python -m pytest benchmarks/test_fs_bench.py --benchmark-only`` (as root: the
userns walk chowns). Groups:

* ``fifo``: one FIFO made the safe native way (dir fd, mkfifoat, O_NOFOLLOW open,
  fstat, fchmod) vs a bare ``os.mkfifo`` vs the same safe sequence in Python.
* ``stat-walk``: ``prepare_bundle_dir`` for a remapped root vs moby's walk written
  in Python (``os.stat`` per component, mkdir/chown/chmod by path), over depths.

Every round gets fresh state through ``benchmark.pedantic(setup=...)``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pycontainerd._native import fifo as fs
from pycontainerd.bundle import prepare_bundle_dir

UID, GID = 100000, 100000
ROUNDS = 500


@pytest.fixture
def base() -> Iterator[str]:
    path = tempfile.mkdtemp(dir="/tmp", prefix="pcd-bench-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- fifo ------------------------------------------------------------------------------------------


def native_fifo(directory: str, name: str) -> None:
    dirfd = fs.open_dir(directory)
    try:
        fd, _ = fs.fifo_create(dirfd, name, 0o600, os.path.join(directory, name))
    finally:
        os.close(dirfd)
    os.close(fd)


def python_mkfifo(directory: str, name: str) -> None:
    os.mkfifo(os.path.join(directory, name), 0o600)


def python_safe_fifo(directory: str, name: str) -> None:
    path = os.path.join(directory, name)
    os.mkfifo(path, 0o600)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise FileExistsError(path)
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@pytest.mark.benchmark(group="fifo")
@pytest.mark.parametrize(
    "create",
    [native_fifo, python_mkfifo, python_safe_fifo],
    ids=["native", "os.mkfifo", "python-safe"],
)
def test_fifo_create(benchmark: Any, base: str, create: Callable[[str, str], None]) -> None:
    names = (f"p{i}-stdout" for i in itertools.count())

    def setup() -> tuple[tuple[str, str], dict[str, Any]]:
        return (base, next(names)), {}

    benchmark.pedantic(create, setup=setup, rounds=ROUNDS, iterations=1)
    assert all(stat.S_ISFIFO(os.lstat(os.path.join(base, n)).st_mode) for n in os.listdir(base))


# -- stat-walk -------------------------------------------------------------------------------------


def python_walk(path: str, uid: int, gid: int) -> str:
    """moby's prepareBundleDir walk for a remapped root, by path (not race-safe)."""
    p = "/"
    suffixed = False
    for component in [c for c in path.split("/") if c]:
        p = os.path.join(p, component)
        if not suffixed:
            try:
                traversable = bool(os.stat(p).st_mode & stat.S_IXOTH)
            except FileNotFoundError:
                traversable = False
            suffixed = not traversable
        if suffixed:
            p = f"{p}.{uid}.{gid}"
            with contextlib.suppress(FileExistsError):
                os.mkdir(p, 0o700)
            os.chown(p, uid, gid)
            os.chmod(p, 0o700)
    return p


@pytest.mark.skipif(os.geteuid() != 0, reason="the userns walk chowns to another uid")
@pytest.mark.benchmark(group="stat-walk")
@pytest.mark.parametrize("depth", [4, 16, 64])
@pytest.mark.parametrize("walk", [prepare_bundle_dir, python_walk], ids=["native", "python-os.stat"])
def test_stat_walk(benchmark: Any, base: str, depth: int, walk: Callable[[str, int, int], str]) -> None:
    parent = os.path.join(base, *(f"d{i}" for i in range(depth)))
    os.makedirs(parent, 0o755)
    target = os.path.join(parent, "bundle")
    expected = f"{target}.{UID}.{GID}"

    def setup() -> tuple[tuple[str, int, int], dict[str, Any]]:
        # A fresh tree each round: the bundle from the previous round is removed.
        if os.path.lexists(expected):
            os.rmdir(expected)
        return (target, UID, GID), {}

    result = benchmark.pedantic(walk, setup=setup, rounds=ROUNDS, iterations=1)
    assert result == expected
    st = os.lstat(expected)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (UID, GID, 0o700)
