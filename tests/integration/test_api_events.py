"""api.events against a real containerd: typed task events, namespace scoping, publish, cancel."""

from __future__ import annotations

import queue
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import any_pb2

from pycontainerd import errors, oci, testing
from pycontainerd._proto.events import task_pb2 as events_task_pb2
from pycontainerd.api import events as ev
from pycontainerd.client import Client

# Only bounds a hang; events normally arrive within milliseconds.
DEADLINE = 60.0


class Collector:
    """Reads a subscription on a thread into a queue, so the test never blocks on next()."""

    def __init__(self, stream: ev.EventStream) -> None:
        self.stream = stream
        self.events: queue.Queue[ev.Event | BaseException | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.stream:
                self.events.put(event)
            self.events.put(None)
        except BaseException as err:
            self.events.put(err)

    def until(self, done: Callable[[ev.Event], bool], timeout: float = DEADLINE) -> list[ev.Event]:
        seen: list[ev.Event] = []
        while True:
            item = self.events.get(timeout=timeout)
            if item is None or isinstance(item, BaseException):
                raise AssertionError(f"stream ended early ({item!r}) after {seen}")
            seen.append(item)
            if done(item):
                return seen

    def close(self) -> None:
        self.stream.cancel()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive()


@pytest.fixture
def collect(client: Client) -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def subscribe(*filters: str, on: Client | None = None, **kwargs: Any) -> Collector:
        stream = (on or client).api.events.subscribe(*filters, **kwargs)
        collector = Collector(stream)
        made.append(collector)
        # Subscribe is asynchronous and containerd keeps no history: publish a marker until
        # one arrives, so nothing the test does next happens before the subscription exists.
        marker = f"/tasks/marker-{uuid.uuid4().hex[:8]}"
        for _ in range(100):
            (on or client).api.events.publish(marker, events_task_pb2.TaskOOM(container_id="marker"))
            try:
                collector.until(lambda e: e.topic == marker, timeout=0.5)
                return collector
            except queue.Empty:
                continue
        raise AssertionError("the subscription never delivered a marker event")

    yield subscribe
    for collector in made:
        collector.close()


def _subject(e: ev.Event) -> object:
    """The container an event is about."""
    return getattr(e, "container_id", getattr(e, "id", None))


def _run(client: Client, rootfs: str, cid: str, args: list[str]) -> int:
    spec = oci.build(args=args, rootfs=rootfs, namespace=client.namespace, container_id=cid)
    client.api.containers.create(cid, spec=spec)
    pid = client.api.tasks.create(cid)
    waiting = client.api.tasks.wait_future(cid)
    client.api.tasks.start(cid)
    assert waiting.result(DEADLINE).code == 3
    client.api.tasks.delete(cid)
    client.api.containers.delete(cid)
    return pid


def test_task_lifecycle_events_arrive_decoded_and_in_order(
    client: Client, rootfs: str, collect: Callable[..., Collector]
) -> None:
    events = collect()
    cid = f"e-{uuid.uuid4().hex[:8]}"
    pid = _run(client, rootfs, cid, ["sh", "-c", "exit 3"])
    ends: set[type] = set()

    def both_deletes_seen(e: ev.Event) -> bool:
        if isinstance(e, (ev.TaskDelete, ev.ContainerDelete)) and _subject(e) == cid:
            ends.add(type(e))
        return len(ends) == 2

    seen = events.until(both_deletes_seen)
    mine = [e for e in seen if _subject(e) == cid]
    # Two publishers, each in order: containerd itself (the container's records) and
    # the shim (the task's life, forwarded through a queue). Across them only causality
    # holds: the shim's last event, TaskDelete, can arrive after ContainerDelete
    # (seen on containerd 2.1 under load), so the two streams are checked apart.
    assert [type(e) for e in mine if isinstance(e, (ev.ContainerCreate, ev.ContainerDelete))] == [
        ev.ContainerCreate,
        ev.ContainerDelete,
    ]
    assert isinstance(mine[0], ev.ContainerCreate)
    task_events = [e for e in mine if not isinstance(e, (ev.ContainerCreate, ev.ContainerDelete))]
    assert [type(e) for e in task_events] == [ev.TaskCreate, ev.TaskStart, ev.TaskExit, ev.TaskDelete]
    create, start, exit_event, delete = task_events
    assert isinstance(create, ev.TaskCreate)
    assert create.pid == pid
    assert create.bundle
    assert isinstance(start, ev.TaskStart)
    assert start.pid == pid
    assert isinstance(exit_event, ev.TaskExit)
    assert (exit_event.id, exit_event.exec_id, exit_event.pid, exit_event.exit_status) == (cid, "", pid, 3)
    assert exit_event.exited_at is not None
    assert isinstance(delete, ev.TaskDelete)
    assert delete.exit_status == 3
    assert all(e.namespace == client.namespace and e.timestamp is not None for e in mine)
    assert [e.topic for e in task_events[:3]] == ["/tasks/create", "/tasks/start", "/tasks/exit"]


def test_exec_and_pause_events(client: Client, rootfs: str, collect: Callable[..., Collector]) -> None:
    events = collect('topic~=|^/tasks/|')
    cid = f"e-{uuid.uuid4().hex[:8]}"
    spec = oci.build(args=["sleep", "1000"], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    client.api.containers.create(cid, spec=spec)
    tasks = client.api.tasks
    try:
        tasks.create(cid)
        tasks.start(cid)
        process = dict(spec["process"], args=["sh", "-c", "exit 4"])
        tasks.exec(cid, "x1", process)
        waiting = tasks.wait_future(cid, "x1")
        exec_pid = tasks.start(cid, "x1")
        assert waiting.result(DEADLINE).code == 4
        tasks.pause(cid)
        tasks.resume(cid)
        seen = events.until(lambda e: isinstance(e, ev.TaskResumed))
    finally:
        waiting = tasks.wait_future(cid)
        tasks.kill(cid, signal.SIGKILL)
        waiting.result(DEADLINE)
        tasks.delete(cid)
        client.api.containers.delete(cid)
    added = [e for e in seen if isinstance(e, ev.TaskExecAdded)]
    started = [e for e in seen if isinstance(e, ev.TaskExecStarted)]
    exits = [e for e in seen if isinstance(e, ev.TaskExit) and e.exec_id == "x1"]
    assert [(e.container_id, e.exec_id) for e in added] == [(cid, "x1")]
    assert [(e.exec_id, e.pid) for e in started] == [("x1", exec_pid)]
    assert [(e.id, e.exit_status) for e in exits] == [("x1", 4)]
    freezes = [type(e) for e in seen if isinstance(e, (ev.TaskPaused, ev.TaskResumed))]
    assert freezes == [ev.TaskPaused, ev.TaskResumed]
    assert all(e.topic.startswith("/tasks/") for e in seen)


def test_subscription_is_scoped_to_the_namespace(
    client: Client, rootfs: str, collect: Callable[..., Collector]
) -> None:
    other = client.with_namespace(client.namespace + "-o")
    mine = collect()
    everything = collect(all_namespaces=True)
    foreign = f"f-{uuid.uuid4().hex[:8]}"
    local = f"l-{uuid.uuid4().hex[:8]}"
    try:
        _run(other, rootfs, foreign, ["sh", "-c", "exit 3"])
        _run(client, rootfs, local, ["sh", "-c", "exit 3"])
        seen_all = everything.until(lambda e: isinstance(e, ev.ContainerDelete) and e.id == local)
        seen_mine = mine.until(lambda e: isinstance(e, ev.ContainerDelete) and e.id == local)
    finally:
        # Not just Namespaces/Delete: runc's per-namespace dir in the shared root goes too.
        testing.purge_namespace(client.address, other.namespace)
    assert any(isinstance(e, ev.TaskExit) and e.container_id == foreign for e in seen_all)
    assert {e.namespace for e in seen_mine} == {client.namespace}
    assert not any(getattr(e, "container_id", None) == foreign for e in seen_mine)


def test_unknown_payloads_become_raw_events(client: Client, collect: Callable[..., Collector]) -> None:
    events = collect()
    client.api.events.publish("/pcd/custom", any_pb2.Any(type_url="example.com/Custom", value=b"\x08\x01"))
    client.api.events.publish("/pcd/known", events_task_pb2.TaskOOM(container_id="ghost"))
    seen = events.until(lambda e: e.topic == "/pcd/known")
    raw = [e for e in seen if e.topic == "/pcd/custom"]
    assert len(raw) == 1
    assert isinstance(raw[0], ev.RawEvent)
    assert (raw[0].type_url, raw[0].value) == ("example.com/Custom", b"\x08\x01")
    assert raw[0].error == "unknown event type"
    assert isinstance(seen[-1], ev.TaskOOM)
    assert seen[-1].container_id == "ghost"


def test_publish_refuses_a_bad_topic(client: Client) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        client.api.events.publish("no-leading-slash", events_task_pb2.TaskOOM(container_id="x"))


def test_cancel_from_another_thread_ends_the_iteration(
    client: Client, collect: Callable[..., Collector]
) -> None:
    events = collect()
    events.stream.cancel()  # the reader thread is blocked in next(): no events are coming
    assert events.events.get(timeout=DEADLINE) is None  # iteration ended without an exception
    assert events.stream.cancelled
