"""The native stdio pump against the real kernel: pipes, FIFOs, files, sockets, ptys, /dev/null.

Payloads are random bytes checked by length and SHA-256 on the receiving
side. Helper threads feed sources and drain sinks; every test closes what it
opened and joins what it started.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import platform
import pty
import select
import signal
import socket
import subprocess
import sys
import termios
import textwrap
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import stdio
from pycontainerd._native import pump as native
from pycontainerd.stdio.pump import CancelToken, CopyResult, copy, copy_streams

MAX_SIZE = 2**27 + 1
SIZES = sorted({2**k + d for k in range(28) for d in (-1, 0, 1)})
JOIN = 120.0  # generous: a join that needs this long is a hang, not slowness
CHUNK = 1 << 20

# Syscall numbers of epoll_wait/epoll_pwait/epoll_pwait2, to see that the pump sleeps in epoll.
_EPOLL_SYSCALLS = {"x86_64": {232, 281, 441}, "aarch64": {22, 441}}.get(platform.machine(), set())


@functools.cache
def payload() -> bytes:
    return os.urandom(MAX_SIZE)


@functools.cache
def digest(n: int) -> str:
    return hashlib.sha256(memoryview(payload())[:n]).hexdigest()


class Worker(threading.Thread):
    """A thread that keeps its target's result or exception for the test to inspect."""

    def __init__(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self._call = functools.partial(target, *args, **kwargs)
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:
            self.error = exc

    def run_now(self, timeout: float = JOIN) -> Any:
        self.start()
        return self.outcome(timeout)

    def outcome(self, timeout: float = JOIN) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "worker thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def write_all(fd: int, data: memoryview | bytes, *, close: bool = True) -> int:
    """Write everything (blocking), stop quietly at EPIPE; close fd when asked."""
    view = memoryview(data)
    done = 0
    try:
        while done < len(view):
            done += os.write(fd, view[done : done + CHUNK])
    except BrokenPipeError:
        pass
    finally:
        if close:
            os.close(fd)
    return done


def hash_reader(
    fd: int, *, size: int = CHUNK, limit: int | None = None, pause: float = 0.0
) -> tuple[int, str]:
    """Read fd to EOF (or EIO from a pty, or ``limit`` bytes), sleeping ``pause`` between reads."""
    h = hashlib.sha256()
    count = 0
    while limit is None or count < limit:
        if pause:
            time.sleep(pause)
        want = size if limit is None else min(size, limit - count)
        try:
            block = os.read(fd, want)
        except OSError as exc:
            if exc.errno == errno.EIO:
                break
            raise
        if not block:
            break
        h.update(block)
        count += len(block)
    return count, h.hexdigest()


def hash_file(path: Path, skip: int = 0) -> tuple[int, str]:
    h = hashlib.sha256()
    count = 0
    with path.open("rb") as f:
        f.seek(skip)
        while block := f.read(CHUNK):
            h.update(block)
            count += len(block)
    return count, h.hexdigest()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_ids() -> set[str]:
    # Compared as sets: a thread some earlier test left behind may exit meanwhile,
    # which must not count as (or hide) a thread this test leaked.
    return set(os.listdir("/proc/self/task"))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = JOIN) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def in_epoll_wait(thread: threading.Thread) -> bool:
    """True when the thread is alive and inside epoll_wait (read from /proc/self/task/<tid>/syscall)."""
    assert thread.is_alive()
    try:
        text = Path(f"/proc/self/task/{thread.native_id}/syscall").read_text()
    except OSError:
        return False
    first = text.split()[0]
    return first.isdigit() and int(first) in _EPOLL_SYSCALLS


def wait_in_epoll(thread: threading.Thread) -> None:
    if not _EPOLL_SYSCALLS:
        pytest.skip(f"epoll syscall numbers unknown on {platform.machine()}")
    wait_until(lambda: in_epoll_wait(thread), "the pump to sleep in epoll_wait")


def readable(fd: int) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


def not_writable(fd: int) -> bool:
    p = select.poll()
    p.register(fd, select.POLLOUT)
    return not p.poll(0)


# ---------------------------------------------------------------- sources and sinks


@contextlib.contextmanager
def make_source(kind: str, n: int, tmp_path: Path) -> Iterator[int]:
    """Yield a readable fd that delivers payload()[:n] then EOF."""
    data = memoryview(payload())[:n]
    if kind == "file":
        path = tmp_path / "source"
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
        return
    if kind in ("pipe", "pipe-nb"):
        r, w = os.pipe2(os.O_CLOEXEC)
        if kind == "pipe-nb":
            os.set_blocking(r, False)
        feeder = Worker(write_all, w, data)
    elif kind == "fifo":
        path = tmp_path / "source.fifo"
        os.mkfifo(path, 0o600)
        r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        feeder = Worker(lambda: write_all(os.open(path, os.O_WRONLY | os.O_CLOEXEC), data))
    elif kind in ("socket", "socket-nb"):
        a, b = socket.socketpair()
        a.setblocking(kind == "socket")
        r = a.detach()
        feeder = Worker(lambda: write_all(b.detach(), data))
    else:
        raise AssertionError(kind)
    feeder.start()
    try:
        yield r
    finally:
        os.close(r)
        feeder.outcome()


class Sink:
    """A destination fd plus how to read back what arrived: finish() -> (count, sha256 or None)."""

    def __init__(self, kind: str, n: int, tmp_path: Path) -> None:
        self.kind = kind
        self._fds: list[int] = []
        self._reader: Worker | None = None
        self._path = tmp_path / "sink"
        self._prefix = b"existing line\n"
        if kind in ("pipe", "pipe-nb", "pipe-slow", "pipe-sleepy"):
            r, w = os.pipe2(os.O_CLOEXEC)
            if kind in ("pipe-nb", "pipe-slow"):
                os.set_blocking(w, False)
            self.fd = w
            self._fds = [r, w]
            if kind == "pipe-sleepy":
                # Keeps the destination full most of the time: the pump has to wait on it.
                self._reader = Worker(hash_reader, r, size=16384, pause=0.0005)
            else:
                self._reader = Worker(hash_reader, r, size=4096 if kind == "pipe-slow" else CHUNK)
        elif kind == "file":
            self.fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            self._fds = [self.fd]
        elif kind == "append":
            self._path.write_bytes(self._prefix)
            self.fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            self._fds = [self.fd]
        elif kind in ("socket", "socket-nb", "seqpacket"):
            family_type = socket.SOCK_SEQPACKET if kind == "seqpacket" else socket.SOCK_STREAM
            a, b = socket.socketpair(socket.AF_UNIX, family_type)
            a.setblocking(kind != "socket-nb")
            self.fd = a.detach()
            peer = b.detach()
            self._fds = [self.fd, peer]
            # A message socket hands out one message per read: read with room for the largest.
            self._reader = Worker(hash_reader, peer, size=4 * CHUNK)
        elif kind in ("tty", "tty-nb"):
            master, slave = pty.openpty()
            tty.setraw(slave)
            if kind == "tty-nb":
                os.set_blocking(master, False)
            self.fd = master
            self._fds = [master, slave]
            # The slave must drain everything before the master closes (a hangup flushes input).
            self._reader = Worker(hash_reader, slave, limit=n)
        elif kind == "null":
            self.fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            self._fds = [self.fd]
        else:
            raise AssertionError(kind)
        if self._reader is not None:
            self._reader.start()

    def finish(self) -> tuple[int, str | None]:
        """Close the write side, collect what the reader saw, close the rest."""
        try:
            if self.kind in ("file", "append", "null"):
                os.close(self.fd)
                self._fds.remove(self.fd)
                if self.kind == "null":
                    return -1, None
                if self.kind == "append":
                    assert self._path.read_bytes()[: len(self._prefix)] == self._prefix
                    return hash_file(self._path, skip=len(self._prefix))
                return hash_file(self._path)
            assert self._reader is not None
            if not self.kind.startswith("tty"):
                os.close(self.fd)
                self._fds.remove(self.fd)
            result: tuple[int, str] = self._reader.outcome()
            return result
        finally:
            self.close()

    def close(self) -> None:
        for fd in self._fds:
            close_quietly(fd)
        self._fds = []
        if self._reader is not None:
            self._reader.join(JOIN)


def check_transfer(source: str, sink: str, n: int, tmp_path: Path) -> None:
    s = Sink(sink, n, tmp_path)
    try:
        with make_source(source, n, tmp_path) as src:
            moved = copy(src, s.fd)
        assert moved == n
        count, sha = s.finish()
    finally:
        s.close()
    if sink != "null":
        assert count == n
        assert sha == digest(n)


# ---------------------------------------------------------------- byte-exact transfers


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("sink", ["pipe", "file", "append", "socket", "socket-nb", "tty", "null"])
def test_pipe_source_into_each_sink_is_byte_exact(sink: str, n: int, tmp_path: Path) -> None:
    check_transfer("pipe", sink, n, tmp_path)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("source", ["fifo", "file", "socket", "socket-nb"])
def test_each_source_into_a_pipe_is_byte_exact(source: str, n: int, tmp_path: Path) -> None:
    check_transfer(source, "pipe", n, tmp_path)


CROSS_SIZES = [0, 1, 4095, 65537, 2**20 + 1, 2**24 - 1]


@pytest.mark.parametrize("n", CROSS_SIZES)
@pytest.mark.parametrize(
    ("source", "sink"),
    [
        ("file", "file"),
        ("file", "socket"),
        ("file", "tty"),
        ("file", "null"),
        ("file", "append"),
        ("socket", "file"),
        ("socket", "socket"),
        ("socket-nb", "socket-nb"),
        ("fifo", "null"),
        ("fifo", "file"),
        ("pipe-nb", "pipe-nb"),
        ("pipe-nb", "file"),
        ("pipe", "tty-nb"),
    ],
)
def test_other_pairs_are_byte_exact(source: str, sink: str, n: int, tmp_path: Path) -> None:
    check_transfer(source, sink, n, tmp_path)


@pytest.mark.parametrize("n", [0, 1, 65535, 2**20 + 1, 2**24 + 1])
@pytest.mark.parametrize("source", ["pipe", "file", "socket"])
def test_short_writes_lose_nothing(source: str, n: int, tmp_path: Path) -> None:
    """A slowly read non-blocking pipe and a SOCK_SEQPACKET socket take partial or bounded writes."""
    check_transfer(source, "pipe-slow", n, tmp_path)
    check_transfer(source, "seqpacket", n, tmp_path)


@pytest.mark.parametrize("n", [0, 1, 4097, 2**20 + 1, 2**24 - 1])
def test_read_write_path_for_pipes_is_byte_exact(n: int, tmp_path: Path) -> None:
    """The read/write fallback, forced for pipe to pipe (the path an old kernel would take)."""
    s = Sink("pipe", n, tmp_path)
    try:
        with make_source("pipe", n, tmp_path) as src:
            cancelled, [(moved, err, done, _)] = native.pump([(src, s.fd)], -1, native.NO_SPLICE)
        assert (cancelled, moved, err, done) == (False, n, 0, True)
        assert s.finish() == (n, digest(n))
    finally:
        s.close()


@pytest.mark.parametrize("n", [0, 1, 4095, 2**20 + 1, 2**24 - 1])
def test_pty_master_source_ends_at_slave_hangup(n: int) -> None:
    """Reading a pty master gives EIO once the slave closed: that is EOF, with every byte delivered."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    r, w = os.pipe2(os.O_CLOEXEC)
    reader = Worker(hash_reader, r)
    reader.start()
    writer = Worker(write_all, slave, memoryview(payload())[:n])
    writer.start()
    try:
        assert copy(master, w) == n
        writer.outcome()
        os.close(w)
        assert reader.outcome() == (n, digest(n))
    finally:
        for fd in (master, r, w):
            close_quietly(fd)
        reader.join(JOIN)
        writer.join(JOIN)


# ---------------------------------------------------------------- FIFO opened before any writer


def test_fifo_opened_before_any_writer_is_not_eof(tmp_path: Path) -> None:
    """O_RDONLY|O_NONBLOCK before a writer exists reads 0; the pump must wait for a writer to come and go."""
    path = tmp_path / "late.fifo"
    os.mkfifo(path, 0o600)
    fifo_r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    assert os.read(fifo_r, 1) == b""  # the trap: looks like EOF although no writer ever came
    r, w = os.pipe2(os.O_CLOEXEC)
    pumper = Worker(copy, fifo_r, w)
    pumper.start()
    n_first, n = 100_000, 3_000_000
    data = memoryview(payload())[:n]
    reader: Worker | None = None
    try:
        wait_in_epoll(pumper)
        writer = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        write_all(writer, data[:n_first], close=False)
        assert hash_reader(r, limit=n_first) == (n_first, digest(n_first))
        # The first part went through and the pump sleeps again, but the
        # writer is still connected: no EOF yet.
        wait_in_epoll(pumper)
        assert pumper.is_alive()
        reader = Worker(hash_reader, r)
        reader.start()
        write_all(writer, data[n_first:])
        assert pumper.outcome() == n
        os.close(w)
        count, _ = reader.outcome()
        assert count == n - n_first
    finally:
        for fd in (fifo_r, r, w):
            close_quietly(fd)
        if reader is not None:
            reader.join(JOIN)


def test_fifo_writer_that_connects_and_leaves_gives_eof(tmp_path: Path) -> None:
    path = tmp_path / "empty.fifo"
    os.mkfifo(path, 0o600)
    fifo_r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    pumper = Worker(copy, fifo_r, out)
    pumper.start()
    try:
        wait_in_epoll(pumper)
        os.close(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        assert pumper.outcome() == 0
    finally:
        os.close(fifo_r)
        os.close(out)


# ---------------------------------------------------------------- EPIPE and SIGPIPE

_EPIPE_CHILD = textwrap.dedent(
    r"""
    import os, signal, socket, sys, threading
    from pycontainerd.stdio.pump import copy, copy_streams

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    DATA = os.urandom(4 << 20)

    def feed(w):
        # This helper thread must not die of SIGPIPE either once the pump has stopped reading.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        try:
            os.write(w, DATA)
        except BrokenPipeError:
            pass
        os.close(w)

    def pipe_source():
        r, w = os.pipe()
        threading.Thread(target=feed, args=(w,)).start()
        return r

    def file_source():
        path = os.path.join(sys.argv[1], "src")
        with open(path, "wb") as f:
            f.write(DATA)
        return os.open(path, os.O_RDONLY)

    def pipe_sink(early):
        r, w = os.pipe()
        if early:
            os.close(r)
            return w, None
        def read_some_then_close():
            os.read(r, 1024)
            os.close(r)
        t = threading.Thread(target=read_some_then_close)
        t.start()
        return w, t

    def socket_sink(early, nonblocking):
        a, b = socket.socketpair()
        a.setblocking(not nonblocking)
        if early:
            b.close()
            return a.detach(), None
        def read_some_then_close():
            b.recv(1024)
            b.close()
        t = threading.Thread(target=read_some_then_close)
        t.start()
        return a.detach(), t

    def run(where, source, sink):
        src = source()
        dst, reader = sink()
        box = {}
        def attempt():
            try:
                copy(src, dst)
                box["r"] = "no error"
            except BrokenPipeError:
                box["r"] = "BrokenPipeError"
            assert signal.SIGPIPE not in signal.sigpending(), "a SIGPIPE was left pending"
            assert signal.SIGPIPE not in signal.pthread_sigmask(signal.SIG_BLOCK, []), "mask not restored"
        if where == "main":
            attempt()
        else:
            t = threading.Thread(target=attempt)
            t.start()
            t.join()
        if reader is not None:
            reader.join()
        os.close(src)
        os.close(dst)
        return box.get("r", "thread failed")

    sinks = {
        "pipe-early": lambda: pipe_sink(True),
        "pipe-mid": lambda: pipe_sink(False),
        "socket-early": lambda: socket_sink(True, False),
        "socket-mid": lambda: socket_sink(False, False),
        "socket-nb-early": lambda: socket_sink(True, True),
        "socket-nb-mid": lambda: socket_sink(False, True),
    }
    for where in ("main", "thread"):
        for sname, source in (("pipe", pipe_source), ("file", file_source)):
            for kname, sink in sinks.items():
                print(where, sname, kname, run(where, source, sink), flush=True)
    print("survived", flush=True)
    """
)


def test_epipe_is_broken_pipe_error_even_with_sigpipe_default(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _EPIPE_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=JOIN,
        check=False,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[-1] == "survived"
    assert len(lines) == 2 * 2 * 6 + 1
    for line in lines[:-1]:
        assert line.endswith("BrokenPipeError"), line


def test_copy_streams_one_failing_pair_does_not_stop_the_other(tmp_path: Path) -> None:
    n = 2**22 + 1
    bad_r, bad_w = os.pipe2(os.O_CLOEXEC)
    os.close(bad_r)
    s = Sink("pipe", n, tmp_path)
    try:
        with make_source("pipe", n, tmp_path) as good_src, make_source("pipe", n, tmp_path) as bad_src:
            results = copy_streams([(bad_src, bad_w), (good_src, s.fd)])
        assert isinstance(results[0].error, BrokenPipeError)
        assert results[0].nbytes == 0
        assert not results[0].cancelled
        assert results[1] == CopyResult(n, None, False)
        assert s.finish() == (n, digest(n))
    finally:
        s.close()
        os.close(bad_w)


def test_copy_raises_broken_pipe_error() -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    r2, w2 = os.pipe2(os.O_CLOEXEC)
    os.close(r2)
    os.write(w, b"x" * 10)
    os.close(w)
    try:
        with pytest.raises(BrokenPipeError):
            copy(r, w2)
    finally:
        os.close(r)
        os.close(w2)


def test_bad_descriptor_fails_only_its_pair(tmp_path: Path) -> None:
    with make_source("pipe", 1000, tmp_path) as src:
        out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        closed = os.dup(out)
        os.close(closed)
        try:
            bad, good = copy_streams([(closed, out), (src, out)])
        finally:
            os.close(out)
    assert isinstance(bad.error, OSError)
    assert bad.error.errno == errno.EBADF
    assert good == CopyResult(1000, None, False)


# ---------------------------------------------------------------- failing sinks, discard mode


def _writer(w: int, n: int) -> threading.Thread:
    """Write n bytes into a blocking pipe end from another thread, then close it (like a container)."""

    def run() -> None:
        try:
            chunk = b"y" * 65536
            left = n
            while left:
                left -= os.write(w, chunk[: min(left, len(chunk))])
        finally:
            os.close(w)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@contextlib.contextmanager
def _failing_sink(kind: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(fd, errno its writes fail with) for each way a sink breaks."""
    if kind == "dev-full":
        fd = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
        yield fd, errno.ENOSPC
        os.close(fd)
    elif kind == "read-only":
        path = tmp_path / "ro"
        path.write_bytes(b"")
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        yield fd, errno.EBADF
        os.close(fd)
    elif kind == "closed":
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        os.close(fd)
        yield fd, errno.EBADF
    elif kind == "reader-left":
        r, w = os.pipe2(os.O_CLOEXEC)
        os.close(r)
        yield w, errno.EPIPE
        os.close(w)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["dev-full", "read-only", "closed", "reader-left"])
def test_discard_on_error_reads_the_source_to_eof(kind: str, tmp_path: Path) -> None:
    """A failed sink does not stall the writer: its stream is read to EOF and the error kept."""
    n = 4 * 2**20 + 3
    r, w = os.pipe2(os.O_CLOEXEC)
    good_r, good_w = os.pipe2(os.O_CLOEXEC)
    s = Sink("pipe", n, tmp_path)
    try:
        with _failing_sink(kind, tmp_path) as (bad, err):
            writers = [_writer(w, n), _writer(good_w, n)]
            bad_result, good_result = copy_streams([(r, bad), (good_r, s.fd)], discard_on_error=True)
            for t in writers:
                t.join(60)
                assert not t.is_alive(), "the writer is still blocked"
        assert isinstance(bad_result.error, OSError)
        assert bad_result.error.errno == err
        assert not bad_result.cancelled
        assert bad_result.nbytes + bad_result.dropped == n
        assert bad_result.dropped > 0
        assert good_result == CopyResult(n, None, False)
        assert s.finish() == (n, hashlib.sha256(b"y" * n).hexdigest())
    finally:
        s.close()
        os.close(r)
        os.close(good_r)


@pytest.mark.parametrize("flags", [0, native.NO_SPLICE], ids=["splice", "read-write"])
@pytest.mark.parametrize("kind", ["dev-full", "read-only", "reader-left"])
def test_an_empty_stream_into_a_broken_sink_loses_nothing_and_fails_nothing(
    kind: str, flags: int, tmp_path: Path
) -> None:
    """No byte to deliver, no error: splice(2) checks the destination first, the pump must not."""
    r, w = os.pipe2(os.O_CLOEXEC)
    os.close(w)
    try:
        with _failing_sink(kind, tmp_path) as (bad, _):
            cancelled, [(moved, err, done, dropped)] = native.pump([(r, bad)], -1, flags)
        assert (cancelled, moved, err, done, dropped) == (False, 0, 0, True, 0)
    finally:
        os.close(r)


@pytest.mark.parametrize("flags", [0, native.NO_SPLICE], ids=["splice", "read-write"])
def test_a_broken_sink_reports_its_own_errno_on_both_paths(flags: int, tmp_path: Path) -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    os.write(w, b"x" * 1000)
    os.close(w)
    try:
        with _failing_sink("reader-left", tmp_path) as (bad, want):
            _, [(moved, err, done, _)] = native.pump([(r, bad)], -1, flags)
        assert (moved, err, done) == (0, want, True)
    finally:
        os.close(r)


def test_without_discard_a_failed_pair_ends_at_the_error() -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    full = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(w, b"x" * 1000)  # the writer stays open: only the error can end the pair
        (result,) = copy_streams([(r, full)])
        assert isinstance(result.error, OSError)
        assert result.error.errno == errno.ENOSPC
        assert (result.nbytes, result.dropped, result.cancelled) == (0, 0, False)
    finally:
        for fd in (r, w, full):
            os.close(fd)


def test_discard_mode_is_cancellable(tmp_path: Path) -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    full = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
    token = CancelToken()
    try:
        os.write(w, b"x" * 10)
        timer = threading.Timer(0.2, token.cancel)
        timer.start()
        (result,) = copy_streams([(r, full)], cancel=token, discard_on_error=True)
        timer.join()
        assert result.cancelled
        assert result.error is not None
        assert result.error.errno == errno.ENOSPC
        assert result.dropped == 10
    finally:
        token.close()
        for fd in (r, w, full):
            os.close(fd)


# ---------------------------------------------------------------- several pairs, shared sinks


@pytest.mark.parametrize("dup", [False, True])
@pytest.mark.parametrize("sink", ["pipe", "file"])
def test_two_streams_into_the_same_sink(sink: str, dup: bool, tmp_path: Path) -> None:
    """stdout and stderr into one sink: counts add up, nothing is closed, the caller closes once."""
    n_out, n_err = 3 * 2**20 + 7, 2**20 + 3
    r_out, w_out = os.pipe2(os.O_CLOEXEC)
    r_err, w_err = os.pipe2(os.O_CLOEXEC)
    workers = [Worker(write_all, w_out, b"o" * n_out), Worker(write_all, w_err, b"e" * n_err)]
    if sink == "pipe":
        sink_r, dst = os.pipe2(os.O_CLOEXEC)
        collect = Worker(lambda: b"".join(iter(lambda: os.read(sink_r, CHUNK), b"")))
        workers.append(collect)
    else:
        dst = os.open(tmp_path / "sink", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    second = os.dup(dst) if dup else dst
    try:
        for wk in workers:
            wk.start()
        results = copy_streams([(r_out, dst), (r_err, second)])
        assert results == [CopyResult(n_out, None, False), CopyResult(n_err, None, False)]
        os.fstat(dst)  # still open: the pump never closes a sink
        os.fstat(second)
    finally:
        os.close(dst)
        if dup:
            os.close(second)
        for wk in workers:
            wk.join(JOIN)
        os.close(r_out)
        os.close(r_err)
        if sink == "pipe":
            os.close(sink_r)
    data = collect.outcome() if sink == "pipe" else (tmp_path / "sink").read_bytes()
    assert len(data) == n_out + n_err
    assert data.count(b"o") == n_out
    assert data.count(b"e") == n_err


def test_one_socket_as_source_of_one_pair_and_sink_of_another() -> None:
    """stdin -> socket and socket -> stdout in one loop (one epoll entry serves both directions)."""
    n = 2**21 + 5
    data = memoryview(payload())[:n]
    mine, peer = socket.socketpair()
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)

    def echo() -> None:
        got = 0
        while got < n:
            block = peer.recv(CHUNK)
            assert block
            peer.sendall(block)
            got += len(block)
        peer.close()

    workers = [Worker(echo), Worker(write_all, in_w, data), Worker(hash_reader, out_r)]
    for wk in workers:
        wk.start()
    try:
        results = copy_streams([(in_r, mine.fileno()), (mine.fileno(), out_w)])
        assert results == [CopyResult(n, None, False), CopyResult(n, None, False)]
        os.close(out_w)
        assert workers[2].outcome() == (n, digest(n))
    finally:
        mine.close()
        for fd in (in_r, out_r, out_w):
            close_quietly(fd)
        for wk in workers:
            wk.join(JOIN)


def test_no_pairs() -> None:
    assert copy_streams([]) == []


def test_argument_errors() -> None:
    with pytest.raises(TypeError):
        copy("0", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a file descriptor"):
        copy(-1, 1)
    token = CancelToken()
    token.close()
    with pytest.raises(ValueError, match="closed"):
        copy_streams([], cancel=token)


# ---------------------------------------------------------------- cancel


class Stalled:
    """A pump thread copying a large source into a destination nobody reads."""

    def __init__(self, source: str, sink: str, tmp_path: Path, drain: CancelToken | None = None) -> None:
        self.token = CancelToken()
        self.sink = sink
        n = 64 * 2**20
        self._source_cm = make_source(source, n, tmp_path)
        self.src = self._source_cm.__enter__()
        if sink in ("pipe", "pipe-nb"):
            self.drain_fd, self.dst = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(self.dst, sink == "pipe")
        elif sink in ("socket", "socket-nb"):
            a, b = socket.socketpair()
            a.setblocking(sink == "socket")
            self.dst, self.drain_fd = a.detach(), b.detach()
        elif sink == "tty-nb":
            self.dst, self.drain_fd = pty.openpty()
            tty.setraw(self.drain_fd)
            os.set_blocking(self.dst, False)
        else:
            raise AssertionError(sink)
        self.thread = Worker(copy_streams, [(self.src, self.dst)], cancel=self.token, drain=drain)

    def stall(self) -> None:
        self.thread.start()
        if self.sink.startswith("tty"):
            # A pty master may poll writable yet refuse a write (its flip buffer is
            # full); wait for the first bytes on the slave and the pump asleep.
            wait_until(lambda: readable(self.drain_fd) and in_epoll_wait(self.thread), "a stalled pty")
        else:
            wait_until(lambda: not_writable(self.dst) and in_epoll_wait(self.thread), "a full destination")

    def drain(self, expected: int) -> int:
        if self.sink.startswith("tty"):
            # A pty moves input to the slave asynchronously: read what was counted, then look for more.
            count, _ = Worker(hash_reader, self.drain_fd, limit=expected).run_now()
            os.set_blocking(self.drain_fd, False)
            with contextlib.suppress(BlockingIOError):
                count += len(os.read(self.drain_fd, CHUNK))
            return int(count)
        os.set_blocking(self.drain_fd, False)
        total = 0
        with contextlib.suppress(BlockingIOError):
            while block := os.read(self.drain_fd, CHUNK):
                total += len(block)
        return total

    def close(self) -> None:
        close_quietly(self.drain_fd)
        close_quietly(self.dst)
        # Closing the source read end first would race the feeder; it ends on EPIPE once we close.
        self._source_cm.__exit__(None, None, None)
        self.token.close()


@pytest.mark.parametrize(
    ("source", "sink"),
    [("pipe", "pipe"), ("pipe", "pipe-nb"), ("file", "pipe"), ("pipe", "socket"), ("pipe", "socket-nb"),
     ("file", "socket"), ("socket", "pipe"), ("pipe", "tty-nb")],
)
def test_cancel_with_a_stalled_destination(source: str, sink: str, tmp_path: Path) -> None:
    if not _EPOLL_SYSCALLS:
        pytest.skip("epoll syscall numbers unknown here")
    fds, tasks, threads = fd_count(), task_ids(), threading.active_count()
    stalled = Stalled(source, sink, tmp_path)
    try:
        stalled.stall()
        stalled.token.cancel()
        [result] = stalled.thread.outcome()
        assert result.cancelled
        assert result.error is None
        assert result.nbytes > 0
        assert result.nbytes == stalled.drain(result.nbytes)  # exact: every counted byte reached the sink
    finally:
        stalled.close()
    assert (fd_count(), threading.active_count()) == (fds, threads)
    # A joined Python thread's OS thread finishes exiting just after join() returns.
    wait_until(lambda: task_ids() <= tasks, "helper threads to exit")


def test_cancel_a_fifo_that_never_gets_a_writer(tmp_path: Path) -> None:
    fds, tasks = fd_count(), task_ids()
    path = tmp_path / "never.fifo"
    os.mkfifo(path, 0o600)
    fifo_r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    with CancelToken() as token:
        pumper = Worker(copy, fifo_r, out, cancel=token)
        pumper.start()
        wait_in_epoll(pumper)
        token.cancel()
        assert pumper.outcome() == 0
        assert token.cancelled
    os.close(fifo_r)
    os.close(out)
    assert fd_count() == fds
    wait_until(lambda: task_ids() <= tasks, "the pump thread to exit")


def test_cancel_stops_every_pair_and_keeps_finished_ones(tmp_path: Path) -> None:
    done_src_r, done_src_w = os.pipe2(os.O_CLOEXEC)
    os.write(done_src_w, b"abc")
    os.close(done_src_w)
    idle_r, idle_w = os.pipe2(os.O_CLOEXEC)  # a writer that never writes: never EOF
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    with CancelToken() as token:
        pumper = Worker(copy_streams, [(done_src_r, out), (idle_r, out)], cancel=token)
        pumper.start()
        wait_in_epoll(pumper)
        token.cancel()
        assert pumper.outcome() == [CopyResult(3, None, False), CopyResult(0, None, True)]
    for fd in (done_src_r, idle_r, idle_w, out):
        os.close(fd)


def test_token_cancelled_before_the_copy_returns_at_once() -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    os.write(w, b"data that stays in the pipe")
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    with CancelToken() as token:
        token.cancel()
        token.cancel()
        assert copy_streams([(r, out)], cancel=token) == [CopyResult(0, None, True)]
        assert copy(r, out, cancel=token) == 0
    assert os.read(r, 100) == b"data that stays in the pipe"
    for fd in (r, w, out):
        os.close(fd)


def test_cancel_token_lifecycle() -> None:
    fds = fd_count()
    token = CancelToken()
    assert fd_count() == fds + 1
    assert not token.cancelled
    assert "armed" in repr(token)
    fd = token.fileno()
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    token.cancel()
    assert token.cancelled
    assert select.select([fd], [], [], 0)[0] == [fd]
    with token:
        pass
    assert token.closed
    token.close()
    token.cancel()
    assert fd_count() == fds
    with pytest.raises(ValueError, match="closed"):
        token.fileno()


# ---------------------------------------------------------------- drain
# test_pump_drain.py has the basic cases: a writer streams and stops without
# closing (pipe, slow pipe, file, append, null and socket sinks), empty pipes
# drained before the copy, stdout and stderr into one file, and a cancel ending
# a drain whose destination stalls. These add the drain requested before the
# copy with the source already full, the other sinks and sources, bytes that
# arrive during the drain, the read/write buffer, discard mode and EOF.


def fill_pipe(n: int) -> tuple[int, int, int]:
    """A blocking pipe holding payload()[:n], its write end left open: (r, w, n actually held).

    n is capped at what the pipe can hold (it is enlarged to 1 MiB where allowed),
    so the write never blocks.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 2**20)
    n = min(n, fcntl.fcntl(w, fcntl.F_GETPIPE_SZ))
    assert os.write(w, memoryview(payload())[:n]) == n
    return r, w, n


def unread(fd: int) -> int:
    """Bytes waiting in a pipe or socket (FIONREAD)."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder)


DRAIN_SINKS = ["pipe", "pipe-nb", "pipe-sleepy", "file", "append", "null", "socket", "socket-nb", "tty"]
# test_pump_drain.py drains these while a writer streams.
_DRAINED_WHILE_COPYING_ELSEWHERE = {"pipe", "file", "append", "null", "socket"}


@pytest.mark.parametrize(
    ("sink", "when"),
    [(sink, "before") for sink in DRAIN_SINKS]
    + [(sink, "while-copying") for sink in DRAIN_SINKS if sink not in _DRAINED_WHILE_COPYING_ELSEWHERE],
)
def test_drain_delivers_every_byte_the_source_holds(sink: str, when: str, tmp_path: Path) -> None:
    """The write end stays open (no EOF ever): the drain ends the copy once all was delivered.

    ``before``: the drain is requested before the copy starts, with the pipe full.
    ``while-copying``: a writer streams more than the pipe holds and stops
    without closing; the drain comes after its last write.
    """
    if when == "before":
        r, w, n = fill_pipe(2**20)
        feeder = None
    else:
        n = 2**23 + 5
        r, w = os.pipe2(os.O_CLOEXEC)
        feeder = Worker(write_all, w, memoryview(payload())[:n], close=False)
    s = Sink(sink, n, tmp_path)
    drain = CancelToken()
    try:
        if feeder is None:
            drain.cancel()
            [result] = copy_streams([(r, s.fd)], drain=drain)
        else:
            pumper = Worker(copy_streams, [(r, s.fd)], drain=drain)
            pumper.start()
            assert feeder.run_now() == n
            drain.cancel()
            [result] = pumper.outcome()
        assert result == CopyResult(n, None, False)
        os.fstat(w)  # still open: only the drain could end the copy
        assert not readable(r)
        count, sha = s.finish()
        if sink != "null":
            assert (count, sha) == (n, digest(n))
    finally:
        s.close()
        drain.close()
        os.close(r)
        close_quietly(w)


@pytest.mark.parametrize("source", ["socket", "socket-nb", "tty"])
def test_drain_of_a_socket_or_tty_source(source: str, tmp_path: Path) -> None:
    """A writer stays connected to the socket or pty slave: the drain ends the copy after its last byte."""
    n = 2**22 + 3
    if source == "tty":
        r, w = pty.openpty()  # the pump reads the master; the writer writes the slave
        tty.setraw(w)
    else:
        a, b = socket.socketpair()
        a.setblocking(source == "socket")
        r, w = a.detach(), b.detach()
    s = Sink("pipe", n, tmp_path)
    feeder = Worker(write_all, w, memoryview(payload())[:n], close=False)
    drain = CancelToken()
    try:
        pumper = Worker(copy_streams, [(r, s.fd)], drain=drain)
        pumper.start()
        assert feeder.run_now() == n
        drain.cancel()
        assert pumper.outcome() == [CopyResult(n, None, False)]
        assert s.finish() == (n, digest(n))
    finally:
        s.close()
        drain.close()
        os.close(r)
        os.close(w)


def test_drain_sees_tty_input_still_on_its_way_to_the_line_discipline() -> None:
    """A pty slave's write returns before a kernel worker moves the bytes to the master's input queue.

    FIONREAD counts only that queue; the drain must not take "0" for empty
    while the bytes are still in the tty's flip buffer. The window is a few
    microseconds, so this repeats write-then-drain with the pump asleep: a
    pump that trusts FIONREAD alone loses a write in some of the rounds, a
    correct one in none.
    """
    if not _EPOLL_SYSCALLS:
        pytest.skip("epoll syscall numbers unknown here")
    master, slave = pty.openpty()
    tty.setraw(slave)
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        for round_ in range(1000):
            with CancelToken() as drain:
                pumper = Worker(copy_streams, [(master, out)], drain=drain)
                pumper.start()
                deadline = time.monotonic() + JOIN
                while not in_epoll_wait(pumper):  # no sleep: the pump gets there in microseconds
                    assert time.monotonic() < deadline, "the pump never slept in epoll_wait"
                os.write(slave, b"x" * 100)
                drain.cancel()
                assert pumper.outcome() == [CopyResult(100, None, False)], f"round {round_}"
    finally:
        for fd in (master, slave, out):
            os.close(fd)


@pytest.mark.parametrize("sink", ["pipe-sleepy", "append", "socket"])
def test_drain_of_a_non_blocking_source(sink: str, tmp_path: Path) -> None:
    """O_NONBLOCK on the source (set by whoever shares it) changes nothing; the pump leaves it set."""
    r, w, n = fill_pipe(2**20)
    os.set_blocking(r, False)
    s = Sink(sink, n, tmp_path)
    try:
        with CancelToken() as drain:
            drain.cancel()
            assert copy_streams([(r, s.fd)], drain=drain) == [CopyResult(n, None, False)]
        assert not os.get_blocking(r)
        assert s.finish() == (n, digest(n))
    finally:
        s.close()
        os.close(r)
        os.close(w)


def hash_after_prefill(fd: int, prefill: int) -> tuple[int, str]:
    """Read ``prefill`` bytes of b"p" from fd, then hash_reader the rest."""
    got = 0
    while got < prefill:
        block = os.read(fd, prefill - got)
        assert block, "EOF inside the prefill"
        assert block == b"p" * len(block)
        got += len(block)
    return hash_reader(fd)


def test_drain_delivers_bytes_written_while_the_source_is_not_yet_empty() -> None:
    """A drain ends a pair only once its source is empty: bytes added before that are copied too.

    The destination has room for only part of the full source and nobody
    reads it until the extra bytes are in: the source cannot run empty
    earlier, whatever the timing.
    """
    src_r, src_w = os.pipe2(os.O_CLOEXEC)
    dst_r, dst_w = os.pipe2(os.O_CLOEXEC)
    fds = [src_r, src_w, dst_r, dst_w]
    drain = CancelToken()
    try:
        try:
            for fd in (src_w, dst_w):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 2**20)
        except PermissionError:
            pytest.skip("pipes cannot be enlarged to 1 MiB here")
        cap = fcntl.fcntl(src_w, fcntl.F_GETPIPE_SZ)
        room, extra = 2**18, 2**17
        prefill = fcntl.fcntl(dst_w, fcntl.F_GETPIPE_SZ) - room
        os.set_blocking(src_w, False)
        os.set_blocking(dst_w, False)
        assert os.write(dst_w, b"p" * prefill) == prefill
        assert os.write(src_w, memoryview(payload())[:cap]) == cap
        drain.cancel()
        pumper = Worker(copy_streams, [(src_r, dst_w)], drain=drain)
        pumper.start()
        # Wait for space in the source (page granularity: a margin of two pages), then add to it.
        wait_until(lambda: unread(src_r) <= cap - extra - 8192, "the pump to fill the destination")
        assert os.write(src_w, memoryview(payload())[cap : cap + extra]) == extra
        assert pumper.is_alive()
        reader = Worker(hash_after_prefill, dst_r, prefill)
        reader.start()
        assert pumper.outcome() == [CopyResult(cap + extra, None, False)]
        os.close(dst_w)
        fds.remove(dst_w)
        assert reader.outcome() == (cap + extra, digest(cap + extra))
    finally:
        drain.close()
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize(
    "flags", [0, native.NO_RESIZE, native.NO_SPLICE, native.NO_SPLICE | native.NO_RESIZE]
)
def test_native_drain_flushes_the_read_write_buffer(flags: int, tmp_path: Path) -> None:
    """Bytes already read into the pump's buffer are written before a drained stream ends."""
    r, w, n = fill_pipe(2**20)
    s = Sink("pipe-sleepy", n, tmp_path)
    drain = CancelToken()
    try:
        drain.cancel()
        cancelled, [outcome] = native.pump([(r, s.fd)], -1, flags, drain.fileno())
        assert (cancelled, outcome) == (False, (n, 0, True, 0))
        assert s.finish() == (n, digest(n))
    finally:
        s.close()
        drain.close()
        for fd in (r, w):
            os.close(fd)


@pytest.mark.parametrize(
    ("source", "when"),
    # An empty pipe drained before the copy is in test_pump_drain.py.
    [("pipe", "while-waiting")]
    + [(src, when) for src in ("fifo-without-writer", "socket") for when in ("before", "while-waiting")],
)
def test_drain_of_an_empty_source_returns(source: str, when: str, tmp_path: Path) -> None:
    fds = []
    if source == "pipe":
        r, w = os.pipe2(os.O_CLOEXEC)
        fds = [r, w]
    elif source == "fifo-without-writer":
        path = tmp_path / "never.fifo"
        os.mkfifo(path, 0o600)
        r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        fds = [r]
    else:
        a, b = socket.socketpair()
        r = a.detach()
        fds = [r, b.detach()]
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    fds.append(out)
    drain = CancelToken()
    try:
        pumper = Worker(copy_streams, [(r, out)], drain=drain)
        if when == "before":
            drain.cancel()
            pumper.start()
        else:
            pumper.start()
            wait_in_epoll(pumper)
            drain.cancel()
        # JOIN only guards against a hang; how long the return takes is not measured.
        assert pumper.outcome(JOIN) == [CopyResult(0, None, False)]
    finally:
        drain.close()
        for fd in fds:
            os.close(fd)


def test_drain_then_cancel_with_a_stalled_destination(tmp_path: Path) -> None:
    """A drain requested while the destination is full waits; a cancel ends the wait, with an exact count.

    (test_pump_drain.py requests the drain before the copy; here a writer is
    still streaming and the pump already sleeps on the full destination.)
    """
    if not _EPOLL_SYSCALLS:
        pytest.skip("epoll syscall numbers unknown here")
    drain = CancelToken()
    stalled = Stalled("pipe", "pipe", tmp_path, drain=drain)
    try:
        # Both pipes at the size the pump would enlarge them to, so that a full
        # destination stays full (stall() may see it full just before it grows).
        limit = min(int(Path("/proc/sys/fs/pipe-max-size").read_text()), 2**20)
        for fd in (stalled.src, stalled.dst):
            with contextlib.suppress(PermissionError):  # then the pump cannot enlarge them either
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, limit)
        stalled.stall()
        # The drain ends a pair whose source is empty at that moment, even if its
        # writer is not done (it is meant for writers that are gone). The pump may
        # have emptied the source just as the destination filled; it reads no
        # more of it now, so once the writer has put bytes back they stay.
        wait_until(lambda: unread(stalled.src) > 0, "bytes in the source")
        drain.cancel()
        # The source holds bytes and the destination is full: the drain cannot end it.
        wait_in_epoll(stalled.thread)
        assert stalled.thread.is_alive()
        stalled.token.cancel()
        [result] = stalled.thread.outcome()
        assert result.cancelled
        assert result.error is None
        assert result.nbytes > 0
        assert result.nbytes == stalled.drain(result.nbytes)
    finally:
        stalled.close()
        drain.close()


@pytest.mark.parametrize("sink", ["pipe", "append"])  # "file": test_pump_drain.py
def test_drain_two_streams_into_one_destination(sink: str, tmp_path: Path) -> None:
    """stdout and stderr into one sink, both write ends still open: one drain ends both."""
    n_out, n_err = 2**23 + 7, 2**21 + 3
    r_out, w_out = os.pipe2(os.O_CLOEXEC)
    r_err, w_err = os.pipe2(os.O_CLOEXEC)
    feeders = [
        Worker(write_all, w_out, b"o" * n_out, close=False),
        Worker(write_all, w_err, b"e" * n_err, close=False),
    ]
    collect = None
    path = tmp_path / "sink"
    if sink == "pipe":
        sink_r, dst = os.pipe2(os.O_CLOEXEC)
        collect = Worker(lambda: b"".join(iter(lambda: os.read(sink_r, CHUNK), b"")))
        collect.start()
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_APPEND
        dst = os.open(path, flags, 0o600)
    drain = CancelToken()
    try:
        pumper = Worker(copy_streams, [(r_out, dst), (r_err, dst)], drain=drain)
        pumper.start()
        for f in feeders:
            f.start()
        assert [f.outcome() for f in feeders] == [n_out, n_err]
        drain.cancel()
        assert pumper.outcome() == [CopyResult(n_out, None, False), CopyResult(n_err, None, False)]
    finally:
        os.close(dst)
        drain.close()
        for fd in (r_out, w_out, r_err, w_err):
            close_quietly(fd)
    data = collect.outcome() if collect is not None else path.read_bytes()
    if collect is not None:
        os.close(sink_r)
    assert len(data) == n_out + n_err
    assert data.count(b"o") == n_out
    assert data.count(b"e") == n_err


def test_drain_with_discard_on_error_empties_the_source() -> None:
    r, w, n = fill_pipe(2**20)
    full = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
    drain = CancelToken()
    try:
        drain.cancel()
        [result] = copy_streams([(r, full)], discard_on_error=True, drain=drain)
        assert isinstance(result.error, OSError)
        assert result.error.errno == errno.ENOSPC
        assert not result.cancelled
        assert (result.nbytes, result.dropped) == (0, n)
        assert not readable(r)
    finally:
        drain.close()
        for fd in (r, w, full):
            os.close(fd)


def test_eof_before_the_drain_is_an_ordinary_end(tmp_path: Path) -> None:
    """A pair that reached EOF is done; the drain then ends the pair whose writer stays."""
    ended_r, ended_w = os.pipe2(os.O_CLOEXEC)
    os.write(ended_w, b"abc")
    os.close(ended_w)
    open_r, open_w, n = fill_pipe(4096)
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    with CancelToken() as drain:
        pumper = Worker(copy_streams, [(ended_r, out), (open_r, out)], drain=drain)
        pumper.start()
        wait_in_epoll(pumper)
        drain.cancel()
        assert pumper.outcome() == [CopyResult(3, None, False), CopyResult(n, None, False)]
    for fd in (ended_r, open_r, open_w, out):
        os.close(fd)


def test_drain_argument_errors() -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    token = CancelToken()
    try:
        with pytest.raises(ValueError, match="different"):
            copy_streams([(r, w)], cancel=token, drain=token)
        # The C loop adds both to one epoll set: the same descriptor twice is epoll_ctl's EEXIST.
        with pytest.raises(FileExistsError):
            native.pump([(r, w)], token.fileno(), 0, token.fileno())
        closed = CancelToken()
        closed.close()
        with pytest.raises(ValueError, match="closed"):
            copy_streams([(r, w)], drain=closed)
    finally:
        token.close()
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------- EINTR


@pytest.mark.parametrize("source", ["pipe", "file", "socket"])
def test_signals_during_a_copy_lose_nothing(source: str, tmp_path: Path) -> None:
    """A Python handler (installed without SA_RESTART) makes the pump's syscalls fail with EINTR."""
    n = 2**25 + 3
    seen = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        s = Sink("pipe-slow", n, tmp_path)
        try:
            with make_source(source, n, tmp_path) as src:
                pumper = Worker(copy, src, s.fd)
                pumper.start()
                sent = 0
                while pumper.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        signal.pthread_kill(pumper.ident or 0, signal.SIGUSR1)
                    os.kill(os.getpid(), signal.SIGUSR1)
                    sent += 1
                    time.sleep(0.0005)
                assert pumper.outcome() == n
            assert s.finish() == (n, digest(n))
        finally:
            s.close()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert sent > 0
    assert seen


# ---------------------------------------------------------------- misc


def test_pipe_buffers_grow_for_streams_but_not_for_short_copies(tmp_path: Path) -> None:
    limit = min(int(Path("/proc/sys/fs/pipe-max-size").read_text()), 2**20)
    r, w = os.pipe2(os.O_CLOEXEC)
    r2, w2 = os.pipe2(os.O_CLOEXEC)
    default = fcntl.fcntl(r, fcntl.F_GETPIPE_SZ)
    os.write(w, b"short")
    os.close(w)
    reader = Worker(hash_reader, r2)
    reader.start()
    try:
        assert copy(r, w2) == 5  # all there at once: no wait, no resize
        assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == default
        assert fcntl.fcntl(w2, fcntl.F_GETPIPE_SZ) == default
        os.close(r)
        with make_source("pipe", 4 * 2**20, tmp_path) as src:
            assert copy(src, w2) == 4 * 2**20
            assert fcntl.fcntl(src, fcntl.F_GETPIPE_SZ) == limit
        assert fcntl.fcntl(w2, fcntl.F_GETPIPE_SZ) == limit
    finally:
        close_quietly(r)
        os.close(w2)
        reader.outcome()
        os.close(r2)


def test_stdio_reexports_the_pump() -> None:
    assert stdio.copy is copy
    assert stdio.copy_streams is copy_streams
    assert stdio.CancelToken is CancelToken
    assert stdio.CopyResult is CopyResult


def test_gil_is_released_while_copying(tmp_path: Path) -> None:
    """Python code keeps running in another thread while the pump waits on an idle source."""
    r, w = os.pipe2(os.O_CLOEXEC)
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    pumper = Worker(copy, r, out)
    pumper.start()
    try:
        wait_in_epoll(pumper)
        counter = 0
        for _ in range(100_000):  # would deadlock (never reach the write) if the GIL were held
            counter += 1
        os.write(w, b"x" * 10)
        os.close(w)
        assert pumper.outcome() == 10
        assert counter == 100_000
    finally:
        os.close(r)
        os.close(out)
