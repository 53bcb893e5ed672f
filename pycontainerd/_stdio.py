"""Stdio strategies for tasks and execs: how a process's stdin/stdout/stderr are wired.

This is containerd's ``cio`` (``Creator``/``Attach``/``IO``) in Python. A
:class:`Stdio` describes *what* the caller wants (capture, file objects, a log
file, nothing, or raw FIFO ends); :meth:`Stdio.open` turns it into a live
:class:`ProcessIO` for one process: the FIFOs are created, the client ends are
opened without blocking (the shim opens its side during the Create/Exec RPC)
and the native pump starts copying. One native thread serves stdout and
stderr together; a second thread feeds stdin when there is a stdin source.

The order of events that keeps output whole: :meth:`ProcessIO.wait` (and so
``Task.wait()``) resolves only after the pump has seen EOF on every output
FIFO, i.e. after the shim and every process holding the container's pipes have
closed them, and every byte has reached the sink.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pycontainerd.errors import SinkError
from pycontainerd.fifo import FIFOPipes, FIFOSet, PendingFIFO
from pycontainerd.pump import CancelToken, CopyResult, copy, copy_streams

_log = logging.getLogger(__name__)

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


class _Capture:
    """Marker: collect the stream in memory."""


CAPTURE = _Capture()


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


def _check_sink(sink: object) -> None:
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


def _check_source(source: Source | None) -> None:
    if source is None or isinstance(source, (bytes, bytearray, memoryview)):
        return
    _check_sink(source)


class ProcessIO:
    """The live stdio of one process (containerd's ``cio.IO``).

    Created by :meth:`Stdio.open`; owned by the ``Task``/``Process`` it was
    opened for. Thread-safe.
    """

    def __init__(self, fifos: FIFOSet | None, pipes: FIFOPipes | None) -> None:
        self.fifos = fifos
        self._pipes = pipes
        self._lock = threading.Lock()
        self._done: Future[None] = Future()
        self._out_cancel = CancelToken()
        self._in_cancel = CancelToken()
        self._threads: list[threading.Thread] = []
        self._stdin_closed = pipes is None or pipes.stdin is None
        self._on_stdin_closed: Callable[[], None] | None = None
        self._stdin_close_pending = False
        self._closed = False
        self._owned_fds: list[int] = []
        self._capture_fds: dict[str, int] = {}
        self._captured: dict[str, bytes] = {}
        # Further FIFO sets whose paths close() removes (a reattach opens only some paths).
        self._cleanup: list[FIFOSet] = []
        self.results: list[CopyResult] = []

    # -- what the RPC needs -------------------------------------------------
    @property
    def stdin_path(self) -> str:
        """The stdin FIFO path for Create/Exec, or ``""``."""
        return (self.fifos.stdin or "") if self.fifos else ""

    @property
    def stdout_path(self) -> str:
        """The stdout FIFO path for Create/Exec, or ``""``."""
        return self.fifos.stdout if self.fifos else ""

    @property
    def stderr_path(self) -> str:
        """The stderr FIFO path for Create/Exec, or ``""`` (always for a terminal)."""
        return (self.fifos.stderr or "") if self.fifos else ""

    @property
    def terminal(self) -> bool:
        """Whether the process has a terminal (no stderr stream)."""
        return bool(self.fifos and self.fifos.terminal)

    # -- completion ---------------------------------------------------------
    @property
    def done(self) -> Future[None]:
        """Resolves when every output stream reached EOF and its bytes reached the sink."""
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the output is drained.

        Args:
            timeout: Seconds to wait, or None for no limit.

        Returns:
            True when drained, False on timeout.
        """
        try:
            self._done.result(timeout)
        except TimeoutError:
            return False
        except Exception:
            return True
        return True

    @property
    def error(self) -> BaseException | None:
        """Why the output was not delivered whole (a :class:`~pycontainerd.errors.SinkError`), once done.

        ``None`` while copying, and when every byte reached its sink.
        """
        if not self._done.done():
            return None
        return self._done.exception()

    @property
    def stdout_data(self) -> bytes | None:
        """Captured stdout (only with capture), available once drained."""
        return self._captured.get("stdout")

    @property
    def stderr_data(self) -> bytes | None:
        """Captured stderr (only with capture), available once drained."""
        return self._captured.get("stderr")

    def process_created(self) -> None:
        """Hook: the shim has set up the process's IO (after Tasks/Create, or an exec's Start).

        FIFO-based IO needs nothing here; a strategy whose ends come from the
        shim only once the process exists (the zero-copy handoff) connects now.
        """

    def process_exited(self) -> None:
        """Hook: the process has exited (its Wait RPC returned); must not block. Idempotent.

        FIFO-based IO needs nothing here (EOF ends its copying); the zero-copy
        handoff, which sees no EOF before Delete, drains its pipes now and then
        resolves :attr:`done`.
        """

    # -- stdin ---------------------------------------------------------------
    def set_stdin_closer(self, callback: Callable[[], None]) -> None:
        """Register what to do after the client's stdin end closes (the task's CloseIO).

        If stdin was already closed before the process existed, the callback
        runs now: the container must still get its EOF (containerd#4489).
        """
        with self._lock:
            self._on_stdin_closed = callback
            pending, self._stdin_close_pending = self._stdin_close_pending, False
        if pending:
            callback()

    def close_stdin(self) -> None:
        """Close the client's stdin write end, then run the stdin closer (CloseIO). Idempotent.

        Raises:
            ContainerdError: CloseIO failed (other than for a process already gone).
        """
        self._close_stdin(raise_errors=True)

    def _close_stdin(self, *, raise_errors: bool) -> None:
        with self._lock:
            if self._stdin_closed:
                return
            self._stdin_closed = True
        self._in_cancel.cancel()
        pipes = self._pipes
        feeder = next((t for t in self._threads if t.name.endswith("-stdin")), None)
        if feeder is not None and feeder is not threading.current_thread():
            if pipes is not None and pipes.stdin is not None:
                # Unblocks a feeder still waiting for the shim to open its reader.
                pipes.stdin.close()
            feeder.join()
        if pipes is not None and pipes.stdin is not None:
            pipes.stdin.close()
        with self._lock:
            callback = self._on_stdin_closed
            if callback is None:
                self._stdin_close_pending = True
        if callback is None:
            return
        try:
            callback()
        except Exception as exc:
            if raise_errors:
                raise
            # moby logs "failed to close container stdin" and carries on.
            _log.warning("failed to close the process's stdin: %s", exc)

    # -- teardown ------------------------------------------------------------
    def cancel(self) -> None:
        """Abort pending opens and stop the pumps promptly (bytes in flight may be lost)."""
        self._in_cancel.cancel()
        self._out_cancel.cancel()
        if self._pipes is not None:
            self._pipes.cancel()

    def close(self) -> None:
        """Cancel, join the pump threads, close every end and remove the FIFOs. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stdin_closed = True
        self.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        try:
            if self._pipes is not None:
                self._pipes.close()
            elif self.fifos is not None:
                self.fifos.close()
            for fifos in self._cleanup:
                fifos.close()
        finally:
            self._release()

    def detach(self) -> None:
        """Stop copying and close the client's ends but keep the FIFOs, so another reader can attach.

        Output the process writes afterwards waits in the FIFO (the shim holds
        its own ends) until someone attaches again.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stdin_closed = True
        self.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        if self._pipes is not None:
            for end in (self._pipes.stdin, self._pipes.stdout, self._pipes.stderr):
                if end is not None:
                    end.close()
        self._release()

    def _release(self) -> None:
        for fd in self._owned_fds + list(self._capture_fds.values()):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._owned_fds.clear()
        self._capture_fds.clear()
        self._in_cancel.close()
        self._out_cancel.close()
        if not self._done.done():
            self._done.set_result(None)

    def __enter__(self) -> ProcessIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wiring (used by the Stdio strategies) -------------------------------
    def _start_output(self, sinks: list[tuple[str, int]]) -> None:
        pipes = self._pipes
        assert pipes is not None
        pairs: list[tuple[str, int, int]] = []
        for name, sink in sinks:
            end = getattr(pipes, name)
            if end is not None:
                pairs.append((name, end.fileno(), sink))
        if not pairs:
            self._done.set_result(None)
            return
        thread = threading.Thread(target=self._pump_output, args=(pairs,), name="pcd-io-output", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _pump_output(self, pairs: list[tuple[str, int, int]]) -> None:
        try:
            # A sink that fails (a full disk, a closed pipe) must not stall the
            # container once its FIFO fills: the pump keeps reading that stream
            # into nothing, and the error is reported when the output is done.
            results = copy_streams(
                [(src, dst) for _, src, dst in pairs], cancel=self._out_cancel, discard_on_error=True
            )
            self.results = results
            for name, fd in self._capture_fds.items():
                self._captured[name] = _read_all(fd)
            failure = sink_error([name for name, _, _ in pairs], results)
        except BaseException as exc:
            self._done.set_exception(exc)
        else:
            if failure is not None:
                self._done.set_exception(failure)
            else:
                self._done.set_result(None)

    def _start_stdin(self, source: bytes | bytearray | memoryview | int) -> None:
        thread = threading.Thread(target=self._feed_stdin, args=(source,), name="pcd-io-stdin", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _feed_stdin(self, source: bytes | bytearray | memoryview | int) -> None:
        pipes = self._pipes
        assert pipes is not None
        assert pipes.stdin is not None
        try:
            fd = pipes.stdin.fileno()
            if isinstance(source, (bytes, bytearray, memoryview)):
                # Through a memfd, so that the native pump does the writing and a
                # close_stdin()/cancel() stops it even while the FIFO is full.
                src = _memfd_with(memoryview(source), "pcd-stdin")
                try:
                    copy(src, fd, cancel=self._in_cancel)
                finally:
                    os.close(src)
            else:
                copy(source, fd, cancel=self._in_cancel)
        except OSError:
            # The reader went away (process exited, or the open was cancelled):
            # nothing more can be delivered; EOF handling below still runs.
            pass
        finally:
            # On a terminal the end of the source is not an end of input (that is ^D,
            # 0x04, written to it): containerd's shim hangs the console up when its
            # stdin FIFO reaches EOF, which cuts off the output still to come. The
            # stdin end stays open until the IO is closed (close_stdin() still closes
            # it on request).
            if not self.terminal:
                self._close_stdin(raise_errors=False)


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


def _memfd_with(data: memoryview, name: str) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        offset = 0
        while offset < len(data):
            offset += os.write(fd, data[offset : offset + (16 << 20)])
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(fd: int) -> bytes:
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


class Stdio(abc.ABC):
    """How a process's stdio is wired. Pass one to ``new_task``/``exec``/``attach_task``."""

    #: Whether the process gets a stdin FIFO.
    stdin: bool = False
    #: Whether FIFOs are used at all (False: the shim discards output itself).
    needs_fifos: bool = True

    def fifo_set(self, directory: str, process_id: str, *, terminal: bool) -> FIFOSet | None:
        """The FIFO paths this strategy needs for a new process (None: no FIFOs)."""
        if not self.needs_fifos:
            return None
        return FIFOSet.new(directory, process_id, stdin=self.stdin, terminal=terminal)

    def open(self, fifos: FIFOSet | None) -> ProcessIO:
        """Create and open the FIFOs and start copying.

        Args:
            fifos: The set from :meth:`fifo_set`, or one rebuilt from ``Tasks/Get`` to reattach.

        Returns:
            The live IO; on any failure nothing is left behind.

        Raises:
            OSError: A sink or source descriptor is not open (``EBADF``), or the
                FIFOs could not be opened.
        """
        if fifos is None:
            io = ProcessIO(None, None)
            io.done.set_result(None)
            return io
        ends = self._claim()
        try:
            pipes = fifos.open()
        except BaseException:
            ends.close()
            raise
        io = ProcessIO(fifos, pipes)
        try:
            self._wire(io, pipes, ends)
        except BaseException:
            io.close()
            raise
        return io

    def _claim(self) -> ClaimedEnds:
        """Take the caller's ends (sinks, stdin source) before any FIFO is opened."""
        return ClaimedEnds()

    @abc.abstractmethod
    def _wire(self, io: ProcessIO, pipes: FIFOPipes, ends: ClaimedEnds) -> None:
        """Start the pumps for an opened set; ``io`` takes over ``ends``."""


class _NullStdio(Stdio):
    needs_fifos = False

    def _wire(self, io: ProcessIO, pipes: FIFOPipes, ends: ClaimedEnds) -> None:  # pragma: no cover
        raise AssertionError("null stdio has no FIFOs")


@dataclass
class ClaimedEnds:
    """The descriptors a strategy copies from and to, owned until a :class:`ProcessIO` takes them.

    Attributes:
        stdout: The stdout sink's descriptor, or -1.
        stderr: The stderr sink's descriptor, or -1.
        stdin: The stdin source: bytes, an owned descriptor, or ``None``.
        owned: Descriptors to close when the IO ends.
        capture: Memory files collecting captured streams, by stream name.
    """

    stdout: int = -1
    stderr: int = -1
    stdin: bytes | bytearray | memoryview | int | None = None
    owned: list[int] = field(default_factory=list)
    capture: dict[str, int] = field(default_factory=dict)

    def sink(self, name: str, sink: Sink | _Capture | None) -> int:
        """Resolve and own one output's destination (a capture file, /dev/null or a claimed fd)."""
        if isinstance(sink, _Capture):
            fd = os.memfd_create(f"pcd-{name}", os.MFD_CLOEXEC)
            self.capture[name] = fd
            return fd
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC) if sink is None else claim_fd(sink)
        self.owned.append(fd)
        return fd

    def hand_over(self, io: ProcessIO) -> None:
        """Make ``io`` the owner (it closes them when it is closed)."""
        io._owned_fds.extend(self.owned)
        io._capture_fds.update(self.capture)
        self.owned, self.capture = [], {}

    def close(self) -> None:
        """Close whatever is still owned here."""
        for fd in [*self.owned, *self.capture.values()]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.owned, self.capture = [], {}


class _PumpedStdio(Stdio):
    def __init__(self, stdin: Source | None, stdout: Sink | _Capture | None, stderr: Sink | _Capture | None,
                 *, log_path: str | None = None) -> None:
        _check_source(stdin)
        for sink in (stdout, stderr):
            if sink is not None and not isinstance(sink, _Capture):
                _check_sink(sink)
        self._stdin = stdin
        self.stdin = stdin is not None
        self._stdout = stdout
        self._stderr = stderr
        self._log_path = log_path

    def _claim(self) -> ClaimedEnds:
        ends = ClaimedEnds()
        try:
            if self._log_path is not None:
                log = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
                ends.owned.append(log)
                ends.stdout = ends.stderr = log
            else:
                ends.stdout = ends.sink("stdout", self._stdout)
                ends.stderr = ends.sink("stderr", self._stderr)
            source = self._stdin
            if source is None or isinstance(source, (bytes, bytearray, memoryview)):
                ends.stdin = source
            else:
                ends.stdin = claim_fd(source)
                ends.owned.append(ends.stdin)
        except BaseException:
            ends.close()
            raise
        return ends

    def _wire(self, io: ProcessIO, pipes: FIFOPipes, ends: ClaimedEnds) -> None:
        ends.hand_over(io)
        io._start_output([("stdout", ends.stdout), ("stderr", ends.stderr)])
        if ends.stdin is not None and pipes.stdin is not None:
            io._start_stdin(ends.stdin)


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


class _AttachStdio(Stdio):
    def __init__(self, callback: Callable[[DirectIO], None], *, stdin: bool) -> None:
        self._callback = callback
        self.stdin = stdin

    def _wire(self, io: ProcessIO, pipes: FIFOPipes, ends: ClaimedEnds) -> None:
        self._callback(DirectIO(pipes.stdin, pipes.stdout, pipes.stderr, io.terminal))
        io.done.set_result(None)


def null() -> Stdio:
    """Discard output and give no stdin (containerd's ``NullIO``: no FIFOs at all)."""
    return _NullStdio()


def streams(stdin: Source | None = None, stdout: Sink | None = None, stderr: Sink | None = None) -> Stdio:
    """Copy between the process and the caller's fds, files or sockets.

    Args:
        stdin: Bytes, or an fd/file/socket read to EOF; None: no stdin.
        stdout: Where stdout goes (None: discarded). Never closed by pycontainerd.
        stderr: Where stderr goes (None: discarded). Unused with a terminal.

    Returns:
        The strategy.
    """
    return _PumpedStdio(stdin, stdout, stderr)


def capture(stdin: Source | None = None, *, stdout: bool = True, stderr: bool = True) -> Stdio:
    """Collect output in memory: read it from ``io.stdout_data``/``io.stderr_data`` after the wait.

    Args:
        stdin: Optional stdin source.
        stdout: Capture stdout (else discard).
        stderr: Capture stderr (else discard).

    Returns:
        The strategy.
    """
    return _PumpedStdio(stdin, CAPTURE if stdout else None, CAPTURE if stderr else None)


def log_file(path: str, *, stdin: Source | None = None) -> Stdio:
    """Append stdout and stderr to a file (created 0640 if missing).

    Args:
        path: The log file.
        stdin: Optional stdin source.

    Returns:
        The strategy.
    """
    return _PumpedStdio(stdin, None, None, log_path=os.fspath(path))


def inherit(*, stdin: bool = False) -> Stdio:
    """Wire the process to this process's own fds 0, 1 and 2 (for command-line tools)."""
    return _PumpedStdio(0 if stdin else None, 1, 2)


def attach(callback: Callable[[DirectIO], None], *, stdin: bool = False) -> Stdio:
    """The libcontainerd way: hand the opened FIFO ends to ``callback``, which does the copying.

    Args:
        callback: Receives a :class:`DirectIO` once the ends are open (before the RPC).
        stdin: Whether to create a stdin FIFO.

    Returns:
        The strategy.
    """
    return _AttachStdio(callback, stdin=stdin)
