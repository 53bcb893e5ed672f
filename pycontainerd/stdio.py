"""Public stdio: how a process's bytes move, and how a task's stdio is wired.

The native pump (:mod:`pycontainerd.pump`): :func:`copy` copies one source
into one destination until EOF, :func:`copy_streams` serves a process's
stdout and stderr (or any set of pairs) from one native loop, and a
:class:`CancelToken` stops either from another thread.

The stdio strategies for tasks and execs (containerd's ``cio``):
:func:`null`, :func:`streams`, :func:`capture`, :func:`log_file`,
:func:`inherit` and the libcontainerd-style :func:`attach` callback, each a
:class:`Stdio` that ``Container.new_task``/``Task.exec`` turn into a live
:class:`ProcessIO`.

The zero-copy mode: :func:`handoff` wraps one of those strategies so that a
process without stdin and without a terminal hands its own stdout/stderr pipes
to this client (the ``pcd-handoff`` logging binary), which splices them into
the same sinks; elsewhere the wrapped strategy's FIFOs are used
(:class:`HandoffUnavailableError` with ``fallback=False``).
"""

from __future__ import annotations

from pycontainerd._handoff_stdio import HandoffUnavailableError, handoff
from pycontainerd._stdio import (
    DirectIO,
    ProcessIO,
    Sink,
    Source,
    Stdio,
    attach,
    capture,
    inherit,
    log_file,
    null,
    streams,
)
from pycontainerd.pump import CancelToken, CopyResult, copy, copy_streams

__all__ = [
    "CancelToken",
    "CopyResult",
    "DirectIO",
    "HandoffUnavailableError",
    "ProcessIO",
    "Sink",
    "Source",
    "Stdio",
    "attach",
    "capture",
    "copy",
    "copy_streams",
    "handoff",
    "inherit",
    "log_file",
    "null",
    "streams",
]
