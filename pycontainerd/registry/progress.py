"""Progress of a pull or push, as data: one :class:`ProgressEvent` per step of each blob.

A pull reports, per blob: ``resolved`` (the root manifest's digest is known),
``waiting`` (queued behind ``max_concurrent`` downloads), ``downloading`` (bytes so
far of the total; several times), ``verifying``, ``exists`` (already in the content
store: nothing downloaded), ``done``, and per layer ``unpacking`` then ``unpacked``.
A push reports ``exists`` (the registry has it), ``mounted`` (from another
repository), ``uploading`` (bytes so far) and ``done``.

The callback runs in the thread doing the work, never two at once (calls are
serialised); it should be quick. An exception it raises ends the pull or push.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = ["Phase", "Progress", "ProgressEvent", "Reporter"]


class Phase(str, Enum):
    """What is happening to a blob."""

    RESOLVED = "resolved"
    WAITING = "waiting"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    EXISTS = "exists"
    UNPACKING = "unpacking"
    UNPACKED = "unpacked"
    MOUNTED = "mounted"
    UPLOADING = "uploading"
    DONE = "done"


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one blob.

    Attributes:
        phase: The step.
        digest: The blob's digest.
        media_type: Its media type.
        size: Its size in bytes.
        offset: Bytes transferred so far (``size`` once done).
    """

    phase: Phase
    digest: str
    media_type: str
    size: int
    offset: int = 0


#: A progress callback.
Progress = Callable[[ProgressEvent], None]


class Reporter:
    """Serialises the calls of a progress callback made from several threads (``None``: no-op)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()

    def __call__(self, phase: Phase, digest: str, media_type: str, size: int, offset: int = 0) -> None:
        """Report one event."""
        if self._progress is None:
            return
        event = ProgressEvent(phase, digest, media_type, size, offset)
        with self._lock:
            self._progress(event)
