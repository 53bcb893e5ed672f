"""The sync client behind an asyncio client's image and registry methods, made lazily, closed with it.

The image code runs in worker threads on a sync :class:`pycontainerd.Client` for the
same socket. One sync channel serves the asyncio client and all its views (as the
asyncio channel does); each view gets the sync view of its namespace and lease.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pycontainerd.client import Client as SyncClient

__all__ = ["SyncSide"]


class SyncSide:
    """The lazily made sync client shared by an asyncio client and its views.

    Args:
        address: The daemon's socket.
        timeout: The default deadline of unary calls (as the asyncio client's).
    """

    def __init__(self, address: str, timeout: float | None) -> None:
        self._address = address
        self._timeout = timeout
        self._lock = threading.Lock()
        self._root: SyncClient | None = None
        self._closed = False

    def client(self, namespace: str, lease: str | None) -> SyncClient:
        """The sync client (view) for ``namespace`` and ``lease``.

        Raises:
            ValueError: The asyncio client was closed.
        """
        from pycontainerd.client import Client as SyncClient

        with self._lock:
            if self._closed:
                raise ValueError("operation on a closed containerd connection")
            if self._root is None:
                self._root = SyncClient(self._address, namespace=namespace, timeout=self._timeout)
            root = self._root
        view = root if root.namespace == namespace else root.with_namespace(namespace)
        return view.with_lease(lease) if lease is not None else view

    def close(self) -> None:
        """Close the sync channel (idempotent); later calls raise ``ValueError``."""
        with self._lock:
            self._closed = True
            root, self._root = self._root, None
        if root is not None:
            root.close()
