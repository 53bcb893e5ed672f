"""A cancellation request that a caller in another thread hands to the sync image and registry code.

The asyncio client runs a pull, push or import in a worker thread; cancelling the
awaiting task must stop that thread promptly. Polling a flag between chunks is not
enough: a download can sit in a blocked socket read for the transport's whole read
timeout. So a :class:`CancelToken` is a flag *and* a list of callbacks run the moment
it is set (the registry transport registers one that shuts its sockets down, which
wakes the blocked read at once). Internal: the sync functions take it as a
keyword-only ``cancel=`` that their public ``Client`` methods do not expose.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

__all__ = ["CancelToken", "OperationCancelled"]


class OperationCancelled(Exception):
    """The operation stopped because its :class:`CancelToken` was set (what it made is undone)."""


class CancelToken:
    """Set once, from any thread; the work checks :meth:`is_set` or registers :meth:`on_set` callbacks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def is_set(self) -> bool:
        """Whether cancellation was asked for."""
        return self._event.is_set()

    def set(self) -> None:
        """Ask for cancellation: run every registered callback once (their errors are ignored)."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            # A callback that fails must not keep the others from stopping their part.
            with contextlib.suppress(Exception):
                callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when the token is set (at once if it is); returns its unregistration."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)

                def remove() -> None:
                    with self._lock, contextlib.suppress(ValueError):
                        self._callbacks.remove(callback)

                return remove
        with contextlib.suppress(Exception):
            callback()
        return lambda: None

    def check(self, what: str = "operation") -> None:
        """Raise :class:`OperationCancelled` if the token is set."""
        if self._event.is_set():
            raise OperationCancelled(f"{what} cancelled")

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when set; whether it is set."""
        return self._event.wait(timeout)
