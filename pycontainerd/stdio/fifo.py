"""FIFO sets: a process's stdio FIFOs, created safely and opened without ever blocking.

This is libcontainerd's ``newFIFOSet``/``newDirectIO`` (moby) on top of
containerd's ``cio``/``fifo`` semantics:

* :meth:`FIFOSet.new` names ``<dir>/<process_id>-stdin`` (only with stdin),
  ``-stdout`` (always) and ``-stderr`` (only without a terminal).
* :meth:`FIFOSet.create` makes them with mode 0600 whatever the umask; an
  existing FIFO is reused, anything else at a path is refused.
* :meth:`FIFOSet.open` returns the client ends at once. The read ends
  (stdout, stderr) are opened ``O_NONBLOCK`` and never wait for a writer.
  The stdin write end cannot be opened before the shim opens its reader
  (``O_WRONLY|O_NONBLOCK`` fails with ``ENXIO``), so a daemon thread performs
  the blocking open with the GIL released; :meth:`PendingFIFO.fileno` waits
  for it and :meth:`PendingFIFO.cancel` aborts it, leaving no thread or fd.

Example::

    with FIFOSet.new(bundle, "init", stdin=True, terminal=False).open() as pipes:
        ...  # send Tasks/Create with pipes.fifos.stdin/stdout/stderr
        stdin_fd = pipes.stdin.fileno(timeout=30)

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Final

from pycontainerd import _rules
from pycontainerd._native import fifo as _fifo

#: Mode of every FIFO :meth:`FIFOSet.create` makes (exact, umask-independent).
FIFO_MODE: Final = 0o600

_NAME_MAX: Final = _rules.NAME_MAX
_LONGEST_SUFFIX: Final = "-stdout"


class FIFOCancelledError(OSError):
    """A pending FIFO open was cancelled before the peer opened its end (errno ``ECANCELED``)."""

    def __init__(self, filename: str | None = None) -> None:
        super().__init__(errno.ECANCELED, "FIFO open cancelled", filename)


def _check_path(path: str, what: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a str path, not {type(path).__name__}")
    if "\0" in path:
        raise ValueError(f"{what} contains a NUL byte: {path!r}")
    if not os.path.isabs(path):
        raise ValueError(f"{what} must be absolute (the shim resolves it, not this process): {path!r}")
    return path


def _check_process_id(process_id: str) -> None:
    if not isinstance(process_id, str):
        raise TypeError(f"process_id must be a str, not {type(process_id).__name__}")
    if process_id in ("", ".", ".."):
        raise ValueError(f"invalid process id {process_id!r}")
    if "/" in process_id or "\0" in process_id:
        raise ValueError(f"process id must not contain '/' or NUL: {process_id!r}")
    if len(os.fsencode(process_id + _LONGEST_SUFFIX)) > _NAME_MAX:
        raise ValueError(f"process id too long for a FIFO name ({_NAME_MAX} bytes max): {process_id!r}")


def _remove_fifo(path: str) -> None:
    """Unlink ``path`` if it is a FIFO; a missing path is fine, anything else is not ours.

    Acts on the directory's fd from the symlink-refusing walk, so a directory
    swapped for a symlink meanwhile cannot make it unlink a FIFO elsewhere.
    """
    directory, name = os.path.split(path)
    try:
        dirfd = _fifo.open_dir(directory)
    except FileNotFoundError:
        return
    try:
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISFIFO(st.st_mode):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dirfd)
    finally:
        os.close(dirfd)


def _remove_empty_dir(path: str) -> None:
    """Remove the empty directory ``path`` through its parent's fd (symlink-refusing walk); errors ignored."""
    parent, name = os.path.split(path)
    with contextlib.suppress(OSError):
        dirfd = _fifo.open_dir(parent)
        try:
            os.rmdir(name, dir_fd=dirfd)
        finally:
            os.close(dirfd)


def open_writer(path: str) -> int:
    """Open a FIFO's write end ``O_NONBLOCK`` now, without waiting for a reader.

    For a stdin FIFO whose reader (the shim) is probably open: after Tasks/Create, or an
    exec's Start. Only probably: the shim opens it in a goroutine that may run later, so
    ``ENXIO`` may mean "no reader yet" (then see :func:`open_writer_later`). The path is
    opened ``O_PATH`` on the symlink-refusing walk and reopened only if it is still the
    same FIFO (dev and inode), as :class:`PendingFIFO` does.

    Args:
        path: The FIFO.

    Returns:
        The write end (``O_WRONLY|O_NONBLOCK|O_CLOEXEC``), owned by the caller.

    Raises:
        OSError: ``ENXIO`` when no reader has it open (not yet, or no more), or the
            walk or reopen failed.
    """
    directory, name = os.path.split(path)
    dirfd = _fifo.open_dir(directory)
    try:
        handle, dev, ino = _fifo.fifo_open_path(dirfd, name, path)
    finally:
        os.close(dirfd)
    try:
        return _fifo.fifo_reopen(handle, os.O_WRONLY | os.O_NONBLOCK, dev, ino, path)
    finally:
        os.close(handle)


def open_writer_later(path: str, on_done: Callable[[PendingFIFO], None]) -> PendingFIFO:
    """Open a FIFO's write end once a reader has it open, in a thread; ``on_done`` tells when.

    For a stdin FIFO whose reader may not exist yet although the process was created:
    containerd's shim opens it in a goroutine (containerd/fifo's ``OpenFifo`` with
    ``O_NONBLOCK`` returns before its open(2)), so :func:`open_writer` can fail with
    ``ENXIO`` right after Tasks/Create or an exec's Start. A daemon thread performs the
    blocking open, as :meth:`FIFOSet.open` does for the sync client.

    Args:
        path: The FIFO.
        on_done: Called once, in the opener thread, when the open finished (opened,
            failed, or cancelled by :meth:`PendingFIFO.cancel`/``close``).

    Returns:
        The pending end: :meth:`PendingFIFO.fileno` once ``on_done`` ran (blocking
        descriptor, owned by it), :meth:`PendingFIFO.close` to give up or release it.

    Raises:
        OSError: The path is not this FIFO (symlink, replaced), or no thread could start.
    """
    return PendingFIFO._open_writer(path, on_done)


class PendingFIFO:
    """One client end of a FIFO, possibly still being opened in the background.

    Built by :meth:`FIFOSet.open`. Read ends are complete at once; the stdin
    write end completes when the peer opens its reader.

    Attributes:
        path: The FIFO's path.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()  # guards the state the opener thread sets
        self._op_lock = threading.Lock()  # serializes cancel() and close()
        self._done = threading.Event()
        self._fd: int | None = None
        self._error: OSError | None = None
        self._cancelled = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._handle: int | None = None
        self._dev = 0
        self._ino = 0
        self._on_done: Callable[[PendingFIFO], None] | None = None

    @classmethod
    def _opened(cls, path: str, fd: int) -> PendingFIFO:
        end = cls(path)
        end._fd = fd
        end._done.set()
        return end

    @classmethod
    def _open_writer(cls, path: str, on_done: Callable[[PendingFIFO], None] | None = None) -> PendingFIFO:
        end = cls(path)
        end._on_done = on_done
        directory, name = os.path.split(path)
        dirfd = _fifo.open_dir(directory)
        try:
            end._handle, end._dev, end._ino = _fifo.fifo_open_path(dirfd, name, path)
        finally:
            os.close(dirfd)
        thread = threading.Thread(target=end._run, name=f"pycontainerd-fifo-open {path}", daemon=True)
        end._thread = thread
        try:
            thread.start()
        except BaseException:
            os.close(end._handle)
            end._handle = None
            raise
        return end

    def _run(self) -> None:
        try:
            self._open()
        finally:
            if self._on_done is not None:
                self._on_done(self)

    def _open(self) -> None:
        assert self._handle is not None
        try:
            fd = _fifo.fifo_reopen(self._handle, os.O_WRONLY, self._dev, self._ino, self.path)
        except OSError as exc:
            with self._lock:
                self._error = exc
                self._done.set()
            return
        with self._lock:
            if self._cancelled:
                os.close(fd)
            else:
                self._fd = fd
            self._done.set()

    @property
    def done(self) -> bool:
        """Whether the open has finished (successfully, with an error, or cancelled)."""
        return self._done.is_set()

    def fileno(self, timeout: float | None = None) -> int:
        """Wait for the open to complete and return the fd.

        The fd stays owned by this object (closed by :meth:`close`). Read ends
        are ``O_NONBLOCK``; the stdin write end is blocking.

        Args:
            timeout: Seconds to wait; ``None`` waits until the peer opens or
                :meth:`cancel` is called.

        Returns:
            The open file descriptor.

        Raises:
            TimeoutError: The peer did not open its end within ``timeout``.
            FIFOCancelledError: :meth:`cancel` aborted the open.
            ValueError: This end was closed.
            OSError: The open itself failed.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(errno.ETIMEDOUT, f"FIFO peer did not open within {timeout} s", self.path)
        with self._lock:
            if self._cancelled:
                raise FIFOCancelledError(self.path)
            if self._closed:
                raise ValueError(f"FIFO end {self.path} is closed")
            if self._error is not None:
                err = self._error
                raise OSError(err.errno, err.strerror, err.filename) from err
            assert self._fd is not None
            return self._fd

    def cancel(self) -> None:
        """Abort a pending open; no effect on an end that is already open.

        Returns once the opener thread has exited and any fd it got is closed.
        """
        with self._op_lock:
            with self._lock:
                if not self._done.is_set():
                    self._cancelled = True
                thread = self._thread
            if thread is None:
                return
            if self._cancelled:
                self._unblock_and_join(thread)
            thread.join()
            self._thread = None
            # The opener is gone; nothing needs the O_PATH handle any more.
            self._close_handle()

    def _unblock_and_join(self, thread: threading.Thread) -> None:
        # Holding a reader open on the same inode makes the opener's
        # O_WRONLY open return, whether it is already blocked or not yet
        # called (containerd/fifo's reverse-open technique); the opener then
        # sees the cancel and closes its fd.
        assert self._handle is not None
        while thread.is_alive():
            try:
                peer = _fifo.fifo_reopen(
                    self._handle, os.O_RDONLY | os.O_NONBLOCK, self._dev, self._ino, self.path
                )
            except OSError:
                # e.g. EMFILE: retry until the reader can be opened.
                thread.join(0.01)
                continue
            try:
                thread.join()
            finally:
                os.close(peer)

    def _close_handle(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None

    def close(self) -> None:
        """Cancel a pending open, then close the fd; idempotent."""
        self.cancel()
        with self._op_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            fd, self._fd = self._fd, None
            self._close_handle()
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._cancelled:
            state = "cancelled"
        else:
            state = "open" if self.done else "pending"
        return f"<PendingFIFO {self.path!r} {state}>"


class FIFOPipes:
    """The client ends of a :class:`FIFOSet`, as returned by :meth:`FIFOSet.open`.

    Attributes:
        fifos: The set these ends belong to.
        stdin: The write end of the stdin FIFO (pending until the shim opens its reader), or ``None``.
        stdout: The read end of the stdout FIFO (``O_NONBLOCK``).
        stderr: The read end of the stderr FIFO (``O_NONBLOCK``), or ``None`` with a terminal.
    """

    def __init__(
        self, fifos: FIFOSet, stdin: PendingFIFO | None, stdout: PendingFIFO, stderr: PendingFIFO | None
    ) -> None:
        self.fifos = fifos
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr

    def _ends(self) -> list[PendingFIFO]:
        return [end for end in (self.stdin, self.stdout, self.stderr) if end is not None]

    def cancel(self) -> None:
        """Abort pending opens (no thread or fd is left); open ends stay open."""
        for end in self._ends():
            end.cancel()

    def close(self) -> None:
        """Cancel, close stdin, stdout and stderr (in that order), then close the FIFO set.

        Idempotent. Every step runs even if an earlier one fails.

        Raises:
            OSError: The first failure, after all steps ran.
        """
        first: OSError | None = None
        self.cancel()
        for end in self._ends():
            try:
                end.close()
            except OSError as exc:
                first = first or exc
        try:
            self.fifos.close()
        except OSError as exc:
            first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> FIFOPipes:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FIFOPipes stdin={self.stdin!r} stdout={self.stdout!r} stderr={self.stderr!r}>"


class FIFOSet:
    """The stdio FIFO paths of one process (libcontainerd's ``newFIFOSet``).

    Build one with :meth:`new` (paths this client owns) or :meth:`from_paths`
    (a reattach set, e.g. from ``Tasks/Get``). A context manager: leaving it
    calls :meth:`close`.

    Attributes:
        stdin: Path of the stdin FIFO, or ``None`` without stdin.
        stdout: Path of the stdout FIFO.
        stderr: Path of the stderr FIFO, or ``None`` (with a terminal).
        terminal: Whether the process has a terminal (stdout carries both streams).
    """

    __slots__ = ("_closed", "_lock", "_reattach", "stderr", "stdin", "stdout", "terminal")

    def __init__(
        self, *, stdin: str | None, stdout: str, stderr: str | None, terminal: bool, reattach: bool = False
    ) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
        self._reattach = reattach
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def new(
        cls, directory: str | os.PathLike[str], process_id: str, *, stdin: bool, terminal: bool
    ) -> FIFOSet:
        """The FIFO paths of ``process_id`` in ``directory``; nothing is created yet.

        Args:
            directory: Absolute path of an existing directory (the bundle dir).
            process_id: ``init``/the task id or an exec id; becomes part of the names.
            stdin: Whether the process gets a stdin FIFO.
            terminal: Whether the process has a terminal (then there is no stderr FIFO).

        Returns:
            The set; :meth:`create` or :meth:`open` makes the FIFOs.

        Raises:
            ValueError: ``process_id`` is empty, ``.``/``..``, contains ``/`` or NUL, or
                makes a name longer than NAME_MAX; ``directory`` is relative or has a NUL.
            TypeError: An argument has the wrong type.
        """
        base = _check_path(os.fspath(directory), "directory")
        _check_process_id(process_id)
        prefix = os.path.join(base, process_id)
        return cls(
            stdin=prefix + "-stdin" if stdin else None,
            stdout=prefix + "-stdout",
            stderr=None if terminal else prefix + "-stderr",
            terminal=terminal,
        )

    @classmethod
    def from_paths(cls, *, stdin: str | None, stdout: str, stderr: str | None, terminal: bool) -> FIFOSet:
        """A reattach set over existing paths (containerd's ``loadFifos``).

        Its :meth:`close` removes only the paths that are FIFOs, then removes
        their parent directories if empty, ignoring errors (containerd >= 1.4).

        Args:
            stdin: The stdin path; ``None`` or ``""`` for none.
            stdout: The stdout path.
            stderr: The stderr path; ``None`` or ``""`` for none.
            terminal: Whether the process has a terminal (stderr is then not opened).

        Returns:
            The set.

        Raises:
            ValueError: A path is empty (stdout), relative or has a NUL, or two paths are equal.
            TypeError: A path is not a str.
        """
        fifos = cls(
            stdin=_check_path(stdin, "stdin") if stdin else None,
            stdout=_check_path(stdout, "stdout"),
            stderr=_check_path(stderr, "stderr") if stderr else None,
            terminal=terminal,
            reattach=True,
        )
        if len(set(fifos.paths)) != len(fifos.paths):
            raise ValueError(f"FIFO paths must be distinct: {fifos.paths}")
        return fifos

    @property
    def paths(self) -> tuple[str, ...]:
        """The configured paths: stdin, stdout, stderr, without the absent ones."""
        return tuple(p for p in (self.stdin, self.stdout, self.stderr) if p is not None)

    def _check_not_closed(self) -> None:
        if self._closed:
            raise ValueError("FIFO set is closed")

    def _create(self) -> dict[str, int]:
        """Create every FIFO; return a non-blocking read end on each (caller closes them)."""
        opened: dict[str, int] = {}
        created: list[str] = []
        try:
            for path in self.paths:
                directory, name = os.path.split(path)
                dirfd = _fifo.open_dir(directory)
                try:
                    fd, new = _fifo.fifo_create(dirfd, name, FIFO_MODE, path)
                finally:
                    os.close(dirfd)
                opened[path] = fd
                if new:
                    created.append(path)
        except BaseException:
            for fd in opened.values():
                os.close(fd)
            for path in created:
                with contextlib.suppress(OSError):
                    _remove_fifo(path)
            raise
        return opened

    def create(self) -> None:
        """Make every FIFO of the set (mode 0600, umask-independent); reuse existing FIFOs.

        On failure the FIFOs this call made are removed again.

        Raises:
            FileExistsError: A path exists and is not a FIFO (or is a symlink);
                ``filename`` is that path.
            OSError: Another failure (e.g. ``FileNotFoundError`` for a missing directory).
            ValueError: The set is closed.
        """
        self._check_not_closed()
        for fd in self._create().values():
            os.close(fd)

    def open(self, *, defer_stdin: bool = False) -> FIFOPipes:
        """Create the FIFOs if needed and open the client ends without blocking.

        stdout/stderr read ends are open on return; the stdin write end
        completes in the background once the shim opens its reader. On
        failure everything opened is closed and the FIFOs are removed.

        Args:
            defer_stdin: Create the stdin FIFO but open no end of it (``pipes.stdin``
                is ``None``): the caller opens the writer with :func:`open_writer`
                once the shim has opened its reader (after Create, or an exec's
                Start), without a thread.

        Returns:
            The client ends; close them with :meth:`FIFOPipes.close`.

        Raises:
            FileExistsError: A path exists and is not a FIFO.
            OSError: Creating or opening failed.
            ValueError: The set is closed.
        """
        self._check_not_closed()
        read_ends: dict[str, int] = {}
        ends: list[PendingFIFO] = []
        try:
            read_ends = self._create()
            stdin = None
            if self.stdin is not None:
                # Our own reader would let our writer's open succeed at once.
                os.close(read_ends.pop(self.stdin))
                if not defer_stdin:
                    stdin = PendingFIFO._open_writer(self.stdin)
                    ends.append(stdin)
            stdout = PendingFIFO._opened(self.stdout, read_ends.pop(self.stdout))
            ends.append(stdout)
            stderr = None
            if self.stderr is not None and not self.terminal:
                stderr = PendingFIFO._opened(self.stderr, read_ends.pop(self.stderr))
                ends.append(stderr)
        except BaseException:
            for end in ends:
                with contextlib.suppress(OSError):
                    end.close()
            for fd in read_ends.values():
                os.close(fd)
            with contextlib.suppress(OSError):
                self.close()
            raise
        for fd in read_ends.values():  # stderr of a terminal reattach set: not opened
            os.close(fd)
        return FIFOPipes(self, stdin, stdout, stderr)

    def close(self) -> None:
        """Remove the set's FIFOs; idempotent.

        A missing path is ignored, and a path that is not a FIFO is left alone
        (it is not ours). A :meth:`from_paths` set then removes the paths'
        parent directories if empty, ignoring errors.

        Raises:
            OSError: The first removal failure other than a missing path, after trying every path.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        first: OSError | None = None
        for path in self.paths:
            try:
                _remove_fifo(path)
            except OSError as exc:
                first = first or exc
        if self._reattach:
            for parent in dict.fromkeys(os.path.dirname(p) for p in self.paths):
                _remove_empty_dir(parent)
        if first is not None:
            raise first

    def __enter__(self) -> FIFOSet:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "reattach " if self._reattach else ""
        return (
            f"<FIFOSet {kind}stdin={self.stdin!r} stdout={self.stdout!r} stderr={self.stderr!r} "
            f"terminal={self.terminal}>"
        )


__all__ = ["FIFO_MODE", "FIFOCancelledError", "FIFOPipes", "FIFOSet", "PendingFIFO", "open_writer",
           "open_writer_later"]
