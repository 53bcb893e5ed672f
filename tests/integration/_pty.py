"""Run a command with its stderr on a pseudo-terminal, for the progress-bar tests."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from collections.abc import Sequence


def stderr_on_a_terminal(argv: Sequence[str], size: tuple[int, int] | None = None) -> tuple[int, str]:
    """Run ``argv`` with stderr on a new pty of ``size`` (rows, columns).

    Returns:
        The exit status, and what the command showed on the terminal.
    """
    controller, terminal = pty.openpty()
    if size is not None:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    shown = b""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal)
        os.close(terminal)
        terminal = -1
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        status = proc.wait(timeout=120)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return status, shown.decode(errors="replace")
