"""A process's stdio on the event loop: the asyncio twin of :mod:`pycontainerd.stdio`'s ``ProcessIO``.

What is shared with the sync client, unchanged: the :class:`~pycontainerd.stdio.Stdio`
strategies, the one transport decision (:func:`~pycontainerd.stdio.opener.transport_for`),
the claiming of sinks and sources (:class:`~pycontainerd.stdio.sinks.Ends`), the FIFO
sets, the handoff helper's protocol (its pure halves) and the sink error
(:func:`~pycontainerd.stdio.sinks.sink_error`). What differs is who moves the bytes and
who waits:

* no thread per process: stdout/stderr of a process are one job, stdin another,
  on the shared native pump pool (:mod:`pycontainerd.aio._pump`); the loop learns of
  their ends from an eventfd;
* no blocking open on the loop: a stdin FIFO's write end is opened ``O_NONBLOCK`` after
  Create (an exec's Start); only if the shim's reader is not open yet (its goroutine has
  not run) does a thread wait for it, as the sync client always does; the handoff's pipes
  are received on a non-blocking socket;
* :attr:`LoopIO.done` is an :class:`asyncio.Future` resolved when every output byte
  reached its sink (failed with :class:`~pycontainerd.errors.SinkError` when a sink
  failed, as in the sync client), and the sinks are closed then, so a pipe to an
  :class:`asyncio.StreamReader` sees EOF right after its last byte.

A job's descriptors are closed only after the pool reported the job finished; closing
(:meth:`LoopIO.aclose`) cancels the jobs, waits for that report (prompt), then closes
and removes what the transport made. If that wait is itself cancelled, the closing
finishes in the background once the jobs end.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from pycontainerd.aio._pump import loop_pump
from pycontainerd.aio._util import wait_for
from pycontainerd.api.types import Status, TaskInfo
from pycontainerd.stdio import handoff_helper, handoff_io
from pycontainerd.stdio.fifo import FIFOPipes, FIFOSet, PendingFIFO, open_writer, open_writer_later
from pycontainerd.stdio.handoff_helper import HandoffPipes
from pycontainerd.stdio.opener import fifos_of, poke_writers, transport_for
from pycontainerd.stdio.pool import PoolJob
from pycontainerd.stdio.process_io import IOConfig
from pycontainerd.stdio.pump import CopyResult
from pycontainerd.stdio.sinks import Ends, Outputs, sink_error
from pycontainerd.stdio.strategy import Stdio, Transport

__all__ = ["FIFOLoopIO", "HandoffLoopIO", "LoopIO", "loaded_io", "no_io", "open_io", "reattach_io"]

_log = logging.getLogger(__name__)

StdinCloser = Callable[[], Awaitable[None]]


class LoopIO:
    """The live stdio of one process, copied by the shared pool and awaited on the loop.

    The IO of a process without stdio is this base class, done from the start.
    Use it from the loop it was opened on only.

    Attributes:
        config: What the Create/Exec RPC is told.
        results: The copy results of stdout and stderr, once :attr:`done`.
    """

    def __init__(self, config: IOConfig | None = None, out_ends: Ends | None = None,
                 in_ends: Ends | None = None) -> None:
        self.config = config if config is not None else IOConfig()
        self.results: list[CopyResult] = []
        self._loop = asyncio.get_running_loop()
        self._pump = loop_pump()
        self._out_ends = out_ends if out_ends is not None else Ends()
        self._in_ends = in_ends if in_ends is not None else Ends()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._jobs: list[tuple[PoolJob, asyncio.Future[PoolJob]]] = []
        self._out_job: PoolJob | None = None
        self._in_job: tuple[PoolJob, asyncio.Future[PoolJob]] | None = None
        self._stdin_fd = -1
        self._stdin_pending: PendingFIFO | None = None  # the writer's open, waiting for the shim's reader
        self._stdin_closed = self._in_ends.stdin is None
        self._closer: StdinCloser | None = None
        self._close_pending = False
        self._closed = False
        self._captured: dict[str, bytes] = {}
        self._background: set[asyncio.Task[None]] = set()

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
        """The stderr path for Create/Exec, or ``""``."""
        return self.config.stderr

    @property
    def terminal(self) -> bool:
        """Whether the process has a terminal (no stderr stream)."""
        return self.config.terminal

    # -- completion ---------------------------------------------------------
    @property
    def done(self) -> asyncio.Future[None]:
        """Resolves when every output stream ended and its bytes reached the sink (or SinkError)."""
        return self._done

    @property
    def error(self) -> BaseException | None:
        """Why the output was not delivered whole, once done (``None`` otherwise)."""
        if not self._done.done() or self._done.cancelled():
            return None
        return self._done.exception()

    @property
    def stdout_data(self) -> bytes | None:
        """Captured stdout (only with capture), once drained."""
        return self._captured.get("stdout")

    @property
    def stderr_data(self) -> bytes | None:
        """Captured stderr (only with capture), once drained."""
        return self._captured.get("stderr")

    # -- the process's lifecycle ---------------------------------------------
    async def process_created(self) -> None:
        """Hook: the shim set up the process's IO (after Create, or an exec's Start)."""

    def process_exited(self) -> None:
        """Hook: the process exited (its Wait returned); never blocks. Idempotent."""

    # -- stdin ---------------------------------------------------------------
    def set_stdin_closer(self, closer: StdinCloser) -> None:
        """Register what runs after the client's stdin end closes (the process's CloseIO).

        If stdin was closed before the process existed, it runs now (in the background).
        """
        self._closer = closer
        if self._close_pending:
            self._close_pending = False
            self._spawn(self._run_closer(raise_errors=False))

    async def close_stdin(self) -> None:
        """Close the client's stdin end, then run the stdin closer (CloseIO). Idempotent.

        Raises:
            ContainerdError: CloseIO failed (other than for a process already gone).
        """
        await self._close_stdin(raise_errors=True)

    async def _close_stdin(self, *, raise_errors: bool) -> None:
        if self._stdin_closed:
            return
        self._stdin_closed = True
        await self._end_stdin()
        if self._closer is None:
            self._close_pending = True
            return
        await self._run_closer(raise_errors=raise_errors)

    async def _run_closer(self, *, raise_errors: bool) -> None:
        closer = self._closer
        if closer is None:
            return
        try:
            await closer()
        except Exception as exc:
            if raise_errors:
                raise
            _log.warning("failed to close the process's stdin: %s", exc)

    async def _end_stdin(self) -> None:
        """Stop feeding stdin, close the client's stdin end and the source."""
        self._give_up_stdin_open()
        if self._in_job is not None:
            job, future = self._in_job
            self._pump.cancel(job)
            await asyncio.shield(future)
        if self._stdin_fd >= 0:
            fd, self._stdin_fd = self._stdin_fd, -1
            os.close(fd)
        self._in_ends.close()

    def _open_stdin_later(self, path: str) -> None:
        """Open the stdin FIFO's writer once the shim's reader exists, then feed it (on the loop).

        A thread does the blocking open; it ends as soon as the reader comes, or when
        stdin or the IO is closed first.
        """
        loop = self._loop

        def opened(end: PendingFIFO) -> None:  # in the opener thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody feeds stdin any more
                loop.call_soon_threadsafe(self._stdin_opened, end)

        self._stdin_pending = open_writer_later(path, opened)

    def _stdin_opened(self, end: PendingFIFO) -> None:
        if self._stdin_pending is not end:
            return  # given up meanwhile: stdin or the IO was closed, which closed ``end``
        self._stdin_pending = None
        try:
            fd = os.dup(end.fileno())
        except OSError as exc:
            end.close()
            _log.warning("could not open the process's stdin: %s", exc)
            self._spawn(self._close_stdin(raise_errors=False))  # CloseIO: the process gets its EOF
            return
        end.close()
        os.set_blocking(fd, False)
        try:
            self._start_stdin(fd)
        except Exception as exc:  # the pool refused the job, no memory file
            _log.warning("could not feed the process's stdin: %s", exc)
            self._spawn(self._close_stdin(raise_errors=False))

    def _give_up_stdin_open(self) -> None:
        pending, self._stdin_pending = self._stdin_pending, None
        if pending is not None:
            # Returns promptly: our own reader completes the blocked open, which is then closed.
            pending.close()

    def _start_stdin(self, fifo_fd: int) -> None:
        """Feed the stdin source into ``fifo_fd`` (owned from now on) on the pool."""
        self._stdin_fd = fifo_fd
        source = self._in_ends.stdin
        if source is None:
            return
        if isinstance(source, (bytes, bytearray, memoryview)):
            # A memory file, so that the pool does the writing and a cancel stops it.
            src = _memfd_with(memoryview(source), "pcd-stdin")
            self._in_ends.owned.append(src)
        else:
            src = source
        job, future = self._pump.submit([(src, fifo_fd)], discard_on_error=False)
        self._in_job = (job, future)
        self._jobs.append((job, future))
        future.add_done_callback(self._stdin_copied)

    def _stdin_copied(self, future: asyncio.Future[PoolJob]) -> None:
        # The source ended (or the reader went away): the process gets its EOF. Not on a
        # terminal, where the shim would hang the console up (see the sync FIFOIO).
        if future.cancelled() or future.result().cancelled or self.terminal or self._closed:
            return
        self._spawn(self._close_stdin(raise_errors=False))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- output --------------------------------------------------------------
    def _start_output(self, sources: list[tuple[str, int]]) -> PoolJob | None:
        """Copy each ``(stream name, source fd)`` into its sink in one pool job."""
        pairs = [(name, src, self._sink_of(name)) for name, src in sources if self._sink_of(name) >= 0]
        names = [name for name, _, _ in pairs]
        if not pairs:
            self._finish(names, [])
            return None
        job, future = self._pump.submit([(src, dst) for _, src, dst in pairs], discard_on_error=True)
        self._out_job = job
        self._jobs.append((job, future))
        future.add_done_callback(lambda f: self._finish(names, f.result().results))
        return job

    def _sink_of(self, name: str) -> int:
        return self._out_ends.stdout if name == "stdout" else self._out_ends.stderr

    def _finish(self, names: list[str], results: list[CopyResult]) -> None:
        """The output is complete: collect captures, close the sinks, resolve :attr:`done`."""
        if self._done.done():
            return
        try:
            self.results = results
            self._captured = self._out_ends.captured()
            failure = sink_error(names, results)
        except BaseException as exc:  # a read of a capture failed
            self._out_ends.close()
            self._done.set_exception(exc)
            return
        # The sinks' last byte is written: closing them now gives a pipe's reader its EOF.
        self._out_ends.close()
        if failure is not None:
            self._done.set_exception(failure)
        else:
            self._done.set_result(None)

    # -- teardown ------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the copying promptly (bytes in flight may be lost); :attr:`done` still resolves."""
        for job, future in self._jobs:
            if not future.done():
                self._pump.cancel(job)

    async def aclose(self) -> None:
        """Cancel, wait for the pool to let go of the descriptors, close them, remove the FIFOs."""
        await self._shut(keep=False)

    async def detach(self) -> None:
        """Stop copying and close the client's ends, keeping what another reader attaches to."""
        await self._shut(keep=True)

    async def _shut(self, *, keep: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._stdin_closed = True
        self.cancel()
        pending = [future for _, future in self._jobs if not future.done()]
        release = _Release(self, keep)
        if not pending:
            release()
            return
        gathered = asyncio.gather(*pending)
        gathered.add_done_callback(lambda _: release())
        # The release runs when the jobs end, even if this wait is cancelled.
        await asyncio.shield(gathered)

    def _release_transport(self, *, keep: bool) -> None:
        """Close the transport's ends (no job uses them now); ``keep``: leave what a reattach needs."""

    def _released(self) -> None:
        self._give_up_stdin_open()
        self._out_ends.close()
        self._in_ends.close()
        if self._stdin_fd >= 0:
            fd, self._stdin_fd = self._stdin_fd, -1
            os.close(fd)
        if not self._done.done():
            self._done.set_result(None)
        for task in list(self._background):
            task.cancel()


class _Release:
    """Runs a shut IO's release once, whoever calls it first."""

    def __init__(self, io: LoopIO, keep: bool) -> None:
        self._io = io
        self._keep = keep
        self._ran = False

    def __call__(self) -> None:
        if self._ran:
            return
        self._ran = True
        try:
            self._io._release_transport(keep=self._keep)
        finally:
            self._io._released()


def no_io() -> LoopIO:
    """The IO of a process without stdio (no FIFOs, the shim discards its output): already done."""
    io = LoopIO()
    io.done.set_result(None)
    return io


class FIFOLoopIO(LoopIO):
    """A process's stdio through its FIFOs, on the loop.

    Attributes:
        fifos: The process's FIFO paths (removed by :meth:`aclose`, kept by :meth:`detach`).
    """

    def __init__(self, fifos: FIFOSet | None, pipes: FIFOPipes | None, out_ends: Ends | None = None,
                 in_ends: Ends | None = None, *, also_remove: FIFOSet | None = None) -> None:
        config = IOConfig() if fifos is None else IOConfig(fifos.stdin or "", fifos.stdout,
                                                           fifos.stderr or "",
                                                           fifos.terminal)
        super().__init__(config, out_ends, in_ends)
        self.fifos = fifos
        self._pipes = pipes
        self._also_remove = also_remove

    @classmethod
    def open(cls, stdio: Stdio, fifos: FIFOSet, *, also_remove: FIFOSet | None = None) -> FIFOLoopIO:
        """Create and open ``fifos`` (stdin's writer later) and start copying the output.

        Raises:
            OSError: A sink or source descriptor is not open, or the FIFOs could not be made.
        """
        out_ends = Ends.claim(stdio.outputs)
        try:
            in_ends = Ends.claim(None, stdio.source if fifos.stdin is not None else None)
        except BaseException:
            out_ends.close()
            raise
        try:
            pipes = fifos.open(defer_stdin=True)
        except BaseException:
            out_ends.close()
            in_ends.close()
            raise
        io = cls(fifos, pipes, out_ends, in_ends, also_remove=also_remove)
        sources = [(name, end.fileno()) for name, end in (("stdout", pipes.stdout), ("stderr", pipes.stderr))
                   if end is not None]
        try:
            io._start_output(sources)
        except BaseException:
            pipes.close()
            out_ends.close()
            in_ends.close()
            raise
        return io

    @classmethod
    def unread(cls, fifos: FIFOSet | None) -> FIFOLoopIO:
        """IO that copies nothing but removes ``fifos`` when closed (containerd#2421)."""
        io = cls(fifos, None)
        io.done.set_result(None)
        return io

    async def process_created(self) -> None:
        """Open the stdin FIFO's writer and feed it: now, or once the shim's reader exists."""
        if (self._stdin_closed or self.fifos is None or self.fifos.stdin is None or self._stdin_fd >= 0
                or self._stdin_pending is not None):
            return
        try:
            fd = open_writer(self.fifos.stdin)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            # No reader *yet*: the shim opens it in a goroutine (containerd/fifo's OpenFifo
            # with O_NONBLOCK returns before its open(2)), which may run after Create or Start
            # answered. Taking this for a gone process dropped stdin without CloseIO, and a
            # process reading stdin to EOF never exited (the 200-cycle hang on 1.6).
            self._open_stdin_later(self.fifos.stdin)
            return
        self._start_stdin(fd)

    def _release_transport(self, *, keep: bool) -> None:
        pipes = self._pipes
        if keep:
            if pipes is not None:
                for end in (pipes.stdout, pipes.stderr):
                    if end is not None:
                        end.close()
            return
        try:
            if pipes is not None:
                pipes.close()  # the ends, then the FIFOs
            elif self.fifos is not None:
                self.fifos.close()
        finally:
            if self._also_remove is not None:
                self._also_remove.close()


class HandoffLoopIO(LoopIO):
    """A process's stdout/stderr received from the ``pcd-handoff`` helper, on the loop.

    The pipes are received in :meth:`process_created`; :meth:`process_exited` makes the
    pool copy what they still hold and finish (no EOF before Delete: see
    :mod:`pycontainerd.stdio.handoff_io`).
    """

    def __init__(self, socket_path: str, uri: str, ends: Ends, *, timeout: float | None) -> None:
        super().__init__(IOConfig(stdin="", stdout=uri, stderr=uri, terminal=False), ends)
        self.socket_path = socket_path
        self.uri = uri
        self._timeout = timeout
        self._received: HandoffPipes | None = None
        self._connecting = False
        self._exited = False

    @classmethod
    def open(cls, outputs: Outputs, socket_path: str, *, timeout: float | None) -> HandoffLoopIO:
        """Claim the sinks and name the helper's socket (pipes come in :meth:`process_created`)."""
        handoff_io.remove_stale_socket(socket_path)
        uri = handoff_helper.binary_uri(socket_path, owner_uid=os.geteuid() or None)
        return cls(socket_path, uri, Ends.claim(outputs), timeout=timeout)

    @classmethod
    async def reattach(cls, outputs: Outputs, uri: str, *, timeout: float | None) -> HandoffLoopIO:
        """Reconnect to a running process's helper and resume copying.

        Raises:
            ValueError: ``uri`` is not a pcd-handoff URI.
            FileNotFoundError: The helper's socket is gone.
            HandoffError: The helper refused or answered wrongly.
        """
        path = handoff_io.socket_from_uri(uri)
        if path is None:
            raise ValueError(f"not a {handoff_helper.HELPER_NAME} URI: {uri!r}")
        io = cls(path, uri, Ends.claim(outputs), timeout=timeout)
        try:
            await io.process_created()
        except BaseException:
            await io.aclose()
            raise
        return io

    async def process_created(self) -> None:
        """Receive the container's pipes and start copying them. Idempotent.

        Raises:
            FileNotFoundError: The helper's socket is missing.
            HandoffError: The helper refused or answered wrongly.
            TimeoutError: No answer in time.
        """
        if self._closed or self._connecting or self._received is not None:
            return
        self._connecting = True
        try:
            pipes = await receive(self.socket_path, timeout=self._timeout)
        finally:
            self._connecting = False
        if self._closed:
            pipes.close()
            return
        self._received = pipes
        job = self._start_output([("stdout", pipes.stdout), ("stderr", pipes.stderr)])
        if job is not None and self._exited:
            self._pump.drain(job)

    def process_exited(self) -> None:
        """The process exited: copy what its pipes still hold, then finish. Never blocks."""
        self._exited = True
        if self._out_job is not None and not self._out_job.finished:
            self._pump.drain(self._out_job)

    def _release_transport(self, *, keep: bool) -> None:
        received, self._received = self._received, None
        if received is not None:
            received.close()


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await future
    finally:
        loop.remove_reader(fd)


async def receive(socket_path: str, *, timeout: float | None) -> HandoffPipes:
    """Receive the container's pipes from a ``pcd-handoff`` helper without blocking the loop.

    The asyncio twin of :func:`pycontainerd.stdio.handoff_helper.receive`, on the same
    pure message handling.

    Raises:
        FileNotFoundError: No socket at ``socket_path``.
        HandoffRefusedError: The helper refused this uid.
        HandoffProtocolError: Not a pcd-handoff helper of root or this user, or a bad message.
        TimeoutError: No answer within ``timeout``.
    """
    loop = asyncio.get_running_loop()
    fds: list[int] = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)

    async def exchange() -> HandoffPipes:
        address, dirfd = handoff_helper.connect_address(socket_path)
        try:
            await loop.sock_connect(sock, address)
        finally:
            if dirfd >= 0:
                os.close(dirfd)
        pid = handoff_helper.check_peer(sock, socket_path)
        data = b""
        while len(data) < handoff_helper.MESSAGE_SIZE:
            try:
                received = sock.recvmsg(handoff_helper.MESSAGE_SIZE - len(data),
                                        handoff_helper.ANCILLARY_SIZE,
                                        socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                await _readable(sock.fileno())
                continue
            data = handoff_helper.absorb(received, data, fds, socket_path)
        flags = handoff_helper.finish_message(data, fds, socket_path)
        return HandoffPipes(fds[0], fds[1], flags=flags, helper_pid=pid)

    try:
        return await wait_for(exchange(), timeout)
    except TimeoutError as exc:
        _close_all(fds)
        raise TimeoutError(errno.ETIMEDOUT, f"no answer from the helper within {timeout} s",
                           socket_path) from exc
    except BaseException:
        _close_all(fds)
        raise
    finally:
        sock.close()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


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


def _no_attach(stdio: Stdio) -> None:
    if stdio.direct is not None:
        raise TypeError("pycontainerd.aio copies stdio itself: use streams/capture/log_file/inherit "
                        f"(or PIPE with create_subprocess_exec), not {stdio!r}")


def open_io(stdio: Stdio, directory: str, name: str, *, terminal: bool) -> LoopIO:
    """Open a new process's IO on the running loop, ready for its Create/Exec RPC (``io.config``).

    The transport is chosen by the sync client's own :func:`~pycontainerd.stdio.opener.transport_for`.

    Raises:
        HandoffUnavailableError: The handoff is required but cannot serve this process.
        TypeError: An ``attach()`` strategy (its callback would copy with threads).
        ValueError: ``directory`` or ``name`` cannot hold FIFOs.
        OSError: A sink or source is not open, or the FIFOs could not be made.
    """
    _no_attach(stdio)
    transport = transport_for(stdio, terminal=terminal)
    if transport is None:
        return no_io()
    if transport is Transport.HANDOFF:
        assert stdio.outputs is not None  # transport_for checked
        return HandoffLoopIO.open(stdio.outputs, handoff_io.socket_path(directory, name),
                                  timeout=stdio.handoff_timeout)
    return FIFOLoopIO.open(stdio, FIFOSet.new(directory, name, stdin=stdio.stdin, terminal=terminal))


async def reattach_io(stdio: Stdio, info: TaskInfo) -> LoopIO:
    """Reconnect to a running process's IO as Tasks/Get reports it (see the sync ``reattach_io``).

    Raises:
        TypeError: An ``attach()`` strategy.
        ValueError: The process is on the handoff and ``stdio`` has no sinks.
        FileNotFoundError: The handoff helper's socket is gone.
        HandoffError: The helper refused or answered wrongly.
    """
    _no_attach(stdio)
    every = fifos_of(info)
    reachable = info.status is not Status.UNKNOWN
    if handoff_io.socket_from_uri(info.stdout) is not None:
        if not reachable or not stdio.needs_fifos:
            return no_io()
        if stdio.outputs is None:
            raise ValueError(f"process {info.id!r} uses the zero-copy handoff: "
                             f"attach with sinks, not {stdio!r}")
        return await HandoffLoopIO.reattach(stdio.outputs, info.stdout, timeout=stdio.handoff_timeout)
    if every is None or not reachable or not stdio.needs_fifos:
        return FIFOLoopIO.unread(every)
    opened = FIFOSet.from_paths(stdin=every.stdin if stdio.stdin else None, stdout=every.stdout,
                                stderr=every.stderr, terminal=every.terminal)
    io = FIFOLoopIO.open(stdio, opened, also_remove=every if opened.paths != every.paths else None)
    poke_writers(opened)
    try:
        await io.process_created()  # the shim's stdin reader is open: feed it
    except BaseException:
        await io.aclose()
        raise
    return io


def loaded_io(info: TaskInfo) -> LoopIO:
    """IO that copies nothing but removes the process's FIFOs when closed (containerd#2421)."""
    return FIFOLoopIO.unread(fifos_of(info))
