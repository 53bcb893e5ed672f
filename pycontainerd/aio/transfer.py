"""``Transfer``: a pull, push or import running in a worker thread, its progress an async iterator.

The image and registry work is the sync client's (HTTP on urllib3, tar streaming,
content writes): blocking, so it runs in a worker thread (``asyncio.to_thread``).
Its progress events cross to the loop through an :class:`~._relay.EventRelay`
(in order; bytes-so-far events of a blob coalesced while the consumer is behind).

Cancellation is first-class. Leaving the ``async with`` block by an exception
(a cancel of the task included) sets the work's
:class:`~pycontainerd._cancel.CancelToken`: the registry transport shuts its sockets
down (a blocked read wakes at once), the downloads stop at their next chunk, and the
sync code ends as a failed transfer does, deleting its lease with a synchronous
garbage collection, so nothing of it remains. That clean-up is shielded but bounded
by :data:`TRANSFER_CANCEL_WAIT`. A cancel that arrives after the work finished (the
image record written) does not undo it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from pycontainerd._cancel import CancelToken
from pycontainerd.aio._relay import EventRelay
from pycontainerd.aio._util import wait_for

__all__ = ["TRANSFER_CANCEL_WAIT", "Transfer"]

#: How long a cancelled transfer's clean-up (lease deletion with GC) may run before
#: the cancel is raised anyway.
TRANSFER_CANCEL_WAIT = 30.0

E = TypeVar("E")
T = TypeVar("T")

#: The work: called in the worker thread with the progress callback and the cancel token.
Work = Callable[[Callable[[E], None], CancelToken], T]


class Transfer(Generic[E, T]):
    """A transfer in a worker thread: ``async for`` its progress events, then :meth:`result`.

    Made by :meth:`pycontainerd.aio.Client.pulling` and
    :meth:`~pycontainerd.aio.Client.pushing`; use it as an async context manager,
    which starts the work. Leaving the block normally waits for the work to end (and
    raises its error, if it failed); leaving it by an exception or a cancel stops the
    work and undoes it (see the module docstring).

    Example:
        >>> async with client.pulling(ref, plain_http=True) as transfer:
        ...     async for event in transfer:
        ...         print(event.phase.value, event.digest, event.offset, event.size)
        >>> image = transfer.result()
    """

    def __init__(self, work: Work[E, T], *, blob: Callable[[E], str], transient: Callable[[E], bool]) -> None:
        self._work = work
        self._blob = blob
        self._transient = transient
        self._cancel = CancelToken()
        self._future: asyncio.Future[T] | None = None
        self._relay: EventRelay[E] | None = None
        self._ready: asyncio.Event | None = None
        self._batch: deque[E] = deque()

    def _started(self) -> tuple[asyncio.Future[T], EventRelay[E], asyncio.Event]:
        if self._future is None or self._relay is None or self._ready is None:
            raise RuntimeError("the transfer has not started: use it as `async with ... as transfer`")
        return self._future, self._relay, self._ready

    async def __aenter__(self) -> Transfer[E, T]:
        if self._future is not None:
            raise RuntimeError("a transfer runs once")
        ready = self._ready = asyncio.Event()
        relay = self._relay = EventRelay(asyncio.get_running_loop(), blob=self._blob,
                                         transient=self._transient, wake=ready.set)
        self._future = asyncio.ensure_future(asyncio.to_thread(self._work, relay.put, self._cancel))
        self._future.add_done_callback(lambda _: ready.set())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        future, _, _ = self._started()
        if exc is None:
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                await self._stop()
                raise
            return
        await self._stop()

    async def _stop(self) -> None:
        """Cancel the work and wait (shielded, bounded) for its clean-up."""
        future, _, _ = self._started()
        if future.done():
            return
        self._cancel.set()
        # The worker cannot be abandoned mid-clean-up by a second cancel: wait it out,
        # boundedly, then let the caller's exception (or cancel) go on.
        with contextlib.suppress(BaseException):
            await wait_for(asyncio.shield(future), TRANSFER_CANCEL_WAIT)

    def __aiter__(self) -> Transfer[E, T]:
        return self

    async def __anext__(self) -> E:
        """The next progress event, in order; the iteration ends when the work does.

        Raises:
            Exception: The work's error, once every event before it was delivered.
        """
        future, relay, ready = self._started()
        while True:
            if self._batch:
                return self._batch.popleft()
            # Every event is put before the work returns: take what is queued before
            # looking at whether it is done, so none is lost.
            done = future.done()
            self._batch.extend(relay.take())
            if self._batch:
                continue
            if done:
                error = future.exception()
                if error is not None:
                    raise error
                raise StopAsyncIteration
            ready.clear()
            await ready.wait()

    def done(self) -> bool:
        """Whether the work has ended."""
        return self._future is not None and self._future.done()

    async def wait(self) -> T:
        """Wait for the work to end (without taking its events) and return its result.

        Raises:
            Exception: The work's error.
        """
        future, _, _ = self._started()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled() or not future.done():
                await self._stop()
            raise

    def result(self) -> T:
        """The work's result, once it ended (the image of a pull, the descriptor of a push).

        Raises:
            RuntimeError: It has not ended yet.
            Exception: Its error.
        """
        future, _, _ = self._started()
        if not future.done():
            raise RuntimeError("the transfer has not ended yet")
        return future.result()

    def cancel(self) -> None:
        """Ask the work to stop (it undoes what it made; the block's exit waits for that)."""
        self._cancel.set()
