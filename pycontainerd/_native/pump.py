"""Bindings for ``csrc/pump.c``: the native stdio pump, C-shaped.

.. warning::
   Hazardous materials: raw descriptors, no ownership. Use
   :mod:`pycontainerd.stdio.pump` (or :mod:`pycontainerd.stdio`) instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycontainerd._native import FFI, LIB, check

#: Always use read/write, never splice (tests and benchmarks compare the paths).
NO_SPLICE: int = LIB.PCD_PUMP_NO_SPLICE
#: Never enlarge pipe buffers with ``F_SETPIPE_SZ``.
NO_RESIZE: int = LIB.PCD_PUMP_NO_RESIZE
#: A pair whose destination fails keeps reading its source to EOF, dropping the bytes.
DISCARD_ON_ERROR: int = LIB.PCD_PUMP_DISCARD_ON_ERROR


def pump(
    pairs: Sequence[tuple[int, int]], cancel_fd: int = -1, flags: int = 0, drain_fd: int = -1
) -> tuple[bool, list[tuple[int, int, bool, int]]]:
    """Run ``pcd_pump_drain``: copy every ``(src, dst)`` pair in one epoll loop, GIL released.

    Args:
        pairs: ``(source fd, destination fd)`` pairs; never closed here.
        cancel_fd: A descriptor (an eventfd) whose readability cancels the
            copy, or ``-1``.
        flags: ``NO_SPLICE``, ``NO_RESIZE`` and/or ``DISCARD_ON_ERROR``.
        drain_fd: A descriptor (an eventfd) whose readability makes every pair
            end once its source is empty and its bytes are written, or ``-1``;
            not ``cancel_fd`` (that fails with ``FileExistsError``).

    Returns:
        ``(cancelled, outcomes)``, one ``(nbytes, errno, done, dropped)`` per
        pair: bytes written to the destination, the positive errno that ended
        the pair (``0`` for EOF; with ``DISCARD_ON_ERROR`` the destination's
        error even though the source was read to EOF), whether the pair ended
        (EOF or error) before a cancel, and the bytes read but not delivered.

    Raises:
        OSError: The loop itself failed (bad ``cancel_fd`` or ``drain_fd``,
            both the same, no memory).
    """
    streams = FFI.new("struct pcd_pump_stream[]", max(len(pairs), 1))
    for i, (src, dst) in enumerate(pairs):
        streams[i].src = src
        streams[i].dst = dst
    rc = check(LIB.pcd_pump_drain(streams, len(pairs), cancel_fd, drain_fd, flags))
    outcomes = [(int(s.nbytes), int(s.err), bool(s.done), int(s.dropped)) for s in streams[0 : len(pairs)]]
    return rc == LIB.PCD_PUMP_CANCELLED, outcomes


__all__ = ["DISCARD_ON_ERROR", "NO_RESIZE", "NO_SPLICE", "pump"]
