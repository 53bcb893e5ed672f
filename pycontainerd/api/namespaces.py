"""Typed wrapper for ``containerd.services.namespaces.v1.Namespaces``.

Namespace calls are not scoped by the caller's namespace. Every method takes keyword-only
``timeout`` and ``metadata``. Requests are built and responses converted by the pure
functions below (reused by an asyncio client); only the calls block.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from google.protobuf import field_mask_pb2

from pycontainerd._grpc import Metadata, Service, validate_namespace
from pycontainerd._proto.services.namespaces.v1 import namespace_pb2, namespace_pb2_grpc
from pycontainerd.api.types import Namespace

__all__ = ["NamespacesService"]


def get_request(name: str) -> Any:
    """A ``GetNamespaceRequest``."""
    return namespace_pb2.GetNamespaceRequest(name=name)


def namespace_result(response: Any) -> Namespace:
    """The namespace in a Get or Create response."""
    return Namespace.from_proto(response.namespace)


def list_request(filter: str = "") -> Any:
    """A ``ListNamespacesRequest``."""
    return namespace_pb2.ListNamespacesRequest(filter=filter)


def list_result(response: Any) -> builtins.list[Namespace]:
    """The namespaces of a ``ListNamespacesResponse``."""
    return [Namespace.from_proto(n) for n in response.namespaces]


def create_request(name: str, labels: Mapping[str, str] | None = None) -> Any:
    """A ``CreateNamespaceRequest``.

    Raises:
        ValueError: ``name`` breaks containerd's identifier rules.
    """
    validate_namespace(name)
    return namespace_pb2.CreateNamespaceRequest(
        namespace=namespace_pb2.Namespace(name=name, labels=dict(labels or {}))
    )


def update_request(name: str, labels: Mapping[str, str], *, replace: bool = False) -> Any:
    """An ``UpdateNamespaceRequest`` setting ``labels`` (all of them with ``replace``)."""
    request = namespace_pb2.UpdateNamespaceRequest(
        namespace=namespace_pb2.Namespace(name=name, labels=dict(labels))
    )
    if not replace:
        # An empty mask means "replace all labels"; containerd accepts only labels.<key> paths.
        request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=[f"labels.{key}" for key in labels]))
    return request


def delete_request(name: str) -> Any:
    """A ``DeleteNamespaceRequest``."""
    return namespace_pb2.DeleteNamespaceRequest(name=name)


class NamespacesService(Service):
    """Create, inspect, relabel and delete namespaces."""

    _stub_factory = namespace_pb2_grpc.NamespacesStub

    def get(self, name: str, *, timeout: float | None = None, metadata: Metadata = ()) -> Namespace:
        """The namespace ``name``.

        Raises:
            NotFoundError: It does not exist.
        """
        request = get_request(name)
        response = self._conn.unary(self.stub.Get, request, timeout=timeout, metadata=metadata)
        return namespace_result(response)

    def list(
        self, filter: str = "", *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[Namespace]:
        """Every namespace."""
        request = list_request(filter)
        response = self._conn.unary(self.stub.List, request, timeout=timeout, metadata=metadata)
        return list_result(response)

    def create(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Namespace:
        """Create a namespace (namespaces also appear implicitly on first use).

        Raises:
            ValueError: ``name`` breaks containerd's identifier rules (checked locally).
            AlreadyExistsError: It exists.
        """
        request = create_request(name, labels)
        response = self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return namespace_result(response)

    def update(
        self,
        name: str,
        labels: Mapping[str, str],
        *,
        replace: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Namespace:
        """Set labels on a namespace.

        Args:
            name: The namespace.
            labels: Labels to set; an empty value removes that label.
            replace: Replace the whole label set instead of setting only these keys.
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.

        Returns:
            The namespace as stored after the update.
        """
        request = update_request(name, labels, replace=replace)
        self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)
        # containerd's Update answers with an empty namespace, so read the result back.
        return self.get(name, timeout=timeout, metadata=metadata)

    def delete(self, name: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Delete an empty namespace.

        Raises:
            FailedPreconditionError: It still holds containers, images, content, ...
            NotFoundError: It does not exist.
        """
        request = delete_request(name)
        self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)
