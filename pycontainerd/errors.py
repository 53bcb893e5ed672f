"""Errors raised by pycontainerd: one class per gRPC status, mapped in one place.

Every RPC failure passes through :func:`from_rpc_error`, which picks the class for the
status code, keeps the daemon's message as :attr:`ContainerdError.details` and is raised
``from`` the original :class:`grpc.RpcError` (available as ``__cause__``).

The classes mirror containerd's ``errdefs``. Two mix in a builtin with the same meaning
(``NotFoundError`` is a :class:`LookupError`, ``InvalidArgumentError`` a :class:`ValueError`);
none derives from :class:`OSError`, so ``except OSError`` keeps meaning "a local syscall
failed" and never "the daemon said no".

Example:
    >>> try:
    ...     client.api.containers.get("missing")
    ... except errors.NotFoundError as err:
    ...     print(err.details)
    container "missing": not found
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from pycontainerd.api.types import ExitStatus

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CanceledError",
    "ConflictError",
    "ConnectionLostError",
    "ContainerError",
    "ContainerdError",
    "DataLossError",
    "DeadlineExceededError",
    "DrainTimeoutError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "SinkError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "from_rpc_error",
]


class ContainerdError(Exception):
    """Root of every error pycontainerd raises for a daemon refusal or a broken call.

    Attributes:
        code: The gRPC status code, or ``None`` for errors raised on the client side
            (for example :class:`ContainerError`).
        details: The server's message, unchanged (for example ``container "x": not found``).
    """

    code: grpc.StatusCode | None = None

    def __init__(self, details: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.details


class CanceledError(ContainerdError):
    """The call was cancelled (by the caller, or the channel was closed)."""

    code = grpc.StatusCode.CANCELLED


class UnknownError(ContainerdError):
    """The daemon reported an error without a class (errdefs "unknown"); also the fallback."""

    code = grpc.StatusCode.UNKNOWN


class InvalidArgumentError(ContainerdError, ValueError):
    """The request was malformed (an empty or invalid id, a missing spec, ...)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(ContainerdError):
    """The call's timeout expired before the daemon answered."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(ContainerdError, LookupError):
    """The container, task, process, namespace or object does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(ContainerdError):
    """An object with that id already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(ContainerdError):
    """The daemon refused the caller, or the socket is not accessible to this user."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(ContainerdError):
    """A limit was hit (for example a message larger than the 16 MiB limit)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(ContainerdError):
    """The object is in the wrong state for the call (for example deleting a running task)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ConflictError(FailedPreconditionError):
    """A concurrent change conflicted (errdefs "conflict": FailedPrecondition ending in "conflict")."""


class AbortedError(ContainerdError):
    """The operation was aborted, typically by a concurrency conflict."""

    code = grpc.StatusCode.ABORTED


class OutOfRangeError(ContainerdError):
    """A value (an offset, a size) is outside the valid range."""

    code = grpc.StatusCode.OUT_OF_RANGE


class UnimplementedError(ContainerdError):
    """The daemon does not implement the call (too old, or the plugin is disabled)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(ContainerdError):
    """The daemon hit an internal error."""

    code = grpc.StatusCode.INTERNAL


class UnavailableError(ContainerdError):
    """The daemon could not be reached (no socket, not serving, or the connection broke)."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLossError(ContainerdError):
    """Unrecoverable data loss or corruption."""

    code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(ContainerdError):
    """The call lacked valid credentials."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ConnectionLostError(UnavailableError):
    """A stream (Wait, Subscribe) broke because the connection to the daemon was lost.

    Retriable: re-issue the call once the daemon serves again, then reconcile state
    (containerd does not replay events or exits missed in between).
    """


class ContainerError(ContainerdError):
    """A process run with ``check=True`` exited with a non-zero status.

    Attributes:
        container_id: The container the process ran in.
        exit_status: The exit status (128 + signal number when killed by a signal).
        stderr: The captured standard error, if it was captured.
    """

    def __init__(self, container_id: str, exit_status: int, stderr: bytes | None = None) -> None:
        super().__init__(f"container {container_id!r} exited with status {exit_status}")
        self.container_id = container_id
        self.exit_status = exit_status
        self.stderr = stderr


class DrainTimeoutError(ContainerdError):
    """A process exited but its stdio was still held open after the drain timeout.

    Typically a background child inherited stdout/stderr and keeps the FIFOs open.

    Attributes:
        status: How the process exited (it did exit; only its output was cut off), or
            ``None`` when not known.
    """

    def __init__(
        self, details: str, *, status: ExitStatus | None = None, code: grpc.StatusCode | None = None
    ) -> None:
        super().__init__(details, code=code)
        self.status = status


class SinkError(OSError):
    """A process's stdout or stderr could not be delivered: its sink failed.

    The sink refused a write (``ENOSPC`` on a full disk, ``EBADF`` for a closed
    or read-only descriptor, ``EPIPE`` when a pipe's reader left, ``EIO``, ...).
    From then on pycontainerd kept reading that stream and discarded it, so the
    process never blocked on a full pipe and ran to its end; the other stream
    kept flowing to its own sink. The error is raised once the process has
    exited, by ``Process.wait()``'s future, :func:`pycontainerd.run` (after the
    container is removed) and the command line (one line, non-zero exit), so
    that lost output is never reported as success.

    It is an :class:`OSError`: ``errno`` and ``strerror`` are the sink's, and
    ``filename`` names the stream.

    Attributes:
        stream: ``"stdout"`` or ``"stderr"`` (the first that failed).
        delivered: Bytes of that stream the sink took before it failed.
        dropped: Bytes of that stream read afterwards and discarded.
        status: How the process exited (set by ``wait()``), or ``None``.
    """

    def __init__(self, err: int, stream: str, *, delivered: int = 0, dropped: int = 0,
                 status: ExitStatus | None = None) -> None:
        super().__init__(err, os.strerror(err), stream)
        self.stream = stream
        self.delivered = delivered
        self.dropped = dropped
        self.status = status

    def __str__(self) -> str:
        text = f"{self.stream} could not be delivered: {self.strerror} (errno {self.errno})"
        if self.delivered or self.dropped:
            text += f"; {self.delivered} bytes delivered, {self.dropped} discarded"
        if self.status is not None:
            text += f"; the process exited with status {self.status.code}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_sink_error, (self.errno, self.stream, self.delivered, self.dropped, self.status))


def _rebuild_sink_error(err: int, stream: str, delivered: int, dropped: int,
                        status: ExitStatus | None) -> SinkError:
    return SinkError(err, stream, delivered=delivered, dropped=dropped, status=status)


# The ONE table from status code to class; a unit test checks it covers grpc.StatusCode.
_BY_CODE: dict[grpc.StatusCode, type[ContainerdError]] = {
    grpc.StatusCode.CANCELLED: CanceledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def class_for(code: grpc.StatusCode, details: str = "") -> type[ContainerdError]:
    """The error class for a status code and message, as :func:`from_rpc_error` picks it.

    Args:
        code: A gRPC status code. ``OK`` has no error class and maps to
            :class:`UnknownError` (a failed call that claims success is not trusted).
        details: The server's message; errdefs marks a conflict only by the suffix
            ``"conflict"`` on a FailedPrecondition.

    Returns:
        The class to raise.
    """
    cls = _BY_CODE.get(code, UnknownError)
    if cls is FailedPreconditionError and details.rstrip().endswith("conflict"):
        return ConflictError
    return cls


def from_rpc_error(err: grpc.RpcError, *, context: str | None = None) -> ContainerdError:
    """Map a failed gRPC call to its :class:`ContainerdError` subclass.

    The caller raises the result ``from err``. This function returns the exception and
    never raises it, so the traceback points at the call site.

    Args:
        err: The exception grpcio raised (a ``grpc.Call`` for unary calls and streams).
        context: Optional text appended to the server's message when it alone would not
            help (for example the socket path for Unavailable).

    Returns:
        The mapped exception with ``code`` and ``details`` set.
    """
    code_fn = getattr(err, "code", None)
    details_fn = getattr(err, "details", None)
    code = code_fn() if callable(code_fn) else None
    details = details_fn() if callable(details_fn) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    text = details if isinstance(details, str) and details else str(err) or code.name.lower()
    if context:
        text = f"{text} ({context})"
    cls = class_for(code, details if isinstance(details, str) else "")
    return cls(text, code=code)
