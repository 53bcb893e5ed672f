"""pcd-handoff under a real containerd runc shim, driven by ``ctr --log-uri``.

Uses the suite's ``containerd_address`` fixture when tests/integration/conftest.py
provides one; otherwise starts a private containerd (own root, state and
sockets under a temp dir) for this module and stops it, and every shim it
started, afterwards. The container's rootfs is a private busybox tree with a
read-only bind mount of the test data, so the expected bytes are known.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycontainerd.stdio import handoff_helper as handoff
from pycontainerd.stdio.pump import copy_streams

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not all(shutil.which(b) for b in ("containerd", "ctr", "runc", "containerd-shim-runc-v2")),
        reason="needs containerd, ctr, runc and the runc v2 shim",
    ),
]

try:
    HELPER = handoff.helper_path()
except handoff.HelperNotBuiltError:  # pragma: no cover - depends on the build
    pytest.skip("pcd-handoff is not built", allow_module_level=True)

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ("sh", "cat", "sleep", "echo", "head", "dd", "true", "wait")


class OwnContainerd:
    """A private containerd for this module when the suite's fixture is absent."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.address = str(base / "c.sock")
        config = base / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{base}/root"\n'
            f'state = "{base}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.address}"\n'
            f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
            # The defaults would collide with the system daemon's.
            f'[debug]\n  address = "{base}/debug.sock"\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{base}/opt"\n'
        )
        self.log = open(base / "containerd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        while subprocess.run(ctr_argv(self.address, "default", "version"), capture_output=True).returncode:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited: {(base / 'containerd.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def shim_pids(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and b"containerd-shim" in argv[0] and self.address.encode() in argv:
                pids.append(int(entry))
        return pids

    def stop(self) -> None:
        shims = self.shim_pids()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in shims + self.shim_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


#: Where runc keeps its state when the client passes no runc root (ctr, and the shim's default).
SHARED_RUNC_ROOT = "/run/containerd/runc"


def ctr_argv(address: str, namespace: str, *args: str) -> list[str]:
    return ["ctr", "--address", address, "--namespace", namespace, *args]


@pytest.fixture(scope="module")
def _own_containerd() -> Iterator[OwnContainerd]:
    base = Path(tempfile.mkdtemp(prefix="pcd-ctrd-", dir="/tmp"))
    daemon = OwnContainerd(base)
    try:
        yield daemon
    finally:
        daemon.stop()
        # Mounts are gone with the tasks; anything left is a plain tree.
        subprocess.run(["umount", "-R", str(base / "state")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def address(request: pytest.FixtureRequest) -> str:
    try:
        return str(request.getfixturevalue("containerd_address"))
    except pytest.FixtureLookupError:
        own: OwnContainerd = request.getfixturevalue("_own_containerd")
        return own.address


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    """A busybox rootfs and a data directory, both only for this module."""
    base = Path(tempfile.mkdtemp(prefix="pcd-handoff-world-", dir="/tmp"))
    bin_dir = base / "rootfs" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(BUSYBOX, bin_dir / "busybox")
    for applet in APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    (base / "data").mkdir()
    yield base
    shutil.rmtree(base, ignore_errors=True)


@dataclass
class Ctr:
    address: str
    namespace: str
    rootfs: str
    data: Path

    def argv(self, *args: str) -> list[str]:
        return ctr_argv(self.address, self.namespace, *args)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, check=check, timeout=120)

    def task_status(self, container_id: str) -> str:
        for line in self.run("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == container_id:
                return fields[-1]
        return ""

    def cleanup(self) -> None:
        for cid in self.run("containers", "ls", "-q", check=False).stdout.split():
            self.run("tasks", "kill", "-s", "SIGKILL", cid, check=False)
            while self.task_status(cid) not in ("STOPPED", ""):
                time.sleep(0.05)
            self.run("tasks", "rm", "-f", cid, check=False)
            self.run("containers", "rm", cid, check=False)
        self.run("namespaces", "rm", self.namespace, check=False)
        # runc leaves its (empty) per-namespace state dir in the shared default root;
        # the daemon's own purge never sees this namespace, removed above.
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(SHARED_RUNC_ROOT, self.namespace))


@pytest.fixture
def ctr(address: str, world: Path) -> Iterator[Ctr]:
    c = Ctr(address, f"pcd-handoff-{uuid.uuid4().hex[:10]}", str(world / "rootfs"), world / "data")
    try:
        yield c
    finally:
        c.cleanup()
    # A test run leaves nothing in the shared /run/containerd.
    assert not os.path.exists(os.path.join(SHARED_RUNC_ROOT, c.namespace))


@pytest.fixture
def io_dir(tmp_path: Path) -> Path:
    # Special characters prove the URI survives Go's url.Parse/Query in ctr and the shim.
    d = tmp_path / "h a+b&c;d%e"
    d.mkdir(mode=0o700)
    return d


def write_data(ctr: Ctr, name: str, size: int, seed: int) -> bytes:
    data = random.Random(seed).randbytes(size)
    (ctr.data / name).write_bytes(data)
    return data


def data_mount(ctr: Ctr) -> list[str]:
    return ["--mount", f"type=bind,src={ctr.data},dst=/data,options=rbind:ro"]


def drain(pipes: handoff.HandoffPipes, tmp: Path) -> tuple[bytes, bytes]:
    """Splice both streams into files with the native pump, until EOF on both."""
    out_path, err_path = tmp / "got-out", tmp / "got-err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        results = copy_streams([(pipes.stdout, out.fileno()), (pipes.stderr, err.fileno())])
    for r in results:
        assert r.error is None
        assert not r.cancelled
    return out_path.read_bytes(), err_path.read_bytes()


def await_helper(sock: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait for the helper's socket; fail at once, with ctr's words, if ctr gives up first."""
    while True:
        try:
            handoff.wait_socket(sock, 0.5)
            return
        except TimeoutError:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"ctr exited {proc.returncode} before the helper listened: {err!r}")


def make_gate(ctr: Ctr, name: str) -> str:
    """A FIFO the container reads before writing: holds it until the client has the pipes.

    Otherwise output that fits in the pipe lets ``ctr run --rm`` finish, and
    delete the task and its helper, before the test connects (a real client
    receives between Create and Start).
    """
    path = ctr.data / name
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.mkfifo(path, 0o600)
    return f"read go < /data/{name}; "


def open_gate(ctr: Ctr, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Let the container go on, without blocking if it died before reading the gate."""
    while True:
        try:
            fd = os.open(ctr.data / name, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # ENXIO: no reader yet
            if exc.errno != errno.ENXIO or proc.poll() is not None:
                raise
            time.sleep(0.01)
            continue
        os.write(fd, b"go\n")
        os.close(fd)
        return


def assert_gone(pid: int, socket_path: str) -> None:
    """The helper has exited (or is an unreaped zombie) and its socket is gone."""
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.02)
    assert not os.path.lexists(socket_path)


def parent_exe(pid: int) -> str:
    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return os.path.basename(Path(f"/proc/{ppid}/cmdline").read_bytes().split(b"\0")[0].decode())


SIZES = [0, 1, 4095, 4097, 65535, 65537, (1 << 20) + 1, (1 << 24) + 1, 3_000_017]


@pytest.mark.parametrize("size", SIZES)
def test_run_byte_exact_both_streams(ctr: Ctr, io_dir: Path, tmp_path: Path, size: int) -> None:
    out = write_data(ctr, f"out-{size}", size, size)
    err = write_data(ctr, f"err-{size}", size // 2 + 1, ~size)
    sock = str(io_dir / "handoff.sock")
    cmd = make_gate(ctr, "gate") + f"cat /data/out-{size} & cat /data/err-{size} >&2; wait"
    proc = subprocess.Popen(
        ctr.argv("run", "--rm", "--log-uri", handoff.binary_uri(sock), *data_mount(ctr),
                 "--rootfs", ctr.rootfs, "c1", "/bin/sh", "-c", cmd),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        await_helper(sock, proc)
        with handoff.receive(sock) as pipes:
            assert parent_exe(pipes.helper_pid) == "containerd-shim-runc-v2"
            open_gate(ctr, "gate", proc)
            got_out, got_err = drain(pipes, tmp_path)
            helper = pipes.helper_pid
    finally:
        if proc.poll() is None and sys.exc_info()[0] is not None:
            proc.kill()  # the fixture kills the task
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    # ctr itself printed nothing: the output went through the helper only.
    assert stdout == b""
    assert len(got_out) == len(out)
    assert got_out == out
    assert got_err == err
    assert_gone(helper, sock)


def test_eof_only_after_delete_then_helper_and_socket_gone(ctr: Ctr, io_dir: Path) -> None:
    sock = str(io_dir / "handoff.sock")
    ctr.run("run", "-d", "--log-uri", handoff.binary_uri(sock), "--rootfs", ctr.rootfs,
            "c1", "/bin/sh", "-c", "echo -n out; echo -n err >&2")  # fmt: skip
    with handoff.receive(sock, timeout=30) as pipes:
        assert os.read(pipes.stdout, 3) == b"out"
        assert os.read(pipes.stderr, 3) == b"err"
        while ctr.task_status("c1") != "STOPPED":
            time.sleep(0.02)
        # The process has exited, but the shim still holds the write ends:
        # no EOF yet (a reader must Delete first), only "no data".
        for fd in (pipes.stdout, pipes.stderr):
            os.set_blocking(fd, False)
            with pytest.raises(BlockingIOError):
                os.read(fd, 1)
        assert os.path.lexists(sock)
        ctr.run("tasks", "rm", "c1")
        for fd in (pipes.stdout, pipes.stderr):
            os.set_blocking(fd, True)
            assert os.read(fd, 1) == b""
        assert_gone(pipes.helper_pid, sock)


def test_exec_with_handoff(ctr: Ctr, io_dir: Path, tmp_path: Path) -> None:
    out = write_data(ctr, "exec-out", (1 << 21) + 3, 1)
    err = write_data(ctr, "exec-err", 70001, 2)
    ctr.run("run", "-d", "--null-io", *data_mount(ctr), "--rootfs", ctr.rootfs,
            "c1", "/bin/sleep", "1000")  # fmt: skip
    sock = str(io_dir / "exec.sock")
    gate = make_gate(ctr, "exec-gate")
    proc = subprocess.Popen(
        ctr.argv("tasks", "exec", "--exec-id", "e1", "--log-uri", handoff.binary_uri(sock),
                 "c1", "/bin/sh", "-c", gate + "cat /data/exec-out & cat /data/exec-err >&2; wait"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        await_helper(sock, proc)
        with handoff.receive(sock) as pipes:
            open_gate(ctr, "exec-gate", proc)
            got_out, got_err = drain(pipes, tmp_path)
            helper = pipes.helper_pid
    finally:
        if proc.poll() is None and sys.exc_info()[0] is not None:
            proc.kill()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert got_out == out
    assert got_err == err
    assert_gone(helper, sock)
    # The init process (and its NullIO) is unaffected.
    assert ctr.task_status("c1") == "RUNNING"


READ_PART = """
import os, sys
from pycontainerd.stdio import handoff_helper as handoff
pipes = handoff.receive(sys.argv[1])
want, got = int(sys.argv[2]), bytearray()
while len(got) < want:
    got += os.read(pipes.stdout, want - len(got))
with open(sys.argv[3], "wb") as f:
    f.write(got)
print("ready", flush=True)
sys.stdin.read()  # hold the pipes until killed
"""


def test_killed_client_then_reattach_gets_the_rest(ctr: Ctr, io_dir: Path, tmp_path: Path) -> None:
    out = write_data(ctr, "big", 8 * (1 << 20) + 5, 3)  # several pipe buffers: the container blocks
    sock = str(io_dir / "handoff.sock")
    run = subprocess.Popen(
        ctr.argv("run", "--rm", "--log-uri", handoff.binary_uri(sock), *data_mount(ctr),
                 "--rootfs", ctr.rootfs, "c1", "/bin/sh", "-c", "cat /data/big; echo -n done >&2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    parts: list[bytes] = []
    try:
        await_helper(sock, run)
        for i, cut in enumerate((1, (1 << 20) + 17)):  # two clients killed mid-stream, one after the other
            part = tmp_path / f"part-{i}"
            client = subprocess.Popen(
                [sys.executable, "-c", READ_PART, sock, str(cut), str(part)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            assert client.stdout is not None
            assert client.stdout.readline() == b"ready\n"
            client.kill()  # it still holds the pipes: the kernel closes them
            client.wait()
            client.stdout.close()
            assert client.stdin is not None
            client.stdin.close()
            parts.append(part.read_bytes())
            assert len(parts[-1]) == cut
        with handoff.receive(sock) as pipes:
            got_out, got_err = drain(pipes, tmp_path)
    finally:
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert got_err == b"done"
    # Nothing lost, nothing duplicated across the three readers.
    assert b"".join([*parts, got_out]) == out


def helper_pids_for(sock: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if argv[0] == HELPER.encode() and sock.encode() in argv:
                    pids.append(int(entry))
    return pids


def test_failed_start_leaves_no_helper_or_socket(ctr: Ctr, io_dir: Path) -> None:
    sock = str(io_dir / "handoff.sock")
    res = ctr.run("run", "--rm", "--log-uri", handoff.binary_uri(sock), "--rootfs", ctr.rootfs,
                  "c1", "/bin/no-such-program", check=False)  # fmt: skip
    assert res.returncode != 0
    assert "no-such-program" in res.stderr
    # The shim stops or drops the helper on the failed create; it must not linger.
    deadline = time.monotonic() + 60
    while (left := helper_pids_for(sock)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []
    assert not os.path.lexists(sock)


def test_stdin_is_not_connected_with_binary_logging(ctr: Ctr, io_dir: Path, world: Path) -> None:
    """containerd's binaryIO has no stdin: a stdin FIFO given with it is ignored.

    ctr cannot express stdin + --log-uri, so the task is created over the raw API.
    If this ever fails, the shim started copying stdin and handoff could carry it.
    """
    grpc = pytest.importorskip("grpc")
    from pycontainerd._proto.services.tasks.v1 import tasks_pb2, tasks_pb2_grpc

    script = world / "rootfs" / "bin" / "stdin-probe"
    script.write_text("#!/bin/sh\ncat\necho '[stdin done]'\nls -l /proc/self/fd/0 >&2\n")
    script.chmod(0o755)
    ctr.run("containers", "create", "--rootfs", ctr.rootfs, "c1", "/bin/stdin-probe")
    fifo = str(io_dir / "stdin")
    os.mkfifo(fifo, 0o600)
    keep = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)  # a reader, so the shim's opens succeed at once
    sock = str(io_dir / "handoff.sock")
    uri = handoff.binary_uri(sock)
    md = [("containerd-namespace", ctr.namespace)]
    with grpc.insecure_channel("unix://" + ctr.address) as channel:
        stub = tasks_pb2_grpc.TasksStub(channel)
        stub.Create(tasks_pb2.CreateTaskRequest(container_id="c1", stdin=fifo, stdout=uri, stderr=uri),
                    metadata=md, timeout=60)  # fmt: skip
        with handoff.receive(sock) as pipes:
            writer = os.open(fifo, os.O_WRONLY | os.O_CLOEXEC)
            os.write(writer, b"hello via fifo\n")
            os.close(writer)
            os.close(keep)
            stub.Start(tasks_pb2.StartRequest(container_id="c1"), metadata=md, timeout=60)
            while ctr.task_status("c1") != "STOPPED":
                time.sleep(0.02)
            os.set_blocking(pipes.stdout, False)
            os.set_blocking(pipes.stderr, False)
            out, err = os.read(pipes.stdout, 4096), os.read(pipes.stderr, 4096)
            stub.Delete(tasks_pb2.DeleteTaskRequest(container_id="c1"), metadata=md, timeout=60)
    assert out == b"[stdin done]\n"
    assert err.rstrip().endswith(b"/proc/self/fd/0 -> /dev/null")
