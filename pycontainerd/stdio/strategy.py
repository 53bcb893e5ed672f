"""Stdio strategies: where a process's bytes come from and go, and how they travel.

A :class:`Stdio` is a value, made by one of the functions here and passed to
``Container.new_task``, ``Task.exec`` or ``Container.attach_task``. It says

* **where** the bytes come from and go: no stdio at all (:func:`null`), the
  caller's fds and files (:func:`streams`, :func:`inherit`), memory
  (:func:`capture`), a log file (:func:`log_file`), or the opened FIFO ends
  handed to a callback that copies them itself (:func:`attach`); and
* **how** they travel, its :class:`Transport`: through FIFOs the shim copies
  into (containerd's ``cio``, the default), or the zero-copy handoff of the
  container's own pipes (:func:`handoff`), or the handoff where it applies.

Nothing is opened here: :func:`pycontainerd.stdio.opener.open_io` turns a
strategy into a live :class:`~pycontainerd.stdio.process_io.ProcessIO` for one
process. The caller's arguments are checked now, so a closed descriptor fails
before any container exists.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass

from pycontainerd.stdio.fifo import PendingFIFO
from pycontainerd.stdio.sinks import CAPTURE, Outputs, Sink, Source, check_sink, check_source

__all__ = [
    "RECEIVE_TIMEOUT",
    "DirectIO",
    "Stdio",
    "Transport",
    "attach",
    "capture",
    "handoff",
    "inherit",
    "log_file",
    "null",
    "streams",
]

#: Default seconds to wait for the handoff helper's answer when connecting.
RECEIVE_TIMEOUT = 10.0


@dataclass
class DirectIO:
    """The opened FIFO ends handed to an :func:`attach` callback (libcontainerd's ``cio.DirectIO``).

    The callback owns the copying. Read ends are non-blocking; the stdin end
    becomes usable once the shim opens its reader (``stdin.fileno()`` waits).
    """

    stdin: PendingFIFO | None
    stdout: PendingFIFO | None
    stderr: PendingFIFO | None
    terminal: bool


class Transport(enum.Enum):
    """How a process's stdout and stderr travel to the sinks."""

    #: FIFOs: the shim copies the container's pipes into them, the client copies them into the sinks.
    FIFO = "fifo"
    #: The zero-copy handoff, required: a process it cannot serve is refused before anything exists.
    HANDOFF = "handoff"
    #: The handoff where it applies (no stdin, no terminal, sinks to copy into), FIFOs elsewhere.
    AUTO = "auto"


@dataclass(frozen=True, eq=False)
class Stdio:
    """How a process's stdio is wired: make one with :func:`streams`, :func:`capture` and the like.

    Attributes:
        source: What feeds stdin (``None``: no stdin).
        outputs: Where stdout and stderr go; ``None`` when nothing is copied by
            pycontainerd (``null``, or ``attach``, whose callback copies).
        direct: The ``attach`` callback, which gets the opened FIFO ends.
        direct_stdin: Whether an ``attach`` process gets a stdin FIFO.
        transport: How the bytes travel.
        handoff_timeout: Seconds to wait for the handoff helper's answer.
    """

    source: Source | None = None
    outputs: Outputs | None = None
    direct: Callable[[DirectIO], None] | None = None
    direct_stdin: bool = False
    transport: Transport = Transport.FIFO
    handoff_timeout: float | None = RECEIVE_TIMEOUT

    @property
    def stdin(self) -> bool:
        """Whether the process gets a stdin stream."""
        return self.source is not None or (self.direct is not None and self.direct_stdin)

    @property
    def needs_fifos(self) -> bool:
        """Whether the process has any stdio at all (``null()`` has none: the shim discards its output)."""
        return self.outputs is not None or self.direct is not None

    def __repr__(self) -> str:
        if self.direct is not None:
            what = f"attach({self.direct!r}, stdin={self.direct_stdin})"
        elif self.outputs is None:
            what = "null()"
        else:
            what = f"Stdio(stdin={self.stdin}, outputs={self.outputs!r})"
        if self.transport is Transport.FIFO:
            return what
        return f"handoff({what}, transport={self.transport.value})"


def null() -> Stdio:
    """Discard output and give no stdin (containerd's ``NullIO``: no FIFOs at all)."""
    return Stdio()


def streams(stdin: Source | None = None, stdout: Sink | None = None, stderr: Sink | None = None) -> Stdio:
    """Copy between the process and the caller's fds, files or sockets.

    Args:
        stdin: Bytes, or an fd/file/socket read to EOF; None: no stdin.
        stdout: Where stdout goes (None: discarded). Never closed by pycontainerd.
        stderr: Where stderr goes (None: discarded). Unused with a terminal.

    Returns:
        The strategy.

    Raises:
        TypeError: An argument is neither an fd nor has ``fileno()``.
        ValueError: A negative fd or a closed file.
        OSError: An fd that is not open.
    """
    check_source(stdin)
    for sink in (stdout, stderr):
        if sink is not None:
            check_sink(sink)
    return Stdio(source=stdin, outputs=Outputs(stdout, stderr))


def capture(stdin: Source | None = None, *, stdout: bool = True, stderr: bool = True) -> Stdio:
    """Collect output in memory: read it from ``io.stdout_data``/``io.stderr_data`` after the wait.

    Args:
        stdin: Optional stdin source.
        stdout: Capture stdout (else discard).
        stderr: Capture stderr (else discard).

    Returns:
        The strategy.
    """
    check_source(stdin)
    return Stdio(source=stdin, outputs=Outputs(CAPTURE if stdout else None, CAPTURE if stderr else None))


def log_file(path: str | os.PathLike[str], *, stdin: Source | None = None) -> Stdio:
    """Append stdout and stderr to a file (created 0640 if missing).

    Args:
        path: The log file.
        stdin: Optional stdin source.

    Returns:
        The strategy.
    """
    check_source(stdin)
    return Stdio(source=stdin, outputs=Outputs(log_path=os.fspath(path)))


def inherit(*, stdin: bool = False) -> Stdio:
    """Wire the process to this process's own fds 0, 1 and 2 (for command-line tools)."""
    return streams(0 if stdin else None, 1, 2)


def attach(callback: Callable[[DirectIO], None], *, stdin: bool = False) -> Stdio:
    """The libcontainerd way: hand the opened FIFO ends to ``callback``, which does the copying.

    Args:
        callback: Receives a :class:`DirectIO` once the ends are open (before the RPC).
        stdin: Whether to create a stdin FIFO.

    Returns:
        The strategy.
    """
    if not callable(callback):
        raise TypeError(f"attach() needs a callable, not {type(callback).__name__}")
    return Stdio(direct=callback, direct_stdin=stdin)


def handoff(stdio: Stdio, *, fallback: bool = True, timeout: float | None = RECEIVE_TIMEOUT) -> Stdio:
    """Carry ``stdio``'s stdout and stderr by the zero-copy handoff wherever it applies.

    ``stdio`` says where the bytes go (``streams``, ``capture``, ``log_file``,
    ``inherit``); the handoff only changes how they get there, and the bytes
    are the same. It applies to a process without stdin and without a
    terminal on a runc shim (the caller's responsibility: a strategy cannot
    see the runtime), with the helper built. See
    :mod:`pycontainerd.stdio.handoff_io` for how the exit is handled (init
    processes vs execs).

    Example:
        >>> task = container.new_task(stdio=stdio.handoff(stdio.capture()))

    Args:
        stdio: The strategy whose transport to change.
        fallback: Where handoff does not apply, use FIFOs (:attr:`Transport.AUTO`);
            False: raise :class:`~pycontainerd.stdio.handoff_io.HandoffUnavailableError`
            from ``new_task``/``exec`` before anything is created (:attr:`Transport.HANDOFF`).
        timeout: Seconds to wait for the helper's answer when connecting.

    Returns:
        The strategy (for ``new_task``, ``exec`` and ``attach_task``).

    Raises:
        TypeError: ``stdio`` is not a :class:`Stdio`.

    .. versionadded:: 0.1
    """
    if not isinstance(stdio, Stdio):
        raise TypeError(f"handoff() takes a Stdio strategy, not {type(stdio).__name__}")
    transport = Transport.AUTO if fallback else Transport.HANDOFF
    return dataclasses.replace(stdio, transport=transport, handoff_timeout=timeout)
