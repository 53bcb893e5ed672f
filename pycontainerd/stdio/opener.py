"""Opening a process's IO: one strategy, the transport that carries it, one live ``ProcessIO``.

The task layer calls exactly these: :func:`open_io` for a new process (before
its Create/Exec RPC), :func:`reattach_io` for a running one found with
``Tasks/Get`` (after this program restarted), :func:`loaded_io` for a process
whose IO nobody copies but whose FIFOs must still be removed when it is
deleted. Which transport serves a process is decided here, and only here
(:func:`transport_for`).
"""

from __future__ import annotations

import os

from pycontainerd.api.types import Status, TaskInfo
from pycontainerd.stdio import handoff_io
from pycontainerd.stdio.fifo import FIFOSet
from pycontainerd.stdio.fifo_io import FIFOIO
from pycontainerd.stdio.handoff_io import HandoffIO, HandoffUnavailableError
from pycontainerd.stdio.process_io import ProcessIO, no_io
from pycontainerd.stdio.strategy import Stdio, Transport

__all__ = ["fifos_of", "loaded_io", "open_io", "poke_writers", "reattach_io", "transport_for"]


def transport_for(stdio: Stdio, *, terminal: bool) -> Transport | None:
    """The transport that will carry a new process's stdio.

    Args:
        stdio: The strategy.
        terminal: Whether the process has a terminal.

    Returns:
        :attr:`Transport.FIFO` or :attr:`Transport.HANDOFF`; ``None`` when the
        process has no stdio at all (``null()``).

    Raises:
        HandoffUnavailableError: The handoff is required but cannot serve this process.
    """
    if stdio.transport is not Transport.FIFO:
        reason = handoff_io.unavailable_reason(stdio, terminal=terminal)
        if reason is None:
            return Transport.HANDOFF
        if stdio.transport is Transport.HANDOFF:
            raise HandoffUnavailableError(reason)
    return Transport.FIFO if stdio.needs_fifos else None


def open_io(stdio: Stdio, directory: str, name: str, *, terminal: bool) -> ProcessIO:
    """Open a new process's IO, ready for its Create/Exec RPC (``io.config``).

    Args:
        stdio: The strategy.
        directory: The container's bundle dir, where the FIFOs or the helper's socket go.
        name: The process's name in them: the container id (or ``fifo_id``) or the exec id.
        terminal: Whether the process has a terminal.

    Returns:
        The live IO; on any failure nothing is left behind.

    Raises:
        HandoffUnavailableError: The handoff is required but cannot serve this process.
        ValueError: ``directory`` or ``name`` cannot hold FIFOs.
        OSError: A sink or source is not open, or the FIFOs could not be made.
    """
    transport = transport_for(stdio, terminal=terminal)
    if transport is None:
        return no_io()
    if transport is Transport.HANDOFF:
        assert stdio.outputs is not None  # transport_for checked
        return HandoffIO.open(stdio.outputs, handoff_io.socket_path(directory, name),
                              timeout=stdio.handoff_timeout)
    fifos = FIFOSet.new(directory, name, stdin=stdio.stdin, terminal=terminal)
    return FIFOIO.open(stdio, fifos)


def reattach_io(stdio: Stdio, info: TaskInfo) -> ProcessIO:
    """Reconnect to a running process's IO as ``Tasks/Get`` reports it.

    A process on the handoff is reconnected to its helper (any strategy with
    sinks works, whatever its transport); a FIFO process gets its FIFOs
    reopened. Nothing is attached when the process's shim is unreachable
    (status UNKNOWN) or ``stdio`` is ``null()``; its FIFOs are still removed
    when the returned IO is closed.

    Args:
        stdio: Where the output should go now (its stdin is used only if the
            process was created with a stdin FIFO).
        info: The process.

    Returns:
        The live IO.

    Raises:
        ValueError: The process is on the handoff and ``stdio`` has no sinks (``attach``).
        FileNotFoundError: The handoff helper's socket is gone (the helper was killed).
        HandoffError: The helper refused or answered wrongly.
    """
    every = fifos_of(info)
    reachable = info.status is not Status.UNKNOWN
    if handoff_io.socket_from_uri(info.stdout) is not None:
        if not reachable or not stdio.needs_fifos:
            return no_io()
        if stdio.outputs is None:
            raise ValueError(f"process {info.id!r} uses the zero-copy handoff: attach with streams/capture/"
                             f"log_file/inherit, not {stdio!r}")
        return HandoffIO.reattach(stdio.outputs, info.stdout, timeout=stdio.handoff_timeout)
    if every is None or not reachable or not stdio.needs_fifos:
        return FIFOIO.unread(every)
    opened = FIFOSet.from_paths(
        stdin=every.stdin if stdio.stdin else None,
        stdout=every.stdout,
        stderr=every.stderr,
        terminal=every.terminal,
    )
    io = FIFOIO.open(stdio, opened, also_remove=every if opened.paths != every.paths else None)
    poke_writers(opened)
    return io


def loaded_io(info: TaskInfo) -> ProcessIO:
    """IO that copies nothing but removes the process's FIFOs when closed (containerd#2421).

    Args:
        info: The process as ``Tasks/Get`` reports it.
    """
    return FIFOIO.unread(fifos_of(info))


def fifos_of(info: TaskInfo) -> FIFOSet | None:
    """Every FIFO path Tasks/Get reports for a process (``None``: none this client could have made)."""
    if not info.stdout:
        return None
    try:
        return FIFOSet.from_paths(
            stdin=info.stdin or None,
            stdout=info.stdout,
            stderr=(info.stderr or None) if not info.terminal else None,
            terminal=info.terminal,
        )
    except ValueError:
        return None  # relative paths, URIs: not FIFOs of ours, leave them


def poke_writers(fifos: FIFOSet) -> None:
    """Connect and drop a writer on each reattached output FIFO.

    A read end only reports EOF once a writer has connected and left. If the
    shim already closed its end (the process exited and its output was
    copied), no writer would ever come and the drain would wait forever; after
    this poke the reader sees EOF as soon as no *other* writer (the shim, still
    copying) holds the FIFO. Our own read end is open, so the non-blocking
    write open cannot fail with ENXIO.
    """
    for path in (fifos.stdout, fifos.stderr):
        if path is None:
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            continue  # not openable: then it was not opened for reading either
        os.close(fd)
