"""The local terminal for ``run -t``/``exec -t``: raw mode, window size, SIGWINCH → resize.

Only ``termios``/``signal``/``fcntl`` are used; nothing here imports the client.
``termios`` and ``tty`` are imported by the functions that use them: a run
without ``-t`` only forwards signals.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import threading
from collections.abc import Callable, Iterator

__all__ = ["console_size", "forward_signals", "raw_mode", "terminal_fd", "watch_resize", "window_size"]

_Handler = Callable[[int, object], None]


def terminal_fd() -> int | None:
    """The fd of the controlling terminal among stdin, stdout and stderr (``None``: none is a tty)."""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                return fd
    return None


def window_size(fd: int) -> tuple[int, int] | None:
    """The terminal's ``(columns, rows)``, or ``None`` when ``fd`` is not a terminal or reports 0x0."""
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    if rows == 0 and cols == 0:
        return None
    return cols, rows


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Put the terminal on ``fd`` in raw mode for the block, restoring its settings after.

    Raw mode sends every key (Ctrl-C included) to the container's terminal, whose
    line discipline then does what a local one would.
    """
    import termios
    import tty

    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def console_size(fd: int | None) -> dict[str, int] | None:
    """The OCI ``process.consoleSize`` for the terminal on ``fd`` (runc sizes the pty with it at start)."""
    size = window_size(fd) if fd is not None else None
    return None if size is None else {"width": size[0], "height": size[1]}


@contextlib.contextmanager
def watch_resize(fd: int, resize: Callable[[int, int], None]) -> Iterator[Callable[[], None]]:
    """Call ``resize(columns, rows)`` now and on every SIGWINCH while the block runs.

    Yields the function that sends the current size, for the caller to send it
    again when the process exists (an exec'd process has no terminal before its
    start). ``resize`` runs in the main thread (in the signal handler); its
    exceptions are swallowed: a resize racing the process's start or exit must
    not break the command.
    """

    def send(*_: object) -> None:
        size = window_size(fd)
        if size is not None:
            with contextlib.suppress(Exception):
                resize(*size)

    previous = signal.signal(signal.SIGWINCH, send)
    try:
        send()
        yield send
    finally:
        signal.signal(signal.SIGWINCH, previous)


#: The signals that ask the process to stop (a second one, or the grace period, kills it).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def forward_signals(
    forward: Callable[[int], None],
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT),
    *,
    kill: Callable[[], None] | None = None,
    grace: float | None = None,
) -> Iterator[None]:
    """Call ``forward(signum)`` instead of dying when one of ``signals`` arrives during the block.

    A container's pid 1 ignores SIGINT and SIGTERM unless it installed a handler,
    so forwarding alone can leave Ctrl-C without effect. With ``kill``: the
    first SIGINT/SIGTERM is forwarded; a second one, or ``grace`` seconds
    without an exit, calls ``kill`` (and says so on stderr), as ``docker run``
    users expect.

    ``forward`` and ``kill`` run in the main thread (``kill`` from a timer
    thread for the grace period); their exceptions are swallowed (the task may
    have exited between the signal and the kill).
    """
    stops = 0
    timer: threading.Timer | None = None

    def escalate(why: str) -> None:
        assert kill is not None
        with contextlib.suppress(OSError):
            os.write(2, f"pycontainerd: {why}: killing the container\n".encode())
        with contextlib.suppress(Exception):
            kill()

    def handler(signum: int, _frame: object) -> None:
        nonlocal stops, timer
        if kill is not None and signum in STOP_SIGNALS:
            stops += 1
            if stops > 1:
                escalate(f"{signal.Signals(signum).name} again")
                return
            if grace is not None:
                timer = threading.Timer(grace, escalate, args=(f"still running {grace:g} s after "
                                                               f"{signal.Signals(signum).name}",))
                timer.daemon = True
                timer.start()
        with contextlib.suppress(Exception):
            forward(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        for sig, old in previous.items():
            signal.signal(sig, old)
