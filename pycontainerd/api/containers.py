"""Typed wrapper for ``containerd.services.containers.v1.Containers``: container records.

A container here is metadata only (id, spec, runtime, labels); running it is a task
(:mod:`pycontainerd.api.tasks`). Every method takes keyword-only ``timeout`` and
``metadata`` and raises a :class:`~pycontainerd.errors.ContainerdError` subclass when the
daemon refuses (``NotFoundError``, ``AlreadyExistsError``, ``InvalidArgumentError``, ...).

Each method builds its request with a pure ``<rpc>_request`` function below and converts
the response with a pure ``<rpc>_result`` function; only the call between them blocks, so
an asyncio client reuses both (see :mod:`pycontainerd.api.tasks`).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from google.protobuf import any_pb2, field_mask_pb2

from pycontainerd import errors, typeurl
from pycontainerd._grpc import Metadata, Service
from pycontainerd._proto.services.containers.v1 import containers_pb2, containers_pb2_grpc
from pycontainerd.api._any import Packable, pack
from pycontainerd.api.types import Container

__all__ = ["DEFAULT_RUNTIME", "ContainersService"]

DEFAULT_RUNTIME = "io.containerd.runc.v2"

_UNSET: Any = object()


def _spec_any(spec: Mapping[str, Any] | any_pb2.Any) -> any_pb2.Any:
    return spec if isinstance(spec, any_pb2.Any) else typeurl.pack_spec(spec)


# -- requests and results (pure: no I/O) ------------------------------------------------------------


def get_request(id: str) -> Any:
    """A ``GetContainerRequest``."""
    return containers_pb2.GetContainerRequest(id=id)


def container_result(response: Any) -> Container:
    """The record in a Get, Create or Update response (or a ListStream message)."""
    return Container.from_proto(response.container)


def list_request(filters: Sequence[str] = ()) -> Any:
    """A ``ListContainersRequest`` (List and ListStream)."""
    return containers_pb2.ListContainersRequest(filters=builtins.list(filters))


def list_result(response: Any) -> builtins.list[Container]:
    """The records of a ``ListContainersResponse``."""
    return [Container.from_proto(c) for c in response.containers]


def create_request(
    id: str,
    *,
    spec: Mapping[str, Any] | any_pb2.Any,
    runtime: str = DEFAULT_RUNTIME,
    runtime_options: Packable | None = None,
    labels: Mapping[str, str] | None = None,
    image: str = "",
    snapshotter: str = "",
    snapshot_key: str = "",
    extensions: Mapping[str, Packable] | None = None,
    sandbox: str = "",
) -> Any:
    """A ``CreateContainerRequest`` (see :meth:`ContainersService.create`)."""
    container = containers_pb2.Container(
        id=id,
        labels=dict(labels or {}),
        image=image,
        snapshotter=snapshotter,
        snapshot_key=snapshot_key,
        sandbox=sandbox,
    )
    container.runtime.name = runtime
    if runtime_options is not None:
        container.runtime.options.CopyFrom(pack(runtime_options))
    container.spec.CopyFrom(_spec_any(spec))
    for name, value in (extensions or {}).items():
        container.extensions[name].CopyFrom(pack(value))
    return containers_pb2.CreateContainerRequest(container=container)


def update_request(
    id: str,
    *,
    labels: Mapping[str, str] = _UNSET,
    image: str = _UNSET,
    spec: Mapping[str, Any] | any_pb2.Any = _UNSET,
    snapshot_key: str = _UNSET,
    extensions: Mapping[str, Packable] = _UNSET,
) -> Any:
    """An ``UpdateContainerRequest`` whose field mask names exactly the fields passed.

    Raises:
        ValueError: No field was given.
    """
    container = containers_pb2.Container(id=id)
    paths: builtins.list[str] = []
    if labels is not _UNSET:
        container.labels.update(labels)
        paths.append("labels")
    if image is not _UNSET:
        container.image = image
        paths.append("image")
    if spec is not _UNSET:
        container.spec.CopyFrom(_spec_any(spec))
        paths.append("spec")
    if snapshot_key is not _UNSET:
        container.snapshot_key = snapshot_key
        paths.append("snapshotkey")
    if extensions is not _UNSET:
        for name, value in extensions.items():
            container.extensions[name].CopyFrom(pack(value))
        paths.append("extensions")
    if not paths:
        raise ValueError("update needs at least one field to change")
    return containers_pb2.UpdateContainerRequest(
        container=container, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


def delete_request(id: str) -> Any:
    """A ``DeleteContainerRequest``."""
    return containers_pb2.DeleteContainerRequest(id=id)


# -- the blocking service -----------------------------------------------------------------------------


class ContainersService(Service):
    """Create, inspect, list, update and delete container records."""

    _stub_factory = containers_pb2_grpc.ContainersStub

    def get(self, id: str, *, timeout: float | None = None, metadata: Metadata = ()) -> Container:
        """The container with this id.

        Raises:
            NotFoundError: No such container in the namespace.
        """
        request = get_request(id)
        response = self._conn.unary(self.stub.Get, request, timeout=timeout, metadata=metadata)
        return container_result(response)

    def list(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[Container]:
        """Containers matching any of ``filters`` (containerd filter syntax, e.g. ``labels."a"==b``)."""
        request = list_request(filters)
        response = self._conn.unary(self.stub.List, request, timeout=timeout, metadata=metadata)
        return list_result(response)

    def list_stream(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> Iterator[Container]:
        """Like :meth:`list`, streamed one container per message (no 16 MiB cap on the total).

        A daemon that does not implement ListStream answers Unimplemented before sending
        anything; then this falls back to :meth:`list`, as containerd's Go client does.
        """
        request = list_request(filters)
        stream = self._conn.stream(
            self.stub.ListStream,
            request,
            container_result,
            timeout=self._conn.timeout if timeout is None else timeout,
            metadata=metadata,
        )
        with stream:
            try:
                first = next(stream)
            except StopIteration:
                return
            except errors.UnimplementedError:
                yield from self.list(filters, timeout=timeout, metadata=metadata)
                return
            yield first
            yield from stream

    def create(
        self,
        id: str,
        *,
        spec: Mapping[str, Any] | any_pb2.Any,
        runtime: str = DEFAULT_RUNTIME,
        runtime_options: Packable | None = None,
        labels: Mapping[str, str] | None = None,
        image: str = "",
        snapshotter: str = "",
        snapshot_key: str = "",
        extensions: Mapping[str, Packable] | None = None,
        sandbox: str = "",
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Container:
        """Create a container record.

        Args:
            id: The container id (containerd's identifier rules).
            spec: The OCI runtime spec (a dict, sent as JSON), or a ready Any.
            runtime: The runtime, default ``io.containerd.runc.v2``.
            runtime_options: Runtime options, e.g. :class:`~pycontainerd.api.types.RuncOptions`.
            labels: Labels.
            image: The image reference, if any.
            snapshotter: Snapshotter of the rootfs snapshot, if any.
            snapshot_key: Key of the rootfs snapshot, if any.
            extensions: Extension name to message.
            sandbox: Sandbox id (containerd 1.7+).
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.

        Returns:
            The stored record (with its timestamps).

        Raises:
            AlreadyExistsError: The id is taken.
            InvalidArgumentError: The id, spec or runtime is invalid.
        """
        request = create_request(
            id,
            spec=spec,
            runtime=runtime,
            runtime_options=runtime_options,
            labels=labels,
            image=image,
            snapshotter=snapshotter,
            snapshot_key=snapshot_key,
            extensions=extensions,
            sandbox=sandbox,
        )
        response = self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return container_result(response)

    def update(
        self,
        id: str,
        *,
        labels: Mapping[str, str] = _UNSET,
        image: str = _UNSET,
        spec: Mapping[str, Any] | any_pb2.Any = _UNSET,
        snapshot_key: str = _UNSET,
        extensions: Mapping[str, Packable] = _UNSET,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Container:
        """Replace the given fields of a container record; fields not passed are kept.

        ``labels`` and ``extensions`` replace the whole set. containerd keeps ``id``,
        ``runtime`` and ``snapshotter`` immutable, so they cannot be passed.

        Returns:
            The updated record.

        Raises:
            ValueError: No field was given.
            NotFoundError: No such container.
        """
        request = update_request(
            id, labels=labels, image=image, spec=spec, snapshot_key=snapshot_key, extensions=extensions
        )
        response = self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)
        return container_result(response)

    def delete(self, id: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Delete a container record (its task must be deleted first).

        Raises:
            NotFoundError: No such container.
            FailedPreconditionError: It still has a task.
        """
        request = delete_request(id)
        self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)
