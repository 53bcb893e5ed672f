"""The handoff stdio strategy without a daemon: URIs, socket paths, fallbacks, sink classification."""

from __future__ import annotations

import os
import socket

import pytest

from pycontainerd import handoff, stdio
from pycontainerd._handoff_stdio import (
    HandoffIO,
    HandoffStdio,
    HandoffTarget,
    _remove_stale_socket,
    _splices_losslessly,
    available,
    socket_from_uri,
    socket_path,
)
from pycontainerd.fifo import FIFOSet

needs_helper = pytest.mark.skipif(not available(), reason="pcd-handoff is not built")


def test_socket_path():
    assert socket_path("/run/b/c1", "c1") == "/run/b/c1/c1-handoff.sock"
    for bad in ("", ".", "..", "a/b", "a\0b", "x" * 250):
        with pytest.raises(ValueError, match="invalid process id"):
            socket_path("/run/b", bad)
    with pytest.raises(ValueError, match="absolute"):
        socket_path("relative", "c1")


def test_socket_from_uri_round_trip():
    path = "/run/pycontainerd/ns/c 1+x/c 1+x-handoff.sock"
    uri = handoff.binary_uri(path, helper="/opt/p c/pcd-handoff", owner_uid=1000)
    assert socket_from_uri(uri) == path
    assert socket_from_uri(handoff.binary_uri(path, helper="/x/pcd-handoff", scheme="binary-v2")) == path


@pytest.mark.parametrize("uri", [
    "", "/run/x/c1-stdout", "file:///var/log/x", "binary:///usr/bin/other-logger?socket=%2Fa",
    "binary:///x/pcd-handoff", "binary:///x/pcd-handoff?socket=relative", "fifo:///x/pcd-handoff?socket=%2Fa",
])
def test_socket_from_uri_rejects_others(uri):
    assert socket_from_uri(uri) is None


@needs_helper
def test_fifo_set_target_and_fallbacks(tmp_path):
    strategy = stdio.handoff(stdio.capture())
    assert isinstance(strategy, HandoffStdio)
    target = strategy.fifo_set(str(tmp_path), "c1", terminal=False)
    assert isinstance(target, HandoffTarget)
    assert target.socket_path == str(tmp_path / "c1-handoff.sock")
    # Terminal and stdin fall back to the wrapped strategy's FIFOs.
    tty = strategy.fifo_set(str(tmp_path), "c1", terminal=True)
    assert type(tty) is FIFOSet
    assert tty.stderr is None
    with_stdin = stdio.handoff(stdio.capture(b"in")).fifo_set(str(tmp_path), "c1", terminal=False)
    assert type(with_stdin) is FIFOSet
    assert with_stdin.stdin is not None
    # null() has nothing to copy: it stays FIFO-less.
    assert stdio.handoff(stdio.null()).fifo_set(str(tmp_path), "c1", terminal=False) is None
    assert os.listdir(tmp_path) == []


@needs_helper
@pytest.mark.parametrize(("inner", "terminal", "match"), [
    (stdio.capture(b"x"), False, "stdin"),
    (stdio.capture(), True, "terminal"),
    (stdio.null(), False, "no sinks"),
])
def test_fallback_false_raises(tmp_path, inner, terminal, match):
    with pytest.raises(stdio.HandoffUnavailableError, match=match):
        stdio.handoff(inner, fallback=False).fifo_set(str(tmp_path), "c1", terminal=terminal)


def test_handoff_requires_a_strategy():
    with pytest.raises(TypeError):
        stdio.handoff(1)  # type: ignore[arg-type]
    inner = stdio.capture()
    assert stdio.handoff(stdio.handoff(inner)).inner is inner  # type: ignore[attr-defined]


@needs_helper
def test_open_builds_uri_and_closes_cleanly(tmp_path):
    strategy = stdio.handoff(stdio.capture())
    target = strategy.fifo_set(str(tmp_path), "c1", terminal=False)
    before = len(os.listdir("/proc/self/fd"))
    io = strategy.open(target)
    assert isinstance(io, HandoffIO)
    assert socket_from_uri(io.stdout_path) == str(tmp_path / "c1-handoff.sock")
    assert io.stderr_path == io.stdout_path
    assert io.stdin_path == ""
    io.process_exited()  # before any pipes: nothing to drain, done only at close
    assert not io.done.done()
    io.close()
    assert io.done.done()
    assert len(os.listdir("/proc/self/fd")) == before
    assert os.listdir(tmp_path) == []


def test_splices_losslessly(tmp_path):
    r, w = os.pipe()
    plain = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    append = os.open(tmp_path / "g", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_WRONLY)
    zero = os.open("/dev/zero", os.O_WRONLY)
    left, right = socket.socketpair()
    try:
        assert _splices_losslessly(w)
        assert _splices_losslessly(plain)
        assert _splices_losslessly(null)
        assert not _splices_losslessly(append)
        assert not _splices_losslessly(zero)
        assert not _splices_losslessly(left.fileno())
    finally:
        for fd in (r, w, plain, append, null, zero):
            os.close(fd)
        left.close()
        right.close()


def test_remove_stale_socket_only_when_nobody_listens(tmp_path):
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(stale)
    live = str(tmp_path / "live.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(live)
        listener.listen(1)
        _remove_stale_socket(stale)
        _remove_stale_socket(live)
        _remove_stale_socket(str(tmp_path / "missing.sock"))
        assert not os.path.exists(stale)
        assert os.path.exists(live)
