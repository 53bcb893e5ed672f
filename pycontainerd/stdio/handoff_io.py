"""The handoff transport: splice straight from the container's own stdout/stderr pipes.

Any strategy with sinks (:func:`~pycontainerd.stdio.streams`,
:func:`~pycontainerd.stdio.capture`, :func:`~pycontainerd.stdio.log_file`,
:func:`~pycontainerd.stdio.inherit`) can travel this way (chosen with
:func:`~pycontainerd.stdio.handoff`). For a process without stdin and without
a terminal, the shim then runs ``pcd-handoff`` as the process's logging binary
(stdout and stderr URI ``binary://...?socket=<bundle>/<process id>-handoff.sock``,
see :mod:`pycontainerd.stdio.handoff_helper`) instead of copying the
container's pipes into FIFOs. The client receives the pipes' read ends over
that socket and the native pump splices them into the strategy's sinks: the
shim copies nothing. The FIFO transport delivers the same bytes to the same
sinks.

When handoff does not apply (:func:`unavailable_reason`, checked before anything exists):

* the process has a **stdin** source: with a logging binary the shim connects
  no stdin at all (the process would read ``/dev/null``), so such a process
  keeps the FIFO path; likewise a **terminal**, a strategy without sinks
  (``null``, ``attach``) and a package whose helper is not built. With the
  transport required (``fallback=False``) these raise
  :class:`HandoffUnavailableError` instead of using FIFOs.
* The runtime is not checked (a strategy cannot see it): use handoff only
  with the runc shims (``io.containerd.runc.v2``/``v1``), which support
  logging binaries; :func:`pycontainerd.run` does.

How the end of the output is found. The shim keeps the pipes' write ends until
the process is **deleted**, so the client sees no EOF at exit. Instead,
:meth:`HandoffIO.process_exited` (called by ``Process.wait()`` when the Wait RPC
returns, and by ``delete()``) makes the pump copy until both pipes are empty
and then stop; only then does ``wait()`` resolve. For a task's init process in
its own pid namespace this is every byte: when it has exited, every process of
the container is dead, so the pipes hold all that is left. For an **exec** (or
an init process sharing a pid namespace), output a background child writes
after the process's exit is not delivered to this handle: it stays in the pipe
(and eventually blocks the child) until the exec is deleted. The FIFO path
would instead wait for that child (and raise ``DrainTimeoutError``).

Where bytes can be lost: nowhere at exit. The pump copies pipes into pipes,
regular files (not ``O_APPEND``/``O_DIRECT``) and ``/dev/null`` with splice
only, so a stop never strands bytes in a buffer; any other sink (ttys,
sockets, append-only log files) is fed through a relay pipe that is closed
(EOF) once the container's pipe is empty. A client that is killed or detaches
mid-stream leaves the unread rest in the pipe: the helper keeps its own copies
of the read ends, and :meth:`Container.attach_task` with any sink strategy
connects again (the socket path is in the ``binary://`` URI that Tasks/Get
reports) and receives the rest exactly once. Bytes a killed client had already
moved into a relay pipe (only with the sinks above that need one) are lost
with it, as bytes in a FIFO client's buffer are.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import sys
import termios
import threading
import time
import urllib.parse

from pycontainerd import _rules
from pycontainerd.stdio import handoff_helper
from pycontainerd.stdio.process_io import IOConfig, ProcessIO
from pycontainerd.stdio.pump import CancelToken, CopyResult, copy_streams
from pycontainerd.stdio.sinks import Ends, Outputs
from pycontainerd.stdio.strategy import RECEIVE_TIMEOUT, Stdio

__all__ = [
    "SOCKET_SUFFIX",
    "HandoffIO",
    "HandoffUnavailableError",
    "available",
    "socket_from_uri",
    "socket_path",
    "unavailable_reason",
]

#: The helper's socket is ``<bundle dir>/<process id><SOCKET_SUFFIX>``, beside the FIFOs' names.
SOCKET_SUFFIX = "-handoff.sock"
# Exit drain: how often to look whether the container's pipes are empty yet
# (doubling from the first value; nearly always the first look succeeds).
_POLL_FIRST = 0.0002
_POLL_MAX = 0.02
_NAME_MAX = _rules.NAME_MAX


class HandoffUnavailableError(ValueError):
    """Handoff was required (``fallback=False``) but cannot serve this process.

    Attributes:
        reason: Why (stdin, terminal, no sinks, helper not built).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"zero-copy handoff does not apply: {reason}")
        self.reason = reason


def available() -> bool:
    """Whether the ``pcd-handoff`` helper is built (handoff can be used at all)."""
    try:
        handoff_helper.helper_path()
    except handoff_helper.HelperNotBuiltError:
        return False
    return True


def socket_path(directory: str, process_id: str) -> str:
    """The helper's socket path for a process: ``<directory>/<process_id>-handoff.sock``.

    Args:
        directory: The container's bundle dir (absolute).
        process_id: The container id (init process) or the exec id.

    Returns:
        The path.

    Raises:
        ValueError: ``directory`` is relative or ``process_id`` cannot be a file name.
    """
    if not os.path.isabs(directory) or "\0" in directory:
        raise ValueError(f"directory must be an absolute path without NUL bytes: {directory!r}")
    name = process_id + SOCKET_SUFFIX
    if (not process_id or process_id in (".", "..") or "/" in process_id or "\0" in process_id
            or len(os.fsencode(name)) > _NAME_MAX):
        raise ValueError(f"invalid process id for a socket name: {process_id!r}")
    return os.path.join(directory, name)


def socket_from_uri(uri: str) -> str | None:
    """The socket path in a pcd-handoff ``binary://`` stdio URI (as Tasks/Get reports it).

    Args:
        uri: A process's stdout as given at create/exec.

    Returns:
        The absolute socket path, or ``None`` when ``uri`` is not a pcd-handoff
        URI (a FIFO path, another logging binary, a ``file://`` URI, ...).
    """
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme not in ("binary", "binary-v2"):
        return None
    if os.path.basename(urllib.parse.unquote(parts.path)) != handoff_helper.HELPER_NAME:
        return None
    # The shim passes only the first value of a repeated key to the helper.
    values = urllib.parse.parse_qs(parts.query).get("socket")
    if not values or not os.path.isabs(values[0]) or "\0" in values[0]:
        return None
    return values[0]


def unavailable_reason(stdio: Stdio, *, terminal: bool) -> str | None:
    """Why the handoff cannot carry a process's stdio (``None``: it can).

    Args:
        stdio: The process's strategy.
        terminal: Whether the process has a terminal.

    Returns:
        The reason, or ``None``.
    """
    if terminal:
        return "the process has a terminal (the shim runs a logging binary only without one)"
    if stdio.stdin:
        return "the process has stdin (with a logging binary the shim connects none: use FIFOs)"
    if stdio.outputs is None:
        return f"{stdio!r} has no sinks to copy into (use streams/capture/log_file/inherit)"
    if not available():
        return f"{handoff_helper.HELPER_NAME} is not built"
    return None


def _unread(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD; taken under the pipe's lock, so a splice is never half-seen)."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder, signed=True)


def _splices_losslessly(fd: int) -> bool:
    """Whether the pump moves pipe data into ``fd`` with splice alone.

    Then nothing ever waits in the pump's own buffer, so stopping it once the
    source pipe is empty cannot strand a byte. Conservative: a sink for which
    the pump might fall back to read/write (a refused or ambiguous splice)
    gets a relay pipe instead.
    """
    try:
        st = os.fstat(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return False  # a closed sink: the relayed copy reports its error
    if stat.S_ISFIFO(st.st_mode):
        return True
    if stat.S_ISREG(st.st_mode):
        # splice into an O_APPEND file is refused (EINVAL); O_DIRECT needs alignment.
        return not flags & (os.O_APPEND | os.O_DIRECT)
    if stat.S_ISCHR(st.st_mode):
        return (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)  # /dev/null
    return False


def _remove_stale_socket(path: str) -> None:
    """Remove a socket left at ``path`` by a helper that was killed (nobody listens on it).

    The helper never replaces an existing file, so a leftover would make it
    fail. A socket somebody listens on belongs to a live process with this id:
    it stays (the Create/Exec RPC then fails with a conflict).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        probe.setblocking(False)
        try:
            handoff_helper.connect(probe, path)
        except ConnectionRefusedError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        except OSError:
            pass


class _Stream:
    """One output stream: container pipe -> sink, or -> relay pipe -> sink."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reader: threading.Thread | None = None  # reads the container's pipe
        self.writer: threading.Thread | None = None  # relay -> sink, when relayed
        self.result = CopyResult(0, None, False)

    @property
    def reading(self) -> bool:
        return self.reader is not None and self.reader.is_alive()

    def join(self) -> None:
        for thread in (self.reader, self.writer):
            if thread is not None:
                thread.join()


class HandoffIO(ProcessIO):
    """The live stdio of a process whose stdout/stderr come from the ``pcd-handoff`` helper.

    Made by :meth:`open` (new process) or :meth:`reattach`. The pipes are
    received in :meth:`process_created` (after Tasks/Create or the exec's
    Start, once the helper listens); the output is complete in :attr:`done`
    after :meth:`process_exited` (see the module docstring).

    Attributes:
        socket_path: The helper's socket.
        uri: The ``binary://`` URI given as the process's stdout and stderr.
    """

    def __init__(self, socket_path: str, uri: str, ends: Ends, *,
                 timeout: float | None = RECEIVE_TIMEOUT) -> None:
        # With a logging binary the shim connects no stdin; stderr carries the same
        # URI as stdout (the shim reads only stdout's; containerd's cio.LogURI sets both).
        super().__init__(IOConfig(stdin="", stdout=uri, stderr=uri, terminal=False), ends)
        self.socket_path = socket_path
        self.uri = uri
        self._timeout = timeout
        self._received: handoff_helper.HandoffPipes | None = None
        self._connecting = False
        self._relay_fds: list[int] = []
        # Stops the reads of the container's pipes: at the exit drain's end or on cancel.
        self._drain = CancelToken()
        self._exited = threading.Event()

    @classmethod
    def open(cls, outputs: Outputs, socket_path: str, *,
             timeout: float | None = RECEIVE_TIMEOUT) -> HandoffIO:
        """Prepare the handoff of a new process: claim the sinks and name the helper's socket.

        The pipes are received later, in :meth:`process_created`.

        Args:
            outputs: Where stdout and stderr go.
            socket_path: Where the helper will listen (:func:`socket_path`).
            timeout: Seconds to wait for the helper's answer when connecting.

        Returns:
            The IO, whose :attr:`config` carries the helper's ``binary://`` URI.

        Raises:
            OSError: A sink descriptor is not open, or the log file cannot be opened.
        """
        _remove_stale_socket(socket_path)
        uri = handoff_helper.binary_uri(socket_path, owner_uid=os.geteuid() or None)
        return cls(socket_path, uri, Ends.claim(outputs), timeout=timeout)

    @classmethod
    def reattach(cls, outputs: Outputs, uri: str, *, timeout: float | None = RECEIVE_TIMEOUT) -> HandoffIO:
        """Reconnect to the helper of a running process and resume copying where the last reader stopped.

        Args:
            outputs: Where the output goes now.
            uri: The process's stdout as Tasks/Get reports it (a pcd-handoff URI).
            timeout: Seconds to wait for the helper's answer.

        Returns:
            The live IO (copying).

        Raises:
            ValueError: ``uri`` is not a pcd-handoff URI.
            FileNotFoundError: The helper's socket is gone (the helper was killed).
            HandoffError: The helper refused or answered wrongly.
        """
        path = socket_from_uri(uri)
        if path is None:
            raise ValueError(f"not a {handoff_helper.HELPER_NAME} URI: {uri!r}")
        io = cls(path, uri, Ends.claim(outputs), timeout=timeout)
        try:
            io.process_created()
        except BaseException:
            io.close()
            raise
        return io

    @property
    def helper_pid(self) -> int:
        """The helper's pid as seen when the pipes were received (0 before; diagnostics only)."""
        received = self._received
        return received.helper_pid if received is not None else 0

    # -- the process's lifecycle ---------------------------------------------
    def process_created(self) -> None:
        """Connect to the helper, receive the container's pipes and start copying. Idempotent.

        Raises:
            FileNotFoundError: The helper's socket is missing (it failed to start or is gone).
            HandoffError: The helper refused or answered wrongly.
            TimeoutError: No answer in time.
        """
        with self._lock:
            if self._closed or self._connecting:
                return
            self._connecting = True
        try:
            pipes = handoff_helper.receive(self.socket_path, timeout=self._timeout)
        except BaseException:
            with self._lock:
                self._connecting = False
            raise
        with self._lock:
            if self._closed:
                pipes.close()
                return
            self._received = pipes
            self._spawn("pcd-handoff-io", self._supervise, pipes.stdout, pipes.stderr)

    def process_exited(self) -> None:
        """The process has exited: copy what its pipes still hold, then finish. Idempotent, never blocks."""
        self._exited.set()

    # -- the transport hooks -------------------------------------------------
    def _cancel_transport(self) -> None:
        # Bytes still in the pipes stay there for a later reader.
        self._drain.cancel()
        self._exited.set()

    def _release_transport(self, *, keep: bool) -> None:
        # Runs after every copying thread was joined, so no copy uses these fds; the
        # helper and its socket stay either way (until the process is deleted).
        with self._lock:
            received, self._received = self._received, None
            relays, self._relay_fds = self._relay_fds, []
        if received is not None:
            received.close()
        for fd in relays:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._drain.close()

    # -- copying -------------------------------------------------------------
    def _supervise(self, out_src: int, err_src: int) -> None:
        streams: list[_Stream] = []
        try:
            streams.append(self._start_stream("stdout", out_src, self._ends.stdout))
            streams.append(self._start_stream("stderr", err_src, self._ends.stderr))
            self._exited.wait()
            self._drain_at_exit((out_src, err_src), streams)
            for stream in streams:
                stream.join()
        except BaseException as exc:  # handed to the waiter
            self._drain.cancel()
            self._out_cancel.cancel()
            for stream in streams:
                stream.join()
            self._fail(exc)
        else:
            self._finish([stream.name for stream in streams], [stream.result for stream in streams])

    def _drain_at_exit(self, sources: tuple[int, int], streams: list[_Stream]) -> None:
        # No writer is left (see the module docstring), so once both pipes are
        # empty every byte has left them: spliced into the sink or a relay pipe.
        delay = _POLL_FIRST
        while not self._drain.cancelled and any(stream.reading for stream in streams):
            if all(_unread(fd) == 0 for fd in sources):
                self._drain.cancel()
                return
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _start_stream(self, name: str, src: int, sink: int) -> _Stream:
        stream = _Stream(name)
        if _splices_losslessly(sink):
            stream.reader = self._spawn(f"pcd-handoff-{name}", self._copy_direct, stream, src, sink)
            return stream
        relay_r, relay_w = os.pipe2(os.O_CLOEXEC)
        self._relay_fds.append(relay_r)
        try:
            stream.writer = self._spawn(f"pcd-handoff-{name}-out", self._copy_relayed, stream, relay_r, sink)
            stream.reader = self._spawn(f"pcd-handoff-{name}-in", self._copy_to_relay, src, relay_w)
        except BaseException:
            os.close(relay_w)
            raise
        return stream

    # A sink that fails must not stall the container once its pipe fills: the
    # pump keeps reading that stream into nothing (discard_on_error) and the
    # error reaches the waiter through sink_error().
    def _copy_direct(self, stream: _Stream, src: int, sink: int) -> None:
        (stream.result,) = copy_streams([(src, sink)], cancel=self._drain, discard_on_error=True)

    def _copy_to_relay(self, src: int, relay_w: int) -> None:
        try:
            copy_streams([(src, relay_w)], cancel=self._drain, discard_on_error=True)
        finally:
            # EOF for the relay's reader: everything before it is in the relay pipe.
            os.close(relay_w)

    def _copy_relayed(self, stream: _Stream, relay_r: int, sink: int) -> None:
        (stream.result,) = copy_streams([(relay_r, sink)], cancel=self._out_cancel, discard_on_error=True)
