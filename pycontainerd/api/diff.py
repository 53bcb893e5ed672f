"""Typed wrapper of containerd's diff service (``containerd.services.diff.v1.Diff``).

:meth:`DiffService.apply` unpacks a layer blob from the content store onto mounts (for
example an active snapshot's); :meth:`DiffService.diff` computes the layer that turns one
set of mounts into another and stores it as a blob. The daemon does the mounting itself.
Requests are built and responses converted by the pure functions below (reused by an
asyncio client); only the calls block.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from pycontainerd import typeurl
from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.diff.v1 import diff_pb2, diff_pb2_grpc
from pycontainerd.api.types import Descriptor, Mount

__all__ = ["LAYER_MEDIA_TYPE", "LAYER_MEDIA_TYPE_GZIP", "DiffService"]

# OCI image-spec layer media types (the differ also accepts Docker's equivalents).
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
LAYER_MEDIA_TYPE_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def apply_request(diff: Descriptor, mounts: Sequence[Mount], *, sync_fs: bool = False) -> Any:
    """An ``ApplyRequest``."""
    return diff_pb2.ApplyRequest(diff=diff.to_proto(), mounts=[m.to_proto() for m in mounts], sync_fs=sync_fs)


def apply_result(response: Any) -> Descriptor:
    """What an ``ApplyResponse`` says was applied."""
    return Descriptor.from_proto(response.applied)


def diff_request(
    left: Sequence[Mount],
    right: Sequence[Mount],
    *,
    media_type: str = "",
    ref: str = "",
    labels: Mapping[str, str] | None = None,
    source_date_epoch: _dt.datetime | None = None,
) -> Any:
    """A ``DiffRequest``."""
    request = diff_pb2.DiffRequest(
        left=[m.to_proto() for m in left],
        right=[m.to_proto() for m in right],
        media_type=media_type,
        ref=ref,
        labels=dict(labels or {}),
    )
    if source_date_epoch is not None:
        request.source_date_epoch.CopyFrom(typeurl.from_datetime(source_date_epoch))
    return request


def diff_result(response: Any) -> Descriptor:
    """The stored layer a ``DiffResponse`` describes."""
    return Descriptor.from_proto(response.diff)


class DiffService(Service):
    """containerd's differ: apply layers to mounts, compute layers from mounts."""

    _stub_factory = diff_pb2_grpc.DiffStub

    def apply(
        self,
        diff: Descriptor,
        mounts: Sequence[Mount],
        *,
        sync_fs: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Descriptor:
        """Unpack the layer ``diff`` onto ``mounts``.

        Args:
            diff: The layer blob's descriptor; its media type selects the decompression
                (``...tar``, ``...tar+gzip``, ...).
            mounts: Where to apply it, typically the mounts of an active snapshot.
            sync_fs: Ask the daemon to sync the filesystem afterwards (containerd 2.x;
                older daemons ignore it).
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The descriptor of what was applied: the uncompressed layer (``...tar``) with
            its digest (the layer's "diff ID") and size.

        Raises:
            NotFoundError: The blob is not in the content store.
            UnknownError: No processor for the media type, or the blob is not a valid layer
                (containerd reports both without a status class).
        """
        request = apply_request(diff, mounts, sync_fs=sync_fs)
        response = self._conn.unary(self.stub.Apply, request, timeout=timeout, metadata=metadata)
        return apply_result(response)

    def diff(
        self,
        left: Sequence[Mount],
        right: Sequence[Mount],
        *,
        media_type: str = "",
        ref: str = "",
        labels: Mapping[str, str] | None = None,
        source_date_epoch: _dt.datetime | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Descriptor:
        """Compute the layer from ``left`` to ``right`` and store it in the content store.

        Args:
            left: The lower mounts (e.g. a view of the parent snapshot; empty for "nothing").
            right: The upper mounts (e.g. the active snapshot).
            media_type: The layer's media type; "" gives a gzip-compressed OCI layer.
            ref: The content ingest ref to write it under; "" lets the daemon pick one.
            labels: Labels for the stored blob.
            source_date_epoch: Clamp file times in the layer to this moment (containerd 2.x;
                older daemons ignore it).
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The stored layer's descriptor. The blob is labelled
            ``containerd.io/uncompressed`` with the uncompressed digest when compressed.

        Raises:
            UnimplementedError: An unsupported media type.
        """
        request = diff_request(
            left,
            right,
            media_type=media_type,
            ref=ref,
            labels=labels,
            source_date_epoch=source_date_epoch,
        )
        response = self._conn.unary(self.stub.Diff, request, timeout=timeout, metadata=metadata)
        return diff_result(response)
