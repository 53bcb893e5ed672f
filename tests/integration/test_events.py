"""The libcontainerd event loop against a real containerd: order per container, namespace scope, OOM."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest

from pycontainerd import oci, stdio, testing
from pycontainerd.client import Client
from pycontainerd.events import EventInfo, EventMonitor, EventType

HANG = 120


def _spec(rootfs, args, namespace, cid, **kw):
    return oci.build(args=args, rootfs=rootfs, namespace=namespace, container_id=cid, **kw)


class _Recorder:
    """A deliberately slow backend: a broken per-container queue would reorder its events."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[str, EventType, EventInfo]] = []
        self.active: dict[str, int] = {}
        self.overlaps: list[str] = []
        self.rng = random.Random(3)

    def __call__(self, cid: str, kind: EventType, info: EventInfo) -> None:
        with self.cond:
            self.active[cid] = self.active.get(cid, 0) + 1
            if self.active[cid] > 1:
                self.overlaps.append(cid)
            delay = self.rng.random() / 200
        time.sleep(delay)
        with self.cond:
            self.active[cid] -= 1
            self.events.append((cid, kind, info))
            self.cond.notify_all()

    def wait_for(self, predicate, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(e) for e in self.events), HANG), (
                f"no {what}; got {self.events}"
            )

    def of(self, cid: str) -> list[tuple[EventType, str]]:
        with self.cond:
            return [(k, i.process_id) for c, k, i in self.events if c == cid]


def _lifecycle(client, rootfs, cid: str, rec: _Recorder) -> tuple[int, int]:
    container = client.new_container(cid, _spec(rootfs, ["sleep", "100000"], client.namespace, cid))
    task = container.new_task()
    exited = task.wait()
    task.start()
    proc = task.exec("e", oci.process(["sh", "-c", "exit 5"]), stdio=stdio.null())
    pexit = proc.wait()
    proc.start()
    assert pexit.result(HANG).code == 5
    # containerd orders events per process only: wait for the exec's exit before pausing
    rec.wait_for(lambda e: e[0] == cid and e[1] is EventType.EXIT and e[2].process_id == "e", "exec exit")
    proc.delete()
    task.pause()
    task.resume()
    task.kill("KILL")
    assert exited.result(HANG).code == 137
    task.delete()
    container.delete()
    return task.pid, proc.pid


def test_events_in_order_per_container_and_only_this_namespace(client, containerd_address, rootfs):
    rec, other_rec = _Recorder(), _Recorder()
    other_ns = f"pcd-test-other-{uuid.uuid4().hex[:8]}"
    ids = [f"c{i}" for i in range(4)]
    results: dict[tuple[str, str], tuple[int, int]] = {}
    failures: list[BaseException] = []
    other = Client(containerd_address, namespace=other_ns)
    try:
        with EventMonitor(client, rec, max_workers=4), EventMonitor(other, other_rec, max_workers=4):

            def run(c, r, cid):
                try:
                    results[(c.namespace, cid)] = _lifecycle(c, rootfs, cid, r)
                except BaseException as exc:
                    failures.append(exc)

            # the same container ids run in another namespace at the same time
            threads = [
                threading.Thread(target=run, args=(c, r, cid))
                for cid in ids
                for c, r in ((client, rec), (other, other_rec))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not failures, failures
            for r in (rec, other_rec):
                for cid in ids:
                    r.wait_for(
                        lambda e, cid=cid: e[0] == cid and e[1] is EventType.EXIT and e[2].process_id == cid,
                        f"init exit of {cid}",
                    )
    finally:
        other.close()
        testing.purge_namespace(containerd_address, other_ns)
    expected = [
        (EventType.CREATE, "c"),
        (EventType.START, "c"),
        (EventType.EXEC_ADDED, "e"),
        (EventType.EXEC_STARTED, "e"),
        (EventType.EXIT, "e"),
        (EventType.PAUSED, "c"),
        (EventType.RESUMED, "c"),
        (EventType.EXIT, "c"),
    ]
    for ns, r in ((client.namespace, rec), (other_ns, other_rec)):
        for cid in ids:
            want = [(k, cid if p == "c" else p) for k, p in expected]
            assert r.of(cid) == want, (ns, cid)  # exactly once each: nothing from the other namespace
            init_pid, exec_pid = results[(ns, cid)]
            infos = [i for c, _, i in r.events if c == cid]
            assert [i.pid for i in infos] == [init_pid, init_pid, 0, exec_pid, exec_pid, 0, 0, init_pid]
            assert [i.exit_code for i in infos if i.exited_at is not None] == [5, 137]
        assert {c for c, _, _ in r.events} == set(ids)
        assert not r.overlaps, "two events of one container were handled at the same time"


def test_oom_event(client, rootfs):
    rec = _Recorder()
    spec = _spec(
        rootfs,
        ["sh", "-c", "head -c 200m /dev/zero | tail"],
        client.namespace,
        "oom",
        resources=oci.Resources(memory=16 << 20),
    )
    with EventMonitor(client, rec):
        container = client.new_container("oom", spec)
        task = container.new_task()
        exited = task.wait()
        task.start()
        exited.result(HANG)
        rec.wait_for(lambda e: e[1] is EventType.OOM, "oom event")
        rec.wait_for(lambda e: e[1] is EventType.EXIT, "exit event")
        task.delete()
        container.delete()
    kinds = [k for k, _ in rec.of("oom")]
    assert kinds[:2] == [EventType.CREATE, EventType.START]
    assert EventType.OOM in kinds


def test_monitor_start_stop_idempotence(client):
    monitor = EventMonitor(client, lambda *a: None).start()
    with pytest.raises(RuntimeError):
        monitor.start()
    monitor.stop()
    monitor.stop()
