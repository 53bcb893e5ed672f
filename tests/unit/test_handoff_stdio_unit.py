"""The handoff stdio strategy without a daemon: URIs, socket paths, fallbacks, sink classification."""

from __future__ import annotations

import os
import socket

import pytest

from pycontainerd import stdio
from pycontainerd.stdio import handoff_helper as handoff
from pycontainerd.stdio.fifo_io import FIFOIO
from pycontainerd.stdio.handoff_io import (
    HandoffIO,
    available,
    remove_stale_socket,
    socket_from_uri,
    socket_path,
)
from pycontainerd.stdio.opener import open_io, transport_for
from pycontainerd.stdio.process_io import ProcessIO

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
def test_transport_choice_and_fallbacks():
    auto = stdio.handoff(stdio.capture())
    assert auto.transport is stdio.Transport.AUTO
    assert transport_for(auto, terminal=False) is stdio.Transport.HANDOFF
    # Terminal and stdin fall back to FIFOs.
    assert transport_for(auto, terminal=True) is stdio.Transport.FIFO
    assert transport_for(stdio.handoff(stdio.capture(b"in")), terminal=False) is stdio.Transport.FIFO
    # null() has nothing to copy: no IO at all, whatever the transport.
    assert transport_for(stdio.handoff(stdio.null()), terminal=False) is None
    # The FIFO transport is the default, even for a strategy the handoff could carry.
    assert transport_for(stdio.capture(), terminal=False) is stdio.Transport.FIFO


@needs_helper
def test_any_strategy_with_sinks_can_use_the_handoff(tmp_path):
    with open(tmp_path / "out", "wb") as out:
        for strategy in (stdio.capture(), stdio.streams(stdout=out), stdio.log_file(tmp_path / "log"),
                         stdio.inherit()):
            assert transport_for(stdio.handoff(strategy), terminal=False) is stdio.Transport.HANDOFF


@needs_helper
def test_open_io_per_transport(tmp_path):
    fifo = open_io(stdio.capture(), str(tmp_path), "c1", terminal=True)
    try:
        assert isinstance(fifo, FIFOIO)
        assert fifo.config.stdout == str(tmp_path / "c1-stdout")
        assert fifo.config.stderr == ""  # a terminal has no stderr stream
    finally:
        fifo.close()
    nothing = open_io(stdio.handoff(stdio.null()), str(tmp_path), "c1", terminal=False)
    assert type(nothing) is ProcessIO
    assert nothing.done.done()
    assert os.listdir(tmp_path) == []


@needs_helper
@pytest.mark.parametrize(("inner", "terminal", "match"), [
    (stdio.capture(b"x"), False, "stdin"),
    (stdio.capture(), True, "terminal"),
    (stdio.null(), False, "no sinks"),
])
def test_fallback_false_raises(tmp_path, inner, terminal, match):
    with pytest.raises(stdio.HandoffUnavailableError, match=match):
        open_io(stdio.handoff(inner, fallback=False), str(tmp_path), "c1", terminal=terminal)
    assert os.listdir(tmp_path) == []


def test_handoff_requires_a_strategy():
    with pytest.raises(TypeError):
        stdio.handoff(1)  # type: ignore[arg-type]
    inner = stdio.capture()
    twice = stdio.handoff(stdio.handoff(inner))
    assert twice.outputs is inner.outputs
    assert twice.transport is stdio.Transport.AUTO


@needs_helper
def test_open_builds_uri_and_closes_cleanly(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    io = open_io(stdio.handoff(stdio.capture()), str(tmp_path), "c1", terminal=False)
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


def testremove_stale_socket_only_when_nobody_listens(tmp_path):
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(stale)
    live = str(tmp_path / "live.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(live)
        listener.listen(1)
        remove_stale_socket(stale)
        remove_stale_socket(live)
        remove_stale_socket(str(tmp_path / "missing.sock"))
        assert not os.path.exists(stale)
        assert os.path.exists(live)
