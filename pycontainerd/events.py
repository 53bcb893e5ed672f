"""The libcontainerd event loop: containerd's task events as ``(container_id, EventType, EventInfo)``.

:class:`EventMonitor` subscribes with exactly ``namespace==<ns>,topic~=|^/tasks/|``
(moby's filter), decodes create/start/exit/oom/exec-added/exec-started/
paused/resumed, and hands each to a backend callback, strictly in arrival
order per container and concurrently across containers. Undecodable and
other events are skipped. When the stream breaks for any reason other than
:meth:`EventMonitor.stop` (a lost connection, a clean end of stream, even a
CANCELLED the server sent: moby stops on CANCELLED only because its own
context is the sole source of it), it waits for the daemon's health check to
serve again (every 100 ms), resubscribes, and then reconciles: containerd does not
replay events, so the exit of every process it saw running and that stopped
(or vanished) meanwhile is reported from Tasks/Get. Exits are deduplicated by
(container, process, pid), so a duplicate ``/tasks/exit`` (containerd#2299,
#4769) reaches the backend once.
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pycontainerd import errors
from pycontainerd._queue import OrderedQueue
from pycontainerd.api import events as ev
from pycontainerd.api.types import Status, TaskInfo

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = ["TASK_EVENTS_FILTER", "EventInfo", "EventMonitor", "EventType", "ExitTracker", "decode"]

_log = logging.getLogger(__name__)

#: The filter term libcontainerd adds after ``namespace==<ns>``.
TASK_EVENTS_FILTER = "topic~=|^/tasks/|"
_HEALTH_INTERVAL = 0.1
_SEEN_EXITS = 4096


class EventType(str, enum.Enum):
    """libcontainerd's event types."""

    CREATE = "create"
    START = "start"
    EXIT = "exit"
    OOM = "oom"
    EXEC_ADDED = "exec-added"
    EXEC_STARTED = "exec-started"
    PAUSED = "paused"
    RESUMED = "resumed"


@dataclass(frozen=True)
class EventInfo:
    """What an event says about a process (libcontainerd's ``EventInfo``).

    Attributes:
        container_id: The container.
        process_id: The container id for the init process, else the exec id.
        pid: The pid, when the event carries one.
        exit_code: The exit status (exit events).
        exited_at: When it exited (exit events; ``None`` if unset).
        reconciled: True for an exit learned from Tasks/Get after a reconnect, not from an event.
    """

    container_id: str
    process_id: str = ""
    pid: int = 0
    exit_code: int = 0
    exited_at: _dt.datetime | None = None
    reconciled: bool = False


def decode(event: ev.Event) -> tuple[EventType, EventInfo] | None:
    """Map a typed containerd event to libcontainerd's ``(EventType, EventInfo)``.

    Args:
        event: A decoded event from ``client.api.events.subscribe``.

    Returns:
        The pair, or ``None`` for events libcontainerd ignores (delete, checkpointed, unknown).
    """
    if isinstance(event, ev.TaskCreate):
        return EventType.CREATE, EventInfo(event.container_id, event.container_id, event.pid)
    if isinstance(event, ev.TaskStart):
        return EventType.START, EventInfo(event.container_id, event.container_id, event.pid)
    if isinstance(event, ev.TaskExit):
        return EventType.EXIT, EventInfo(event.container_id, event.id or event.container_id, event.pid,
                                         event.exit_status, event.exited_at)
    if isinstance(event, ev.TaskOOM):
        return EventType.OOM, EventInfo(event.container_id, event.container_id)
    if isinstance(event, ev.TaskExecAdded):
        return EventType.EXEC_ADDED, EventInfo(event.container_id, event.exec_id)
    if isinstance(event, ev.TaskExecStarted):
        return EventType.EXEC_STARTED, EventInfo(event.container_id, event.exec_id, event.pid)
    if isinstance(event, ev.TaskPaused):
        return EventType.PAUSED, EventInfo(event.container_id, event.container_id)
    if isinstance(event, ev.TaskResumed):
        return EventType.RESUMED, EventInfo(event.container_id, event.container_id)
    return None


class ExitTracker:
    """What an event monitor knows, without I/O: processes seen alive, exits already reported.

    The pure half of the monitor, shared by :class:`EventMonitor` and the asyncio
    ``pycontainerd.aio.events.EventMonitor``: they feed it events and Tasks/List and
    Tasks/Get answers, and deliver what it returns.
    """

    def __init__(self) -> None:
        # Processes seen alive: (container, process) -> pid; what reconcile checks.
        self.alive: dict[tuple[str, str], int] = {}
        self._exits: OrderedDict[tuple[str, str, int], None] = OrderedDict()

    def handle(self, event: ev.Event) -> tuple[EventType, EventInfo] | None:
        """Decode an event and note what it says; ``None`` when nothing is to be delivered.

        A stale exit (an older pid) leaves the current process alone; a duplicate
        exit (containerd#2299, #4769) is dropped.
        """
        decoded = decode(event)
        if decoded is None:
            return None
        kind, info = decoded
        key = (info.container_id, info.process_id)
        if kind in (EventType.CREATE, EventType.START, EventType.EXEC_STARTED):
            self.alive[key] = info.pid
        elif kind is EventType.EXIT:
            if self.alive.get(key) == info.pid:
                del self.alive[key]
            if not self.first_exit(info):
                return None
        return kind, info

    def first_exit(self, info: EventInfo) -> bool:
        """Note an exit; False if it was reported before."""
        exit_key = (info.container_id, info.process_id, info.pid)
        if exit_key in self._exits:
            return False
        self._exits[exit_key] = None
        while len(self._exits) > _SEEN_EXITS:
            self._exits.popitem(last=False)
        return True

    def note_existing(self, tasks: list[TaskInfo]) -> None:
        """Note the tasks found at start: running ones get their exit reconciled later."""
        # Only init processes are listed; execs are learned from their events.
        for task in tasks:
            key = (task.container_id, task.container_id)
            if task.status is Status.STOPPED:
                self.first_exit(EventInfo(task.container_id, task.container_id, task.pid))
            elif task.status is not Status.UNKNOWN and key not in self.alive:
                self.alive[key] = task.pid

    def reconcile_listed(self, listed: dict[str, TaskInfo]) -> list[EventInfo]:
        """After a reconnect: the exits of tasks created and ended while away; new running ones noted."""
        found: list[EventInfo] = []
        for container_id, task in listed.items():
            key = (container_id, container_id)
            if key not in self.alive and task.status is Status.STOPPED:
                found += self.settle(key, task.pid, task)
            elif key not in self.alive and task.status is not Status.UNKNOWN:
                self.alive[key] = task.pid
        return found

    def to_check(self, listed: dict[str, TaskInfo]) -> list[tuple[tuple[str, str], int,
                                                                  TaskInfo | str | None]]:
        """Every process seen alive, with its state from ``listed``, or the exec id to ask Tasks/Get for.

        Returns:
            ``(key, pid, state)`` where ``state`` is a :class:`TaskInfo` or ``None`` (gone)
            when the listing answers, else the exec id (``""``: the init process) to Get.
        """
        checks: list[tuple[tuple[str, str], int, TaskInfo | str | None]] = []
        for key, pid in list(self.alive.items()):
            container_id, process_id = key
            if process_id == container_id and listed:
                checks.append((key, pid, listed.get(container_id)))
            else:
                checks.append((key, pid, "" if process_id == container_id else process_id))
        return checks

    def settle(self, key: tuple[str, str], pid: int, state: TaskInfo | None) -> list[EventInfo]:
        """The exits to report for process ``key`` (last seen with ``pid``) given its ``state`` now."""
        container_id, process_id = key
        if state is not None and state.pid == pid and state.status is not Status.STOPPED:
            return []  # still there
        if state is not None and state.pid == pid:
            info = EventInfo(container_id, process_id, pid, state.exit_status, state.exited_at,
                             reconciled=True)
        else:
            # Deleted (or deleted and replaced by a new process) while we were away:
            # its exit status is lost (containerd's UnknownExitStatus).
            info = EventInfo(container_id, process_id, pid, 255, None, reconciled=True)
        if self.alive.get(key) == pid:
            del self.alive[key]
        found = [info] if self.first_exit(info) else []
        if state is not None and state.pid != pid:
            if state.status is Status.STOPPED:
                found += self.settle(key, state.pid, state)
            elif state.status is not Status.UNKNOWN:
                self.alive[key] = state.pid
        return found


Backend = Callable[[str, EventType, EventInfo], None]


class EventMonitor:
    """Deliver a namespace's task events to a backend, surviving daemon restarts.

    Args:
        client: The client; its namespace is the one watched.
        backend: ``backend(container_id, event_type, event_info)``; exceptions are logged.
        max_workers: Threads delivering events (different containers run in parallel).
    """

    def __init__(self, client: Client, backend: Backend, *, max_workers: int = 8) -> None:
        self._client = client
        self._backend = backend
        self._queue = OrderedQueue(max_workers)
        self._stop = threading.Event()
        self._stream: ev.EventStream | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tracker = ExitTracker()
        self._subscribed = threading.Event()
        self.reconnects = 0

    def start(self) -> EventMonitor:
        """Subscribe (the first subscription is in place when this returns) and start the loop.

        The tasks that already exist are noted (running ones will have their exit
        reconciled after a reconnect; stopped ones are not reported as new exits).

        Raises:
            ContainerdError: The daemon cannot be reached.
            RuntimeError: Already started.
        """
        if self._thread is not None:
            raise RuntimeError("the event monitor was already started")
        stream = self._subscribe()
        try:
            self._note_existing()
        except BaseException:
            stream.cancel()
            raise
        self._thread = threading.Thread(target=self._run, args=(stream,), name="pcd-event-monitor",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Cancel the subscription, stop the loop and finish delivering queued events."""
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        self._queue.shutdown(wait=True)

    def __enter__(self) -> EventMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _subscribe(self) -> ev.EventStream:
        stream = self._client.api.events.subscribe(TASK_EVENTS_FILTER)
        with self._lock:
            self._stream = stream
        self._subscribed.set()
        return stream

    def _run(self, stream: ev.EventStream) -> None:
        while not self._stop.is_set():
            try:
                for event in stream:
                    self._handle(event)
                # A clean end of stream (daemon shutting down) is a disconnect too.
            except errors.CanceledError:
                pass
            except errors.ContainerdError as err:
                _log.info("event stream broke: %s", err)
            except Exception:
                _log.exception("event stream failed")
            finally:
                stream.cancel()
            if self._stop.is_set():
                return
            if not self._wait_serving():
                return
            try:
                stream = self._subscribe()
            except errors.ContainerdError as err:
                _log.info("resubscribe failed: %s", err)
                time.sleep(_HEALTH_INTERVAL)
                continue
            self.reconnects += 1
            self._reconcile()

    def _wait_serving(self) -> bool:
        while not self._stop.is_set():
            try:
                if self._client.api.health.is_serving(timeout=1.0):
                    return True
            except errors.ContainerdError:
                pass
            self._stop.wait(_HEALTH_INTERVAL)
        return False

    def _handle(self, event: ev.Event) -> None:
        handled = self._tracker.handle(event)
        if handled is not None:
            self._deliver(*handled)

    def _deliver(self, kind: EventType, info: EventInfo) -> None:
        try:
            self._queue.append(info.container_id, lambda: self._backend(info.container_id, kind, info))
        except RuntimeError:
            _log.info("event for %s after stop() dropped", info.container_id)

    def _note_existing(self) -> None:
        self._tracker.note_existing(self._client.api.tasks.list())

    def _reconcile(self) -> None:
        """Report the exits containerd will not replay: processes that ended while disconnected."""
        tasks = self._client.api.tasks
        try:
            listed = {t.container_id: t for t in tasks.list()}
        except errors.ContainerdError as err:
            _log.info("reconcile: listing tasks failed: %s", err)
            listed = {}
        found = self._tracker.reconcile_listed(listed)
        for key, pid, state in self._tracker.to_check(listed):
            if isinstance(state, str):
                try:
                    state = tasks.get(key[0], state)
                except errors.NotFoundError:
                    state = None
                except errors.ContainerdError as err:
                    _log.info("reconcile of %s/%s failed: %s", key[0], key[1], err)
                    continue
            found += self._tracker.settle(key, pid, state)
        for info in found:
            self._deliver(EventType.EXIT, info)
