"""Where a process's bytes come from and go: the caller's sources and sinks, checked and claimed.

This is the one place that resolves them, for both transports (FIFOs and the
handoff): a strategy checks its arguments when it is made
(:func:`check_source`, :func:`check_sink`), and a transport claims them when a
process's IO is opened (:meth:`Ends.claim`), before any FIFO or pipe of the
process exists. Claiming duplicates the caller's descriptors, opens
``/dev/null`` for a discarded stream, makes a memory file for a captured one
and opens a log file: the :class:`Ends` then own every descriptor the copying
uses, and the caller's own stay untouched (never closed by pycontainerd).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pycontainerd.errors import SinkError
from pycontainerd.stdio.pump import CopyResult

__all__ = [
    "CAPTURE",
    "Capture",
    "Ends",
    "HasFileno",
    "Outputs",
    "Sink",
    "Source",
    "check_sink",
    "check_source",
    "claim_fd",
    "read_all",
    "sink_error",
]


@runtime_checkable
class HasFileno(Protocol):
    """Anything with a ``fileno()``: files, sockets, pipes' file objects."""

    def fileno(self) -> int:
        """Return the underlying file descriptor."""
        ...


#: What can feed a process's stdin: the bytes themselves, or an fd/file/socket read to EOF.
Source = bytes | bytearray | memoryview | int | HasFileno
#: Where a process's output can go: an fd, or a file/socket object (flushed first, never closed).
Sink = int | HasFileno


class Capture:
    """Marker sink: collect the stream in memory (``ProcessIO.stdout_data``/``stderr_data``)."""

    def __repr__(self) -> str:
        return "CAPTURE"


#: The capture marker.
CAPTURE = Capture()


@dataclass(frozen=True)
class Outputs:
    """Where a process's stdout and stderr go.

    Attributes:
        stdout: A sink, :data:`CAPTURE`, or ``None`` (discarded).
        stderr: The same for stderr (unused with a terminal).
        log_path: A file both are appended to instead (created 0640 if missing).
    """

    stdout: Sink | Capture | None = None
    stderr: Sink | Capture | None = None
    log_path: str | None = None


def check_sink(sink: object) -> None:
    """Refuse what cannot be a sink or source descriptor, before anything is created.

    Raises:
        TypeError: Not an fd or an object with ``fileno()`` (``bool`` included).
        ValueError: A negative fd, or a closed file object.
        OSError: An fd that is not open (``EBADF``).
    """
    if isinstance(sink, bool) or not isinstance(sink, (int, HasFileno)):
        raise TypeError(
            f"a stdio sink/source must be an fd or an object with fileno(), not {type(sink).__name__}"
        )
    if isinstance(sink, int) and sink < 0:
        raise ValueError(f"invalid file descriptor {sink}")
    if isinstance(sink, int):
        # A descriptor already closed now would otherwise have its number taken
        # by whatever is opened next (a gRPC poller, one of our FIFOs) and be
        # copied into by mistake.
        os.fstat(sink)
    elif getattr(sink, "closed", False) is True:
        raise ValueError(f"I/O operation on closed file: {sink!r} cannot be a stdio sink/source")


def check_source(source: Source | None) -> None:
    """Like :func:`check_sink`; bytes and ``None`` are always valid sources."""
    if source is None or isinstance(source, (bytes, bytearray, memoryview)):
        return
    check_sink(source)


def _sink_fd(sink: Sink) -> int:
    if isinstance(sink, bool):
        raise TypeError("a stdio sink must be an fd or an object with fileno(), not bool")
    if isinstance(sink, int):
        if sink < 0:
            raise ValueError(f"invalid file descriptor {sink}")
        return sink
    if isinstance(sink, HasFileno):
        flush = getattr(sink, "flush", None)
        if callable(flush):
            # Bytes the caller buffered in Python must land before ours.
            flush()
        return sink.fileno()
    raise TypeError(f"a stdio sink must be an fd or an object with fileno(), not {type(sink).__name__}")


def claim_fd(sink: Sink) -> int:
    """A private duplicate of the caller's descriptor, for the copying to own and close.

    Taken before any FIFO or pipe of the process is opened, so a descriptor the
    caller had already closed fails here (``EBADF``, before anything exists)
    instead of having its number reused by one of our own ends; and closing
    the caller's descriptor later cannot redirect the copy.

    Raises:
        OSError: The descriptor is not open (``EBADF``).
    """
    return fcntl.fcntl(_sink_fd(sink), fcntl.F_DUPFD_CLOEXEC, 3)


@dataclass
class Ends:
    """The descriptors a process's copying reads and writes, owned until closed.

    Attributes:
        stdout: The stdout sink's descriptor, or -1 (nothing to copy into).
        stderr: The stderr sink's descriptor, or -1.
        stdin: The stdin source: bytes, an owned descriptor, or ``None``.
        owned: Descriptors closed by :meth:`close`.
        capture: Memory files collecting captured streams, by stream name.
    """

    stdout: int = -1
    stderr: int = -1
    stdin: bytes | bytearray | memoryview | int | None = None
    owned: list[int] = field(default_factory=list)
    capture: dict[str, int] = field(default_factory=dict)

    @classmethod
    def claim(cls, outputs: Outputs | None, source: Source | None = None) -> Ends:
        """Take the caller's ends for one process: every descriptor is ours afterwards.

        Args:
            outputs: Where stdout and stderr go (``None``: nowhere, the caller copies).
            source: The stdin source, if any.

        Returns:
            The ends; on failure nothing is left open.

        Raises:
            OSError: A descriptor is not open, or the log file cannot be opened.
        """
        ends = cls()
        try:
            if outputs is not None and outputs.log_path is not None:
                log = os.open(outputs.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
                ends.owned.append(log)
                ends.stdout = ends.stderr = log
            elif outputs is not None:
                ends.stdout = ends._sink("stdout", outputs.stdout)
                ends.stderr = ends._sink("stderr", outputs.stderr)
            if source is None or isinstance(source, (bytes, bytearray, memoryview)):
                ends.stdin = source
            else:
                ends.stdin = claim_fd(source)
                ends.owned.append(ends.stdin)
        except BaseException:
            ends.close()
            raise
        return ends

    def _sink(self, name: str, sink: Sink | Capture | None) -> int:
        if isinstance(sink, Capture):
            fd = os.memfd_create(f"pcd-{name}", os.MFD_CLOEXEC)
            self.capture[name] = fd
            return fd
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC) if sink is None else claim_fd(sink)
        self.owned.append(fd)
        return fd

    def captured(self) -> dict[str, bytes]:
        """What the capture files hold, by stream name (read once the copying is done)."""
        return {name: read_all(fd) for name, fd in self.capture.items()}

    def close(self) -> None:
        """Close every descriptor still owned. Idempotent."""
        for fd in [*self.owned, *self.capture.values()]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.owned, self.capture = [], {}


def sink_error(names: list[str], results: list[CopyResult]) -> SinkError | None:
    """The error to report for the first output stream whose sink failed, if any.

    Args:
        names: The streams' names (``"stdout"``, ``"stderr"``), in the order of ``results``.
        results: The pump's results for those streams.

    Returns:
        A :class:`~pycontainerd.errors.SinkError`, or ``None`` when every sink took every byte.
    """
    for name, result in zip(names, results, strict=True):
        if result.error is not None and result.error.errno is not None:
            return SinkError(result.error.errno, name, delivered=result.nbytes, dropped=result.dropped)
    return None


def read_all(fd: int) -> bytes:
    """Everything a regular (memory) file holds, read from offset 0 without moving its offset."""
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
