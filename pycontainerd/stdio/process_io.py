"""``ProcessIO``: the live stdio of one process, whatever carries its bytes (containerd's ``cio.IO``).

containerd's ``cio.IO`` is four things: the ``Config`` the Create/Exec RPC is
given, ``Cancel``, ``Wait`` and ``Close``. :class:`ProcessIO` is that contract
plus what a Python caller needs around it: the exit-ordering hooks the task
layer calls (:meth:`~ProcessIO.process_created`, :meth:`~ProcessIO.process_exited`),
stdin's close-then-CloseIO sequence, captured output and the sink error.

This base class is also the IO of a process without stdio (``stdio.null()``):
nothing is copied and :attr:`~ProcessIO.done` is resolved from the start. The
transports subclass it: :class:`~pycontainerd.stdio.fifo_io.FIFOIO` and
:class:`~pycontainerd.stdio.handoff_io.HandoffIO`. A subclass implements three
hooks (``_end_stdin``, ``_cancel_transport``, ``_release_transport``) and
copies its output with :meth:`_start_output`, so both deliver the same bytes
to the same sinks and report a failing sink the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from pycontainerd.stdio.pump import CancelToken, CopyResult, copy_streams
from pycontainerd.stdio.sinks import Ends, sink_error

__all__ = ["IOConfig", "ProcessIO", "no_io"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IOConfig:
    """What a process's Create/Exec RPC is told about its stdio (containerd's ``cio.Config``).

    Attributes:
        stdin: The stdin FIFO path, or ``""``.
        stdout: The stdout FIFO path or logging-binary URI, or ``""`` (discarded by the shim).
        stderr: The stderr FIFO path or URI, or ``""``.
        terminal: Whether the process has a terminal (then there is no stderr stream).
    """

    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False


class ProcessIO:
    """The live stdio of one process. Thread-safe.

    Opened for a new process before its Create/Exec RPC (see
    :func:`pycontainerd.stdio.opener.open_io`), owned by the ``Task``/``Process``
    it was opened for, and closed when that process is deleted.

    Attributes:
        config: What the RPC is told.
        results: The copy results of stdout and stderr, once :attr:`done`.
    """

    def __init__(self, config: IOConfig | None = None, ends: Ends | None = None, *,
                 stdin_open: bool = False) -> None:
        self.config = config if config is not None else IOConfig()
        self.results: list[CopyResult] = []
        self._ends = ends if ends is not None else Ends()
        self._lock = threading.Lock()
        self._done: Future[None] = Future()
        self._out_cancel = CancelToken()
        self._threads: list[threading.Thread] = []
        self._stdin_closed = not stdin_open
        self._on_stdin_closed: Callable[[], None] | None = None
        self._stdin_close_pending = False
        self._closed = False
        self._captured: dict[str, bytes] = {}

    # -- what the RPC needs -------------------------------------------------
    @property
    def stdin_path(self) -> str:
        """The stdin FIFO path for Create/Exec, or ``""``."""
        return self.config.stdin

    @property
    def stdout_path(self) -> str:
        """The stdout path (FIFO or logging-binary URI) for Create/Exec, or ``""``."""
        return self.config.stdout

    @property
    def stderr_path(self) -> str:
        """The stderr path for Create/Exec, or ``""`` (always for a terminal)."""
        return self.config.stderr

    @property
    def terminal(self) -> bool:
        """Whether the process has a terminal (no stderr stream)."""
        return self.config.terminal

    # -- completion ---------------------------------------------------------
    @property
    def done(self) -> Future[None]:
        """Resolves when every output stream ended and its bytes reached the sink.

        It fails with a :class:`~pycontainerd.errors.SinkError` when a sink did not take every byte.
        """
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the output is drained.

        Args:
            timeout: Seconds to wait, or None for no limit.

        Returns:
            True when drained (or failed: see :attr:`error`), False on timeout.
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

    # -- the process's lifecycle, as the task layer reports it ---------------
    def process_created(self) -> None:
        """Hook: the shim has set up the process's IO (after Tasks/Create, or an exec's Start).

        FIFO-based IO needs nothing here; a transport whose ends come from the
        shim only once the process exists (the handoff) connects now.
        """

    def process_exited(self) -> None:
        """Hook: the process has exited (its Wait RPC returned); must not block. Idempotent.

        FIFO-based IO needs nothing here (EOF ends its copying); the handoff,
        which sees no EOF before Delete, drains its pipes now and then
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
        self._end_stdin()
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
        """Abort pending opens and stop the copying promptly (bytes in flight may be lost)."""
        self._out_cancel.cancel()
        self._cancel_transport()

    def close(self) -> None:
        """Cancel, join the copying threads, close every end, remove what the transport made. Idempotent."""
        self._shut(keep=False)

    def detach(self) -> None:
        """Stop copying and close the client's ends, keeping what another reader can attach to.

        Output the process writes afterwards waits (in the FIFOs, or the
        container's pipes) until someone attaches again.
        """
        self._shut(keep=True)

    def __enter__(self) -> ProcessIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shut(self, *, keep: bool) -> None:
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
            self._release_transport(keep=keep)
        finally:
            self._ends.close()
            self._out_cancel.close()
            with contextlib.suppress(InvalidStateError):
                self._done.set_result(None)

    # -- for the transports --------------------------------------------------
    def _end_stdin(self) -> None:
        """Close the client's stdin end (and stop feeding it); the closer runs afterwards."""

    def _cancel_transport(self) -> None:
        """Abort what the transport may be blocked in (opens, receives)."""

    def _release_transport(self, *, keep: bool) -> None:
        """Close the transport's ends (no thread uses them now); ``keep``: leave what a reattach needs."""

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _start_output(self, sources: list[tuple[str, int]], *, drain: CancelToken | None = None) -> None:
        """Copy each ``(stream name, source fd)`` into its sink in the ends, from one native thread.

        Args:
            sources: The streams to copy; a stream whose sink is -1 is skipped.
            drain: Once cancelled, each stream ends when its source is empty and
                its bytes are written (sources that see no EOF at the exit).
        """
        pairs = [(name, src, self._sink_of(name)) for name, src in sources if self._sink_of(name) >= 0]
        if not pairs:
            self._finish([], [])
            return
        self._spawn("pcd-io-output", self._pump_output, pairs, drain)

    def _sink_of(self, name: str) -> int:
        return self._ends.stdout if name == "stdout" else self._ends.stderr

    def _pump_output(self, pairs: list[tuple[str, int, int]], drain: CancelToken | None) -> None:
        try:
            # A sink that fails (a full disk, a closed pipe) must not stall the
            # container once its pipe fills: the pump keeps reading that stream
            # into nothing, and the error is reported when the output is done.
            results = copy_streams([(src, dst) for _, src, dst in pairs], cancel=self._out_cancel,
                                   discard_on_error=True, drain=drain)
        except BaseException as exc:
            self._fail(exc)
        else:
            self._finish([name for name, _, _ in pairs], results)

    def _finish(self, names: list[str], results: list[CopyResult]) -> None:
        """The output is complete: collect captures and resolve :attr:`done` (failed on a sink error)."""
        try:
            self.results = results
            self._captured = self._ends.captured()
            failure = sink_error(names, results)
        except BaseException as exc:
            self._fail(exc)
            return
        with contextlib.suppress(InvalidStateError):
            if failure is not None:
                self._done.set_exception(failure)
            else:
                self._done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        with contextlib.suppress(InvalidStateError):
            self._done.set_exception(exc)


def no_io() -> ProcessIO:
    """The IO of a process without stdio (no FIFOs, the shim discards its output): already done."""
    io = ProcessIO()
    io.done.set_result(None)
    return io
