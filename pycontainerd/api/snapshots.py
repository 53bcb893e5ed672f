"""Typed wrapper of containerd's snapshot service (``containerd.services.snapshots.v1.Snapshots``).

Every call names the snapshotter plugin (``overlayfs``, ``native``, ...). A snapshot is
*active* (writable, from :meth:`SnapshotsService.prepare`), a *view* (read-only, from
:meth:`SnapshotsService.view`) or *committed* (an immutable parent for others). Active and
view snapshots are used through the mounts the daemon returns; mounting them is the
caller's job. Every method raises :class:`~pycontainerd.errors.InvalidArgumentError` when
the named snapshotter is not loaded.

Unreferenced snapshots are garbage collected: work under a lease
(:meth:`pycontainerd.api.leases.LeasesService.lease`) or label them
``containerd.io/gc.root``.

Requests are built and responses converted by the pure functions below (reused by an
asyncio client); only the calls block.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import field_mask_pb2

from pycontainerd import typeurl
from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.snapshots.v1 import snapshots_pb2, snapshots_pb2_grpc
from pycontainerd.api.types import Mount

__all__ = ["SnapshotInfo", "SnapshotKind", "SnapshotsService", "Usage"]


class SnapshotKind(str, enum.Enum):
    """What a snapshot is; values are the names containerd's ``ParseKind`` accepts."""

    UNKNOWN = "unknown"
    VIEW = "view"
    ACTIVE = "active"
    COMMITTED = "committed"

    @classmethod
    def from_proto(cls, value: int) -> SnapshotKind:
        """The member for a wire enum value; unknown values map to ``UNKNOWN``."""
        return _KIND_BY_NUMBER.get(value, cls.UNKNOWN)


_KIND_BY_NUMBER: dict[int, SnapshotKind] = {
    int(snapshots_pb2.VIEW): SnapshotKind.VIEW,
    int(snapshots_pb2.ACTIVE): SnapshotKind.ACTIVE,
    int(snapshots_pb2.COMMITTED): SnapshotKind.COMMITTED,
}


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot's metadata (Snapshots/Stat, Update, List).

    Attributes:
        name: Its key (active, view) or name (committed).
        kind: Active, view or committed.
        parent: The committed snapshot it is based on, "" for a base snapshot.
        labels: Its labels.
        created_at: When it was created.
        updated_at: When it was last updated.
    """

    name: str
    kind: SnapshotKind
    parent: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None

    @classmethod
    def from_proto(cls, info: Any) -> SnapshotInfo:
        """From a ``containerd.services.snapshots.v1.Info``."""
        return cls(
            name=info.name,
            kind=SnapshotKind.from_proto(info.kind),
            parent=info.parent,
            labels=dict(info.labels),
            created_at=typeurl.field_timestamp(info, "created_at"),
            updated_at=typeurl.field_timestamp(info, "updated_at"),
        )


@dataclass(frozen=True)
class Usage:
    """Disk used by a snapshot itself, excluding its parents.

    Attributes:
        size: Bytes.
        inodes: Inodes.
    """

    size: int
    inodes: int


def mounts_result(response: Any) -> builtins.list[Mount]:
    """The mounts of a Prepare, View or Mounts response."""
    return [Mount.from_proto(m) for m in response.mounts]


def prepare_request(
    snapshotter: str, key: str, *, parent: str = "", labels: Mapping[str, str] | None = None
) -> Any:
    """A ``PrepareSnapshotRequest``."""
    return snapshots_pb2.PrepareSnapshotRequest(
        snapshotter=snapshotter, key=key, parent=parent, labels=dict(labels or {})
    )


def view_request(
    snapshotter: str, key: str, *, parent: str = "", labels: Mapping[str, str] | None = None
) -> Any:
    """A ``ViewSnapshotRequest``."""
    return snapshots_pb2.ViewSnapshotRequest(
        snapshotter=snapshotter, key=key, parent=parent, labels=dict(labels or {})
    )


def mounts_request(snapshotter: str, key: str) -> Any:
    """A ``MountsRequest``."""
    return snapshots_pb2.MountsRequest(snapshotter=snapshotter, key=key)


def commit_request(snapshotter: str, name: str, key: str, *, labels: Mapping[str, str] | None = None) -> Any:
    """A ``CommitSnapshotRequest``."""
    return snapshots_pb2.CommitSnapshotRequest(
        snapshotter=snapshotter, name=name, key=key, labels=dict(labels or {})
    )


def remove_request(snapshotter: str, key: str) -> Any:
    """A ``RemoveSnapshotRequest``."""
    return snapshots_pb2.RemoveSnapshotRequest(snapshotter=snapshotter, key=key)


def stat_request(snapshotter: str, key: str) -> Any:
    """A ``StatSnapshotRequest``."""
    return snapshots_pb2.StatSnapshotRequest(snapshotter=snapshotter, key=key)


def info_result(response: Any) -> SnapshotInfo:
    """The snapshot in a Stat or Update response."""
    return SnapshotInfo.from_proto(response.info)


def update_request(
    snapshotter: str, key: str, *, labels: Mapping[str, str], fieldpaths: Sequence[str] | None = None
) -> Any:
    """An ``UpdateSnapshotRequest`` (default field mask: ``["labels"]``)."""
    paths = ["labels"] if fieldpaths is None else builtins.list(fieldpaths)
    return snapshots_pb2.UpdateSnapshotRequest(
        snapshotter=snapshotter,
        info=snapshots_pb2.Info(name=key, labels=dict(labels)),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )


def list_request(snapshotter: str, filters: Sequence[str] = ()) -> Any:
    """A ``ListSnapshotsRequest``."""
    return snapshots_pb2.ListSnapshotsRequest(snapshotter=snapshotter, filters=builtins.list(filters))


def list_batch(response: Any) -> builtins.list[SnapshotInfo]:
    """The snapshots in one message of the List stream."""
    return [SnapshotInfo.from_proto(info) for info in response.info]


def usage_request(snapshotter: str, key: str) -> Any:
    """A ``UsageRequest``."""
    return snapshots_pb2.UsageRequest(snapshotter=snapshotter, key=key)


def usage_result(response: Any) -> Usage:
    """The disk usage in a ``UsageResponse``."""
    return Usage(size=response.size, inodes=response.inodes)


def cleanup_request(snapshotter: str) -> Any:
    """A ``CleanupRequest``."""
    return snapshots_pb2.CleanupRequest(snapshotter=snapshotter)


class SnapshotsService(Service):
    """containerd's snapshotters: copy-on-write filesystem layers by key."""

    _stub_factory = snapshots_pb2_grpc.SnapshotsStub

    def prepare(
        self,
        snapshotter: str,
        key: str,
        *,
        parent: str = "",
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> builtins.list[Mount]:
        """Create an active (writable) snapshot.

        Args:
            snapshotter: The snapshotter plugin, e.g. ``overlayfs``.
            key: The new snapshot's key.
            parent: A committed snapshot to base it on ("" for an empty one).
            labels: Labels for the snapshot.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The mounts that, mounted in order, give its writable filesystem.

        Raises:
            AlreadyExistsError: ``key`` is taken.
            NotFoundError: ``parent`` does not exist.
        """
        request = prepare_request(snapshotter, key, parent=parent, labels=labels)
        response = self._conn.unary(self.stub.Prepare, request, timeout=timeout, metadata=metadata)
        return mounts_result(response)

    def view(
        self,
        snapshotter: str,
        key: str,
        *,
        parent: str = "",
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> builtins.list[Mount]:
        """Create a read-only view of a committed snapshot.

        Args:
            snapshotter: The snapshotter plugin.
            key: The view's key.
            parent: The committed snapshot to view.
            labels: Labels for the view.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The read-only mounts.

        Raises:
            AlreadyExistsError: ``key`` is taken.
            NotFoundError: ``parent`` does not exist.
        """
        request = view_request(snapshotter, key, parent=parent, labels=labels)
        response = self._conn.unary(self.stub.View, request, timeout=timeout, metadata=metadata)
        return mounts_result(response)

    def mounts(
        self, snapshotter: str, key: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[Mount]:
        """The mounts of an active snapshot or view (again).

        Args:
            snapshotter: The snapshotter plugin.
            key: The snapshot's key.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The mounts.

        Raises:
            NotFoundError: No such snapshot.
            FailedPreconditionError: The snapshot is committed (it has no mounts).
        """
        request = mounts_request(snapshotter, key)
        response = self._conn.unary(self.stub.Mounts, request, timeout=timeout, metadata=metadata)
        return mounts_result(response)

    def commit(
        self,
        snapshotter: str,
        name: str,
        key: str,
        *,
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Turn an active snapshot into a committed one (the active key disappears).

        Args:
            snapshotter: The snapshotter plugin.
            name: The committed snapshot's name.
            key: The active snapshot's key.
            labels: Labels for the committed snapshot.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No snapshot ``key``.
            FailedPreconditionError: ``key`` is not an active snapshot.
            AlreadyExistsError: ``name`` is taken.
        """
        request = commit_request(snapshotter, name, key, labels=labels)
        self._conn.unary(self.stub.Commit, request, timeout=timeout, metadata=metadata)

    def remove(
        self, snapshotter: str, key: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> None:
        """Remove a snapshot.

        Args:
            snapshotter: The snapshotter plugin.
            key: The snapshot's key or name.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No such snapshot.
            FailedPreconditionError: Other snapshots are based on it.
        """
        request = remove_request(snapshotter, key)
        self._conn.unary(self.stub.Remove, request, timeout=timeout, metadata=metadata)

    def stat(
        self, snapshotter: str, key: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> SnapshotInfo:
        """Describe a snapshot.

        Args:
            snapshotter: The snapshotter plugin.
            key: The snapshot's key or name.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Its metadata.

        Raises:
            NotFoundError: No such snapshot.
        """
        request = stat_request(snapshotter, key)
        response = self._conn.unary(self.stub.Stat, request, timeout=timeout, metadata=metadata)
        return info_result(response)

    def update(
        self,
        snapshotter: str,
        key: str,
        *,
        labels: Mapping[str, str],
        fieldpaths: Sequence[str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> SnapshotInfo:
        """Change a snapshot's labels (the only mutable field).

        Args:
            snapshotter: The snapshotter plugin.
            key: The snapshot's key or name.
            labels: The new labels.
            fieldpaths: ``"labels"`` replaces every label, ``"labels.<key>"`` sets one key
                (removes it when ``labels`` lacks it). Default: ``["labels"]``.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The updated metadata.

        Raises:
            NotFoundError: No such snapshot.
            InvalidArgumentError: A field path that cannot be updated.
        """
        request = update_request(snapshotter, key, labels=labels, fieldpaths=fieldpaths)
        response = self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)
        return info_result(response)

    def list(
        self,
        snapshotter: str,
        filters: Sequence[str] = (),
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> builtins.list[SnapshotInfo]:
        """List a snapshotter's snapshots in this namespace.

        Args:
            snapshotter: The snapshotter plugin.
            filters: containerd filter expressions (``parent==base``,
                ``labels."a"==b``), any of which may match; none lists everything.
            timeout: Deadline in seconds for the whole listing (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Their metadata.

        Raises:
            ContainerdError: A malformed filter (containerd 1.6 reports it as
                :class:`~pycontainerd.errors.UnknownError`).
        """
        request = list_request(snapshotter, filters)
        deadline = self._conn.timeout if timeout is None else timeout
        stream = self._conn.stream(self.stub.List, request, list_batch, timeout=deadline, metadata=metadata)
        with stream:
            return [info for batch in stream for info in batch]

    def usage(
        self, snapshotter: str, key: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> Usage:
        """Disk usage of a snapshot, excluding its parents.

        For an active snapshot this walks its files, which can take a while.

        Args:
            snapshotter: The snapshotter plugin.
            key: The snapshot's key or name.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Bytes and inodes used.

        Raises:
            NotFoundError: No such snapshot.
        """
        request = usage_request(snapshotter, key)
        response = self._conn.unary(self.stub.Usage, request, timeout=timeout, metadata=metadata)
        return usage_result(response)

    def cleanup(self, snapshotter: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Ask the snapshotter to free space held by removed snapshots.

        Args:
            snapshotter: The snapshotter plugin.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            UnimplementedError: The snapshotter has no cleanup step (on containerd 1.6,
                neither ``native`` nor ``overlayfs`` has one by default).
        """
        request = cleanup_request(snapshotter)
        self._conn.unary(self.stub.Cleanup, request, timeout=timeout, metadata=metadata)
