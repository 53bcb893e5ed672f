"""Progress events from a worker thread to the event loop, in order, in bounded memory.

The sync pull, push and import report progress from their own threads, as fast as
chunks move; an asyncio consumer may be slower. :class:`EventRelay` queues the events
under a lock and wakes the loop with ``call_soon_threadsafe`` at most once per batch
(not once per event). A *transient* event (bytes so far of one blob: ``downloading``,
``uploading``) replaces the one of the same blob still queued, in its place, so
memory is bounded by the number of blobs and phase changes; a phase change is never
dropped, and since it closes the blob's queued slot, nothing is ever reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["EventRelay"]

E = TypeVar("E")


class EventRelay(Generic[E]):
    """Carries events of type ``E`` from any thread to one event loop.

    Args:
        loop: The loop the consumer runs on.
        blob: The key of the thing an event is about (events of one key keep their order).
        transient: Whether an event may be replaced by a later one of its key.
        wake: Called on the loop once events are waiting (then call :meth:`take`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, blob: Callable[[E], str],
                 transient: Callable[[E], bool], wake: Callable[[], None]) -> None:
        self._loop = loop
        self._blob = blob
        self._transient = transient
        self._wake = wake
        self._lock = threading.Lock()
        # One-element lists, so a queued transient event can be replaced in its place.
        self._queue: deque[list[E]] = deque()
        self._open: dict[str, list[E]] = {}
        self._scheduled = False

    def put(self, event: E) -> None:
        """Queue ``event`` (from any thread); never blocks on the consumer."""
        key = self._blob(event)
        with self._lock:
            slot = self._open.get(key)
            if slot is not None and self._transient(event):
                slot[0] = event
                return
            slot = [event]
            self._queue.append(slot)
            if self._transient(event):
                self._open[key] = slot
            else:
                self._open.pop(key, None)
            if self._scheduled:
                return
            self._scheduled = True
        # A closed loop means nobody listens any more: the event has nowhere to go.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        with self._lock:
            self._scheduled = False
        self._wake()

    def take(self) -> list[E]:
        """Every queued event, oldest first (on the loop)."""
        with self._lock:
            events = [slot[0] for slot in self._queue]
            self._queue.clear()
            self._open.clear()
        return events

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)
