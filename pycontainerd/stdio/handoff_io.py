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
returns, and by ``delete()``) switches the pump to draining: it copies until
both pipes are empty and every byte it read is written, then stops (the
pump's drain mode, one native thread for both pipes); only then does
``wait()`` resolve. For a task's init process in
its own pid namespace this is every byte: when it has exited, every process of
the container is dead, so the pipes hold all that is left. For an **exec** (or
an init process sharing a pid namespace), output a background child writes
after the process's exit is not delivered to this handle: it stays in the pipe
(and eventually blocks the child) until the exec is deleted. The FIFO path
would instead wait for that child (and raise ``DrainTimeoutError``).

Where bytes can be lost: nowhere at exit (the drain ends a stream only when
nothing of it is left in the pipe or the pump's buffer, whatever the sink).
A client that is killed or detaches mid-stream leaves the unread rest in the
pipe: the helper keeps its own copies of the read ends, and
:meth:`Container.attach_task` with any sink strategy connects again (the
socket path is in the ``binary://`` URI that Tasks/Get reports) and receives
the rest exactly once. Bytes a killed client had already read into the pump's
buffer (sinks splice cannot feed: ttys, sockets, append-only files) are lost
with it, as bytes in a FIFO client's buffer are.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import urllib.parse

from pycontainerd import _rules
from pycontainerd.stdio import handoff_helper
from pycontainerd.stdio.process_io import IOConfig, ProcessIO
from pycontainerd.stdio.pump import CancelToken
from pycontainerd.stdio.sinks import Ends, Outputs
from pycontainerd.stdio.strategy import RECEIVE_TIMEOUT, Stdio

__all__ = [
    "SOCKET_SUFFIX",
    "HandoffIO",
    "HandoffUnavailableError",
    "available",
    "remove_stale_socket",
    "socket_from_uri",
    "socket_path",
    "unavailable_reason",
]

#: The helper's socket is ``<bundle dir>/<process id><SOCKET_SUFFIX>``, beside the FIFOs' names.
SOCKET_SUFFIX = "-handoff.sock"
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


def remove_stale_socket(path: str) -> None:
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
        # Cancelled at the process's exit: the pump then copies until the pipes are empty.
        self._drain = CancelToken()

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
        remove_stale_socket(socket_path)
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
            # One native thread serves both pipes, as for FIFOs.
            self._start_output([("stdout", pipes.stdout), ("stderr", pipes.stderr)], drain=self._drain)

    def process_exited(self) -> None:
        """The process has exited: copy what its pipes still hold, then finish. Idempotent, never blocks."""
        self._drain.cancel()

    def _release_transport(self, *, keep: bool) -> None:
        # Runs after every copying thread was joined, so no copy uses these fds; the
        # helper and its socket stay either way (until the process is deleted).
        with self._lock:
            received, self._received = self._received, None
        if received is not None:
            received.close()
        self._drain.close()
