r"""pycontainerd: a fast, typed Python client for containerd.

The libcontainerd object model (``Client`` → ``Container`` → ``Task`` →
``Process``) over containerd's gRPC API, with a native (cffi) core for the
FIFOs, bundle directories and the splice(2) stdio pump.

Example:
    >>> import pycontainerd
    >>> result = pycontainerd.run(["echo", "hi"], rootfs="/srv/busybox", capture_output=True)
    >>> result.stdout
    b'hi\\n'
"""

from pycontainerd._version import __version__
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
    UnavailableError,
)
from pycontainerd.fifo import FIFOSet
from pycontainerd.run import CompletedContainer, run
from pycontainerd.task import Process, Task

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
    "Status",
    "Task",
    "UnavailableError",
    "__version__",
    "run",
]
