"""The native stdio pump: copy bytes between file descriptors until EOF, GIL released.

:func:`copy` moves one source to one destination; :func:`copy_streams` serves
several ``(src, dst)`` pairs from one native epoll loop, so a process's stdout
and stderr cost one thread, not two, and one pair's failure (``EPIPE`` on its
sink, say) does not stop the others. Both can be cancelled from another
thread with a :class:`CancelToken`.

How bytes move (chosen per pair, see ``csrc/pump.c``):

* ``splice(2)`` from a pipe or FIFO into a pipe, a regular file, ``/dev/null``
  or a non-blocking stream socket, and from a non-blocking stream socket into
  a pipe. Once a pair has had to wait, or has moved 1 MiB, its pipes are
  enlarged to 1 MiB (``F_SETPIPE_SZ``, capped by ``/proc/sys/fs/pipe-max-size``;
  a refusal is ignored): fewer wake-ups per MiB for the writer and the pump.
* ``read``/``write`` through a 1 MiB buffer otherwise: regular-file sources
  (splicing from a file hands its pages to the reader by reference, so a
  later write to the file could change bytes already copied), ttys, blocking
  sockets, message sockets, and wherever the kernel refuses splice (an
  ``O_APPEND`` file, an old kernel).

Guarantees:

* Descriptors are never closed and their flags never changed; blocking and
  ``O_NONBLOCK`` descriptors both work. The pump must be the only reader of
  its sources.
* A source is read only once the kernel reports it readable or hung up: a
  FIFO read end opened ``O_NONBLOCK`` before any writer exists is not taken
  for EOF; EOF comes only after a writer connected and left.
* At EOF every byte read has been written. Short writes (a slow non-blocking
  pipe, a ``SOCK_SEQPACKET`` socket) are retried; ``EINTR`` is retried.
* ``EPIPE`` is reported as :class:`BrokenPipeError` and never kills the
  process, even with ``SIGPIPE`` at ``SIG_DFL``: the copying thread blocks
  ``SIGPIPE`` while it copies and discards the one its own write raised.
* Cancel returns promptly, even with a stalled destination, for pipes,
  FIFOs, sockets, regular files and ``O_NONBLOCK`` descriptors. A *blocking*
  tty (or other character device) destination that stops draining can hold
  a cancel until it drains; open such a device ``O_NONBLOCK``.
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from pycontainerd._native import os_error
from pycontainerd._native import pump as _pump


class CancelToken:
    """A one-shot, thread-safe cancel signal for :func:`copy` and :func:`copy_streams`.

    Backed by an eventfd that the native loop watches: :meth:`cancel` makes it
    readable for good, so every copy using the token (running or started
    later) stops. Close it only after the copies using it have returned.
    """

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._cancelled = False
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop every copy using this token; idempotent, also after :meth:`close`."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            if self._fd >= 0:
                os.eventfd_write(self._fd, 1)

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd < 0

    def fileno(self) -> int:
        """Return the eventfd the native loop polls.

        Raises:
            ValueError: The token is closed.
        """
        fd = self._fd
        if fd < 0:
            raise ValueError("CancelToken is closed")
        return fd

    def close(self) -> None:
        """Close the eventfd; idempotent."""
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> CancelToken:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("cancelled" if self._cancelled else "armed")
        return f"<CancelToken {state}>"


@dataclass(frozen=True)
class CopyResult:
    """How one ``(src, dst)`` pair of :func:`copy_streams` ended.

    Attributes:
        nbytes: Bytes written to the destination (exact, also after an error
            or a cancel; bytes read but not yet written when a pair failed or
            was cancelled are not counted).
        error: The error that ended the pair (``BrokenPipeError`` for a sink
            without reader, ...), or ``None`` for EOF or a cancel.
        cancelled: The copy was cancelled before this pair reached EOF or
            failed.
        dropped: With ``discard_on_error``: bytes read from the source after
            (or while) the destination failed, and so never delivered.
    """

    nbytes: int
    error: OSError | None
    cancelled: bool
    dropped: int = 0


def _fd(value: int) -> int:
    fd = operator.index(value)
    if fd < 0:
        raise ValueError(f"not a file descriptor: {fd}")
    return fd


def copy_streams(
    pairs: Sequence[tuple[int, int]], *, cancel: CancelToken | None = None, discard_on_error: bool = False,
    drain: CancelToken | None = None,
) -> list[CopyResult]:
    """Copy every ``(src_fd, dst_fd)`` pair until EOF, all in one native loop, in this thread.

    Returns when every pair has reached EOF or failed, or when ``cancel`` is
    cancelled. Several pairs may share a destination (stdout and stderr into
    one file): each write is whole-or-partial per pair, the destination is
    never closed, so the caller closes it once, after this returns.

    Args:
        pairs: ``(source fd, destination fd)`` pairs.
        cancel: Stops the copy from another thread.
        discard_on_error: When a pair's destination fails (``EPIPE``,
            ``ENOSPC``, ``EBADF``, ...), keep reading its source to EOF and drop
            the bytes, so that the process writing the source never blocks on a
            full pipe; the error is still reported in the pair's result, with
            the bytes dropped. Without it, a failed pair stops reading.
        drain: Once cancelled, each pair ends when its source holds no more
            bytes and every byte read was written (as at EOF: not ``cancelled``).
            For sources that see no EOF when their writer is done (the handoff's
            pipes, whose write ends the shim keeps until Delete). Must be
            another token than ``cancel``.

    Returns:
        One :class:`CopyResult` per pair, in order.

    Raises:
        TypeError: A descriptor is not an integer.
        ValueError: A descriptor is negative, ``cancel`` or ``drain`` is
            closed, or both are the same token.
        OSError: The loop itself failed (out of memory); per-pair errors
            are in the results instead.

    .. versionadded:: 0.1
    """
    if drain is not None and drain is cancel:
        raise ValueError("cancel and drain must be different tokens")
    fds = [(_fd(src), _fd(dst)) for src, dst in pairs]
    cancel_fd = -1 if cancel is None else cancel.fileno()
    drain_fd = -1 if drain is None else drain.fileno()
    flags = _pump.DISCARD_ON_ERROR if discard_on_error else 0
    cancelled, outcomes = _pump.pump(fds, cancel_fd, flags, drain_fd)
    return [
        CopyResult(nbytes, os_error(err) if err else None, cancelled and not done, dropped)
        for nbytes, err, done, dropped in outcomes
    ]


def copy(src_fd: int, dst_fd: int, *, cancel: CancelToken | None = None) -> int:
    """Copy ``src_fd`` into ``dst_fd`` until EOF, with the GIL released.

    A cancel is not an error: the call returns the bytes written so far and
    ``cancel.cancelled`` tells the two endings apart (use
    :func:`copy_streams` to get the count together with an error).

    Args:
        src_fd: The source descriptor (pipe, FIFO, file, socket, tty, ...).
        dst_fd: The destination descriptor.
        cancel: Stops the copy from another thread.

    Returns:
        The number of bytes written to ``dst_fd``.

    Raises:
        BrokenPipeError: ``dst_fd`` has no reader any more.
        OSError: Any other read or write error (the PEP 3151 subclass).
        TypeError: A descriptor is not an integer.
        ValueError: A descriptor is negative, or ``cancel`` is closed.

    .. versionadded:: 0.1
    """
    (result,) = copy_streams([(src_fd, dst_fd)], cancel=cancel)
    if result.error is not None:
        raise result.error
    return result.nbytes


__all__ = ["CancelToken", "CopyResult", "copy", "copy_streams"]
