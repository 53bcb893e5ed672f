"""Typed wrapper of containerd's lease service (``containerd.services.leases.v1.Leases``).

A lease keeps resources (blobs, snapshots, ingests) from being garbage collected while it
exists. Resources join a lease when they are created by a call that carries the
``containerd-lease`` header (``client.with_lease(lease.id)``), or explicitly through
:meth:`LeasesService.add_resource`. Deleting the lease releases them.

Requests are built and responses converted by the pure functions below (reused by an
asyncio client); only the calls block.

Example:
    >>> with client.api.leases.lease() as lease:
    ...     leased = client.with_lease(lease.id)
    ...     desc = leased.api.content.write("upload-1", data)
    ...     ...  # desc's blob is safe from garbage collection until the block ends
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import datetime as _dt
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycontainerd import errors, typeurl
from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.leases.v1 import leases_pb2, leases_pb2_grpc

__all__ = ["DEFAULT_EXPIRE", "EXPIRE_LABEL", "Lease", "LeaseResource", "LeasesService", "new_lease_id"]

# containerd's garbage collector deletes a lease once the RFC 3339 time in this label passed.
EXPIRE_LABEL = "containerd.io/gc.expire"
# What containerd's Go client gives the leases it creates on its own (client.WithLease).
DEFAULT_EXPIRE = _dt.timedelta(hours=24)


def new_lease_id() -> str:
    """A fresh lease id in the Go client's format (``<nanoseconds>-<4 random base64url chars>``)."""
    suffix = base64.urlsafe_b64encode(os.urandom(3)).decode("ascii")
    return f"{time.time_ns() % 1_000_000_000}-{suffix}"


def _rfc3339(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Lease:
    """A lease.

    Attributes:
        id: Its id.
        created_at: When it was created.
        labels: Its labels (``containerd.io/gc.expire`` bounds its life).
    """

    id: str
    created_at: _dt.datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, lease: Any) -> Lease:
        """From a ``containerd.services.leases.v1.Lease``."""
        return cls(
            id=lease.id, created_at=typeurl.field_timestamp(lease, "created_at"), labels=dict(lease.labels)
        )


@dataclass(frozen=True)
class LeaseResource:
    """A resource held by a lease.

    Attributes:
        id: The blob digest, snapshot key or ingest ref.
        type: ``content``, ``snapshots/<snapshotter>`` or ``ingests``.
    """

    id: str
    type: str

    @classmethod
    def content(cls, digest: str) -> LeaseResource:
        """A content blob."""
        return cls(id=digest, type="content")

    @classmethod
    def snapshot(cls, snapshotter: str, key: str) -> LeaseResource:
        """A snapshot of ``snapshotter``."""
        return cls(id=key, type=f"snapshots/{snapshotter}")

    @classmethod
    def ingest(cls, ref: str) -> LeaseResource:
        """An upload in progress."""
        return cls(id=ref, type="ingests")

    @classmethod
    def from_proto(cls, resource: Any) -> LeaseResource:
        """From a ``containerd.services.leases.v1.Resource``."""
        return cls(id=resource.id, type=resource.type)

    def to_proto(self) -> Any:
        """As a ``containerd.services.leases.v1.Resource``."""
        return leases_pb2.Resource(id=self.id, type=self.type)


def create_request(
    id: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    expire: _dt.timedelta | None = None,
    now: _dt.datetime | None = None,
) -> Any:
    """A ``CreateRequest``: a fresh id unless given, the expiry as ``containerd.io/gc.expire``.

    Args:
        id: The lease id; default :func:`new_lease_id`.
        labels: Its labels.
        expire: How long from ``now`` the garbage collector may delete it.
        now: The moment ``expire`` counts from; default the current time.

    Returns:
        The request.
    """
    all_labels = dict(labels or {})
    if expire is not None:
        start = _dt.datetime.now(_dt.timezone.utc) if now is None else now
        all_labels[EXPIRE_LABEL] = _rfc3339(start + expire)
    return leases_pb2.CreateRequest(id=new_lease_id() if id is None else id, labels=all_labels)


def lease_result(response: Any) -> Lease:
    """The lease in a ``CreateResponse``."""
    return Lease.from_proto(response.lease)


def delete_request(id: str, *, sync: bool = False) -> Any:
    """A ``DeleteRequest``."""
    return leases_pb2.DeleteRequest(id=id, sync=sync)


def list_request(filters: Sequence[str] = ()) -> Any:
    """A ``ListRequest``."""
    return leases_pb2.ListRequest(filters=builtins.list(filters))


def list_result(response: Any) -> builtins.list[Lease]:
    """The leases of a ``ListResponse``."""
    return [Lease.from_proto(lease) for lease in response.leases]


def add_resource_request(id: str, resource: LeaseResource) -> Any:
    """An ``AddResourceRequest``."""
    return leases_pb2.AddResourceRequest(id=id, resource=resource.to_proto())


def delete_resource_request(id: str, resource: LeaseResource) -> Any:
    """A ``DeleteResourceRequest``."""
    return leases_pb2.DeleteResourceRequest(id=id, resource=resource.to_proto())


def list_resources_request(id: str) -> Any:
    """A ``ListResourcesRequest``."""
    return leases_pb2.ListResourcesRequest(id=id)


def list_resources_result(response: Any) -> builtins.list[LeaseResource]:
    """The resources of a ``ListResourcesResponse``."""
    return [LeaseResource.from_proto(r) for r in response.resources]


class LeasesService(Service):
    """containerd's leases: hold resources back from garbage collection."""

    _stub_factory = leases_pb2_grpc.LeasesStub

    def create(
        self,
        id: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        expire: _dt.timedelta | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Lease:
        """Create a lease.

        Args:
            id: The lease id; default a fresh one (:func:`new_lease_id`).
            labels: Its labels.
            expire: Let the garbage collector delete the lease this long from now (sets
                ``containerd.io/gc.expire``); default: never.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The lease.

        Raises:
            AlreadyExistsError: A lease with that id exists.
            InvalidArgumentError: An invalid id.
        """
        request = create_request(id, labels=labels, expire=expire)
        response = self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return lease_result(response)

    def delete(
        self, id: str, *, sync: bool = False, timeout: float | None = None, metadata: Metadata = ()
    ) -> None:
        """Delete a lease, releasing its resources to garbage collection.

        Args:
            id: The lease id.
            sync: Return only after the garbage collection that the deletion triggers, so
                resources held only by this lease are gone.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No such lease.
        """
        request = delete_request(id, sync=sync)
        self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)

    def list(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[Lease]:
        """List leases.

        Args:
            filters: containerd filter expressions (``id==x``, ``labels."a"==b``), any of
                which may match; none lists every lease in the namespace.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The matching leases.
        """
        request = list_request(filters)
        response = self._conn.unary(self.stub.List, request, timeout=timeout, metadata=metadata)
        return list_result(response)

    def add_resource(
        self, id: str, resource: LeaseResource, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> None:
        """Add a resource to a lease (the resource need not exist yet).

        Args:
            id: The lease id.
            resource: The resource.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No such lease.
            UnimplementedError: An unknown resource type.
        """
        request = add_resource_request(id, resource)
        self._conn.unary(self.stub.AddResource, request, timeout=timeout, metadata=metadata)

    def delete_resource(
        self, id: str, resource: LeaseResource, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> None:
        """Remove a resource from a lease (it becomes collectable unless referenced elsewhere).

        Args:
            id: The lease id.
            resource: The resource.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No such lease.
            UnimplementedError: An unknown resource type.
        """
        request = delete_resource_request(id, resource)
        self._conn.unary(self.stub.DeleteResource, request, timeout=timeout, metadata=metadata)

    def list_resources(
        self, id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[LeaseResource]:
        """The resources a lease holds.

        Args:
            id: The lease id.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Its resources.

        Raises:
            NotFoundError: No such lease.
        """
        request = list_resources_request(id)
        response = self._conn.unary(self.stub.ListResources, request, timeout=timeout, metadata=metadata)
        return list_resources_result(response)

    @contextlib.contextmanager
    def lease(
        self,
        id: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        expire: _dt.timedelta | None = DEFAULT_EXPIRE,
        sync: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Iterator[Lease]:
        """Create a lease for the duration of a ``with`` block, then delete it.

        Make the calls whose results the lease should hold through
        ``client.with_lease(lease.id)``. The expiry (24 h by default, as containerd's Go
        client uses) bounds the lease's life should this process die inside the block.

        Args:
            id: The lease id; default a fresh one.
            labels: Its labels.
            expire: Expiry from now, ``None`` for none.
            sync: On exit, wait for the garbage collection that deleting the lease triggers.
            timeout: Deadline in seconds for the create and delete calls.
            metadata: Extra gRPC metadata for both calls.

        Yields:
            The lease.

        Raises:
            AlreadyExistsError: A lease with that id exists.
        """
        created = self.create(id, labels=labels, expire=expire, timeout=timeout, metadata=metadata)
        try:
            yield created
        except BaseException:
            # The block's own failure is the one to report; the expiry still ends the lease.
            with contextlib.suppress(errors.ContainerdError):
                self.delete(created.id, sync=sync, timeout=timeout, metadata=metadata)
            raise
        # Someone may have deleted it inside the block; that is the state we want.
        with contextlib.suppress(errors.NotFoundError):
            self.delete(created.id, sync=sync, timeout=timeout, metadata=metadata)
