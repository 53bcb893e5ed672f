"""Typed wrapper for ``containerd.services.version.v1.Version``.

The request is empty; :func:`version_result` is the pure conversion an asyncio client reuses.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import empty_pb2

from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.version.v1 import version_pb2_grpc
from pycontainerd.api.types import Version

__all__ = ["VersionService"]


def version_request() -> Any:
    """The (empty) request of Version/Version."""
    return empty_pb2.Empty()


def version_result(response: Any) -> Version:
    """The version and revision a ``VersionResponse`` reports."""
    return Version(version=response.version, revision=response.revision)


class VersionService(Service):
    """The daemon's version."""

    _stub_factory = version_pb2_grpc.VersionStub

    def version(self, *, timeout: float | None = None, metadata: Metadata = ()) -> Version:
        """The daemon's version (e.g. ``1.6.20~ds1``) and revision.

        Raises:
            UnavailableError: The daemon cannot be reached.
        """
        response = self._conn.unary(self.stub.Version, version_request(), timeout=timeout, metadata=metadata)
        return version_result(response)
