r"""pycontainerd: a fast, typed Python client for containerd.

The libcontainerd object model (``Client`` → ``Container`` → ``Task`` →
``Process``) over containerd's gRPC API, with a native (cffi) core for the
FIFOs, bundle directories and the splice(2) stdio pump.

Example:
    >>> import pycontainerd
    >>> result = pycontainerd.run(["echo", "hi"], rootfs="/srv/busybox", capture_output=True)
    >>> result.stdout
    b'hi\n'

The names below are imported on first use (PEP 562), so ``import
pycontainerd`` stays cheap for a command that needs only part of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pycontainerd._version import __version__

if TYPE_CHECKING:
    # The submodules, as attributes (the redundant aliases mark them re-exported).
    from pycontainerd import api as api
    from pycontainerd import bundle as bundle
    from pycontainerd import client as client
    from pycontainerd import container as container
    from pycontainerd import daemon as daemon
    from pycontainerd import errors as errors
    from pycontainerd import events as events
    from pycontainerd import idmap as idmap
    from pycontainerd import images as images
    from pycontainerd import oci as oci
    from pycontainerd import registry as registry
    from pycontainerd import stdio as stdio
    from pycontainerd import task as task
    from pycontainerd import testing as testing
    from pycontainerd import testing_images as testing_images
    from pycontainerd import testing_registry as testing_registry
    from pycontainerd import typeurl as typeurl
    from pycontainerd._run import CompletedContainer, cleanup_runs, run
    from pycontainerd.api.types import ExitStatus, Status
    from pycontainerd.client import Client
    from pycontainerd.container import Container
    from pycontainerd.errors import (
        AlreadyExistsError,
        ConflictError,
        ConnectionLostError,
        ContainerdError,
        ContainerError,
        DrainTimeoutError,
        FailedPreconditionError,
        InvalidArgumentError,
        NotFoundError,
        SinkError,
        UnavailableError,
    )
    from pycontainerd.stdio.fifo import FIFOSet
    from pycontainerd.task import Process, Task

# Public name -> the module that defines it.
_LAZY = {
    "ExitStatus": "pycontainerd.api.types",
    "Status": "pycontainerd.api.types",
    "Client": "pycontainerd.client",
    "Container": "pycontainerd.container",
    "AlreadyExistsError": "pycontainerd.errors",
    "ConflictError": "pycontainerd.errors",
    "ConnectionLostError": "pycontainerd.errors",
    "ContainerdError": "pycontainerd.errors",
    "ContainerError": "pycontainerd.errors",
    "DrainTimeoutError": "pycontainerd.errors",
    "FailedPreconditionError": "pycontainerd.errors",
    "InvalidArgumentError": "pycontainerd.errors",
    "NotFoundError": "pycontainerd.errors",
    "SinkError": "pycontainerd.errors",
    "UnavailableError": "pycontainerd.errors",
    "FIFOSet": "pycontainerd.stdio.fifo",
    "CompletedContainer": "pycontainerd._run",
    "run": "pycontainerd._run",
    "cleanup_runs": "pycontainerd._run",
    "Process": "pycontainerd.task",
    "Task": "pycontainerd.task",
}

# Public submodules, reachable as attributes after ``import pycontainerd`` (pycontainerd.stdio.null()).
_SUBMODULES = frozenset({
    "api", "bundle", "client", "container", "daemon", "errors", "events", "idmap", "images", "oci",
    "registry", "stdio", "task", "testing", "testing_images", "testing_registry", "typeurl",
})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"pycontainerd.{name}")
    else:
        raise AttributeError(f"module 'pycontainerd' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)


__all__ = [
    "AlreadyExistsError",
    "Client",
    "CompletedContainer",
    "ConflictError",
    "ConnectionLostError",
    "Container",
    "ContainerError",
    "ContainerdError",
    "DrainTimeoutError",
    "ExitStatus",
    "FIFOSet",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "Process",
    "SinkError",
    "Status",
    "Task",
    "UnavailableError",
    "__version__",
    "cleanup_runs",
    "run",
]
