"""The zero-copy handoff stdio (``stdio.handoff``) against a real containerd + runc shim.

The container reads known random data from a read-only bind mount (``/data``),
so every expected byte is known; outputs are compared with the data and with
the FIFO path's output for the same command.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd.api.types import Status
from pycontainerd.container import Container
from pycontainerd.stdio.handoff_io import HandoffIO, available, socket_from_uri

pytestmark = pytest.mark.skipif(not available(), reason="pcd-handoff is not built")

BLOB_SIZE = (1 << 24) + 1  # the largest size of the 2^k±1 sweep


@dataclass(frozen=True)
class World:
    data_dir: str
    a: bytes
    b: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    data = tmp_path_factory.mktemp("handoff-data")
    rng = random.Random(6)
    a, b = rng.randbytes(BLOB_SIZE), rng.randbytes(BLOB_SIZE)
    (data / "a").write_bytes(a)
    (data / "b").write_bytes(b)
    return World(str(data), a, b)


def _spec(rootfs: str, world: World, script: str) -> dict[str, Any]:
    mount = {"destination": "/data", "type": "bind", "source": world.data_dir, "options": ["rbind", "ro"]}
    return oci.build(args=["sh", "-c", script], rootfs=rootfs, mounts=[mount])


def _both(n_out: int, n_err: int) -> str:
    # Both streams at once, so the two pipes fill and drain concurrently.
    return f"head -c {n_out} /data/a & head -c {n_err} /data/b >&2; wait"


def _run(client: Any, cid: str, spec: dict[str, Any], io: stdio.Stdio, *, timeout: float = 60
         ) -> tuple[int, bytes | None, bytes | None, bool]:
    """Create, start, wait and delete; returns (code, stdout, stderr, used handoff)."""
    container = client.new_container(cid, spec)
    try:
        task = container.new_task(stdio=io)
        handed = isinstance(task.io, HandoffIO)
        exited = task.wait()
        task.start()
        code = exited.result(timeout).code
        out, err = task.io.stdout_data, task.io.stderr_data
        task.delete()
    finally:
        with contextlib.suppress(errors.ContainerdError):
            container.task().force_delete()
        container.delete()
    return code, out, err, handed


def _handoff_pids(namespace: str) -> list[int]:
    """Live pcd-handoff processes started for ``namespace`` (zombies excluded)."""
    pids = []
    want = f"CONTAINER_NAMESPACE={namespace}".encode()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != "pcd-handoff":
                continue
            if want in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _sockets_under(path: str) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(full).st_mode):
                    found.append(full)
    return found


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _sweep() -> list[int]:
    return sorted({max(0, (1 << k) + d) for k in range(25) for d in (-1, 0, 1)})


# -- bytes ---------------------------------------------------------------------


def test_sweep_byte_exact_and_same_as_fifo(client, rootfs, world):
    sizes = _sweep()
    assert sizes[-1] == BLOB_SIZE
    for i, n_out in enumerate(sizes):
        n_err = sizes[-1 - i]
        spec = _spec(rootfs, world, _both(n_out, n_err))
        strict = stdio.handoff(stdio.capture(), fallback=False)
        code, out, err, handed = _run(client, f"sweep-{i}", spec, strict)
        assert handed
        assert code == 0
        assert out == world.a[:n_out], f"stdout differs at size {n_out}"
        assert err == world.b[:n_err], f"stderr differs at size {n_err}"
        fifo = _run(client, f"sweep-fifo-{i}", spec, stdio.capture())
        assert not fifo[3]
        assert (fifo[1], fifo[2]) == (out, err), f"FIFO path differs at sizes {n_out}/{n_err}"


def test_random_sizes_byte_exact(client, rootfs, world):
    rng = random.Random(1234)
    for i in range(12):
        n_out, n_err = rng.randrange(BLOB_SIZE + 1), rng.randrange(1 << rng.randrange(1, 25))
        spec = _spec(rootfs, world, _both(n_out, n_err) + f"; exit {i}")
        strict = stdio.handoff(stdio.capture(), fallback=False)
        code, out, err, handed = _run(client, f"rand-{i}", spec, strict)
        assert handed
        assert code == i
        assert out == world.a[:n_out]
        assert err == world.b[:n_err]


def _sink_kinds() -> list[str]:
    return ["pipe", "file", "append-file", "socket", "log-file", "devnull"]


@pytest.mark.parametrize("kind", _sink_kinds())
def test_sinks_byte_exact(client, rootfs, world, tmp_path, kind):
    """Splice-only sinks (pipe, file, /dev/null) and relayed ones (O_APPEND file, socket, log file)."""
    n_out, n_err = (3 << 20) + 7, (1 << 20) + 3
    spec = _spec(rootfs, world, _both(n_out, n_err))
    opened: list[Any] = []
    readers: list[Any] = []
    try:
        if kind == "log-file":
            log = tmp_path / "log"
            strict = stdio.handoff(stdio.log_file(str(log)), fallback=False)
            code, _, _, handed = _run(client, "sink", spec, strict)
            assert handed
            assert code == 0
            data = log.read_bytes()
            # One file for both streams: interleaving is arbitrary, the contents are not.
            assert len(data) == n_out + n_err
            assert sorted(data) == sorted(world.a[:n_out] + world.b[:n_err])
            return
        if kind == "devnull":
            null = open(os.devnull, "wb")  # noqa: SIM115 - closed below
            opened.append(null)
            code, _, _, handed = _run(client, "sink", spec,
                                      stdio.handoff(stdio.streams(stdout=null, stderr=null), fallback=False))
            assert handed
            assert code == 0
            return
        sinks = []
        for name in ("out", "err"):
            if kind in ("pipe", "socket"):
                # A reader process copies what arrives into a file.
                with open(tmp_path / name, "wb") as target:
                    if kind == "pipe":
                        theirs, ours = os.pipe()
                    else:
                        left, right = socket.socketpair()
                        ours, theirs = os.dup(left.fileno()), os.dup(right.fileno())
                        left.close()
                        right.close()
                    readers.append(subprocess.Popen(["cat"], stdin=theirs, stdout=target))
                os.close(theirs)
                sinks.append(ours)
                opened.append(ours)
            else:
                flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if kind == "append-file" else 0)
                fd = os.open(tmp_path / name, flags, 0o600)
                sinks.append(fd)
                opened.append(fd)
        io = stdio.handoff(stdio.streams(stdout=sinks[0], stderr=sinks[1]), fallback=False)
        code, _, _, handed = _run(client, "sink", spec, io)
        assert handed
        assert code == 0
        for fd in opened:
            os.close(fd)
        opened.clear()
        for reader in readers:
            assert reader.wait(30) == 0
        assert (tmp_path / "out").read_bytes() == world.a[:n_out]
        assert (tmp_path / "err").read_bytes() == world.b[:n_err]
    finally:
        for item in opened:
            with contextlib.suppress(OSError):
                item.close() if hasattr(item, "close") else os.close(item)
        for reader in readers:
            reader.kill()
            reader.wait()


def test_run_uses_handoff_and_matches_fifo(client, rootfs, world):
    from pycontainerd._run import run

    args = ["sh", "-c", _both(12345, 678) + "; exit 9"]
    mounts = [{"destination": "/data", "type": "bind", "source": world.data_dir, "options": ["rbind", "ro"]}]
    results = [run(args, rootfs=rootfs, capture_output=True, client=client, handoff=mode,
                   spec_options={"mounts": mounts}) for mode in (None, True, False)]
    for result in results:
        assert result.returncode == 9
        assert result.stdout == world.a[:12345]
        assert result.stderr == world.b[:678]


# -- when handoff does not apply ---------------------------------------------------


def test_stdin_falls_back_to_fifo(client, rootfs, world):
    payload = world.a[: (1 << 20) + 5]
    container = client.new_container("stdin", oci.build(args=["cat"], rootfs=rootfs))
    task = container.new_task(stdio=stdio.handoff(stdio.capture(payload)))
    assert not isinstance(task.io, HandoffIO)
    assert task.io.stdin_path.endswith("stdin-stdin")
    assert not socket_from_uri(task.status().stdout)
    exited = task.wait()
    task.start()
    assert exited.result(30).code == 0
    assert task.io.stdout_data == payload
    task.delete()
    assert not _sockets_under(container.bundle_dir)
    container.delete()


def test_stdin_with_fallback_false_is_refused_before_anything(client, rootfs):
    container = client.new_container("strict", oci.build(args=["cat"], rootfs=rootfs))
    with pytest.raises(stdio.HandoffUnavailableError, match="stdin"):
        container.new_task(stdio=stdio.handoff(stdio.capture(b"x"), fallback=False))
    with pytest.raises(errors.NotFoundError):
        container.task()
    assert os.listdir(container.bundle_dir) == []
    container.delete()


def test_terminal_falls_back_to_fifo(client, rootfs):
    container = client.new_container("tty", oci.build(args=["echo", "hi"], rootfs=rootfs, tty=True))
    task = container.new_task(stdio=stdio.handoff(stdio.capture()))
    assert not isinstance(task.io, HandoffIO)
    exited = task.wait()
    task.start()
    assert exited.result(30).code == 0
    assert task.io.stdout_data == b"hi\r\n"
    task.delete()
    container.delete()
    with pytest.raises(stdio.HandoffUnavailableError, match="terminal"):
        client.new_container("tty2", oci.build(args=["true"], rootfs=rootfs, tty=True)).new_task(
            stdio=stdio.handoff(stdio.capture(), fallback=False))
    client.load_container("tty2").delete()


# -- lifecycle -----------------------------------------------------------------------


def test_socket_and_helper_gone_after_delete(client, rootfs, namespace, world):
    container = client.new_container("life", _spec(rootfs, world, "echo out; echo err >&2; exit 4"))
    task = container.new_task(stdio=stdio.handoff(stdio.capture(), fallback=False))
    sock = os.path.join(container.bundle_dir, "life-handoff.sock")
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
    assert socket_from_uri(task.status().stdout) == sock
    helpers = _handoff_pids(namespace)
    assert len(helpers) == 1
    exited = task.wait()
    task.start()
    assert exited.result(30).code == 4
    assert (task.io.stdout_data, task.io.stderr_data) == (b"out\n", b"err\n")
    assert os.path.exists(sock), "the helper serves until Delete"
    assert task.delete().code == 4
    assert not os.path.exists(sock)
    assert _handoff_pids(namespace) == []
    assert not os.path.exists(f"/proc/{helpers[0]}") or _is_zombie(helpers[0])
    container.delete()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_stale_socket_is_replaced(client, rootfs, world):
    container = client.new_container("stale", _spec(rootfs, world, "echo fresh"))
    # What a SIGKILLed helper leaves behind: a socket nobody listens on.
    sock = os.path.join(container.bundle_dir, "stale-handoff.sock")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(sock)
    task = container.new_task(stdio=stdio.handoff(stdio.capture(), fallback=False))
    exited = task.wait()
    task.start()
    assert exited.result(30).code == 0
    assert task.io.stdout_data == b"fresh\n"
    task.delete()
    container.delete()


def test_exec_with_handoff(client, rootfs, namespace, world):
    container = client.new_container("ex", _spec(rootfs, world, "sleep 100"))
    task = container.new_task()
    task.start()
    try:
        n_out, n_err = (5 << 20) + 1, (1 << 16) - 1
        spec = oci.process(["sh", "-c", _both(n_out, n_err) + "; exit 5"])
        proc = task.exec("e1", spec, stdio=stdio.handoff(stdio.capture(), fallback=False))
        assert isinstance(proc.io, HandoffIO)
        exited = proc.wait()
        proc.start()
        sock = os.path.join(container.bundle_dir, "e1-handoff.sock")
        assert os.path.exists(sock)
        assert len(_handoff_pids(namespace)) == 1
        assert exited.result(30).code == 5
        assert proc.io.stdout_data == world.a[:n_out]
        assert proc.io.stderr_data == world.b[:n_err]
        proc.delete()
        assert not os.path.exists(sock)
        assert _handoff_pids(namespace) == []
        # A second exec with the same id (the first is deleted) works the same way.
        proc = task.exec("e1", oci.process(["echo", "again"]), stdio=stdio.handoff(stdio.capture()))
        exited = proc.wait()
        proc.start()
        assert exited.result(30).code == 0
        assert proc.io.stdout_data == b"again\n"
        proc.delete()
    finally:
        task.force_delete()
    container.delete()


def test_exec_background_child_does_not_hold_the_wait(client, rootfs):
    """Documented difference from FIFOs: an exec's wait() ends once its pipes are empty at its exit.

    Output a background child writes later is not delivered to this handle (the FIFO path would
    wait for that child and raise DrainTimeoutError after the drain timeout).
    """
    container = client.new_container("bg", oci.build(args=["sleep", "100"], rootfs=rootfs))
    task = container.new_task()
    task.start()
    try:
        spec = oci.process(["sh", "-c", "echo now; (sleep 3; echo late) &"])
        proc = task.exec("bg1", spec, stdio=stdio.handoff(stdio.capture(), fallback=False))
        exited = proc.wait()
        t0 = time.monotonic()
        proc.start()
        assert exited.result(30).code == 0
        assert time.monotonic() - t0 < 2.5
        assert proc.io.stdout_data == b"now\n"
        proc.delete()
    finally:
        task.force_delete()
    container.delete()


def test_failed_start_missing_binary_leaves_nothing(client, rootfs, namespace):
    container = client.new_container("nobin", oci.build(args=["/no/such/binary"], rootfs=rootfs))
    with pytest.raises(errors.ContainerdError, match="no such file"):
        container.new_task(stdio=stdio.handoff(stdio.capture(), fallback=False))
    with pytest.raises(errors.NotFoundError):
        container.task()
    assert _wait_for(lambda: not _handoff_pids(namespace) and not _sockets_under(container.bundle_dir))
    container.delete()


def _wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    """Poll ``predicate`` until true; returns its last value (False on timeout)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


# -- killed client, reattach -----------------------------------------------------------

_CHUNK = 256 << 10
_CHUNKS = 40

# A client in its own process: creates the task with handoff into two files, starts
# it, says so, then sleeps until it is SIGKILLed.
_CHILD = r"""
import json, sys, time
from pycontainerd import stdio
from pycontainerd.client import Client
address, namespace, cid, spec_json, out, err = sys.argv[1:]
with Client(address, namespace=namespace) as client:
    container = client.new_container(cid, json.loads(spec_json))
    fo, fe = open(out, "wb"), open(err, "wb")
    task = container.new_task(stdio=stdio.handoff(stdio.streams(stdout=fo, stderr=fe), fallback=False))
    task.wait()
    task.start()
    print("started", flush=True)
    time.sleep(3600)
"""


def _slow_script() -> str:
    # Known bytes in chunks with pauses, so that the client can be killed mid-stream.
    return (f"i=0; while [ $i -lt {_CHUNKS} ]; do dd if=/data/a bs={_CHUNK} skip=$i count=1 2>/dev/null; "
            "echo $i >&2; i=$((i+1)); sleep 0.02; done")


def _expected_slow(world: World) -> tuple[bytes, bytes]:
    return world.a[: _CHUNKS * _CHUNK], "".join(f"{i}\n" for i in range(_CHUNKS)).encode()


@contextlib.contextmanager
def _killed_client(containerd_address: str, namespace: str, cid: str, spec: dict[str, Any], out: Path,
                   err: Path, *, after_bytes: int) -> Iterator[None]:
    """Run the child client until ``out`` holds ``after_bytes``, then SIGKILL it."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, containerd_address, namespace, cid, json.dumps(spec),
         str(out), str(err)],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"started\n"
        assert _wait_for(lambda: out.exists() and out.stat().st_size >= after_bytes, timeout=60)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    yield


def _reattach_and_finish(container: Container, out: Path, err: Path) -> int:
    with open(out, "wb") as fo, open(err, "wb") as fe:
        task = container.attach_task(stdio.handoff(stdio.streams(stdout=fo, stderr=fe)))
        assert isinstance(task.io, HandoffIO)
        exited = task.wait()
        code = exited.result(60).code
        task.delete()
    return code


def test_killed_client_reattach_gets_the_rest_exactly(client, rootfs, containerd_address, namespace, world,
                                                       tmp_path):
    spec = _spec(rootfs, world, _slow_script())
    out1, err1, out2, err2 = (tmp_path / n for n in ("out1", "err1", "out2", "err2"))
    with _killed_client(containerd_address, namespace, "reattach", spec, out1, err1, after_bytes=2 << 20):
        pass
    first = out1.read_bytes()
    expected_out, expected_err = _expected_slow(world)
    assert 0 < len(first) < len(expected_out), "the client was not killed mid-stream"
    container = client.load_container("reattach")
    assert _reattach_and_finish(container, out2, err2) == 0
    assert first + out2.read_bytes() == expected_out
    assert err1.read_bytes() + err2.read_bytes() == expected_err
    assert _handoff_pids(namespace) == []
    container.delete()


def test_reattach_with_plain_strategy_after_exit(client, rootfs, world, tmp_path):
    """A task that exited while nobody read: attach_task(capture()) gets everything."""
    container = client.new_container("late", _spec(rootfs, world, _both(100_000, 5000)))
    task = container.new_task(stdio=stdio.handoff(stdio.capture(), fallback=False))
    task.detach()
    task.start()
    assert _wait_for(lambda: container.task().status().status is Status.STOPPED)
    again = container.attach_task(stdio.capture())
    assert again.wait().result(30).code == 0
    assert again.io.stdout_data == world.a[:100_000]
    assert again.io.stderr_data == world.b[:5000]
    again.delete()
    container.delete()


# -- leaks -----------------------------------------------------------------------------


def test_no_leaks_across_200_cycles(client, rootfs, containerd_address, namespace, world, tmp_path):
    """Normal runs, failed starts (missing binary) and killed clients: no fd, socket or helper left."""
    ok_spec = _spec(rootfs, world, _both(70_000, 3_000))
    bad_spec = oci.build(args=["/no/such/binary"], rootfs=rootfs)
    slow_spec = _spec(rootfs, world, _slow_script())
    bundles: list[str] = []

    def normal(i: int) -> None:
        strict = stdio.handoff(stdio.capture(), fallback=False)
        code, out, err, handed = _run(client, f"cyc-{i}", ok_spec, strict)
        assert handed
        assert code == 0
        assert out == world.a[:70_000]
        assert err == world.b[:3_000]

    normal(999)  # warm-up: the channel and the pump allocate once
    before = _fd_count()
    kinds: dict[str, int] = {"normal": 0, "failed": 0, "killed": 0}
    for i in range(200):
        if i % 10 == 3:
            kinds["failed"] += 1
            container = client.new_container(f"cyc-{i}", bad_spec)
            bundles.append(container.bundle_dir)
            with pytest.raises(errors.ContainerdError):
                container.new_task(stdio=stdio.handoff(stdio.capture(), fallback=False))
            container.delete()
        elif i % 20 == 7:
            kinds["killed"] += 1
            out, err = tmp_path / f"o{i}", tmp_path / f"e{i}"
            with _killed_client(containerd_address, namespace, f"cyc-{i}", slow_spec, out, err,
                                after_bytes=1 << 20):
                pass
            container = client.load_container(f"cyc-{i}")
            bundles.append(container.bundle_dir)
            if i % 40 == 7:
                # Reattach and finish; the rest arrives exactly.
                assert _reattach_and_finish(container, tmp_path / f"o{i}b", tmp_path / f"e{i}b") == 0
                assert out.read_bytes() + (tmp_path / f"o{i}b").read_bytes() == _expected_slow(world)[0]
            else:
                # Never reattached: removing the task must still end the helper.
                container.task().force_delete()
            container.delete()
            for path in tmp_path.iterdir():
                path.unlink()
        else:
            kinds["normal"] += 1
            normal(i)
        if i % 50 == 49:
            assert _handoff_pids(namespace) == [], f"helpers left after cycle {i}"
    assert kinds == {"normal": 170, "failed": 20, "killed": 10}
    assert _wait_for(lambda: _handoff_pids(namespace) == []), f"helpers left: {_handoff_pids(namespace)}"
    _wait_for(lambda: _fd_count() <= before, timeout=5)
    assert _fd_count() == before, f"fds: {before} before, {_fd_count()} after 200 cycles"
    for bundle in bundles:
        assert not os.path.exists(bundle)
    state = os.path.dirname(bundles[0])
    assert _sockets_under(state) == []


@pytest.mark.parametrize("transport", ["fifo", "handoff"])
def test_one_thread_serves_a_running_process(client, rootfs, tmp_path, transport) -> None:
    """stdout and stderr of a running process are served by exactly one of our threads, on both transports."""
    def ours() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("pcd-")}

    before = ours()
    cid = f"threads-{transport}"
    container = client.new_container(cid, oci.build(args=["sh", "-c", "echo up; exec sleep 1000"],
                                                     rootfs=rootfs, namespace=client.namespace,
                                                     container_id=cid))
    with open(tmp_path / "out", "wb") as out:
        strategy = stdio.streams(stdout=out, stderr=out)
        task = container.new_task(stdio=stdio.handoff(strategy, fallback=False) if transport == "handoff"
                                  else strategy)
        exited = task.wait()
        task.start()
        try:
            while b"up" not in (tmp_path / "out").read_bytes():
                assert not exited.done(), exited.result()
                time.sleep(0.01)
            serving = ours() - before
            assert [t.name for t in serving] == ["pcd-io-output"]
        finally:
            task.kill(9)
            exited.result(120)
            task.delete()
    container.delete()
    assert ours() - before == set()
