"""Public stdio: moving a process's bytes between file descriptors.

For now this re-exports the native pump (:mod:`pycontainerd.pump`):
:func:`copy` copies one source into one destination until EOF,
:func:`copy_streams` serves a process's stdout and stderr (or any set of
pairs) from one native loop, and a :class:`CancelToken` stops either from
another thread. The stdio strategies used by tasks (containerd's ``cio``)
will join them here.
"""

from __future__ import annotations

from pycontainerd.pump import CancelToken, CopyResult, copy, copy_streams

__all__ = ["CancelToken", "CopyResult", "copy", "copy_streams"]
