"""Surviving restarts: of the calling process (reattach) and of containerd itself."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd.api.types import Status
from pycontainerd.client import Client
from pycontainerd.events import EventInfo, EventMonitor, EventType

HANG = 120
LINES = 5_000_000  # seq output: ~39 MB, far more than the FIFO can buffer when nobody reads


def _spec(rootfs, args, namespace, cid, **kw):
    return oci.build(args=args, rootfs=rootfs, namespace=namespace, container_id=cid, **kw)


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pycontainerd import oci, stdio
    from pycontainerd.client import Client

    address, namespace, rootfs, out_path, lines = sys.argv[1:6]
    client = Client(address, namespace=namespace)
    spec = oci.build(args=["sh", "-c", f"seq 1 {lines}; exit 7"], rootfs=rootfs,
                     namespace=namespace, container_id="survivor")
    container = client.new_container("survivor", spec)
    out = open(out_path, "wb")  # not O_APPEND: the pump splices into it
    task = container.new_task(stdio=stdio.streams(stdout=out))
    task.wait()
    task.start()
    print(task.pid, flush=True)
    while os.fstat(out.fileno()).st_size < (1 << 20):
        time.sleep(0.001)
    os._exit(0)  # abruptly, while the container is still writing
    """
)


def test_reattach_after_the_calling_process_died(containerd_address, namespace, rootfs, tmp_path):
    out_path = tmp_path / "child-stdout"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, containerd_address, namespace, rootfs, str(out_path), str(LINES)],
        capture_output=True,
        timeout=HANG,
        check=False,
    )
    assert child.returncode == 0, child.stderr.decode()
    pid = int(child.stdout)
    expected = b"".join(b"%d\n" % n for n in range(1, LINES + 1))
    with Client(containerd_address, namespace=namespace) as client:
        container = client.load_container("survivor")
        task = container.attach_task(stdio.capture())
        assert task.pid == pid
        exited = task.wait()
        status = exited.result(HANG)
        first = out_path.read_bytes()
        assert 0 < len(first) < len(expected), "the child was meant to die mid-output"
        second = task.io.stdout_data
        assert status.code == 7
        assert len(first) + len(second) == len(expected)
        assert first + second == expected  # nothing lost, nothing duplicated
        assert task.delete().code == 7
        assert not os.path.exists(os.path.join(container.bundle_dir, "survivor-stdout"))
        container.delete()


def test_attach_to_unknown_or_stopped(client, rootfs):
    container = client.new_container(
        "gone", _spec(rootfs, ["sh", "-c", "echo bye"], client.namespace, "gone")
    )
    with pytest.raises(errors.NotFoundError):
        container.attach_task(stdio.capture())
    task = container.new_task(stdio=stdio.capture())
    exited = task.wait()
    task.start()
    assert exited.result(HANG).code == 0
    task.io.close()  # this client goes away without deleting
    again = container.attach_task(stdio.capture())
    assert again.status().status is Status.STOPPED
    assert again.wait().result(HANG).code == 0
    assert again.delete().code == 0
    assert not os.path.exists(os.path.join(container.bundle_dir, "gone-stdout"))
    container.delete()


def _read_line(fd: int) -> bytes:
    buf = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not buf.endswith(b"\n"):
        assert poller.poll(HANG * 1000), buf
        chunk = os.read(fd, 1)
        assert chunk, buf
        buf += chunk
    return buf


def _serving(client) -> None:
    assert client.api.health.is_serving(timeout=HANG)


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "crash"])
def test_containerd_restart_while_tasks_run(private_daemon, client, rootfs, kill):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    container = client.new_container("cat", _spec(rootfs, ["cat"], client.namespace, "cat"))
    task = container.new_task(stdio=stdio.streams(stdin=in_r, stdout=out_w))
    pending = task.wait()
    task.start()
    os.write(in_w, b"before\n")
    assert _read_line(out_r) == b"before\n"
    private_daemon.restart(kill=kill)
    with pytest.raises(errors.ConnectionLostError) as info:
        pending.result(HANG)
    assert isinstance(info.value, errors.UnavailableError)  # retriable
    _serving(client)
    # the task and its IO survived
    assert task.status().status is Status.RUNNING
    os.write(in_w, b"after\n")
    assert _read_line(out_r) == b"after\n"
    exited = task.wait()
    os.close(in_w)  # EOF of the source: the client closes its end, then CloseIO
    assert exited.result(HANG).code == 0
    task.delete()
    container.delete()
    for fd in (in_r, out_r, out_w):
        os.close(fd)


class _Recorder:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[str, EventType, EventInfo]] = []

    def __call__(self, cid: str, kind: EventType, info: EventInfo) -> None:
        with self.cond:
            self.events.append((cid, kind, info))
            self.cond.notify_all()

    def wait_for(self, predicate, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(e) for e in self.events), HANG), (
                f"no {what}; got {self.events}"
            )

    def exits(self, cid: str, process_id: str) -> list[EventInfo]:
        with self.cond:
            return [
                i
                for c, k, i in self.events
                if c == cid and k is EventType.EXIT and i.process_id == process_id
            ]


def test_event_monitor_survives_restart_and_loses_no_exit(private_daemon, client, rootfs):
    rec = _Recorder()
    monitor = EventMonitor(client, rec).start()
    try:
        container = client.new_container("a", _spec(rootfs, ["sleep", "100000"], client.namespace, "a"))
        task = container.new_task()
        task.start()
        proc = task.exec("e", oci.process(["sleep", "100000"]), stdio=stdio.null())
        proc.start()
        rec.wait_for(lambda e: e[1] is EventType.EXEC_STARTED, "exec-started event")
        private_daemon.stop()
        # both processes die while containerd is down: no event can reach us now
        os.kill(proc.pid, signal.SIGKILL)
        os.kill(task.pid, signal.SIGKILL)
        private_daemon.start()
        rec.wait_for(lambda e: e[0] == "a" and e[1] is EventType.EXIT and e[2].process_id == "a", "init exit")
        rec.wait_for(lambda e: e[0] == "a" and e[1] is EventType.EXIT and e[2].process_id == "e", "exec exit")
        assert monitor.reconnects >= 1
        # more traffic after the reconnect, so late duplicates would have arrived
        other = client.new_container("b", _spec(rootfs, ["true"], client.namespace, "b"))
        btask = other.new_task()
        bexit = btask.wait()
        btask.start()
        assert bexit.result(HANG).code == 0
        rec.wait_for(lambda e: e[0] == "b" and e[1] is EventType.EXIT, "exit of b")
        _serving(client)
        # containerd 1.6 reloads the shim and reports the real status. 1.7 and 2.x find
        # the task's process gone at start, clean the shim up as leaked and publish the
        # exit with status 255: the exit is not lost either way, only its code.
        code = 137 if private_daemon.version < (1, 7) else 255
        assert [(i.pid, i.exit_code) for i in rec.exits("a", "a")] == [(task.pid, code)]
        assert [(i.pid, i.exit_code) for i in rec.exits("a", "e")] == [(proc.pid, code)]
        btask.delete()
        other.delete()
        if private_daemon.version < (1, 7):
            task.delete()
        else:  # removed with the leaked shim at the restart
            with pytest.raises(errors.NotFoundError):
                task.delete()
        container.delete()
    finally:
        monitor.stop()
