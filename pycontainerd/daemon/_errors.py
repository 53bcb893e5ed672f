"""The daemon package's one error type."""

from __future__ import annotations

__all__ = ["DaemonError"]


class DaemonError(RuntimeError):
    """containerd failed to start or died, or a cleanup left something behind.

    Attributes:
        log_tail: The last lines of the daemon's log, when relevant ("" otherwise);
            they are also part of the message.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n--- containerd log (tail) ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail
