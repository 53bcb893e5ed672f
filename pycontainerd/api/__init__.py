"""Typed wrappers for containerd's gRPC services, one module per service.

:class:`API` (``Client.api``) holds one wrapper per service on a connection. Each wrapper's
methods take and return plain Python values and frozen dataclasses (:mod:`.types`), apply a
deadline, and raise :class:`~pycontainerd.errors.ContainerdError` subclasses. Each has a
``.stub`` attribute with the raw generated stub for calls the wrapper does not cover.

Every service module has the same three layers, so an asyncio client (over ``grpc.aio``)
can reuse everything but the call:

* module-level ``<rpc>_request(...)`` functions build the request message from Python
  values (and check them: a bad signal is a ``ValueError`` before any I/O);
* module-level ``<rpc>_result(response)`` functions (``list_batch`` and the like for
  streams) convert the response into the frozen dataclasses of :mod:`.types` or of the
  module;
* the service class calls ``build → self.connection.unary/stream/unary_future → convert``.
  Deadlines, metadata and the mapping of gRPC statuses to
  :class:`~pycontainerd.errors.ContainerdError` happen once, in :mod:`pycontainerd._grpc`.

The pure functions sit beside the dataclasses they produce, rather than in a separate
codec package, because those dataclasses (``Image``, ``Lease``, ``SnapshotInfo``, ...) are
defined in the service modules: a codec module would import them from the module that
imports it. Generated messages are used only inside this package (and ``_grpc``).
"""

from __future__ import annotations

from typing import Any

from pycontainerd._grpc import Connection, Service
from pycontainerd.api.containers import ContainersService
from pycontainerd.api.content import ContentService
from pycontainerd.api.diff import DiffService
from pycontainerd.api.events import EventsService
from pycontainerd.api.health import HealthService
from pycontainerd.api.images import ImagesService
from pycontainerd.api.introspection import IntrospectionService
from pycontainerd.api.leases import LeasesService
from pycontainerd.api.namespaces import NamespacesService
from pycontainerd.api.snapshots import SnapshotsService
from pycontainerd.api.tasks import TasksService
from pycontainerd.api.version import VersionService

__all__ = [
    "API",
    "ContainersService",
    "ContentService",
    "DiffService",
    "EventsService",
    "HealthService",
    "ImagesService",
    "IntrospectionService",
    "LeasesService",
    "NamespacesService",
    "Service",
    "SnapshotsService",
    "TasksService",
    "VersionService",
]


class API:
    """Every service wrapper on one connection (namespace, lease and deadlines included).

    Args:
        connection: The connection all services call through.

    Attributes:
        tasks: :class:`TasksService`.
        containers: :class:`ContainersService`.
        events: :class:`EventsService`.
        namespaces: :class:`NamespacesService`.
        version: :class:`VersionService`.
        introspection: :class:`IntrospectionService`.
        health: :class:`HealthService`.
        content: :class:`ContentService`.
        images: :class:`ImagesService`.
        snapshots: :class:`SnapshotsService`.
        leases: :class:`LeasesService`.
        diff: :class:`DiffService`.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.tasks = TasksService(connection)
        self.containers = ContainersService(connection)
        self.events = EventsService(connection)
        self.namespaces = NamespacesService(connection)
        self.version = VersionService(connection)
        self.introspection = IntrospectionService(connection)
        self.health = HealthService(connection)
        self.content = ContentService(connection)
        self.images = ImagesService(connection)
        self.snapshots = SnapshotsService(connection)
        self.leases = LeasesService(connection)
        self.diff = DiffService(connection)

    def services(self) -> dict[str, Any]:
        """Every service wrapper by attribute name (anything here with a ``.stub``)."""
        # Checked on the type: reading .stub would create the channel.
        return {name: value for name, value in vars(self).items() if hasattr(type(value), "stub")}
