"""The task event monitor as an async iterator, with the sync monitor's reconnect and reconcile.

``async for container_id, kind, info in client.events():`` yields libcontainerd's
``(container_id, EventType, EventInfo)`` in arrival order. The decoding, the
bookkeeping of live processes, the deduplication of exits and the reconcile rules
are :class:`pycontainerd.events.ExitTracker`'s, shared with
:class:`pycontainerd.events.EventMonitor`; only the waiting differs. When the
stream breaks for any reason other than :meth:`EventMonitor.stop` it waits for the
daemon's health check to serve again (every 100 ms), subscribes again (its request
ahead of the reconcile's calls on the channel), and reports the exits containerd
will not replay: every process it saw running that stopped or vanished meanwhile,
from Tasks/List and Tasks/Get (``info.reconciled``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from pycontainerd import errors
from pycontainerd.aio._grpc import AsyncResponseStream
from pycontainerd.api.types import TaskInfo
from pycontainerd.events import TASK_EVENTS_FILTER, EventInfo, EventType, ExitTracker

if TYPE_CHECKING:
    from pycontainerd.aio.client import Client
    from pycontainerd.api.events import Event

__all__ = ["EventMonitor"]

_log = logging.getLogger(__name__)

_HEALTH_INTERVAL = 0.1
_END: Any = object()

Item = tuple[str, EventType, EventInfo]


class EventMonitor:
    """A namespace's task events as an async iterator that survives daemon restarts.

    Use ``async with client.events() as events: async for ... in events`` (or
    :meth:`start`/:meth:`stop`). Iteration ends after :meth:`stop`, once the events
    received before it were yielded.

    Args:
        client: The client; its namespace is the one watched.

    Attributes:
        reconnects: How many times the subscription was made again.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._tracker = ExitTracker()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._stream: AsyncResponseStream[Event] | None = None
        self._stopped = False
        self.reconnects = 0

    async def start(self) -> EventMonitor:
        """Subscribe, note the existing tasks (after the subscription's request), start receiving.

        Raises:
            ContainerdError: The daemon cannot be reached.
            RuntimeError: Already started.
        """
        if self._runner is not None:
            raise RuntimeError("the event monitor was already started")
        stream = await self._subscribe()
        try:
            self._tracker.note_existing(await self._client.api.tasks.list())
        except BaseException:
            stream.cancel()
            raise
        self._runner = asyncio.ensure_future(self._run(stream))
        return self

    async def stop(self) -> None:
        """Cancel the subscription and stop; iteration ends after what was already received."""
        if self._stopped:
            return
        self._stopped = True
        if self._stream is not None:
            self._stream.cancel()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._queue.put_nowait(_END)

    async def __aenter__(self) -> EventMonitor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __aiter__(self) -> EventMonitor:
        return self

    async def __anext__(self) -> Item:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # every later __anext__ ends too
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def _subscribe(self) -> AsyncResponseStream[Event]:
        stream = self._client.api.events.subscribe(TASK_EVENTS_FILTER)
        # The call's request goes out on the channel ahead of any later call (Tasks/List in
        # start(), the reconcile): one turn of the loop lets grpc.aio start it. containerd
        # sends no headers before the first event, so there is nothing to wait for.
        await asyncio.sleep(0)
        self._stream = stream
        return stream

    def _put(self, kind: EventType, info: EventInfo) -> None:
        self._queue.put_nowait((info.container_id, kind, info))

    async def _run(self, stream: AsyncResponseStream[Event]) -> None:
        while not self._stopped:
            try:
                async for event in stream:
                    handled = self._tracker.handle(event)
                    if handled is not None:
                        self._put(*handled)
                # A clean end of stream (daemon shutting down) is a disconnect too.
            except errors.CanceledError:
                pass
            except errors.ContainerdError as err:
                _log.info("event stream broke: %s", err)
            finally:
                stream.cancel()
            if self._stopped:
                return
            await self._wait_serving()
            try:
                stream = await self._subscribe()
            except errors.ContainerdError as err:
                _log.info("resubscribe failed: %s", err)
                await asyncio.sleep(_HEALTH_INTERVAL)
                continue
            self.reconnects += 1
            await self._reconcile()

    async def _wait_serving(self) -> None:
        while not self._stopped:
            try:
                if await self._client.api.health.is_serving(timeout=1.0):
                    return
            except errors.ContainerdError:
                pass
            await asyncio.sleep(_HEALTH_INTERVAL)

    async def _reconcile(self) -> None:
        """Report the exits containerd will not replay: processes that ended while disconnected."""
        tasks = self._client.api.tasks
        try:
            listed = {t.container_id: t for t in await tasks.list()}
        except errors.ContainerdError as err:
            _log.info("reconcile: listing tasks failed: %s", err)
            listed = {}
        found = self._tracker.reconcile_listed(listed)
        for key, pid, state in self._tracker.to_check(listed):
            known: TaskInfo | None
            if isinstance(state, str):
                try:
                    known = await tasks.get(key[0], state)
                except errors.NotFoundError:
                    known = None
                except errors.ContainerdError as err:
                    _log.info("reconcile of %s/%s failed: %s", key[0], key[1], err)
                    continue
            else:
                known = state
            found += self._tracker.settle(key, pid, known)
        for info in found:
            self._put(EventType.EXIT, info)
