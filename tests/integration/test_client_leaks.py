"""No leaks: fds, threads and FIFO files/dirs are unchanged across many create/start/delete cycles,
including failed creates, failed starts, failed execs, detach + load-and-delete and reattach."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest

from pycontainerd import errors, oci, stdio

HANG = 120
CYCLES = 200


def _fds() -> list[str]:
    out = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own fd
            out.append(f"{name} -> {os.readlink(f'/proc/self/fd/{name}')}")
    return sorted(out)


def _tree(path: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        found += [os.path.join(dirpath, n) for n in dirnames + filenames]
    return sorted(found)


def _settled_threads(limit: int) -> list[str]:
    # grpc's helper threads for in-flight futures end shortly after the calls do
    deadline = time.monotonic() + 30
    while threading.active_count() > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(t.name for t in threading.enumerate())


def _cycle(client, rootfs, state_dir: str, i: int) -> None:
    kind = i % 6
    cid = f"leak-{i}"

    def make(args):
        spec = oci.build(args=args, rootfs=rootfs, namespace=client.namespace, container_id=cid)
        return client.new_container(cid, spec, state_dir=state_dir)

    if kind == 0:  # plain run with stdin and capture
        container = make(["sh", "-c", "cat; echo err >&2"])
        task = container.new_task(stdio=stdio.capture(b"in\n"))
        exited = task.wait()
        task.start()
        assert exited.result(HANG).code == 0
        assert (task.io.stdout_data, task.io.stderr_data) == (b"in\n", b"err\n")
        task.delete()
    elif kind == 1:  # failed create: the binary does not exist
        container = make(["/nonexistent"])
        with pytest.raises(errors.ContainerdError, match="nonexistent"):
            container.new_task(stdio=stdio.capture(b"x"))
    elif kind == 2:  # failed start: the created init dies first
        container = make(["sleep", "1000"])
        task = container.new_task(stdio=stdio.capture(b"x"))
        exited = task.wait()
        os.kill(task.pid, signal.SIGKILL)
        exited.result(HANG)
        with pytest.raises(errors.ContainerdError):
            task.start()
    elif kind == 3:  # exec ok, exec failing to start, then force delete
        container = make(["sleep", "1000"])
        task = container.new_task(stdio=stdio.capture())
        task.start()
        proc = task.exec("ok", oci.process(["echo", "hi"]), stdio=stdio.capture(b""))
        pexit = proc.wait()
        proc.start()
        assert pexit.result(HANG).code == 0
        assert proc.io.stdout_data == b"hi\n"
        proc.delete()
        bad = task.exec("bad", oci.process(["/nonexistent"]), stdio=stdio.capture(b"x"))
        with pytest.raises(errors.ContainerdError):
            bad.start()
        assert task.force_delete().code == 137
    elif kind == 4:  # detach, then delete through a handle loaded without IO
        container = make(["sh", "-c", "echo out"])
        task = container.new_task(stdio=stdio.capture(b""))
        exited = task.wait()
        task.start()
        assert exited.result(HANG).code == 0
        task.detach()
        assert container.task().delete().code == 0
    else:  # detach while running, reattach, wait, delete
        container = make(["sh", "-c", "read x; echo $x"])
        r, w = os.pipe()
        try:
            task = container.new_task(stdio=stdio.streams(stdin=r))
            task.start()
            task.detach()
            again = container.attach_task(stdio.capture(b"back\n"))
            exited = again.wait()
            assert exited.result(HANG).code == 0
            assert again.io.stdout_data == b"back\n"
            again.delete()
        finally:
            os.close(r)
            os.close(w)
    container.delete()


def test_no_leaks_over_create_start_delete_cycles(client, rootfs, tmp_path):
    state_dir = str(tmp_path / "state")
    for i in range(6):  # warm up: grpc channel, thread pools, lazily imported modules
        _cycle(client, rootfs, state_dir, i)
    fds = _fds()
    threads = _settled_threads(threading.active_count())
    tree = _tree(state_dir)
    for i in range(CYCLES):
        _cycle(client, rootfs, state_dir, i)
    assert _tree(state_dir) == tree
    assert _settled_threads(len(threads)) == threads
    assert _fds() == fds
    assert client.containers() == []
    assert client.api.tasks.list() == []
