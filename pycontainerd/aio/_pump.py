"""The shared native pump pool as one event loop sees it: jobs whose ends are awaited.

:mod:`pycontainerd.stdio.pool` copies every process's streams on a fixed
number of native threads and reports finished jobs on eventfds. A loop with
jobs in flight watches those eventfds (``add_reader``) and reaps; each job's
future is resolved on the loop that submitted it, whichever loop reaped it.
When a loop has no job left it stops watching, so a loop without stdio has
no reader registered (the 200-cycle leak tests count them).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Sequence

from pycontainerd.stdio.pool import PoolJob, PumpPool, shared_pool

__all__ = ["LoopPump", "loop_pump"]


class LoopPump:
    """Submit copies to the shared pool and await them on one event loop.

    Args:
        loop: The loop whose futures the jobs resolve.
        pool: The pool (the process's shared one).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: PumpPool) -> None:
        self._loop = loop
        self._pool = pool
        self._active = 0
        self._watching = False

    @property
    def pool(self) -> PumpPool:
        """The pool the copies run on."""
        return self._pool

    @property
    def active(self) -> int:
        """Jobs submitted from this loop and not yet resolved."""
        return self._active

    def submit(self, pairs: Sequence[tuple[int, int]], *,
               discard_on_error: bool = True) -> tuple[PoolJob, asyncio.Future[PoolJob]]:
        """Start copying ``pairs``; the future resolves (with the job) once it ended.

        The descriptors must stay open until the future is done.

        Raises:
            OSError: The pool refused the job (shut down, out of memory).
        """
        future: asyncio.Future[PoolJob] = self._loop.create_future()

        def on_done(job: PoolJob) -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._settle(future, job)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    self._loop.call_soon_threadsafe(self._settle, future, job)

        job = self._pool.submit(pairs, on_done, discard_on_error=discard_on_error)
        self._active += 1
        self._watch()
        return job, future

    def drain(self, job: PoolJob) -> None:
        """End the job's pairs once their sources are empty (see :meth:`PumpPool.drain`)."""
        self._pool.drain(job)

    def cancel(self, job: PoolJob) -> None:
        """Stop the job promptly; its future still resolves (``job.cancelled``)."""
        self._pool.cancel(job)

    def _settle(self, future: asyncio.Future[PoolJob], job: PoolJob) -> None:
        self._active -= 1
        if not future.done():
            future.set_result(job)
        if self._active == 0:
            self._unwatch()

    def _watch(self) -> None:
        if self._watching:
            return
        for fd in self._pool.notify_fds:
            self._loop.add_reader(fd, self._pool.reap)
        self._watching = True

    def _unwatch(self) -> None:
        if not self._watching:
            return
        for fd in self._pool.notify_fds:
            self._loop.remove_reader(fd)
        self._watching = False


_pumps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPump] = weakref.WeakKeyDictionary()


def loop_pump() -> LoopPump:
    """The running loop's view of the shared pool (made on first use)."""
    loop = asyncio.get_running_loop()
    pump = _pumps.get(loop)
    if pump is None:
        pump = _pumps[loop] = LoopPump(loop, shared_pool())
    return pump
