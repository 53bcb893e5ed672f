"""The pump's drain mode: copy until the sources are empty, then stop, with their writers still open.

The handoff's pipes see no EOF at a process's exit (the shim keeps the write
ends until Delete): once the process is gone, "drain" ends each stream when its
source holds no more bytes and every byte read reached the sink. Sources here
are real pipes whose write ends stay open throughout; sinks are every kind.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pycontainerd.stdio.pump import CancelToken, copy_streams

HANG = 60.0  # seconds: only bounds a hang, never asserted as a duration
SIZE = 3 * 1024 * 1024 + 17  # more than a default pipe holds


def _fill(w: int, data: bytes) -> threading.Thread:
    def go() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(w, view[: 1 << 16]) :]

    thread = threading.Thread(target=go)
    thread.start()
    return thread


class Reader:
    """Reads a descriptor to EOF in a thread (optionally slowly) and keeps the bytes."""

    def __init__(self, fd: int, *, slow: bool = False) -> None:
        self.fd, self.slow, self.data = fd, slow, bytearray()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while chunk := os.read(self.fd, 4096 if self.slow else 1 << 20):
            self.data += chunk

    def join(self) -> bytes:
        self.thread.join(HANG)
        assert not self.thread.is_alive()
        return bytes(self.data)


@contextmanager
def sink(kind: str, tmp_path: Path) -> Iterator[tuple[int, Callable[[], bytes]]]:
    """A destination descriptor and how to read back what reached it."""
    if kind in ("file", "append"):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        flags |= os.O_APPEND if kind == "append" else 0
        fd = os.open(tmp_path / "out", flags, 0o600)
        try:
            yield fd, lambda: (tmp_path / "out").read_bytes()
        finally:
            os.close(fd)
    elif kind == "null":
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            yield fd, lambda: b""
        finally:
            os.close(fd)
    elif kind in ("pipe", "slow-pipe"):
        r, w = os.pipe2(os.O_CLOEXEC)
        reader = Reader(r, slow=kind == "slow-pipe")
        try:
            yield w, lambda: (os.close(w), reader.join())[1]
        finally:
            reader.thread.join(HANG)
            os.close(r)
    elif kind == "socket":
        left, right = socket.socketpair()
        reader = Reader(right.fileno())
        try:
            yield left.fileno(), lambda: (left.shutdown(socket.SHUT_WR), reader.join())[1]
        finally:
            reader.thread.join(HANG)
            left.close()
            right.close()
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["pipe", "slow-pipe", "file", "append", "null", "socket"])
def test_drain_delivers_every_byte_then_returns_with_the_writer_still_open(tmp_path: Path, kind: str) -> None:
    data = random.Random(kind).randbytes(SIZE)
    r, w = os.pipe2(os.O_CLOEXEC)
    drain = CancelToken()
    try:
        with sink(kind, tmp_path) as (dst, read_back):
            writer = _fill(w, data)
            results: list[object] = []
            pump = threading.Thread(target=lambda: results.extend(
                copy_streams([(r, dst)], drain=drain, discard_on_error=True)))
            pump.start()
            writer.join(HANG)  # every byte is in the pipe or beyond: the "process" has exited
            drain.cancel()
            pump.join(HANG)
            assert not pump.is_alive(), "drain did not end the copy"
            (result,) = results
            assert result.error is None
            assert not result.cancelled
            assert result.nbytes == len(data)
            if kind != "null":
                assert read_back() == data
    finally:
        os.close(w)  # only now: the pump never saw EOF
        os.close(r)
        drain.close()


def test_drain_of_empty_sources_returns(tmp_path: Path) -> None:
    pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(2)]
    out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    drain = CancelToken()
    try:
        drain.cancel()
        results = copy_streams([(r, out) for r, _ in pipes], drain=drain)
        assert [(x.nbytes, x.error, x.cancelled) for x in results] == [(0, None, False)] * 2
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)
        os.close(out)
        drain.close()


def test_two_streams_into_one_destination(tmp_path: Path) -> None:
    out_data, err_data = b"o" * SIZE, b"e" * (SIZE // 3)
    (r1, w1), (r2, w2) = os.pipe2(os.O_CLOEXEC), os.pipe2(os.O_CLOEXEC)
    drain = CancelToken()
    try:
        with sink("file", tmp_path) as (dst, read_back):
            writers = [_fill(w1, out_data), _fill(w2, err_data)]
            results: list[object] = []
            pump = threading.Thread(target=lambda: results.extend(
                copy_streams([(r1, dst), (r2, dst)], drain=drain)))
            pump.start()
            for t in writers:
                t.join(HANG)
            drain.cancel()
            pump.join(HANG)
            assert not pump.is_alive()
            got = read_back()
            assert sorted(got) == sorted(out_data + err_data)
            assert [x.nbytes for x in results] == [len(out_data), len(err_data)]
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)
        drain.close()


def _fill_to_capacity(w: int) -> int:
    """Write into a pipe until it is full (no writer stays behind); return the bytes written."""
    os.set_blocking(w, False)
    total = 0
    try:
        while True:
            total += os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    return total


def test_cancel_still_stops_a_drain_whose_destination_stalls(tmp_path: Path) -> None:
    """Bytes still in the source and a destination that takes no more: drain waits, cancel ends it."""
    src_r, src_w = os.pipe2(os.O_CLOEXEC)
    dst_r, dst_w = os.pipe2(os.O_CLOEXEC)  # nobody reads dst_r: the destination stalls
    drain, cancel = CancelToken(), CancelToken()
    try:
        # The source as large as a pipe may be, full; the destination full at its
        # default size. Even after the pump enlarges the destination to that maximum,
        # the source still holds the destination's first fill: a static source (no
        # writer left, as after a process's exit) that can never empty.
        max_size = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(src_w, fcntl.F_SETPIPE_SZ, max_size)
        _fill_to_capacity(src_w)
        _fill_to_capacity(dst_w)
        drain.cancel()
        results: list[object] = []
        pump = threading.Thread(target=lambda: results.extend(
            copy_streams([(src_r, dst_w)], drain=drain, cancel=cancel)))
        pump.start()
        pump.join(0.5)
        assert pump.is_alive(), "drain ended a stream whose bytes could not be delivered"
        cancel.cancel()
        pump.join(HANG)
        assert not pump.is_alive()
        (result,) = results
        assert result.cancelled
    finally:
        for fd in (src_r, src_w, dst_r, dst_w):
            os.close(fd)
        drain.close()
        cancel.close()
