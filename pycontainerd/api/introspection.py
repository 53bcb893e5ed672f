"""Typed wrapper for ``containerd.services.introspection.v1.Introspection``.

Requests are built and responses converted by the pure functions below (reused by an
asyncio client); only the call between them blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import empty_pb2

from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.introspection.v1 import introspection_pb2, introspection_pb2_grpc
from pycontainerd.api.types import Plugin, ServerInfo

__all__ = ["IntrospectionService"]


def plugins_request(filters: Sequence[str] = ()) -> Any:
    """A ``PluginsRequest``."""
    return introspection_pb2.PluginsRequest(filters=list(filters))


def plugins_result(response: Any) -> list[Plugin]:
    """The plugins of a ``PluginsResponse``."""
    return [Plugin.from_proto(p) for p in response.plugins]


def server_result(response: Any) -> ServerInfo:
    """The daemon's identity from a ``ServerResponse``."""
    return ServerInfo.from_proto(response)


class IntrospectionService(Service):
    """What the daemon runs: its plugins and server identity."""

    _stub_factory = introspection_pb2_grpc.IntrospectionStub

    def plugins(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> list[Plugin]:
        """Plugins matching any of ``filters`` (e.g. ``type==io.containerd.runtime.v2``)."""
        request = plugins_request(filters)
        response = self._conn.unary(self.stub.Plugins, request, timeout=timeout, metadata=metadata)
        return plugins_result(response)

    def server(self, *, timeout: float | None = None, metadata: Metadata = ()) -> ServerInfo:
        """The daemon's UUID (and, on 1.7+, its pid, pid namespace and deprecation warnings)."""
        response = self._conn.unary(self.stub.Server, empty_pb2.Empty(), timeout=timeout, metadata=metadata)
        return server_result(response)
