"""Typed asyncio wrappers for the containerd services the asyncio client uses.

Each method is the sync wrapper's three steps with the middle one awaited: the
same pure ``<rpc>_request`` function of :mod:`pycontainerd.api` builds the
request (and checks its arguments before any I/O), the ``grpc.aio`` call goes
through :class:`~pycontainerd.aio._grpc.AsyncConnection` (deadline, metadata,
error mapping), and the same pure ``<rpc>_result`` function converts the
response into the same frozen dataclasses. Nothing is converted twice and no
message type appears here.

Services not wrapped here (content, images, leases, diff, introspection,
namespaces) are reachable through the raw stubs of ``Client.api.<name>.stub``
with the sync wrappers' pure functions.
"""

from __future__ import annotations

import builtins
import signal as _signal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2

from pycontainerd import errors
from pycontainerd._grpc import Metadata
from pycontainerd._proto.services.containers.v1 import containers_pb2_grpc
from pycontainerd._proto.services.events.v1 import events_pb2_grpc
from pycontainerd._proto.services.snapshots.v1 import snapshots_pb2_grpc
from pycontainerd._proto.services.tasks.v1 import tasks_pb2_grpc
from pycontainerd._proto.services.version.v1 import version_pb2_grpc
from pycontainerd.aio._grpc import AsyncConnection, AsyncResponseStream, AsyncService
from pycontainerd.api import containers as _containers
from pycontainerd.api import events as _events
from pycontainerd.api import health as _health
from pycontainerd.api import snapshots as _snapshots
from pycontainerd.api import tasks as _tasks
from pycontainerd.api import version as _version
from pycontainerd.api._any import Packable
from pycontainerd.api.types import (
    Container,
    DeleteResult,
    Descriptor,
    ExitStatus,
    Metric,
    Mount,
    ProcessInfo,
    TaskInfo,
    Version,
)

if TYPE_CHECKING:
    from pycontainerd.api.events import Event

__all__ = [
    "AsyncAPI",
    "AsyncContainersService",
    "AsyncEventsService",
    "AsyncHealthService",
    "AsyncSnapshotsService",
    "AsyncTasksService",
    "AsyncVersionService",
]

_UNSET: Any = _containers._UNSET


class AsyncTasksService(AsyncService):
    """Tasks and their processes (see :class:`pycontainerd.api.tasks.TasksService`)."""

    _stub_factory = tasks_pb2_grpc.TasksStub

    async def create(self, container_id: str, *, rootfs: Sequence[Mount] = (), stdin: str = "",
                     stdout: str = "",
                     stderr: str = "", terminal: bool = False, checkpoint: Descriptor | None = None,
                     options: Packable | None = None, runtime_path: str = "", timeout: float | None = None,
                     metadata: Metadata = ()) -> int:
        """Create the task of a container (not started); returns the pid."""
        request = _tasks.create_request(container_id, rootfs=rootfs, stdin=stdin, stdout=stdout,
                                        stderr=stderr,
                                        terminal=terminal, checkpoint=checkpoint, options=options,
                                        runtime_path=runtime_path)
        response = await self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return _tasks.pid_result(response)

    async def start(self, container_id: str, exec_id: str = "", *, timeout: float | None = None,
                    metadata: Metadata = ()) -> int:
        """Start the init process or an exec'd process; returns the pid."""
        request = _tasks.start_request(container_id, exec_id)
        response = await self._conn.unary(self.stub.Start, request, timeout=timeout, metadata=metadata)
        return _tasks.pid_result(response)

    async def delete(self, container_id: str, *, timeout: float | None = None,
                     metadata: Metadata = ()) -> DeleteResult:
        """Delete a stopped (or created) task."""
        request = _tasks.delete_request(container_id)
        response = await self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)
        return _tasks.delete_result(response)

    async def delete_process(self, container_id: str, exec_id: str, *, timeout: float | None = None,
                             metadata: Metadata = ()) -> DeleteResult:
        """Delete an exited exec'd process."""
        request = _tasks.delete_process_request(container_id, exec_id)
        response = await self._conn.unary(self.stub.DeleteProcess, request, timeout=timeout,
                                          metadata=metadata)
        return _tasks.delete_result(response)

    async def get(self, container_id: str, exec_id: str = "", *, timeout: float | None = None,
                  metadata: Metadata = ()) -> TaskInfo:
        """The state of the init process or an exec'd process."""
        request = _tasks.get_request(container_id, exec_id)
        response = await self._conn.unary(self.stub.Get, request, timeout=timeout, metadata=metadata)
        return _tasks.get_result(response, container_id)

    async def list(self, filter: str = "", *, timeout: float | None = None,
                   metadata: Metadata = ()) -> builtins.list[TaskInfo]:
        """All tasks (init processes) in the namespace."""
        request = _tasks.list_request(filter)
        response = await self._conn.unary(self.stub.List, request, timeout=timeout, metadata=metadata)
        return _tasks.list_result(response)

    async def kill(self, container_id: str, signal: int = _signal.SIGTERM, *, exec_id: str = "",
                   all: bool = False, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Send a signal to a process (``all=True``: every process of the task).

        Raises:
            ValueError: For a signal outside 1..64 (before any RPC).
        """
        request = _tasks.kill_request(container_id, signal, exec_id=exec_id, all=all)
        await self._conn.unary(self.stub.Kill, request, timeout=timeout, metadata=metadata)

    async def exec(self, container_id: str, exec_id: str, spec: Mapping[str, Any], *, stdin: str = "",
                   stdout: str = "", stderr: str = "", terminal: bool = False, timeout: float | None = None,
                   metadata: Metadata = ()) -> None:
        """Add a process to a running task (created, not started)."""
        request = _tasks.exec_request(container_id, exec_id, spec, stdin=stdin, stdout=stdout, stderr=stderr,
                                      terminal=terminal)
        await self._conn.unary(self.stub.Exec, request, timeout=timeout, metadata=metadata)

    async def resize_pty(self, container_id: str, width: int, height: int, *, exec_id: str = "",
                         timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Resize a process's terminal.

        Raises:
            ValueError: For a size outside 0..65535 (before any RPC).
        """
        request = _tasks.resize_pty_request(container_id, width, height, exec_id=exec_id)
        await self._conn.unary(self.stub.ResizePty, request, timeout=timeout, metadata=metadata)

    async def close_io(self, container_id: str, *, exec_id: str = "", stdin: bool = True,
                       timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Close a process's stdin in the shim: the process then reads EOF."""
        request = _tasks.close_io_request(container_id, exec_id=exec_id, stdin=stdin)
        await self._conn.unary(self.stub.CloseIO, request, timeout=timeout, metadata=metadata)

    async def pause(self, container_id: str, *, timeout: float | None = None,
                    metadata: Metadata = ()) -> None:
        """Freeze every process of the task."""
        request = _tasks.pause_request(container_id)
        await self._conn.unary(self.stub.Pause, request, timeout=timeout, metadata=metadata)

    async def resume(self, container_id: str, *, timeout: float | None = None,
                     metadata: Metadata = ()) -> None:
        """Thaw a paused task."""
        request = _tasks.resume_request(container_id)
        await self._conn.unary(self.stub.Resume, request, timeout=timeout, metadata=metadata)

    async def list_pids(self, container_id: str, *, timeout: float | None = None,
                        metadata: Metadata = ()) -> builtins.list[ProcessInfo]:
        """Every pid in the task's cgroup."""
        request = _tasks.list_pids_request(container_id)
        response = await self._conn.unary(self.stub.ListPids, request, timeout=timeout, metadata=metadata)
        return _tasks.list_pids_result(response)

    async def checkpoint(self, container_id: str, *, parent_checkpoint: str = "",
                         options: Packable | None = None,
                         timeout: float | None = None, metadata: Metadata = ()) -> builtins.list[Descriptor]:
        """Checkpoint the task with CRIU into the content store."""
        request = _tasks.checkpoint_request(container_id, parent_checkpoint=parent_checkpoint,
                                            options=options)
        response = await self._conn.unary(self.stub.Checkpoint, request, timeout=timeout, metadata=metadata)
        return _tasks.checkpoint_result(response)

    async def update(self, container_id: str, *, resources: Mapping[str, Any] | Packable | None = None,
                     annotations: Mapping[str, str] | None = None, timeout: float | None = None,
                     metadata: Metadata = ()) -> None:
        """Change a running task's resources."""
        request = _tasks.update_request(container_id, resources=resources, annotations=annotations)
        await self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)

    async def metrics(self, filters: Sequence[str] = (), *, timeout: float | None = None,
                      metadata: Metadata = ()) -> builtins.list[Metric]:
        """Cgroup metrics of the tasks matching ``filters``."""
        request = _tasks.metrics_request(filters)
        response = await self._conn.unary(self.stub.Metrics, request, timeout=timeout, metadata=metadata)
        return _tasks.metrics_result(response)

    async def wait(self, container_id: str, exec_id: str = "", *, timeout: float | None = None,
                   metadata: Metadata = ()) -> ExitStatus:
        """Wait for the process's exit (no deadline unless given).

        Start the awaiting task (``asyncio.ensure_future``) *before* starting the
        process, or rely on the shim keeping the status until Delete (it does).

        Raises:
            ConnectionLostError: The daemon went away; wait again once it is back.
        """
        request = _tasks.wait_request(container_id, exec_id)
        response = await self._conn.unary(self.stub.Wait, request, timeout=timeout, metadata=metadata,
                                          long_running=True)
        return _tasks.wait_result(response)


class AsyncContainersService(AsyncService):
    """Container records (see :class:`pycontainerd.api.containers.ContainersService`)."""

    _stub_factory = containers_pb2_grpc.ContainersStub

    async def get(self, id: str, *, timeout: float | None = None, metadata: Metadata = ()) -> Container:
        """The container record ``id``."""
        response = await self._conn.unary(self.stub.Get, _containers.get_request(id), timeout=timeout,
                                          metadata=metadata)
        return _containers.container_result(response)

    async def list(self, filters: Sequence[str] = (), *, timeout: float | None = None,
                   metadata: Metadata = ()) -> builtins.list[Container]:
        """The records matching ``filters``."""
        response = await self._conn.unary(self.stub.List, _containers.list_request(filters), timeout=timeout,
                                          metadata=metadata)
        return _containers.list_result(response)

    async def create(self, id: str, *, spec: Mapping[str, Any] | any_pb2.Any,
                     runtime: str = _containers.DEFAULT_RUNTIME, runtime_options: Packable | None = None,
                     labels: Mapping[str, str] | None = None, image: str = "", snapshotter: str = "",
                     snapshot_key: str = "", extensions: Mapping[str, Packable] | None = None,
                     sandbox: str = "", timeout: float | None = None, metadata: Metadata = ()) -> Container:
        """Create a container record."""
        request = _containers.create_request(id, spec=spec, runtime=runtime, runtime_options=runtime_options,
                                             labels=labels, image=image, snapshotter=snapshotter,
                                             snapshot_key=snapshot_key, extensions=extensions,
                                             sandbox=sandbox)
        response = await self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return _containers.container_result(response)

    async def update(self, id: str, *, labels: Mapping[str, str] = _UNSET, image: str = _UNSET,
                     spec: Mapping[str, Any] | any_pb2.Any = _UNSET, snapshot_key: str = _UNSET,
                     extensions: Mapping[str, Packable] = _UNSET, timeout: float | None = None,
                     metadata: Metadata = ()) -> Container:
        """Replace the given fields of a container record."""
        request = _containers.update_request(id, labels=labels, image=image, spec=spec,
                                             snapshot_key=snapshot_key, extensions=extensions)
        response = await self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)
        return _containers.container_result(response)

    async def delete(self, id: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Delete a container record."""
        await self._conn.unary(self.stub.Delete, _containers.delete_request(id), timeout=timeout,
                               metadata=metadata)


class AsyncSnapshotsService(AsyncService):
    """The snapshot calls a container's lifecycle needs (mounts of its snapshot, its removal)."""

    _stub_factory = snapshots_pb2_grpc.SnapshotsStub

    async def mounts(self, snapshotter: str, key: str, *, timeout: float | None = None,
                     metadata: Metadata = ()) -> builtins.list[Mount]:
        """The mounts of an active snapshot."""
        request = _snapshots.mounts_request(snapshotter, key)
        response = await self._conn.unary(self.stub.Mounts, request, timeout=timeout, metadata=metadata)
        return _snapshots.mounts_result(response)

    async def remove(self, snapshotter: str, key: str, *, timeout: float | None = None,
                     metadata: Metadata = ()) -> None:
        """Remove a snapshot."""
        request = _snapshots.remove_request(snapshotter, key)
        await self._conn.unary(self.stub.Remove, request, timeout=timeout, metadata=metadata)


class AsyncEventsService(AsyncService):
    """The daemon's event stream (see :class:`pycontainerd.api.events.EventsService`)."""

    _stub_factory = events_pb2_grpc.EventsStub

    def subscribe(self, *filters: str, all_namespaces: bool = False, timeout: float | None = None,
                  metadata: Metadata = ()) -> AsyncResponseStream[Event]:
        """Stream events as typed dataclasses (an async iterator; ``cancel()`` ends it)."""
        request = _events.subscribe_request(filters,
                                            namespace=None if all_namespaces else self._conn.namespace)
        return self._conn.stream(self.stub.Subscribe, request, _events.decode_envelope, timeout=timeout,
                                 metadata=metadata)

    async def publish(self, topic: str, event: Packable, *, namespace: str | None = None,
                      timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Publish an event under ``topic``."""
        request = _events.publish_request(topic, event)
        extra = _events.publish_metadata(namespace, metadata)
        await self._conn.unary(self.stub.Publish, request, timeout=timeout, metadata=extra)


class AsyncHealthService(AsyncService):
    """Readiness of the daemon."""

    _stub_factory = _health.HealthStub

    async def check(self, service: str = "", *, wait_for_ready: bool = False, timeout: float | None = None,
                    metadata: Metadata = ()) -> _health.ServingStatus:
        """Ask whether the daemon (``service=""``) is serving."""
        response = await self._conn.unary(self.stub.Check, _health.check_request(service), timeout=timeout,
                                          metadata=metadata, wait_for_ready=wait_for_ready)
        return _health.check_result(response)

    async def is_serving(self, *, timeout: float | None = None) -> bool:
        """Whether the daemon answers SERVING within ``timeout``; never raises for a dead daemon."""
        try:
            status = await self.check(wait_for_ready=timeout is not None, timeout=timeout)
        except (errors.UnavailableError, errors.DeadlineExceededError):
            return False
        return status is _health.ServingStatus.SERVING


class AsyncVersionService(AsyncService):
    """The daemon's version."""

    _stub_factory = version_pb2_grpc.VersionStub

    async def version(self, *, timeout: float | None = None, metadata: Metadata = ()) -> Version:
        """The daemon's version and revision."""
        response = await self._conn.unary(self.stub.Version, _version.version_request(), timeout=timeout,
                                          metadata=metadata)
        return _version.version_result(response)


class AsyncAPI:
    """The asyncio service wrappers on one connection (``aio.Client.api``)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.tasks = AsyncTasksService(connection)
        self.containers = AsyncContainersService(connection)
        self.snapshots = AsyncSnapshotsService(connection)
        self.events = AsyncEventsService(connection)
        self.health = AsyncHealthService(connection)
        self.version = AsyncVersionService(connection)
