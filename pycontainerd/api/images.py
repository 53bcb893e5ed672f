"""Typed wrapper of containerd's image store (``containerd.services.images.v1.Images``).

An image record is only a name pointing at a root descriptor (an index or manifest blob in
the content store) plus labels; creating one neither pulls nor unpacks anything. An image
is a garbage-collection root: the content its target references stays alive while it
exists. Requests are built and responses converted by the pure functions below (reused by
an asyncio client); only the calls block.
"""

from __future__ import annotations

import builtins
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import field_mask_pb2

from pycontainerd import typeurl
from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.images.v1 import images_pb2, images_pb2_grpc
from pycontainerd.api.types import Descriptor

__all__ = ["Image", "ImagesService"]


@dataclass(frozen=True)
class Image:
    """An image record.

    Attributes:
        name: Its name, e.g. ``docker.io/library/busybox:latest``.
        target: The root descriptor (index or manifest).
        labels: Its labels.
        created_at: When it was created.
        updated_at: When it was last updated.
    """

    name: str
    target: Descriptor
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None

    @classmethod
    def from_proto(cls, image: Any) -> Image:
        """From a ``containerd.services.images.v1.Image``."""
        return cls(
            name=image.name,
            target=Descriptor.from_proto(image.target),
            labels=dict(image.labels),
            created_at=typeurl.field_timestamp(image, "created_at"),
            updated_at=typeurl.field_timestamp(image, "updated_at"),
        )


def get_request(name: str) -> Any:
    """A ``GetImageRequest``."""
    return images_pb2.GetImageRequest(name=name)


def image_result(response: Any) -> Image:
    """The record in a Get, Create or Update response."""
    return Image.from_proto(response.image)


def list_request(filters: Sequence[str] = ()) -> Any:
    """A ``ListImagesRequest``."""
    return images_pb2.ListImagesRequest(filters=builtins.list(filters))


def list_result(response: Any) -> builtins.list[Image]:
    """The records of a ``ListImagesResponse``."""
    return [Image.from_proto(image) for image in response.images]


def create_request(name: str, target: Descriptor, *, labels: Mapping[str, str] | None = None) -> Any:
    """A ``CreateImageRequest``."""
    image = images_pb2.Image(name=name, target=target.to_proto(), labels=dict(labels or {}))
    return images_pb2.CreateImageRequest(image=image)


def update_paths(
    *,
    target: Descriptor | None = None,
    labels: Mapping[str, str] | None = None,
    fieldpaths: Sequence[str] | None = None,
) -> builtins.list[str]:
    """The field mask of an update: ``fieldpaths``, else the fields given.

    Raises:
        ValueError: Nothing to update.
    """
    if fieldpaths is None:
        paths = [p for p, v in (("target", target), ("labels", labels)) if v is not None]
    else:
        paths = builtins.list(fieldpaths)
    if not paths:
        raise ValueError("image update needs a target, labels or field paths")
    return paths


def update_request(
    name: str, *, target: Descriptor, labels: Mapping[str, str] | None, paths: Sequence[str]
) -> Any:
    """An ``UpdateImageRequest`` writing the fields in ``paths`` (see :func:`update_paths`)."""
    image = images_pb2.Image(name=name, labels=dict(labels or {}))
    image.target.CopyFrom(target.to_proto())
    return images_pb2.UpdateImageRequest(
        image=image, update_mask=field_mask_pb2.FieldMask(paths=builtins.list(paths))
    )


def delete_request(name: str, *, sync: bool = False) -> Any:
    """A ``DeleteImageRequest``."""
    return images_pb2.DeleteImageRequest(name=name, sync=sync)


class ImagesService(Service):
    """containerd's image store: named references to content."""

    _stub_factory = images_pb2_grpc.ImagesStub

    def get(self, name: str, *, timeout: float | None = None, metadata: Metadata = ()) -> Image:
        """Look up an image by name.

        Args:
            name: The image name.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The image record.

        Raises:
            NotFoundError: No image with that name in this namespace.
        """
        request = get_request(name)
        response = self._conn.unary(self.stub.Get, request, timeout=timeout, metadata=metadata)
        return image_result(response)

    def list(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[Image]:
        """List images.

        Args:
            filters: containerd filter expressions (``name~=busybox``,
                ``labels."a"==b``), any of which may match; none lists everything.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The matching image records.

        Raises:
            InvalidArgumentError: A malformed filter.
        """
        request = list_request(filters)
        response = self._conn.unary(self.stub.List, request, timeout=timeout, metadata=metadata)
        return list_result(response)

    def create(
        self,
        name: str,
        target: Descriptor,
        *,
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Image:
        """Create an image record pointing at ``target``.

        Args:
            name: The image name.
            target: The root descriptor; its digest must be well formed (the blob itself
                need not exist yet).
            labels: Labels for the image.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The created record, with its timestamps.

        Raises:
            AlreadyExistsError: An image with that name exists.
            InvalidArgumentError: An invalid name or target digest.
        """
        request = create_request(name, target, labels=labels)
        response = self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return image_result(response)

    def update(
        self,
        name: str,
        *,
        target: Descriptor | None = None,
        labels: Mapping[str, str] | None = None,
        fieldpaths: Sequence[str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Image:
        """Change an image's target and/or labels.

        Args:
            name: The image name.
            target: The new root descriptor.
            labels: The new labels.
            fieldpaths: Which fields to change (``"target"``, ``"labels"``,
                ``"labels.<key>"``: set one key, or remove it when ``labels`` lacks it).
                Default: ``"target"`` if given and ``"labels"`` if given.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The updated record.

        Raises:
            NotFoundError: No image with that name.
            InvalidArgumentError: An invalid target or field path.
            ValueError: Nothing to update.
        """
        paths = update_paths(target=target, labels=labels, fieldpaths=fieldpaths)
        if target is None:
            # containerd 1.7 dereferences the request's target whatever the field mask
            # says (a request without one crashes the daemon: services/images
            # imageFromProto); send the current one, as containerd's own client does by
            # sending the whole record. Only the masked fields are written.
            target = self.get(name, timeout=timeout, metadata=metadata).target
        request = update_request(name, target=target, labels=labels, paths=paths)
        response = self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)
        return image_result(response)

    def delete(
        self, name: str, *, sync: bool = False, timeout: float | None = None, metadata: Metadata = ()
    ) -> None:
        """Delete an image record (the content it referenced becomes collectable).

        Args:
            name: The image name.
            sync: Return only after the garbage collection that the deletion triggers.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No image with that name.
        """
        request = delete_request(name, sync=sync)
        self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)
