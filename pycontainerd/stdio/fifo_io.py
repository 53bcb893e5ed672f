"""The FIFO transport: a process's stdio through named pipes the shim opens (containerd's ``cio`` FIFOs).

:meth:`FIFOIO.open` creates the process's FIFOs, opens the client's ends
without blocking (the shim opens its side during the Create/Exec RPC) and
starts copying: one native thread serves stdout and stderr together; a
second feeds stdin when there is a stdin source. An ``attach`` strategy gets
the opened ends instead (:class:`DirectIO`) and copies them itself.

The order of events that keeps output whole: :attr:`~ProcessIO.done` (and so
``Task.wait()``) resolves only after the pump has seen EOF on every output
FIFO, i.e. after the shim and every process holding the container's pipes have
closed them, and every byte has reached the sink.
"""

from __future__ import annotations

import os
import threading

from pycontainerd.stdio.fifo import FIFOPipes, FIFOSet, PendingFIFO
from pycontainerd.stdio.process_io import IOConfig, ProcessIO
from pycontainerd.stdio.pump import CancelToken, copy
from pycontainerd.stdio.sinks import Ends
from pycontainerd.stdio.strategy import DirectIO, Stdio

__all__ = ["FIFOIO"]


def _config(fifos: FIFOSet | None) -> IOConfig:
    if fifos is None:
        return IOConfig()
    return IOConfig(fifos.stdin or "", fifos.stdout, fifos.stderr or "", fifos.terminal)


class FIFOIO(ProcessIO):
    """The live stdio of a process whose stdio are FIFOs.

    Attributes:
        fifos: The process's FIFO paths (removed by :meth:`close`, kept by :meth:`detach`).
    """

    def __init__(self, fifos: FIFOSet | None, pipes: FIFOPipes | None, ends: Ends | None = None, *,
                 also_remove: FIFOSet | None = None) -> None:
        super().__init__(_config(fifos), ends, stdin_open=pipes is not None and pipes.stdin is not None)
        self.fifos = fifos
        self._pipes = pipes
        self._in_cancel = CancelToken()
        # A reattach opens only some of the paths; the others are still removed at close.
        self._also_remove = also_remove
        self._feeder: threading.Thread | None = None

    @classmethod
    def open(cls, stdio: Stdio, fifos: FIFOSet, *, also_remove: FIFOSet | None = None) -> FIFOIO:
        """Create and open ``fifos`` for a process and start copying as ``stdio`` says.

        Args:
            stdio: Where the bytes come from and go (a strategy with sinks), or
                an ``attach`` callback to hand the ends to.
            fifos: A new set, or one rebuilt from ``Tasks/Get`` to reattach.
            also_remove: Further FIFO paths of the process that :meth:`close` removes.

        Returns:
            The live IO; on any failure nothing is left behind.

        Raises:
            OSError: A sink or source descriptor is not open (``EBADF``), or the
                FIFOs could not be made or opened.
        """
        ends = Ends.claim(stdio.outputs, stdio.source) if stdio.outputs is not None else Ends()
        try:
            pipes = fifos.open()
        except BaseException:
            ends.close()
            raise
        io = cls(fifos, pipes, ends, also_remove=also_remove)
        try:
            if stdio.direct is not None:
                stdio.direct(DirectIO(pipes.stdin, pipes.stdout, pipes.stderr, fifos.terminal))
                io.done.set_result(None)
            else:
                io._start(pipes, ends)
        except BaseException:
            io.close()
            raise
        return io

    @classmethod
    def unread(cls, fifos: FIFOSet | None) -> FIFOIO:
        """IO that copies nothing but removes ``fifos`` when closed (a task loaded without its IO).

        Tasks loaded without IO must not leak their FIFOs (containerd#2421).
        """
        io = cls(fifos, None)
        io.done.set_result(None)
        return io

    def _start(self, pipes: FIFOPipes, ends: Ends) -> None:
        sources = [(name, end.fileno()) for name, end in (("stdout", pipes.stdout), ("stderr", pipes.stderr))
                   if end is not None]
        self._start_output(sources)
        if ends.stdin is not None and pipes.stdin is not None:
            self._feeder = self._spawn("pcd-io-stdin", self._feed_stdin, ends.stdin, pipes.stdin)

    def _feed_stdin(self, source: bytes | bytearray | memoryview | int, end: PendingFIFO) -> None:
        try:
            fd = end.fileno()
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
        except (OSError, ValueError):
            # The reader went away (process exited, or the open was cancelled), or
            # close_stdin() closed our end before we got to it (ValueError):
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

    # -- the transport hooks -------------------------------------------------
    def _end_stdin(self) -> None:
        self._in_cancel.cancel()
        stdin = self._pipes.stdin if self._pipes is not None else None
        feeder = self._feeder
        if feeder is not None and feeder is not threading.current_thread():
            if stdin is not None:
                # Unblocks a feeder still waiting for the shim to open its reader.
                stdin.close()
            feeder.join()
        if stdin is not None:
            stdin.close()

    def _cancel_transport(self) -> None:
        self._in_cancel.cancel()
        if self._pipes is not None:
            self._pipes.cancel()

    def _release_transport(self, *, keep: bool) -> None:
        try:
            if keep:
                if self._pipes is not None:
                    for end in (self._pipes.stdin, self._pipes.stdout, self._pipes.stderr):
                        if end is not None:
                            end.close()
            elif self._pipes is not None:
                self._pipes.close()  # the ends, then the FIFOs
            elif self.fifos is not None:
                self.fifos.close()
            if not keep and self._also_remove is not None:
                self._also_remove.close()
        finally:
            self._in_cancel.close()


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
