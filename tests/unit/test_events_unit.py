"""EventMonitor without a daemon: decode(), exit de-duplication and reconcile logic."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

import pytest

from pycontainerd import errors
from pycontainerd._proto.events import task_pb2
from pycontainerd._proto.services.events.v1 import events_pb2
from pycontainerd.api import events as ev
from pycontainerd.api.types import Status, TaskInfo
from pycontainerd.events import TASK_EVENTS_FILTER, EventInfo, EventMonitor, EventType, decode

NS = {"namespace": "ns", "topic": "/tasks/x"}
WHEN = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ev.TaskCreate(**NS, container_id="c", pid=10), (EventType.CREATE, EventInfo("c", "c", 10))),
        (ev.TaskStart(**NS, container_id="c", pid=10), (EventType.START, EventInfo("c", "c", 10))),
        (
            ev.TaskExit(**NS, container_id="c", id="c", pid=10, exit_status=3, exited_at=WHEN),
            (EventType.EXIT, EventInfo("c", "c", 10, 3, WHEN)),
        ),
        (
            ev.TaskExit(**NS, container_id="c", id="e1", pid=11, exit_status=137),
            (EventType.EXIT, EventInfo("c", "e1", 11, 137, None)),
        ),
        (ev.TaskOOM(**NS, container_id="c"), (EventType.OOM, EventInfo("c", "c"))),
        (
            ev.TaskExecAdded(**NS, container_id="c", exec_id="e1"),
            (EventType.EXEC_ADDED, EventInfo("c", "e1")),
        ),
        (
            ev.TaskExecStarted(**NS, container_id="c", exec_id="e1", pid=12),
            (EventType.EXEC_STARTED, EventInfo("c", "e1", 12)),
        ),
        (ev.TaskPaused(**NS, container_id="c"), (EventType.PAUSED, EventInfo("c", "c"))),
        (ev.TaskResumed(**NS, container_id="c"), (EventType.RESUMED, EventInfo("c", "c"))),
    ],
)
def test_decode_maps_like_libcontainerd(event, expected):
    assert decode(event) == expected


@pytest.mark.parametrize(
    "event",
    [
        ev.TaskDelete(**NS, container_id="c", pid=10),
        ev.TaskCheckpointed(**NS, container_id="c"),
        ev.RawEvent(**NS, type_url="containerd.events.Nope", error="unknown event type"),
        ev.RawEvent(**NS, error="envelope has no event"),
        ev.ContainerCreate(**NS, id="c"),
    ],
)
def test_decode_skips_what_libcontainerd_ignores(event):
    assert decode(event) is None


def test_filter_is_the_libcontainerd_one():
    assert TASK_EVENTS_FILTER == "topic~=|^/tasks/|"


def _envelope(payload: bytes, type_url: str, seconds: int | None) -> events_pb2.Envelope:
    env = events_pb2.Envelope(namespace="ns", topic="/tasks/exit")
    if seconds is not None:
        env.timestamp.seconds = seconds
    env.event.type_url = type_url
    env.event.value = payload
    return env


@pytest.mark.parametrize("seconds", [None, -62135596800, 0])
def test_zero_and_absent_timestamps_decode_as_unset(seconds):
    exit_msg = task_pb2.TaskExit(container_id="c", id="c", pid=4, exit_status=1)
    if seconds is not None:
        exit_msg.exited_at.seconds = seconds
    event = ev.decode_envelope(_envelope(exit_msg.SerializeToString(), "containerd.events.TaskExit", seconds))
    kind, info = decode(event)
    assert kind is EventType.EXIT
    assert info.exited_at is None or info.exited_at == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    if seconds is not None and seconds < 0:
        assert info.exited_at is None


def test_undecodable_payload_is_skipped_not_raised():
    event = ev.decode_envelope(_envelope(b"\xff\xff\xff", "containerd.events.TaskExit", 1))
    assert isinstance(event, ev.RawEvent)
    assert decode(event) is None


# -- the monitor's bookkeeping, with a stand-in for the Tasks API --------------------


@dataclass
class _FakeTasks:
    tasks: dict[tuple[str, str], TaskInfo] = field(default_factory=dict)

    def list(self) -> list[TaskInfo]:
        return [t for (c, p), t in self.tasks.items() if c == p]

    def get(self, container_id: str, exec_id: str = "") -> TaskInfo:
        try:
            return self.tasks[(container_id, exec_id or container_id)]
        except KeyError:
            raise errors.NotFoundError(f"{container_id}/{exec_id} not found") from None


class _FakeClient:
    def __init__(self, tasks: _FakeTasks) -> None:
        self.api = type("API", (), {"tasks": tasks})()


class _Collector:
    def __init__(self) -> None:
        self.items: list[tuple[str, EventType, EventInfo]] = []
        self.lock = threading.Lock()

    def __call__(self, cid: str, kind: EventType, info: EventInfo) -> None:
        with self.lock:
            self.items.append((cid, kind, info))


def _monitor(tasks: _FakeTasks) -> tuple[EventMonitor, _Collector]:
    got = _Collector()
    return EventMonitor(_FakeClient(tasks), got, max_workers=2), got  # type: ignore[arg-type]


def _drain(monitor: EventMonitor) -> None:
    monitor._queue.shutdown(wait=True)


def _info(cid, pid, status, code=0, pid_id=None):
    return TaskInfo(container_id=cid, id=pid_id or cid, pid=pid, status=status, exit_status=code)


def test_duplicate_exit_is_delivered_once():
    monitor, got = _monitor(_FakeTasks())
    monitor._handle(ev.TaskStart(**NS, container_id="c", pid=10))
    exit_event = ev.TaskExit(**NS, container_id="c", id="c", pid=10, exit_status=3)
    monitor._handle(exit_event)
    monitor._handle(exit_event)
    _drain(monitor)
    assert [(k, i.pid, i.exit_code) for _, k, i in got.items] == [
        (EventType.START, 10, 0),
        (EventType.EXIT, 10, 3),
    ]


def test_stale_exit_does_not_forget_the_current_process():
    tasks = _FakeTasks({("c", "c"): _info("c", 20, Status.STOPPED, 9)})
    monitor, got = _monitor(tasks)
    monitor._handle(ev.TaskStart(**NS, container_id="c", pid=20))
    monitor._handle(ev.TaskExit(**NS, container_id="c", id="c", pid=10, exit_status=1))  # an old run's
    monitor._reconcile()  # the current pid 20 stopped meanwhile: still reported
    _drain(monitor)
    exits = [(i.pid, i.exit_code, i.reconciled) for _, k, i in got.items if k is EventType.EXIT]
    assert exits == [(10, 1, False), (20, 9, True)]


def test_reconcile_reports_processes_that_stopped_or_vanished_once():
    tasks = _FakeTasks()
    monitor, got = _monitor(tasks)
    for cid, pid in (("a", 1), ("b", 2), ("c", 3)):
        monitor._handle(ev.TaskStart(**NS, container_id=cid, pid=pid))
    monitor._handle(ev.TaskExecStarted(**NS, container_id="a", exec_id="e", pid=4))
    tasks.tasks = {
        ("a", "a"): _info("a", 1, Status.RUNNING),
        ("a", "e"): _info("a", 4, Status.STOPPED, 5, pid_id="e"),
        ("b", "b"): _info("b", 2, Status.STOPPED, 7),
        # c was deleted; d ran and exited entirely while disconnected
        ("d", "d"): _info("d", 9, Status.STOPPED, 1),
    }
    monitor._reconcile()
    monitor._reconcile()  # a second pass reports nothing new
    # the event stream catches up with a duplicate of b's exit
    monitor._handle(ev.TaskExit(**NS, container_id="b", id="b", pid=2, exit_status=7))
    _drain(monitor)
    exits = sorted(
        (i.container_id, i.process_id, i.pid, i.exit_code) for _, k, i in got.items if k is EventType.EXIT
    )
    assert exits == [("a", "e", 4, 5), ("b", "b", 2, 7), ("c", "c", 3, 255), ("d", "d", 9, 1)]


def test_replaced_task_reports_the_lost_exit_and_tracks_the_new_one():
    tasks = _FakeTasks()
    monitor, got = _monitor(tasks)
    monitor._handle(ev.TaskStart(**NS, container_id="c", pid=1))
    tasks.tasks = {("c", "c"): _info("c", 2, Status.RUNNING)}  # deleted and re-created while away
    monitor._reconcile()
    tasks.tasks = {("c", "c"): _info("c", 2, Status.STOPPED, 4)}
    monitor._reconcile()
    _drain(monitor)
    exits = [(i.pid, i.exit_code) for _, k, i in got.items if k is EventType.EXIT]
    assert exits == [(1, 255), (2, 4)]


def test_tasks_stopped_before_start_are_not_new_exits():
    tasks = _FakeTasks(
        {("old", "old"): _info("old", 5, Status.STOPPED, 0), ("run", "run"): _info("run", 6, Status.RUNNING)}
    )
    monitor, got = _monitor(tasks)
    monitor._note_existing()
    tasks.tasks[("run", "run")] = _info("run", 6, Status.STOPPED, 2)
    monitor._reconcile()
    _drain(monitor)
    assert [(c, i.pid, i.exit_code) for c, k, i in got.items] == [("run", 6, 2)]


def test_backend_errors_do_not_stop_delivery(caplog):
    calls: list[EventType] = []

    def backend(cid: str, kind: EventType, info: EventInfo) -> None:
        calls.append(kind)
        if kind is EventType.START:
            raise ValueError("backend bug")

    monitor = EventMonitor(_FakeClient(_FakeTasks()), backend)  # type: ignore[arg-type]
    monitor._handle(ev.TaskStart(**NS, container_id="c", pid=1))
    monitor._handle(ev.TaskExit(**NS, container_id="c", id="c", pid=1))
    _drain(monitor)
    assert calls == [EventType.START, EventType.EXIT]
    assert "backend bug" in caplog.text
