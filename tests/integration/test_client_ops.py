"""Task and container operations against a real containerd: signals, pause/resume, stats, pids,
resource updates, delete/force-delete, failed starts, conflicts and loading."""

from __future__ import annotations

import os
import select
import signal
import threading
import time

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd.api.types import ExitStatus, Status

HANG = 120


def _spec(rootfs, args, client, cid, **kw):
    return oci.build(args=args, rootfs=rootfs, namespace=client.namespace, container_id=cid, **kw)


def _read_until(fd: int, want: bytes) -> bytes:
    buf = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while want not in buf:
        assert poller.poll(HANG * 1000), f"nothing more arrived; have {bytes(buf)!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"EOF before {want!r}; have {bytes(buf)!r}"
        buf += chunk
    return bytes(buf)


TRAP = "trap 'echo got-{name}; exit {code}' {name}; echo ready; sleep 100000 & wait"


@pytest.mark.parametrize(
    ("trapped", "sent", "code"),
    [
        ("TERM", None, 143),
        ("USR1", "USR1", 31),
        ("USR2", "sigusr2", 32),
        ("HUP", signal.SIGHUP, 33),
        ("INT", int(signal.SIGINT), 34),
    ],
)
def test_signals_by_name_and_number(client, rootfs, trapped, sent, code):
    r, w = os.pipe()
    try:
        container = client.new_container(
            "sig", _spec(rootfs, ["sh", "-c", TRAP.format(name=trapped, code=code)], client, "sig")
        )
        task = container.new_task(stdio=stdio.streams(stdout=w))
        exited = task.wait()
        task.start()
        _read_until(r, b"ready\n")  # the trap is installed
        if sent is None:
            task.kill()  # default: SIGTERM
        else:
            task.kill(sent)
        assert exited.result(HANG).code == code
        assert task.delete().code == code
    finally:
        os.close(w)
    assert os.read(r, 4096) == f"got-{trapped}\n".encode()
    os.close(r)
    container.delete()


@pytest.mark.parametrize("bad", [0, 65, -9, "SIG42", "FOO", "", True, 9.0, None])
def test_invalid_signal_is_refused_before_any_rpc(client, rootfs, bad):
    container = client.new_container("badsig", _spec(rootfs, ["sleep", "1000"], client, "badsig"))
    task = container.new_task()
    task.start()
    with pytest.raises((ValueError, TypeError)):
        task.kill(bad)
    proc = task.exec("e", oci.process(["sleep", "1000"]), stdio=stdio.null())
    proc.start()
    with pytest.raises((ValueError, TypeError)):
        proc.kill(bad)
    assert task.status().status is Status.RUNNING
    assert proc.status().status is Status.RUNNING
    task.force_delete()
    container.delete()


def test_kill_all_and_kill_after_exit(client, rootfs):
    container = client.new_container("killall", _spec(rootfs, ["sleep", "1000"], client, "killall"))
    task = container.new_task()
    task.start()
    proc = task.exec("e", oci.process(["sleep", "1000"]), stdio=stdio.null())
    proc_exited = proc.wait()
    proc.start()
    exited = task.wait()
    proc.kill("KILL")
    assert proc_exited.result(HANG).code == 137
    with pytest.raises(errors.NotFoundError):
        proc.kill("KILL")  # already finished
    proc.delete()
    task.kill(signal.SIGKILL, all=True)
    assert exited.result(HANG).code == 137
    with pytest.raises(errors.NotFoundError):
        task.kill()
    task.delete()
    container.delete()


def test_pause_resume(client, rootfs):
    container = client.new_container("pz", _spec(rootfs, ["sleep", "1000"], client, "pz"))
    task = container.new_task()
    task.start()
    task.pause()
    assert task.status().status is Status.PAUSED
    with pytest.raises(errors.FailedPreconditionError):
        task.delete()
    task.resume()
    assert task.status().status is Status.RUNNING
    task.pause()
    assert task.force_delete().code == 137  # a paused task can be force-deleted
    container.delete()


def _cgroup_v2() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def test_stats_decoded_for_this_cgroup_version(client, rootfs):
    container = client.new_container(
        "st", _spec(rootfs, ["sh", "-c", "sleep 1000 & sleep 1000"], client, "st")
    )
    task = container.new_task()
    task.start()
    # sh forks the background sleep after Start returns: wait until both run.
    deadline = time.monotonic() + HANG
    while len(task.pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    metric = task.stats()
    assert metric.id == "st"
    if _cgroup_v2():
        assert metric.type_url == "io.containerd.cgroups.v2.Metrics"
        assert metric.data.memory.usage > 0
    else:
        assert metric.type_url == "io.containerd.cgroups.v1.Metrics"
        assert metric.data.memory.usage.usage > 0
    assert metric.data.pids.current >= 2
    task.force_delete()
    with pytest.raises(errors.NotFoundError):
        task.stats()
    container.delete()


def test_pids_and_summary(client, rootfs):
    container = client.new_container("pids", _spec(rootfs, ["sleep", "1000"], client, "pids"))
    task = container.new_task()
    assert task.pid > 0
    pid = task.start()
    assert pid == task.pid
    proc = task.exec("e1", oci.process(["sleep", "1000"]), stdio=stdio.null())
    epid = proc.start()
    assert proc.pid == epid
    assert sorted(task.pids()) == sorted([pid, epid])
    by_pid = {p.pid: p for p in task.summary()}
    assert by_pid[epid].exec_id == "e1"
    assert by_pid[pid].exec_id in (None, "")  # runc sends no details for the init process
    task.force_delete()
    container.delete()


def test_update_memory_limit_reaches_the_cgroup(client, rootfs):
    spec = _spec(rootfs, ["sleep", "1000"], client, "mem", resources=oci.Resources(memory=256 << 20))
    cgroup = spec["linux"]["cgroupsPath"].lstrip("/")
    if _cgroup_v2():
        path = os.path.join("/sys/fs/cgroup", cgroup, "memory.max")
    else:
        path = os.path.join("/sys/fs/cgroup/memory", cgroup, "memory.limit_in_bytes")
    container = client.new_container("mem", spec)
    task = container.new_task()
    task.start()
    with open(path) as f:
        assert int(f.read()) == 256 << 20
    task.update_resources({"memory": {"limit": 64 << 20}})
    with open(path) as f:
        assert int(f.read()) == 64 << 20
    with pytest.raises(TypeError):
        task.update_resources([("memory", 1)])  # type: ignore[arg-type]
    task.force_delete()
    container.delete()


def test_delete_states(client, rootfs):
    container = client.new_container("del", _spec(rootfs, ["sleep", "1000"], client, "del"))
    task = container.new_task(stdio=stdio.capture())
    # created, not started: a plain delete is refused (the Go client's precheck) ...
    with pytest.raises(errors.FailedPreconditionError, match="created"):
        task.delete()
    # ... force_delete works and removes the FIFOs
    task.force_delete()
    assert os.listdir(container.bundle_dir) == []
    with pytest.raises(errors.NotFoundError):
        container.task()
    task = container.new_task(stdio=stdio.capture())
    task.start()
    with pytest.raises(errors.FailedPreconditionError):
        container.delete()
    assert task.force_delete().code == 137
    container.delete()
    assert not os.path.exists(container.bundle_dir)
    with pytest.raises(errors.NotFoundError, match="no such container"):
        client.load_container("del")


@pytest.mark.parametrize("racers", [2, 8])
def test_concurrent_deletes_one_wins(client, rootfs, racers):
    """N handles of one exited task delete it at once: one wins, the others are told NotFound.

    Each racer holds its own handle (the creator's, with FIFOs, and loaded ones);
    afterwards the task, its FIFOs and (after the container's delete) the bundle
    dir are gone.
    """
    cid = f"cd{racers}"
    container = client.new_container(cid, _spec(rootfs, ["true"], client, cid))
    task = container.new_task(stdio=stdio.capture(b""))
    exited = task.wait()
    task.start()
    assert exited.result(HANG).code == 0
    assert sorted(os.listdir(container.bundle_dir)) == [f"{cid}-stderr", f"{cid}-stdin", f"{cid}-stdout"]
    handles = [task] + [container.task() for _ in range(racers - 1)]
    outcomes: list[object] = []
    lock = threading.Lock()
    start = threading.Barrier(racers)

    def delete(handle) -> None:
        start.wait()
        try:
            result: object = handle.delete()
        except errors.ContainerdError as err:
            result = err
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=delete, args=(handle,)) for handle in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Deletes of one process are serialized on the bundle's lock, so exactly one
    # reaches the shim (on containerd 1.6 the shim may exit before it answers:
    # that Delete still wins, with the exit status Tasks/Get reported).
    winners = [o for o in outcomes if isinstance(o, ExitStatus)]
    assert len(winners) == 1, outcomes
    assert winners[0].code == 0
    losers = [o for o in outcomes if not isinstance(o, ExitStatus)]
    assert all(isinstance(o, errors.NotFoundError) for o in losers), outcomes
    with pytest.raises(errors.NotFoundError):
        client.api.tasks.get(cid)
    # The FIFOs are removed, and with them the emptied bundle dir (as containerd does).
    assert not os.path.exists(container.bundle_dir)
    container.delete()


def test_loaded_task_delete_removes_fifos(client, rootfs):
    container = client.new_container("load", _spec(rootfs, ["sh", "-c", "echo hi"], client, "load"))
    task = container.new_task(stdio=stdio.capture(b""))
    exited = task.wait()
    task.start()
    exited.result(HANG)
    assert sorted(os.listdir(container.bundle_dir)) == ["load-stderr", "load-stdin", "load-stdout"]
    loaded = client.load_container("load").task()
    assert loaded.pid == task.pid
    assert loaded.delete().code == 0
    assert not os.path.exists(os.path.join(container.bundle_dir, "load-stdout"))
    task.io.close()
    # the container is still usable: a new task recreates what it needs
    again = container.new_task(stdio=stdio.capture())
    exited = again.wait()
    again.start()
    assert exited.result(HANG).code == 0
    assert again.io.stdout_data == b"hi\n"
    again.delete()
    container.delete()


def test_failed_start_is_cleaned_up(client, rootfs):
    container = client.new_container("fs", _spec(rootfs, ["sleep", "1000"], client, "fs"))
    task = container.new_task(stdio=stdio.capture(b"x"))
    exited = task.wait()
    os.kill(task.pid, signal.SIGKILL)  # the created init dies before Start
    exited.result(HANG)
    with pytest.raises(errors.ContainerdError):
        task.start()
    with pytest.raises(errors.NotFoundError):
        container.task()
    assert os.listdir(container.bundle_dir) == []
    container.delete()


def test_conflicts(client, rootfs):
    container = client.new_container("cf", _spec(rootfs, ["sleep", "1000"], client, "cf"))
    task = container.new_task()
    with pytest.raises(errors.ConflictError):
        container.new_task()
    task.start()
    proc = task.exec("dup", oci.process(["sleep", "100"]), stdio=stdio.capture())
    with pytest.raises(errors.ConflictError, match="id already in use"):
        task.exec("dup", oci.process(["sleep", "100"]), stdio=stdio.capture())
    assert sorted(os.listdir(container.bundle_dir)) == ["dup-stderr", "dup-stdout"]
    proc.start()
    task.force_delete()
    proc.io.close()
    container.delete()


def test_load_and_list_containers(client, rootfs):
    with pytest.raises(errors.NotFoundError, match="no such container"):
        client.load_container("nope")
    a = client.new_container("a", _spec(rootfs, ["true"], client, "a"), labels={"role": "x"})
    client.new_container("b", _spec(rootfs, ["true"], client, "b"))
    assert sorted(c.id for c in client.containers()) == ["a", "b"]
    assert [c.id for c in client.containers("labels.role==x")] == ["a"]
    loaded = client.load_container("a")
    assert loaded.bundle_dir == a.bundle_dir
    assert loaded.spec["process"]["args"] == ["true"]
    for c in client.containers():
        c.delete()
