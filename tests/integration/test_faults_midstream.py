"""Faults while output streams, against the real daemon: bounded time, typed outcome, nothing left.

* The shim SIGKILLed while run() streams (FIFO and handoff): run() returns the
  exit containerd reports, or raises a typed error, within the hang guard; the
  container is gone afterwards.
* The pcd-handoff helper SIGKILLed mid-stream: the client already holds the
  container's pipes, so every byte still arrives and the exit code is right.
* A log_file sink on a full filesystem: wait() raises SinkError (ENOSPC) with
  the exit status, and the container is still deleted.
(containerd itself SIGKILLed mid-stream: tests/integration/test_run_restart.py.)
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd._run import run
from pycontainerd.daemon import find_shims
from pycontainerd.stdio.handoff_helper import HELPER_NAME

HANG = 120  # seconds: only bounds a hang, never asserted as a duration
LINES = 60
# The first line at once, then one every 50 ms: a fault lands mid-stream.
SCRIPT = f"i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo line $i; sleep 0.05; done; exit 7"
EXPECTED = b"".join(b"line %d\n" % i for i in range(1, LINES + 1))


def _wait_for(path: Path, what: bytes) -> None:
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        if path.exists() and what in path.read_bytes():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what!r} never appeared in {path}")


def _exe_name(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def _run_in_thread(client, rootfs, out_path: Path, handoff: bool) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def go() -> None:
        with open(out_path, "wb") as out:
            try:
                result.append(run(["sh", "-c", SCRIPT], rootfs=rootfs, stdout=out, client=client,
                                  handoff=handoff, timeout=HANG))
            except BaseException as exc:
                result.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    return thread, result


@pytest.mark.parametrize("handoff", [False, True], ids=["fifo", "handoff"])
def test_shim_killed_while_run_streams(containerd_address, client, rootfs, tmp_path, handoff) -> None:
    out_path = tmp_path / "out"
    thread, result = _run_in_thread(client, rootfs, out_path, handoff)
    try:
        _wait_for(out_path, b"line 1\n")
        (shim,) = find_shims(containerd_address, client.namespace)
        os.kill(shim, signal.SIGKILL)
    finally:
        thread.join(HANG)
    assert not thread.is_alive(), "run() hung after its shim was killed"
    (outcome,) = result
    # containerd reports the task as exited (its shim is gone: the process was killed
    # with it) or the client is told, typed, that the process is gone.
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, (errors.ContainerdError, OSError)), repr(outcome)
    else:
        assert outcome.returncode != 7
    assert EXPECTED.startswith(out_path.read_bytes())
    assert client.api.containers.list() == []
    # containerd cleans a dead shim's container up in the background (runc delete):
    # its runc state, in the shared root, goes too.
    runc_dir = os.path.join("/run/containerd/runc", client.namespace)
    deadline = time.monotonic() + HANG
    while os.path.isdir(runc_dir) and os.listdir(runc_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.isdir(runc_dir) or os.listdir(runc_dir) == []


def test_helper_killed_mid_stream(client, rootfs, tmp_path) -> None:
    out_path = tmp_path / "out"
    cid = f"hk-{uuid.uuid4().hex[:8]}"
    container = client.new_container(
        cid, oci.build(args=["sh", "-c", SCRIPT], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    )
    with open(out_path, "wb") as out:
        task = container.new_task(stdio=stdio.handoff(stdio.streams(stdout=out), fallback=False))
        try:
            exited = task.wait()
            task.start()
            _wait_for(out_path, b"line 1\n")
            helper = task.io.helper_pid  # as the helper itself said when it handed the pipes over
            assert _exe_name(helper) == HELPER_NAME
            os.kill(helper, signal.SIGKILL)
            status = exited.result(HANG)
        finally:
            task.force_delete()
    container.delete()
    # The client had its own copies of the pipes: nothing was lost with the helper.
    assert status.code == 7
    assert out_path.read_bytes() == EXPECTED


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("handoff", [False, True], ids=["fifo", "handoff"])
def test_log_file_on_a_full_filesystem(client, rootfs, small_tmpfs, handoff) -> None:
    cid = f"full-{uuid.uuid4().hex[:8]}"
    # 1 MiB of output into a 64 KiB filesystem.
    line = "0123456789abcdef" * 4  # 64 bytes + newline
    script = f"i=0; while [ $i -lt 16384 ]; do echo {line}; i=$((i+1)); done; exit 3"
    spec = oci.build(args=["sh", "-c", script], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    container = client.new_container(cid, spec)
    strategy = stdio.log_file(small_tmpfs / "log")
    task = container.new_task(stdio=stdio.handoff(strategy, fallback=False) if handoff else strategy)
    exited = task.wait()
    task.start()
    with pytest.raises(errors.SinkError) as info:
        exited.result(HANG)
    assert info.value.errno == errno.ENOSPC
    assert info.value.status is not None
    assert info.value.status.code == 3
    task.delete()
    container.delete()
    assert client.api.containers.list() == []
    assert not os.path.exists(container.bundle_dir)
