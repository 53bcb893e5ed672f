"""``pycontainerd.aio``: the asyncio client, a sibling of the sync one on ``grpc.aio``.

The same object model and names as :mod:`pycontainerd` (``Client`` → ``Container`` →
``Task``/``Process``), with every call awaited, plus :func:`run` and
:func:`create_subprocess_exec`. Everything that does not block is shared with the
sync client: request building and response conversion (:mod:`pycontainerd.api`),
the error mapping, argument checks, spec building, the stdio strategies and their
transport decision, event decoding and reconcile rules. Stdio is copied by a fixed
pool of native pump threads shared by every process (no thread per container) and
awaited on the event loop.
The image and registry methods (import, export, pull, push, ...) run the sync
client's image code in worker threads, cancellable (:mod:`pycontainerd.aio.images`,
:class:`~pycontainerd.aio.transfer.Transfer`).

Example:
    >>> async with pycontainerd.aio.Client(namespace="demo") as client:
    ...     result = await pycontainerd.aio.run(["echo", "hi"], rootfs="/srv/busybox",
    ...                                         capture_output=True, client=client)

.. versionadded:: 0.2
"""

from __future__ import annotations

from pycontainerd._run import CompletedContainer
from pycontainerd.aio.client import Client
from pycontainerd.aio.container import Container
from pycontainerd.aio.events import EventMonitor
from pycontainerd.aio.run import (
    CANCEL_CLEANUP_TIMEOUT,
    DEVNULL,
    PIPE,
    STDOUT,
    ContainerProcess,
    create_subprocess_exec,
    run,
)
from pycontainerd.aio.task import Process, Task
from pycontainerd.aio.transfer import Transfer

__all__ = [
    "CANCEL_CLEANUP_TIMEOUT",
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "Client",
    "CompletedContainer",
    "Container",
    "ContainerProcess",
    "EventMonitor",
    "Process",
    "Task",
    "Transfer",
    "create_subprocess_exec",
    "run",
]
