"""The shared pump pool: a fixed number of native pump threads copying every process's streams.

The blocking pump (:mod:`pycontainerd.stdio.pump`) costs one thread per
process for as long as it copies; that suits the sync client. An asyncio
program that runs hundreds of containers at once must not pay a thread per
container, so its stdio goes through this pool instead: each worker thread
runs one native epoll loop (``csrc/pump_pool.c``) to which the ``(src, dst)``
pairs of many processes are added and from which they leave, copied by the
same engine as :func:`~pycontainerd.stdio.pump.copy_streams` (splice where
both ends allow it, discard-on-error, drain, prompt cancel).

A submitted :class:`PoolJob` is one process's pairs. When it ends (EOF, drain
or cancel) its worker queues it and makes its notify eventfd readable; whoever
watches those descriptors (the asyncio layer adds them to its loop) calls
:meth:`PumpPool.reap`, which hands each finished job to its ``on_done``
callback in the reaping thread. This module knows no event loop.

A job's descriptors are out of the worker's epoll set before the job is
reported finished, so its owner may close them in ``on_done``, and must not
close them before.

.. versionadded:: 0.2
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycontainerd._native import os_error
from pycontainerd._native import pump as _pump
from pycontainerd._native import pump_pool as _pool
from pycontainerd.stdio.pump import CopyResult

__all__ = ["DEFAULT_WORKERS", "PoolJob", "PumpPool", "shared_pool"]

#: Worker threads of the shared pool: enough to use two cores, never one per process.
DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))

_ids = itertools.count(1)


@dataclass(eq=False)
class PoolJob:
    """One process's pairs in the pool.

    Attributes:
        id: The job's key in its worker.
        pairs: The ``(src, dst)`` descriptor pairs.
        on_done: Called once, in the reaping thread, when the job ended.
        results: One :class:`~pycontainerd.stdio.pump.CopyResult` per pair, once ended.
        cancelled: Whether the job was cancelled (or the pool stopped) before every pair ended.
    """

    id: int
    pairs: tuple[tuple[int, int], ...]
    on_done: Callable[[PoolJob], None]
    results: list[CopyResult] = field(default_factory=list)
    cancelled: bool = False
    finished: bool = False
    _array: Any = None
    _worker: _Worker | None = None


class _Worker:
    """One native pool and the thread that runs its loop."""

    def __init__(self, index: int) -> None:
        self.handle = _pool.new()
        self.notify_fd = _pool.notify_fd(self.handle)
        self.jobs: dict[int, PoolJob] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"pcd-pump-{index}", daemon=True)
        self.error: OSError | None = None
        self.thread.start()

    def _run(self) -> None:
        try:
            _pool.run(self.handle)
        except OSError as exc:
            self.error = exc

    def load(self) -> int:
        return _pool.active(self.handle)


class PumpPool:
    """A fixed set of native pump workers shared by every process's stdio.

    Thread-safe. Use :func:`shared_pool` rather than making one: every pool
    costs its workers' threads.

    Args:
        workers: The number of worker threads.
    """

    def __init__(self, workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError("a pump pool needs at least one worker")
        self._workers = [_Worker(i) for i in range(workers)]
        # Held around every use of the native handles: close() frees them.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def notify_fds(self) -> tuple[int, ...]:
        """The descriptors that become readable when a job finished (then call :meth:`reap`)."""
        return tuple(w.notify_fd for w in self._workers)

    @property
    def thread_count(self) -> int:
        """How many threads the pool runs (fixed)."""
        return len(self._workers)

    def submit(self, pairs: Sequence[tuple[int, int]], on_done: Callable[[PoolJob], None], *,
               discard_on_error: bool = True) -> PoolJob:
        """Start copying ``pairs`` on the least busy worker.

        Args:
            pairs: ``(source fd, destination fd)`` pairs, never closed here.
            on_done: Called with the job once it ended, from :meth:`reap`.
            discard_on_error: A failing destination keeps its source read (and
                dropped) to EOF, so the writer never blocks (as for the sync client).

        Returns:
            The job.

        Raises:
            OSError: The pool is closed (``ESHUTDOWN``) or out of memory.
        """
        checked = tuple((int(src), int(dst)) for src, dst in pairs)
        with self._lock:
            if self._closed:
                raise OSError(errno.ESHUTDOWN, "the pump pool is closed")
            worker = min(self._workers, key=_Worker.load)
            job = PoolJob(next(_ids), checked, on_done)
            job._array = _pool.streams(checked)
            job._worker = worker
            with worker.lock:
                worker.jobs[job.id] = job
            try:
                _pool.submit(worker.handle, job._array, len(checked), job.id,
                             _pump.DISCARD_ON_ERROR if discard_on_error else 0)
            except BaseException:
                with worker.lock:
                    worker.jobs.pop(job.id, None)
                raise
        return job

    def drain(self, job: PoolJob) -> None:
        """End each of the job's pairs once its source is empty (sources that see no EOF at exit)."""
        with self._lock:
            if job._worker is not None and not job.finished and not self._closed:
                _pool.drain(job._worker.handle, job.id)

    def cancel(self, job: PoolJob) -> None:
        """Stop the job promptly; it still finishes (``cancelled``) through :meth:`reap`."""
        with self._lock:
            if job._worker is not None and not job.finished and not self._closed:
                _pool.cancel(job._worker.handle, job.id)

    def reap(self) -> list[PoolJob]:
        """Collect every finished job and call its ``on_done`` (in this thread).

        Returns:
            The jobs finished since the last reap.
        """
        with self._lock:
            if self._closed:
                return []
            finished = self._reap()
        for job in finished:
            job.on_done(job)
        return finished

    def _reap(self) -> list[PoolJob]:
        finished: list[PoolJob] = []
        for worker in self._workers:
            while True:
                batch = _pool.reap(worker.handle)
                for job_id, cancelled in batch:
                    with worker.lock:
                        job = worker.jobs.pop(job_id, None)
                    if job is None:
                        continue
                    outcomes = _pool.outcomes(job._array, len(job.pairs))
                    job.results = [
                        CopyResult(n, os_error(err) if err else None, cancelled and not done, dropped)
                        for n, err, done, dropped in outcomes
                    ]
                    job.cancelled = cancelled
                    job.finished = True
                    job._array = None
                    finished.append(job)
                if len(batch) < _pool.REAP_BATCH:
                    break
        return finished

    def close(self) -> None:
        """Stop every worker (running jobs end cancelled) and free the pools. Idempotent."""
        with self._lock:
            if self._closed:
                return
            for worker in self._workers:
                _pool.stop(worker.handle)
            for worker in self._workers:
                worker.thread.join()
            finished = self._reap()
            self._closed = True
            for worker in self._workers:
                _pool.free(worker.handle)
        for job in finished:
            job.on_done(job)


_shared: PumpPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> PumpPool:
    """The process's pump pool, started on first use (:data:`DEFAULT_WORKERS` threads)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PumpPool()
        return _shared


def _after_fork() -> None:
    # The workers are threads of the parent: a child starts its own pool when it needs one.
    global _shared
    _shared = None


os.register_at_fork(after_in_child=_after_fork)
