"""api.tasks against a real containerd + runc: every Tasks RPC with its real effect."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import errors, oci
from pycontainerd._proto.cgroups.v1 import metrics_pb2 as cgroup1
from pycontainerd._proto.cgroups.v2 import metrics_pb2 as cgroup2
from pycontainerd._proto.runc.options import oci_pb2 as runc_pb2
from pycontainerd.api.types import RuncCheckpointOptions, Status
from pycontainerd.client import Client

CGROUP2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
LONG = ["sleep", "1000"]


def _new_task(client: Client, rootfs: str, args: Sequence[str], **spec: Any) -> str:
    cid = f"t-{uuid.uuid4().hex[:10]}"
    built = oci.build(args=args, rootfs=rootfs, namespace=client.namespace, container_id=cid, **spec)
    client.api.containers.create(cid, spec=built)
    client.api.tasks.create(cid)
    return cid


def _cgroup_file(client: Client, cid: str, v1_controller: str, v1_name: str, v2_name: str) -> Path:
    rel = f"{client.namespace}/{cid}"
    if CGROUP2:
        return Path("/sys/fs/cgroup") / rel / v2_name
    return Path("/sys/fs/cgroup") / v1_controller / rel / v1_name


def _finish(client: Client, cid: str) -> None:
    """Kill (if needed), wait and delete the task and its container."""
    tasks = client.api.tasks
    try:
        info = tasks.get(cid)
    except errors.NotFoundError:  # the task was never created
        client.api.containers.delete(cid)
        return
    if info.status is not Status.STOPPED:
        waiting = tasks.wait_future(cid)
        if info.status is Status.PAUSED:
            tasks.resume(cid)
        tasks.kill(cid, signal.SIGKILL, all=True)
        waiting.result(60)
    tasks.delete(cid)
    client.api.containers.delete(cid)


@pytest.fixture
def running(client: Client, rootfs: str) -> Iterator[str]:
    cid = _new_task(client, rootfs, LONG)
    client.api.tasks.start(cid)
    yield cid
    _finish(client, cid)


def test_exit_code_is_reported_everywhere(client: Client, rootfs: str) -> None:
    cid = _new_task(client, rootfs, ["sh", "-c", "exit 7"])
    tasks = client.api.tasks
    created = tasks.get(cid)
    assert created.status is Status.CREATED
    assert created.pid > 0
    assert created.exited_at is None
    waiting = tasks.wait_future(cid)
    started_pid = tasks.start(cid)
    assert started_pid == created.pid
    status = waiting.result(60)
    assert status.code == 7
    assert status.exited_at is not None
    stopped = tasks.get(cid)
    assert (stopped.status, stopped.exit_status, stopped.exec_id) == (Status.STOPPED, 7, "")
    assert tasks.wait(cid, timeout=30).code == 7  # the shim keeps the status until delete
    deleted = tasks.delete(cid)
    assert (deleted.pid, deleted.exit.code) == (created.pid, 7)
    with pytest.raises(errors.NotFoundError):
        tasks.get(cid)
    client.api.containers.delete(cid)


def test_sigkill_reports_137(client: Client, running: str) -> None:
    waiting = client.api.tasks.wait_future(running)
    client.api.tasks.kill(running, signal.SIGKILL)
    assert waiting.result(60).code == 137


def test_a_fast_exit_is_never_missed(client: Client, rootfs: str) -> None:
    """wait_future armed before start sees the exit of a process that ends at once, 50 times."""
    for i in range(50):
        cid = _new_task(client, rootfs, ["sh", "-c", f"exit {i % 5 + 1}"])
        waiting = client.api.tasks.wait_future(cid)
        client.api.tasks.start(cid)
        assert waiting.result(60).code == i % 5 + 1, f"round {i}"
        client.api.tasks.delete(cid)
        client.api.containers.delete(cid)


def test_list_and_list_pids(client: Client, running: str) -> None:
    listed = {t.id: t for t in client.api.tasks.list()}
    assert listed[running].status is Status.RUNNING
    assert listed[running].container_id == running
    pid = client.api.tasks.get(running).pid
    assert pid in [p.pid for p in client.api.tasks.list_pids(running)]


def _process(client: Client, cid: str, args: list[str]) -> dict[str, Any]:
    """The container's own process spec with other args (as ctr exec does)."""
    process = dict(client.api.containers.get(cid).spec["process"])
    process["args"] = args
    return process


def test_exec_wait_and_delete_process(client: Client, running: str) -> None:
    tasks = client.api.tasks
    tasks.exec(running, "side", _process(client, running, ["sleep", "1000"]))
    assert tasks.get(running, "side").status is Status.CREATED
    waiting = tasks.wait_future(running, "side")
    exec_pid = tasks.start(running, "side")
    by_pid = {p.pid: p for p in tasks.list_pids(running)}
    assert by_pid[exec_pid].exec_id == "side"
    assert isinstance(by_pid[exec_pid].info, runc_pb2.ProcessDetails)
    with pytest.raises(errors.AlreadyExistsError):
        tasks.exec(running, "side", _process(client, running, ["true"]))
    tasks.kill(running, signal.SIGTERM, exec_id="side")
    assert waiting.result(60).code == 128 + signal.SIGTERM
    info = tasks.get(running, "side")
    assert (info.status, info.exec_id, info.container_id) == (Status.STOPPED, "side", running)
    deleted = tasks.delete_process(running, "side")
    assert (deleted.id, deleted.pid, deleted.exit.code) == ("side", exec_pid, 143)
    with pytest.raises(errors.NotFoundError):
        tasks.get(running, "side")


def test_pause_freezes_and_resume_thaws(client: Client, running: str) -> None:
    freezer = _cgroup_file(client, running, "freezer", "freezer.state", "cgroup.freeze")
    client.api.tasks.pause(running)
    assert client.api.tasks.get(running).status is Status.PAUSED
    assert freezer.read_text().strip() == ("1" if CGROUP2 else "FROZEN")
    client.api.tasks.resume(running)
    assert client.api.tasks.get(running).status is Status.RUNNING
    assert freezer.read_text().strip() == ("0" if CGROUP2 else "THAWED")


def test_update_changes_the_memory_limit(client: Client, running: str) -> None:
    limit_file = _cgroup_file(client, running, "memory", "memory.limit_in_bytes", "memory.max")
    client.api.tasks.update(running, resources={"memory": {"limit": 64 << 20}})
    assert int(limit_file.read_text()) == 64 << 20
    client.api.tasks.update(running, resources={"memory": {"limit": 96 << 20}})
    assert int(limit_file.read_text()) == 96 << 20


def test_metrics_decode_for_this_hosts_cgroup_version(client: Client, running: str) -> None:
    (metric,) = client.api.tasks.metrics([f"id=={running}"])
    assert metric.id == running
    assert metric.timestamp is not None
    if CGROUP2:
        assert metric.type_url == "io.containerd.cgroups.v2.Metrics"
        assert isinstance(metric.data, cgroup2.Metrics)
        assert metric.data.memory.usage > 0
    else:
        assert metric.type_url == "io.containerd.cgroups.v1.Metrics"
        assert isinstance(metric.data, cgroup1.Metrics)
        assert metric.data.memory.usage.usage > 0
    assert metric.data.pids.current >= 1


def test_close_io_delivers_eof_to_stdin(client: Client, rootfs: str, tmp_path: Path) -> None:
    fifo, out, err = tmp_path / "stdin", tmp_path / "stdout", tmp_path / "stderr"
    for path in (fifo, out, err):
        os.mkfifo(path, 0o600)
    # O_RDWR never blocks on a FIFO; the shim opens its own ends when the task is created.
    holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    sinks = [os.open(path, os.O_RDWR | os.O_NONBLOCK) for path in (out, err)]
    cid = f"t-{uuid.uuid4().hex[:10]}"
    spec = oci.build(args=["cat"], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    client.api.containers.create(cid, spec=spec)
    try:
        client.api.tasks.create(cid, stdin=str(fifo), stdout=str(out), stderr=str(err))
        waiting = client.api.tasks.wait_future(cid)
        client.api.tasks.start(cid)
        os.close(holder)
        holder = -1
        client.api.tasks.resize_pty(cid, 80, 25)  # no terminal: the shim accepts it as a no-op
        client.api.tasks.close_io(cid, stdin=True)
        assert waiting.result(60).code == 0
    finally:
        if holder >= 0:
            os.close(holder)
        for fd in sinks:
            os.close(fd)
        _finish(client, cid)


def test_local_argument_checks(client: Client) -> None:
    with pytest.raises(ValueError, match="signal"):
        client.api.tasks.kill("x", 0)
    with pytest.raises(ValueError, match="width"):
        client.api.tasks.resize_pty("x", 70000, 10)


def test_refusals_map_to_their_errors(client: Client, running: str, rootfs: str) -> None:
    tasks = client.api.tasks
    # containerd 1.6's shim answers without an errdefs class (Unknown); the Go client
    # refuses before the RPC. Either way the task survives.
    with pytest.raises(errors.ContainerdError, match="cannot delete a running process"):
        tasks.delete(running)
    assert tasks.get(running).status is Status.RUNNING
    with pytest.raises(errors.AlreadyExistsError):
        tasks.create(running)
    with pytest.raises(errors.NotFoundError):
        tasks.get("no-such-task")
    with pytest.raises(errors.NotFoundError):
        tasks.kill("no-such-task", signal.SIGTERM)
    with pytest.raises(errors.NotFoundError):
        tasks.wait("no-such-task", timeout=30)


def _criu_works() -> bool:
    criu = shutil.which("criu")
    if criu is None:
        return False
    return subprocess.run([criu, "check"], capture_output=True, timeout=60, check=False).returncode == 0


def test_checkpoint(client: Client, running: str, tmp_path: Path) -> None:
    image_dir = tmp_path / "criu"
    options = RuncCheckpointOptions(exit=False, image_path=str(image_dir))
    if _criu_works():
        descriptors = client.api.tasks.checkpoint(running, options=options)
        assert descriptors
        assert all(d.digest.startswith("sha256:") for d in descriptors)
        assert stat.S_ISDIR(image_dir.stat().st_mode)
    else:
        with pytest.raises(errors.ContainerdError) as info:
            client.api.tasks.checkpoint(running, options=options)
        assert not isinstance(info.value, errors.UnavailableError)
        assert "criu" in info.value.details.lower() or "checkpoint" in info.value.details.lower()
        assert client.api.tasks.get(running).status is Status.RUNNING  # the task survives
