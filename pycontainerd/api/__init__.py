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

import functools
import importlib
from typing import TYPE_CHECKING, Any

from pycontainerd._grpc import Connection, Service

if TYPE_CHECKING:
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

# Attribute of API -> (module, class). A service's module (and its generated code) is
# imported when the attribute (or the class, from this package) is first read:
# `pycontainerd run` needs two of twelve.
_SERVICES = {
    "tasks": ("pycontainerd.api.tasks", "TasksService"),
    "containers": ("pycontainerd.api.containers", "ContainersService"),
    "events": ("pycontainerd.api.events", "EventsService"),
    "namespaces": ("pycontainerd.api.namespaces", "NamespacesService"),
    "version": ("pycontainerd.api.version", "VersionService"),
    "introspection": ("pycontainerd.api.introspection", "IntrospectionService"),
    "health": ("pycontainerd.api.health", "HealthService"),
    "content": ("pycontainerd.api.content", "ContentService"),
    "images": ("pycontainerd.api.images", "ImagesService"),
    "snapshots": ("pycontainerd.api.snapshots", "SnapshotsService"),
    "leases": ("pycontainerd.api.leases", "LeasesService"),
    "diff": ("pycontainerd.api.diff", "DiffService"),
}
_CLASSES = {cls: module for module, cls in _SERVICES.values()}


def __getattr__(name: str) -> Any:
    if name not in _CLASSES:
        raise AttributeError(f"module 'pycontainerd.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(_CLASSES[name]), name)
    globals()[name] = value
    return value


class API:
    """Every service wrapper on one connection (namespace, lease and deadlines included).

    Each wrapper is made (and its module imported) on first use.

    Args:
        connection: The connection all services call through.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @functools.cached_property
    def tasks(self) -> TasksService:
        """:class:`TasksService`."""
        from pycontainerd.api.tasks import TasksService

        return TasksService(self.connection)

    @functools.cached_property
    def containers(self) -> ContainersService:
        """:class:`ContainersService`."""
        from pycontainerd.api.containers import ContainersService

        return ContainersService(self.connection)

    @functools.cached_property
    def events(self) -> EventsService:
        """:class:`EventsService`."""
        from pycontainerd.api.events import EventsService

        return EventsService(self.connection)

    @functools.cached_property
    def namespaces(self) -> NamespacesService:
        """:class:`NamespacesService`."""
        from pycontainerd.api.namespaces import NamespacesService

        return NamespacesService(self.connection)

    @functools.cached_property
    def version(self) -> VersionService:
        """:class:`VersionService`."""
        from pycontainerd.api.version import VersionService

        return VersionService(self.connection)

    @functools.cached_property
    def introspection(self) -> IntrospectionService:
        """:class:`IntrospectionService`."""
        from pycontainerd.api.introspection import IntrospectionService

        return IntrospectionService(self.connection)

    @functools.cached_property
    def health(self) -> HealthService:
        """:class:`HealthService`."""
        from pycontainerd.api.health import HealthService

        return HealthService(self.connection)

    @functools.cached_property
    def content(self) -> ContentService:
        """:class:`ContentService`."""
        from pycontainerd.api.content import ContentService

        return ContentService(self.connection)

    @functools.cached_property
    def images(self) -> ImagesService:
        """:class:`ImagesService`."""
        from pycontainerd.api.images import ImagesService

        return ImagesService(self.connection)

    @functools.cached_property
    def snapshots(self) -> SnapshotsService:
        """:class:`SnapshotsService`."""
        from pycontainerd.api.snapshots import SnapshotsService

        return SnapshotsService(self.connection)

    @functools.cached_property
    def leases(self) -> LeasesService:
        """:class:`LeasesService`."""
        from pycontainerd.api.leases import LeasesService

        return LeasesService(self.connection)

    @functools.cached_property
    def diff(self) -> DiffService:
        """:class:`DiffService`."""
        from pycontainerd.api.diff import DiffService

        return DiffService(self.connection)

    def services(self) -> dict[str, Any]:
        """Every service wrapper by attribute name (anything here with a ``.stub``)."""
        return {name: getattr(self, name) for name in _SERVICES}
