"""Bindings for ``csrc/pump_pool.c``: the shared native pump pool, C-shaped.

.. warning::
   Hazardous materials: raw descriptors, raw pool handles, no ownership. Use
   :mod:`pycontainerd.stdio.pool` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pycontainerd._native import FFI, LIB, check

#: Most jobs :func:`reap` returns per call.
REAP_BATCH = 256


def new() -> Any:
    """``pcd_pool_new``: a pool handle (free it with :func:`free` once :func:`run` returned).

    Raises:
        OSError: No memory, or no epoll/eventfd descriptor could be made.
    """
    out = FFI.new("struct pcd_pool **")
    check(LIB.pcd_pool_new(out))
    return out[0]


def notify_fd(pool: Any) -> int:
    """The eventfd readable while finished jobs wait for :func:`reap`."""
    return int(LIB.pcd_pool_notify_fd(pool))


def run(pool: Any) -> None:
    """``pcd_pool_run``: the worker loop, GIL released, until :func:`stop`.

    Raises:
        OSError: The loop itself failed (every unfinished job is reported cancelled).
    """
    check(LIB.pcd_pool_run(pool))


def stop(pool: Any) -> None:
    """Ask :func:`run` to return; unfinished jobs are reported cancelled."""
    check(LIB.pcd_pool_stop(pool))


def free(pool: Any) -> None:
    """Free the pool (only after :func:`run` returned, or if it never ran)."""
    LIB.pcd_pool_free(pool)


def streams(pairs: Sequence[tuple[int, int]]) -> Any:
    """A ``struct pcd_pump_stream[]`` for ``pairs``; keep it alive until the job is reaped."""
    array = FFI.new("struct pcd_pump_stream[]", max(len(pairs), 1))
    for i, (src, dst) in enumerate(pairs):
        array[i].src = src
        array[i].dst = dst
    return array


def submit(pool: Any, array: Any, count: int, job_id: int, flags: int) -> None:
    """``pcd_pool_submit``: copy ``array[0:count]`` as ``pcd_pump_drain`` would (``PCD_PUMP_*`` flags).

    Raises:
        OSError: ``ESHUTDOWN`` once the pool stops, ``ENOMEM``, ``EINVAL``.
    """
    check(LIB.pcd_pool_submit(pool, array, count, job_id, flags))


def drain(pool: Any, job_id: int) -> None:
    """``pcd_pool_drain``: end the job's streams once their sources are empty."""
    check(LIB.pcd_pool_drain(pool, job_id))


def cancel(pool: Any, job_id: int) -> None:
    """``pcd_pool_cancel``: stop the job promptly (reaped as cancelled)."""
    check(LIB.pcd_pool_cancel(pool, job_id))


def reap(pool: Any) -> list[tuple[int, bool]]:
    """``pcd_pool_reap``: finished jobs as ``(job id, cancelled)``, at most :data:`REAP_BATCH`."""
    ids = FFI.new("uint64_t[]", REAP_BATCH)
    cancelled = FFI.new("int[]", REAP_BATCH)
    n = check(LIB.pcd_pool_reap(pool, ids, cancelled, REAP_BATCH))
    return [(int(ids[i]), bool(cancelled[i])) for i in range(n)]


def outcomes(array: Any, count: int) -> list[tuple[int, int, bool, int]]:
    """The ``(nbytes, errno, done, dropped)`` of each stream of a reaped job."""
    return [(int(s.nbytes), int(s.err), bool(s.done), int(s.dropped)) for s in array[0:count]]


def active(pool: Any) -> int:
    """Jobs submitted to the pool and not yet finished."""
    return int(LIB.pcd_pool_active(pool))


__all__ = ["REAP_BATCH", "active", "cancel", "drain", "free", "new", "notify_fd", "outcomes", "reap",
           "run", "stop", "streams", "submit"]
