"""Per-key ordered dispatch: moby's ``libcontainerd/queue``.

Callbacks for one key (a container id) run strictly one at a time in
submission order; callbacks for different keys run concurrently on a bounded
pool of threads. A callback that raises is logged and does not stop the
queue.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_log = logging.getLogger(__name__)


class OrderedQueue:
    """Run callables in order per key and concurrently across keys."""

    def __init__(self, max_workers: int = 8, *, name: str = "pcd-events") -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending: dict[str, deque[Callable[[], None]]] = {}

    def append(self, key: str, fn: Callable[[], None]) -> None:
        """Queue ``fn`` behind every earlier callable for ``key``.

        Args:
            key: The ordering key (a container id).
            fn: The work; exceptions are logged.
        """
        with self._lock:
            queue = self._pending.get(key)
            if queue is not None:
                # A drainer is running for this key and will pick it up.
                queue.append(fn)
                return
            self._pending[key] = deque([fn])
        self._executor.submit(self._drain, key)

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._pending[key]
                if not queue:
                    del self._pending[key]
                    return
                fn = queue[0]
            try:
                fn()
            except Exception:
                _log.exception("event handler for %s failed", key)
            except BaseException:
                # Not swallowed (SystemExit, KeyboardInterrupt), but the key must not stall.
                with self._lock:
                    queue.popleft()
                with contextlib.suppress(RuntimeError):  # already shut down
                    self._executor.submit(self._drain, key)
                raise
            with self._lock:
                queue.popleft()

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, finish what is queued first."""
        self._executor.shutdown(wait=wait)
