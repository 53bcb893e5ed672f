"""Stdio: where a process's bytes come from and go, and how they travel.

* **Strategies** (:mod:`~pycontainerd.stdio.strategy`): :func:`null`,
  :func:`streams`, :func:`capture`, :func:`log_file`, :func:`inherit` and the
  libcontainerd-style :func:`attach` callback, each a :class:`Stdio` value for
  ``Container.new_task``/``Task.exec``/``Container.attach_task``.
* **Transports**: FIFOs (:mod:`~pycontainerd.stdio.fifo_io`, containerd's
  ``cio``, the default) or the zero-copy handoff of the container's own pipes
  (:mod:`~pycontainerd.stdio.handoff_io`), chosen with :func:`handoff` for any
  strategy with sinks. :mod:`~pycontainerd.stdio.opener` opens a process's
  :class:`ProcessIO` for a strategy over its transport.
* **Primitives**: the native pump (:func:`copy`, :func:`copy_streams`,
  :class:`CancelToken`; :mod:`~pycontainerd.stdio.pump`), FIFOs
  (:mod:`~pycontainerd.stdio.fifo`) and the handoff helper's protocol
  (:mod:`~pycontainerd.stdio.handoff_helper`).
"""

from __future__ import annotations

from pycontainerd.stdio.handoff_io import HandoffUnavailableError
from pycontainerd.stdio.process_io import IOConfig, ProcessIO
from pycontainerd.stdio.pump import CancelToken, CopyResult, copy, copy_streams
from pycontainerd.stdio.sinks import Sink, Source
from pycontainerd.stdio.strategy import (
    DirectIO,
    Stdio,
    Transport,
    attach,
    capture,
    handoff,
    inherit,
    log_file,
    null,
    streams,
)

__all__ = [
    "CancelToken",
    "CopyResult",
    "DirectIO",
    "HandoffUnavailableError",
    "IOConfig",
    "ProcessIO",
    "Sink",
    "Source",
    "Stdio",
    "Transport",
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
