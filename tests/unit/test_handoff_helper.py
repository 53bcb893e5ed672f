"""pcd-handoff against a simulated runc shim, and pycontainerd.handoff against it.

The shim side is reproduced as containerd's NewBinaryIO does it: the helper
gets the read ends of two pipes as fds 3 and 4 and a readiness pipe's write
end as fd 5, fds 0-2 on /dev/null, the URI's query pairs as ``key value``
words, and exactly CONTAINER_ID/CONTAINER_NAMESPACE in its environment. The
test keeps the write ends: it plays the container.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import fcntl
import os
import random
import signal
import socket
import stat
import struct
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycontainerd.stdio import handoff_helper as handoff

NOBODY = 65534

try:
    HELPER = handoff.helper_path()
except handoff.HelperNotBuiltError:  # pragma: no cover - depends on the build
    pytest.skip("pcd-handoff is not built", allow_module_level=True)


class Shim:
    """The shim's half of NewBinaryIO: pipes, spawn, readiness, stop."""

    def __init__(self, socket_path: str, args: list[str] | None = None, *, pipes: bool = True,
                 env: dict[str, str] | None = None, extra_fd: int | None = None) -> None:
        self.socket_path = socket_path
        self.stdout_r, self.stdout_w = os.pipe()
        self.stderr_r, self.stderr_w = os.pipe()
        ready_r, ready_w = os.pipe()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the helper
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        fd3, fd4 = (self.stdout_r, self.stderr_r) if pipes else (devnull, devnull)
        # Sources above the targets first, so that no dup2 clobbers a later source.
        sources = [devnull, devnull, self.log.fileno(), fd3, fd4, ready_w]
        if extra_fd is not None:  # a stray descriptor a careless starter leaks (fd 6 up)
            sources.append(extra_fd)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in sources]
        argv = [HELPER, *(args if args is not None else ["socket", socket_path])]
        try:
            self.pid = os.posix_spawn(
                HELPER,
                argv,
                {"CONTAINER_ID": "ctr-1", "CONTAINER_NAMESPACE": "ns-1", **(env or {})},
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(high)],
            )
        finally:
            for fd in [*high, devnull, ready_w]:
                os.close(fd)
        # Like the shim after CloseAfterStart: only the helper holds read ends.
        os.close(self.stdout_r)
        os.close(self.stderr_r)
        self.status: int | None = None
        with os.fdopen(ready_r, "rb", buffering=0) as ready:
            self.readiness = ready.read()  # byte(s) then EOF; EOF alone if it failed

    def alive(self) -> bool:
        return self.status is None and os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def wait(self) -> int:
        if self.status is None:
            _, status = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.status is None:
            os.kill(self.pid, sig)
        return self.wait()

    def stderr_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close_writers(self) -> None:
        for name in ("stdout_w", "stderr_w"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait()
        self.close_writers()
        self.log.close()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Outside pytest's 0700 tree so that `nobody` can reach the socket (0711).
    path = Path(tempfile.mkdtemp(prefix="pcd-handoff-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def shim(sock_dir: Path) -> Iterator[Shim]:
    s = Shim(str(sock_dir / "handoff.sock"))
    yield s
    try:
        assert s.stop() == 0  # what the shim does on Delete
    finally:
        s.close()
    assert not os.path.lexists(s.socket_path)


def helper_fds(pid: int) -> dict[int, str]:
    base = f"/proc/{pid}/fd"
    return {int(n): os.readlink(f"{base}/{n}") for n in os.listdir(base)}


def fdinfo_flags(pid: int, fd: int) -> int:
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError("no flags in fdinfo")


def read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        assert b, "unexpected EOF"
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def splice_exact(fd: int, n: int) -> bytes:
    """Read n bytes from a pipe with splice(2) into a file, the way the pump will."""
    with tempfile.TemporaryFile() as f:
        left = n
        while left:
            moved = os.splice(fd, f.fileno(), left)
            assert moved, "unexpected EOF"
            left -= moved
        f.seek(0)
        return f.read()


def assert_drained(fd: int) -> None:
    """Nothing more is buffered (non-blocking read finds no data, and no EOF)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):
            os.read(fd, 1)
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def writer(fd: int, data: bytes) -> threading.Thread:
    def run() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def in_child_as(uid: int, fn: Callable[[], tuple[int, ...]]) -> tuple[int, ...]:
    """Run fn() (returning a tuple of ints) in a forked child that setuid()s to uid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = fn()
            os.write(w, struct.pack(f"{len(result)}q", *result))
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return struct.unpack(f"{len(data) // 8}q", data)


def raw_connect(path: str) -> tuple[int, ...]:
    """Connect and report (errno of connect or 0, bytes received, fds received)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as exc:
        return (exc.errno or -1, 0, 0)
    msg, anc, _, _ = s.recvmsg(64, socket.CMSG_SPACE(16 * 4))
    fds = array.array("i")
    for _level, _kind, payload in anc:
        fds.frombytes(payload)
    for fd in fds:
        os.close(fd)
    return (0, len(msg), len(fds))


# --- start-up contract ---------------------------------------------------------------------


def test_readiness_byte_then_eof_with_socket_listening(shim: Shim) -> None:
    # A byte (binary-v2 needs one), then close (old binary accepts EOF too).
    assert shim.readiness == b"R"
    st = os.lstat(shim.socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    # Listening by the time readiness is seen: the shim starts the container then.
    with handoff.receive(shim.socket_path, timeout=10) as pipes:
        assert (pipes.flags, pipes.helper_pid) == (0, shim.pid)
        assert os.get_inheritable(pipes.stdout) is False
        assert os.get_inheritable(pipes.stderr) is False


def test_socket_mode_0600_owned_by_euid(shim: Shim) -> None:
    st = os.lstat(shim.socket_path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()


def test_arguments_in_any_order(sock_dir: Path) -> None:
    path = str(sock_dir / "h.sock")
    s = Shim(path, ["owner_uid", str(os.geteuid()), "socket", path])
    try:
        assert s.readiness == b"R"
        handoff.receive(path).close()
    finally:
        s.close()


def test_socket_appears_only_when_listening(sock_dir: Path) -> None:
    # A client that races the start-up and connects the moment the path exists
    # must never be refused: the socket is bound elsewhere and renamed in.
    path = str(sock_dir / "h.sock")
    outcomes: list[str] = []
    for _ in range(20):
        stop = threading.Event()

        def race(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                if os.path.lexists(path):
                    try:
                        handoff.receive(path, timeout=10).close()
                        outcomes.append("ok")
                    except OSError as exc:
                        outcomes.append(repr(exc))
                    return

        t = threading.Thread(target=race)
        t.start()
        s = Shim(path)
        try:
            t.join()
        finally:
            stop.set()
            t.join()
            assert s.stop() == 0
            s.close()
        assert sorted(p.name for p in sock_dir.iterdir()) == []
    assert outcomes == ["ok"] * 20


def test_socket_is_renamed_into_place_never_created_there(sock_dir: Path) -> None:
    # The deterministic half of the test above: the final name is only ever
    # the target of a rename (done after listen), never created by bind.
    libc = ctypes.CDLL(None, use_errno=True)
    in_create, in_moved_to = 0x100, 0x80
    ifd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
    assert ifd >= 0, os.strerror(ctypes.get_errno())
    try:
        assert libc.inotify_add_watch(ifd, os.fsencode(sock_dir), in_create | in_moved_to) >= 0
        s = Shim(str(sock_dir / "h.sock"))
        try:
            assert s.readiness == b"R"
            events = []
            buf = os.read(ifd, 65536)
            while buf:
                _wd, mask, _cookie, length = struct.unpack_from("iIII", buf)
                name = buf[16 : 16 + length].rstrip(b"\0").decode()
                events.append((name, mask & (in_create | in_moved_to)))
                buf = buf[16 + length :]
        finally:
            assert s.stop() == 0
            s.close()
    finally:
        os.close(ifd)
    tmp = f".pcd-handoff.{s.pid}"
    assert events == [(tmp, in_create), ("h.sock", in_moved_to)]


def test_helper_holds_only_read_ends_and_no_stray_fds(shim: Shim) -> None:
    fds = helper_fds(shim.pid)
    assert (fds[0], fds[1]) == ("/dev/null", "/dev/null")
    pipes = {fd: target for fd, target in fds.items() if target.startswith("pipe:")}
    # fd 5 (readiness) closed after signalling; 3 and 4 only, both O_RDONLY.
    assert sorted(pipes) == [3, 4]
    for fd in pipes:
        assert fdinfo_flags(shim.pid, fd) & os.O_ACCMODE == os.O_RDONLY
    assert os.stat(f"/proc/{shim.pid}/fd/3").st_ino == os.fstat(shim.stdout_w).st_ino
    assert os.stat(f"/proc/{shim.pid}/fd/4").st_ino == os.fstat(shim.stderr_w).st_ino
    max_size = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    assert fcntl.fcntl(shim.stdout_w, fcntl.F_GETPIPE_SZ) == max_size
    assert fcntl.fcntl(shim.stderr_w, fcntl.F_GETPIPE_SZ) == max_size


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["socket"], 2),
        (["socket", "relative.sock"], 2),
        (["sock", "/x"], 2),
        (["owner_uid", "-1", "socket", "/x"], 2),
        (["owner_uid", "4294967295", "socket", "/x"], 2),
        ([], 2),
    ],
)
def test_usage_errors_exit_without_readiness(sock_dir: Path, args: list[str], code: int) -> None:
    s = Shim(str(sock_dir / "never.sock"), args)
    try:
        assert s.readiness == b""
        assert s.wait() == code
        assert list(sock_dir.iterdir()) == []
    finally:
        s.close()


def test_existing_path_is_not_replaced(sock_dir: Path) -> None:
    path = sock_dir / "taken"
    path.write_bytes(b"precious")
    s = Shim(str(path))
    try:
        assert s.readiness == b""
        assert s.wait() == 1
        assert path.read_bytes() == b"precious"
        assert list(sock_dir.iterdir()) == [path]  # no temporary socket left either
    finally:
        s.close()
        path.unlink()


def test_non_pipe_fds_are_refused(sock_dir: Path) -> None:
    s = Shim(str(sock_dir / "h.sock"), pipes=False)
    try:
        assert s.readiness == b""
        assert s.wait() == 1
        assert "not the read end of a pipe" in s.stderr_text()
        assert list(sock_dir.iterdir()) == []
    finally:
        s.close()


def test_socket_path_longer_than_sun_path(sock_dir: Path) -> None:
    deep = sock_dir / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "handoff.sock")
    assert len(path) > 108
    s = Shim(path)
    try:
        assert s.readiness == b"R"
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        os.write(s.stdout_w, b"long")
        with handoff.receive(path) as pipes:
            assert read_exact(pipes.stdout, 4) == b"long"
        assert s.stop() == 0
        assert not os.path.lexists(path)
    finally:
        s.close()
        deep.rmdir()
        deep.parent.rmdir()


# --- data path -----------------------------------------------------------------------------


SIZES = sorted({(1 << k) + d for k in range(0, 23) for d in (-1, 0, 1)})


def test_byte_exact_both_streams_power_of_two_sweep(shim: Shim) -> None:
    rng = random.Random(6)
    for size in SIZES:
        out = rng.randbytes(size)
        err = rng.randbytes(size // 3 + 1)
        # One connection per size: also exercises repeated handoffs.
        with handoff.receive(shim.socket_path) as pipes:
            wo, we = writer(shim.stdout_w, out), writer(shim.stderr_w, err)
            got_err: list[bytes] = []
            t = threading.Thread(target=lambda: got_err.append(read_exact(pipes.stderr, len(err))))  # noqa: B023
            t.start()
            got_out = splice_exact(pipes.stdout, size) if size else b""
            t.join()
            wo.join()
            we.join()
            assert got_out == out, size
            assert got_err == [err], size
            assert_drained(pipes.stdout)
            assert_drained(pipes.stderr)


def test_eof_reaches_client_when_container_side_closes(shim: Shim) -> None:
    with handoff.receive(shim.socket_path) as pipes:
        os.write(shim.stdout_w, b"last words")
        os.write(shim.stderr_w, b"!")
        shim.close_writers()
        assert read_exact(pipes.stdout, 10) == b"last words"
        assert os.read(pipes.stdout, 1) == b""
        assert read_exact(pipes.stderr, 1) == b"!"
        assert os.read(pipes.stderr, 1) == b""
    # Every writer gone: nothing can arrive any more, so the helper leaves.
    assert shim.wait() == 0
    assert not os.path.lexists(shim.socket_path)


def test_exits_when_writers_are_gone_and_holder_keeps_unread_bytes(shim: Shim) -> None:
    # As after a failed create: the shim dies and runc's message sits unread.
    pipes = handoff.receive(shim.socket_path)
    try:
        os.write(shim.stderr_w, b"runc: exec failed")
        shim.close_writers()
        assert shim.wait() == 0  # no reader of leftovers can keep it alive forever
        assert not os.path.lexists(shim.socket_path)
        assert read_exact(pipes.stderr, 17) == b"runc: exec failed"
        assert os.read(pipes.stderr, 1) == b""
        assert os.read(pipes.stdout, 1) == b""
    finally:
        pipes.close()


def test_one_stream_closing_early_keeps_serving(shim: Shim) -> None:
    os.close(shim.stderr_w)
    shim.stderr_w = -1
    with handoff.receive(shim.socket_path) as pipes:
        assert os.read(pipes.stderr, 1) == b""
        os.write(shim.stdout_w, b"still here")
        assert read_exact(pipes.stdout, 10) == b"still here"
    assert shim.alive()


def test_reattach_gets_the_rest_nothing_lost_nothing_duplicated(shim: Shim) -> None:
    rng = random.Random(66)
    payload = rng.randbytes(8 * (1 << 20) + 12345)  # > 8 pipe buffers: the writer blocks meanwhile
    w = writer(shim.stdout_w, payload)
    received = bytearray()
    cut_points = [1, 4095, 1 << 20, 3 * (1 << 20) + 7]
    for cut in cut_points:
        pipes = handoff.receive(shim.socket_path)
        received += read_exact(pipes.stdout, cut - len(received))
        pipes.close()  # the client goes away mid-stream
        assert pipes.closed
        assert shim.alive()
    with handoff.receive(shim.socket_path) as pipes:
        received += read_exact(pipes.stdout, len(payload) - len(received))
        w.join()
        assert_drained(pipes.stdout)
    assert bytes(received) == payload


def test_container_blocks_rather_than_dies_without_client(shim: Shim) -> None:
    # No client attached: writes fill the pipe and then block (no EPIPE), because
    # the helper keeps its read ends.
    flags = fcntl.fcntl(shim.stdout_w, fcntl.F_GETFL)
    fcntl.fcntl(shim.stdout_w, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    total = 0
    while True:
        try:
            total += os.write(shim.stdout_w, b"x" * 65536)
        except BlockingIOError:
            break
    assert total == fcntl.fcntl(shim.stdout_w, fcntl.F_GETPIPE_SZ)
    with handoff.receive(shim.socket_path) as pipes:
        assert read_exact(pipes.stdout, total) == b"x" * total


# --- access control ------------------------------------------------------------------------


def test_other_uid_refused_by_socket_mode(shim: Shim) -> None:
    err, nbytes, nfds = in_child_as(NOBODY, lambda: raw_connect(shim.socket_path))
    assert (err, nbytes, nfds) == (errno.EACCES, 0, 0)


def test_other_uid_refused_by_peer_credentials(shim: Shim) -> None:
    os.chmod(shim.socket_path, 0o666)  # open the file layer: the credential check must hold alone
    err, nbytes, nfds = in_child_as(NOBODY, lambda: raw_connect(shim.socket_path))
    assert (err, nbytes, nfds) == (0, 0, 0)
    assert "refused" in shim.stderr_text()
    # The helper carries on serving permitted clients.
    with handoff.receive(shim.socket_path) as pipes:
        assert pipes.stdout >= 0


def test_owner_uid_is_served_and_owns_the_socket(sock_dir: Path) -> None:
    path = str(sock_dir / "h.sock")
    s = Shim(path, ["socket", path, "owner_uid", str(NOBODY)])
    try:
        st = os.lstat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o600)
        assert in_child_as(NOBODY, lambda: raw_connect(path)) == (0, 8, 2)
        # Root is always allowed.
        handoff.receive(path).close()
    finally:
        s.close()


def test_refused_client_gets_a_typed_error(sock_dir: Path) -> None:
    path = str(sock_dir / "h.sock")
    s = Shim(path, ["socket", path, "owner_uid", str(NOBODY)])
    try:

        def attempt() -> tuple[int, ...]:
            try:
                handoff.receive(path, timeout=10)
            except handoff.HandoffRefusedError:
                return (1,)
            return (0,)

        # A uid that is neither owner nor root: the helper closes without an answer.
        os.chmod(path, 0o666)
        assert in_child_as(NOBODY + 1, attempt) == (1,)
    finally:
        s.close()


# --- stop and resource hygiene --------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signal_removes_socket_and_exits(shim: Shim, sig: int) -> None:
    assert os.path.lexists(shim.socket_path)
    assert shim.stop(sig) == 0
    assert not os.path.lexists(shim.socket_path)


def test_stop_keeps_a_foreign_file_at_the_path(shim: Shim) -> None:
    os.unlink(shim.socket_path)
    Path(shim.socket_path).write_text("someone else's")
    assert shim.stop() == 0
    assert Path(shim.socket_path).read_text() == "someone else's"
    os.unlink(shim.socket_path)


def test_received_pipes_survive_helper_exit(shim: Shim) -> None:
    pipes = handoff.receive(shim.socket_path)
    try:
        assert shim.stop() == 0
        os.write(shim.stdout_w, b"after")
        assert read_exact(pipes.stdout, 5) == b"after"
    finally:
        pipes.close()


def test_no_fd_growth_across_connections(shim: Shim) -> None:
    before = helper_fds(shim.pid)
    for _ in range(50):
        handoff.receive(shim.socket_path).close()
    os.chmod(shim.socket_path, 0o666)
    for _ in range(3):
        assert in_child_as(NOBODY, lambda: raw_connect(shim.socket_path)) == (0, 0, 0)
    # A client that connects and leaves without reading.
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(shim.socket_path)
    # A last connection read to EOF: the helper has closed its end, and, serving
    # in order on one thread, every connection before it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(shim.socket_path)
        _msg, fds, _flags, _addr = socket.recv_fds(s, 64, 4)
        for fd in fds:
            os.close(fd)
        assert s.recv(1) == b""
    assert helper_fds(shim.pid) == before


def test_client_closes_all_received_fds() -> None:
    own_before = set(os.listdir("/proc/self/fd"))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "h.sock")
        shim = Shim(path)
        try:
            for _ in range(20):
                handoff.receive(path).close()
        finally:
            shim.close()
    assert set(os.listdir("/proc/self/fd")) == own_before


# --- client against misbehaving peers ------------------------------------------------------


class FakeServer:
    """A one-shot server at path that answers each connection with (payload, fds)."""

    def __init__(self, path: str, payload: bytes, fds: list[int]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, args=(payload, fds), daemon=True)
        self.thread.start()

    def _serve(self, payload: bytes, fds: list[int]) -> None:
        conn, _ = self.sock.accept()
        with conn:
            if payload or fds:
                socket.send_fds(conn, [payload], fds)
                conn.recv(1)  # hold the connection until the client closes

    def close(self) -> None:
        self.thread.join()
        self.sock.close()


HEADER = b"PCDH\x01\x00\x00\x00"


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (HEADER, "three"),
        (HEADER, "one"),
        (HEADER, "write-end"),
        (HEADER, "file"),
        (b"XXXX\x01\x00\x00\x00", "two"),
        (b"PCDH\x02\x00\x00\x00", "two"),
    ],
)
def test_protocol_violations_raise_and_close_everything(tmp_path: Path, payload: bytes, kind: str) -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    fds = {
        "three": [r1, r2, r1],
        "one": [r1],
        "write-end": [r1, w2],
        "file": [r1, os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)],
        "two": [r1, r2],
    }[kind]
    mine = [r1, w1, r2, w2, *fds]
    before = set(os.listdir("/proc/self/fd"))
    server = FakeServer(str(tmp_path / "s.sock"), payload, fds)
    with pytest.raises(handoff.HandoffProtocolError):
        handoff.receive(str(tmp_path / "s.sock"), timeout=10)
    server.close()  # its connection fd is gone too once its thread ended
    # Every fd the peer sent was closed again.
    assert set(os.listdir("/proc/self/fd")) == before
    for fd in set(mine):
        os.close(fd)


def test_silent_close_is_refusal(tmp_path: Path) -> None:
    server = FakeServer(str(tmp_path / "s.sock"), b"", [])
    with pytest.raises(handoff.HandoffRefusedError):
        handoff.receive(str(tmp_path / "s.sock"), timeout=10)
    server.close()


def test_silent_peer_times_out(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(path)
        srv.listen(1)  # never accepts, never answers
        with pytest.raises(TimeoutError):
            handoff.receive(path, timeout=0.2)


def test_missing_socket(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        handoff.receive(str(tmp_path / "none.sock"))
    with pytest.raises(TimeoutError):
        handoff.wait_socket(str(tmp_path / "none.sock"), 0.05)


def test_wait_socket(shim: Shim, tmp_path: Path) -> None:
    handoff.wait_socket(shim.socket_path, 10)
    (tmp_path / "f").write_text("")
    with pytest.raises(FileExistsError):
        handoff.wait_socket(str(tmp_path / "f"), 10)


# --- the URI ---------------------------------------------------------------------------------


def test_binary_uri_round_trips_through_url_parsing() -> None:
    sock = "/run/x y/a+b&c=d;e%f/h.sock"
    uri = handoff.binary_uri(sock, owner_uid=1000, helper="/opt/p cd/pcd-handoff")
    parts = urllib.parse.urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("binary", "")
    assert urllib.parse.unquote(parts.path) == "/opt/p cd/pcd-handoff"
    pairs = urllib.parse.parse_qsl(parts.query, strict_parsing=True)
    assert pairs == [("socket", sock), ("owner_uid", "1000")]
    # Go's url.Query() rejects raw ';' in a query; it must be escaped.
    assert ";" not in parts.query
    assert handoff.binary_uri("/s.sock", helper="/h").endswith("/h?socket=%2Fs.sock")
    assert handoff.binary_uri("/s.sock").startswith("binary://" + HELPER + "?")
    assert handoff.binary_uri("/s.sock", helper="/h", scheme="binary-v2") == "binary-v2:///h?socket=%2Fs.sock"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"socket_path": "rel.sock"},
        {"socket_path": "/a\0b"},
        {"socket_path": "/s", "helper": "pcd-handoff"},
        {"socket_path": "/s", "owner_uid": -1},
        {"socket_path": "/s", "owner_uid": 2**32 - 1},
        {"socket_path": "/s", "scheme": "file"},
    ],
)
def test_binary_uri_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has one reason
        handoff.binary_uri(**kwargs)  # type: ignore[arg-type]


# -- hardening ---------------------------------------------------------------------------------------


def test_log_lines_survive_a_very_long_container_id(sock_dir: Path) -> None:
    long_id = "c" * 600  # the prefix alone used to overflow the line buffer: the message was dropped
    s = Shim(str(sock_dir / "h.sock"), pipes=False, env={"CONTAINER_ID": long_id})
    try:
        assert s.wait() == 1
        text = s.stderr_text()
        assert "not the read end of a pipe" in text
        assert f"pcd-handoff[{'c' * 128}]: " in text
    finally:
        s.close()


def test_stray_descriptors_are_closed_without_close_range(sock_dir: Path) -> None:
    stray_r, stray_w = os.pipe()
    try:
        s = Shim(str(sock_dir / "h.sock"), env={"PCD_HANDOFF_NO_CLOSE_RANGE": "1"}, extra_fd=stray_w)
    finally:
        os.close(stray_w)
    try:
        assert s.readiness == b"R"
        fds = helper_fds(s.pid)
        assert sorted(fd for fd, target in fds.items() if target.startswith("pipe:")) == [3, 4]
        # The stray write end is gone from the helper: its reader sees EOF.
        assert os.read(stray_r, 1) == b""
        assert s.stop() == 0
    finally:
        s.close()
        os.close(stray_r)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_out_of_descriptors_backs_off_instead_of_spinning(shim: Shim) -> None:
    import resource
    import time

    used = set(helper_fds(shim.pid))
    lowest_free = min(set(range(len(used) + 1)) - used)
    soft, hard = resource.prlimit(shim.pid, resource.RLIMIT_NOFILE)
    # No descriptor number below the limit is free: accept now fails with EMFILE.
    resource.prlimit(shim.pid, resource.RLIMIT_NOFILE, (lowest_free, hard))
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(shim.socket_path)  # queued in the backlog; the helper cannot accept it
        before = _cpu_ticks(shim.pid)
        time.sleep(1.0)
        spent = _cpu_ticks(shim.pid) - before
        hz = os.sysconf("SC_CLK_TCK")
        # A busy loop burns a whole second of CPU here; a paused listener almost none.
        assert spent < hz // 4, f"{spent} ticks of CPU in 1 s while out of descriptors"
        assert "Too many open files" in shim.stderr_text()
        resource.prlimit(shim.pid, resource.RLIMIT_NOFILE, (soft, hard))
        client.settimeout(30)
        # Served once a descriptor is free again: the handoff header arrives.
        assert client.recv(4) == b"PCDH"
    finally:
        client.close()


@pytest.mark.parametrize("where", ["parent", "grandparent"])
def test_symlink_in_the_socket_path_is_refused(sock_dir: Path, where: str) -> None:
    """A directory of the socket path swapped for a symlink (a remapped root owns bundle dirs).

    The helper walks the path without following any symlink and binds through the
    directory's fd: it refuses, and nothing appears in the symlink's target.
    """
    victim = sock_dir / "victim"
    (victim / "c1").mkdir(parents=True)
    real = sock_dir / "ns"
    (real / "c1").mkdir(parents=True)
    if where == "parent":
        (real / "c1").rmdir()
        (real / "c1").symlink_to(victim / "c1")
    else:
        (real / "c1").rmdir()
        real.rmdir()
        real.symlink_to(victim)
    s = Shim(str(sock_dir / "ns" / "c1" / "h.sock"))
    try:
        assert s.readiness == b""
        assert s.wait() == 1
        assert "Too many levels of symbolic links" in s.stderr_text()
        assert os.listdir(victim / "c1") == []
    finally:
        s.close()
        for path in sorted(sock_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_symlink() or path.is_file():
                path.unlink()
            else:
                path.rmdir()
