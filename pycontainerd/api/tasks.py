"""Typed wrapper for ``containerd.services.tasks.v1.Tasks``: running processes.

A task is the running instance of a container: its init process plus exec'd processes.
Process-level calls take ``exec_id``; ``""`` means the init process.

Every method takes keyword-only ``timeout`` (seconds; default the connection's, except
for :meth:`TasksService.wait` which has none) and ``metadata`` (extra gRPC metadata), and
raises a :class:`~pycontainerd.errors.ContainerdError` subclass when the daemon refuses.

Each method is three steps: a pure ``<rpc>_request`` function below builds the request,
the connection makes the call (deadline, metadata and error mapping live in
:mod:`pycontainerd._grpc`), and a pure ``<rpc>_result`` function converts the response.
Only the call blocks, so an asyncio client reuses the two pure halves.
"""

from __future__ import annotations

import builtins
import signal as _signal
from collections.abc import Mapping, Sequence
from typing import Any

from pycontainerd import _rules, _validate, typeurl
from pycontainerd._grpc import CallFuture, Metadata, Service
from pycontainerd._proto.cgroups.v1 import metrics_pb2 as _cgroup1_metrics  # noqa: F401  (registers the type)
from pycontainerd._proto.cgroups.v2 import metrics_pb2 as _cgroup2_metrics  # noqa: F401  (registers the type)
from pycontainerd._proto.services.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from pycontainerd.api._any import Packable, pack
from pycontainerd.api.types import (
    DeleteResult,
    Descriptor,
    ExitStatus,
    Metric,
    Mount,
    ProcessInfo,
    TaskInfo,
)

__all__ = ["TasksService"]


# -- requests and results (pure: no I/O) ------------------------------------------------------------


def create_request(
    container_id: str,
    *,
    rootfs: Sequence[Mount] = (),
    stdin: str = "",
    stdout: str = "",
    stderr: str = "",
    terminal: bool = False,
    checkpoint: Descriptor | None = None,
    options: Packable | None = None,
    runtime_path: str = "",
) -> Any:
    """A ``CreateTaskRequest`` (see :meth:`TasksService.create`)."""
    request = tasks_pb2.CreateTaskRequest(
        container_id=container_id,
        rootfs=[m.to_proto() for m in rootfs],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        terminal=terminal,
        runtime_path=runtime_path,
    )
    if checkpoint is not None:
        request.checkpoint.CopyFrom(checkpoint.to_proto())
    if options is not None:
        request.options.CopyFrom(pack(options))
    return request


def pid_result(response: Any) -> int:
    """The pid a ``CreateTaskResponse`` or ``StartResponse`` reports."""
    return int(response.pid)


def start_request(container_id: str, exec_id: str = "") -> Any:
    """A ``StartRequest``."""
    return tasks_pb2.StartRequest(container_id=container_id, exec_id=exec_id)


def delete_request(container_id: str) -> Any:
    """A ``DeleteTaskRequest``."""
    return tasks_pb2.DeleteTaskRequest(container_id=container_id)


def delete_process_request(container_id: str, exec_id: str) -> Any:
    """A ``DeleteProcessRequest``."""
    return tasks_pb2.DeleteProcessRequest(container_id=container_id, exec_id=exec_id)


def delete_result(response: Any) -> DeleteResult:
    """The removed process, from a ``DeleteResponse`` (Delete and DeleteProcess)."""
    return DeleteResult.from_proto(response)


def get_request(container_id: str, exec_id: str = "") -> Any:
    """A ``GetRequest``."""
    return tasks_pb2.GetRequest(container_id=container_id, exec_id=exec_id)


def get_result(response: Any, container_id: str) -> TaskInfo:
    """The process a ``GetResponse`` describes (``container_id``: the one asked about)."""
    return TaskInfo.from_proto(response.process, container_id)


def list_request(filter: str = "") -> Any:
    """A ``ListTasksRequest``."""
    return tasks_pb2.ListTasksRequest(filter=filter)


def list_result(response: Any) -> builtins.list[TaskInfo]:
    """The tasks of a ``ListTasksResponse``."""
    return [TaskInfo.from_proto(p) for p in response.tasks]


def kill_request(container_id: str, signal: object, *, exec_id: str = "", all: bool = False) -> Any:
    """A ``KillRequest``.

    Raises:
        ValueError: For a signal outside 1..64 or an unknown name.
        TypeError: For a signal that is neither a number nor a name.
    """
    return tasks_pb2.KillRequest(
        container_id=container_id, exec_id=exec_id, signal=_rules.signal_number(signal), all=all
    )


def exec_request(
    container_id: str,
    exec_id: str,
    spec: Mapping[str, Any],
    *,
    stdin: str = "",
    stdout: str = "",
    stderr: str = "",
    terminal: bool = False,
) -> Any:
    """An ``ExecProcessRequest`` carrying the OCI process as JSON."""
    return tasks_pb2.ExecProcessRequest(
        container_id=container_id,
        exec_id=exec_id,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        terminal=terminal,
        spec=typeurl.pack_process(spec),
    )


def resize_pty_request(container_id: str, width: int, height: int, *, exec_id: str = "") -> Any:
    """A ``ResizePtyRequest``.

    Raises:
        ValueError: For a size outside 0..65535 (the shim would truncate it).
    """
    width, height = _validate.terminal_size(width, height)
    return tasks_pb2.ResizePtyRequest(container_id=container_id, exec_id=exec_id, width=width, height=height)


def close_io_request(container_id: str, *, exec_id: str = "", stdin: bool = True) -> Any:
    """A ``CloseIORequest``."""
    return tasks_pb2.CloseIORequest(container_id=container_id, exec_id=exec_id, stdin=stdin)


def pause_request(container_id: str) -> Any:
    """A ``PauseTaskRequest``."""
    return tasks_pb2.PauseTaskRequest(container_id=container_id)


def resume_request(container_id: str) -> Any:
    """A ``ResumeTaskRequest``."""
    return tasks_pb2.ResumeTaskRequest(container_id=container_id)


def list_pids_request(container_id: str) -> Any:
    """A ``ListPidsRequest``."""
    return tasks_pb2.ListPidsRequest(container_id=container_id)


def list_pids_result(response: Any) -> builtins.list[ProcessInfo]:
    """The pids of a ``ListPidsResponse``."""
    return [ProcessInfo.from_proto(p) for p in response.processes]


def checkpoint_request(
    container_id: str, *, parent_checkpoint: str = "", options: Packable | None = None
) -> Any:
    """A ``CheckpointTaskRequest``."""
    request = tasks_pb2.CheckpointTaskRequest(container_id=container_id, parent_checkpoint=parent_checkpoint)
    if options is not None:
        request.options.CopyFrom(pack(options))
    return request


def checkpoint_result(response: Any) -> builtins.list[Descriptor]:
    """The checkpoint blobs of a ``CheckpointTaskResponse``."""
    return [Descriptor.from_proto(d) for d in response.descriptors]


def update_request(
    container_id: str,
    *,
    resources: Mapping[str, Any] | Packable | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Any:
    """An ``UpdateTaskRequest``; a mapping of resources is sent as OCI ``LinuxResources`` JSON."""
    request = tasks_pb2.UpdateTaskRequest(container_id=container_id, annotations=dict(annotations or {}))
    if isinstance(resources, Mapping):
        request.resources.CopyFrom(typeurl.pack_resources(resources))
    elif resources is not None:
        request.resources.CopyFrom(pack(resources))
    return request


def metrics_request(filters: Sequence[str] = ()) -> Any:
    """A ``MetricsRequest``."""
    return tasks_pb2.MetricsRequest(filters=builtins.list(filters))


def metrics_result(response: Any) -> builtins.list[Metric]:
    """The samples of a ``MetricsResponse``."""
    return [Metric.from_proto(m) for m in response.metrics]


def wait_request(container_id: str, exec_id: str = "") -> Any:
    """A ``WaitRequest``."""
    return tasks_pb2.WaitRequest(container_id=container_id, exec_id=exec_id)


def wait_result(response: Any) -> ExitStatus:
    """How the process ended, from a ``WaitResponse``."""
    return ExitStatus(response.exit_status, typeurl.field_timestamp(response, "exited_at"))


# -- the blocking service -----------------------------------------------------------------------------


class TasksService(Service):
    """Create, start, signal, wait for, inspect and delete tasks and their processes."""

    _stub_factory = tasks_pb2_grpc.TasksStub

    def create(
        self,
        container_id: str,
        *,
        rootfs: Sequence[Mount] = (),
        stdin: str = "",
        stdout: str = "",
        stderr: str = "",
        terminal: bool = False,
        checkpoint: Descriptor | None = None,
        options: Packable | None = None,
        runtime_path: str = "",
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> int:
        """Create the task (the init process, not yet started) of a container.

        Args:
            container_id: The container.
            rootfs: Mounts for the rootfs; empty when the spec's ``root.path`` is used.
            stdin: Path of the stdin FIFO, ``""`` for none.
            stdout: Path of the stdout FIFO (or another URI the shim accepts).
            stderr: Path of the stderr FIFO; ``""`` with a terminal.
            terminal: Allocate a pty.
            checkpoint: A checkpoint to restore from.
            options: Runtime options, e.g. :class:`~pycontainerd.api.types.RuncOptions` (packed
                with a bare type URL).
            runtime_path: Shim binary path overriding the container's runtime.
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.

        Returns:
            The pid of the created (not yet running) init process.
        """
        request = create_request(
            container_id,
            rootfs=rootfs,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            terminal=terminal,
            checkpoint=checkpoint,
            options=options,
            runtime_path=runtime_path,
        )
        response = self._conn.unary(self.stub.Create, request, timeout=timeout, metadata=metadata)
        return pid_result(response)

    def start(
        self, container_id: str, exec_id: str = "", *, timeout: float | None = None, metadata: Metadata = ()
    ) -> int:
        """Start the init process (``exec_id=""``) or an exec'd process.

        Arm :meth:`wait_future` *before* starting, so a fast exit is never missed.

        Returns:
            The started process's pid.
        """
        request = start_request(container_id, exec_id)
        response = self._conn.unary(self.stub.Start, request, timeout=timeout, metadata=metadata)
        return pid_result(response)

    def delete(
        self, container_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> DeleteResult:
        """Delete a stopped (or created) task; a running one is FailedPrecondition."""
        request = delete_request(container_id)
        response = self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)
        return delete_result(response)

    def delete_process(
        self, container_id: str, exec_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> DeleteResult:
        """Delete an exited exec'd process, releasing its exit status in the shim."""
        request = delete_process_request(container_id, exec_id)
        response = self._conn.unary(self.stub.DeleteProcess, request, timeout=timeout, metadata=metadata)
        return delete_result(response)

    def get(
        self, container_id: str, exec_id: str = "", *, timeout: float | None = None, metadata: Metadata = ()
    ) -> TaskInfo:
        """The state of the init process or an exec'd process."""
        request = get_request(container_id, exec_id)
        response = self._conn.unary(self.stub.Get, request, timeout=timeout, metadata=metadata)
        return get_result(response, container_id)

    def list(
        self, filter: str = "", *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[TaskInfo]:
        """All tasks (init processes) in the namespace."""
        request = list_request(filter)
        response = self._conn.unary(self.stub.List, request, timeout=timeout, metadata=metadata)
        return list_result(response)

    def kill(
        self,
        container_id: str,
        signal: int = _signal.SIGTERM,
        *,
        exec_id: str = "",
        all: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Send a signal to a process (``all=True``: every process of the task).

        Raises:
            ValueError: For a signal outside 1..64.
        """
        request = kill_request(container_id, signal, exec_id=exec_id, all=all)
        self._conn.unary(self.stub.Kill, request, timeout=timeout, metadata=metadata)

    def exec(
        self,
        container_id: str,
        exec_id: str,
        spec: Mapping[str, Any],
        *,
        stdin: str = "",
        stdout: str = "",
        stderr: str = "",
        terminal: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Add a process to a running task (it is created, not started: call :meth:`start`).

        Args:
            container_id: The container.
            exec_id: A new id for the process, unique in the task.
            spec: The OCI process (``args``, ``cwd``, ``env``, ``user``, ...), sent as JSON.
            stdin: Stdin FIFO path, ``""`` for none.
            stdout: Stdout FIFO path.
            stderr: Stderr FIFO path.
            terminal: Allocate a pty (then ``spec["terminal"]`` should be true too).
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.
        """
        request = exec_request(
            container_id, exec_id, spec, stdin=stdin, stdout=stdout, stderr=stderr, terminal=terminal
        )
        self._conn.unary(self.stub.Exec, request, timeout=timeout, metadata=metadata)

    def resize_pty(
        self,
        container_id: str,
        width: int,
        height: int,
        *,
        exec_id: str = "",
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Resize a process's terminal (a no-op for a process without one).

        Raises:
            ValueError: For a size outside 0..65535 (the shim would truncate it).
        """
        request = resize_pty_request(container_id, width, height, exec_id=exec_id)
        self._conn.unary(self.stub.ResizePty, request, timeout=timeout, metadata=metadata)

    def close_io(
        self,
        container_id: str,
        *,
        exec_id: str = "",
        stdin: bool = True,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Close a process's stdin in the shim: the process then reads EOF.

        Closing the client's FIFO end is not enough; the shim keeps its own writer.
        """
        request = close_io_request(container_id, exec_id=exec_id, stdin=stdin)
        self._conn.unary(self.stub.CloseIO, request, timeout=timeout, metadata=metadata)

    def pause(self, container_id: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Freeze every process of the task (cgroup freezer)."""
        request = pause_request(container_id)
        self._conn.unary(self.stub.Pause, request, timeout=timeout, metadata=metadata)

    def resume(self, container_id: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Thaw a paused task."""
        request = resume_request(container_id)
        self._conn.unary(self.stub.Resume, request, timeout=timeout, metadata=metadata)

    def list_pids(
        self, container_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[ProcessInfo]:
        """Every pid in the task's cgroup, with the exec id for runc tasks."""
        request = list_pids_request(container_id)
        response = self._conn.unary(self.stub.ListPids, request, timeout=timeout, metadata=metadata)
        return list_pids_result(response)

    def checkpoint(
        self,
        container_id: str,
        *,
        parent_checkpoint: str = "",
        options: Packable | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> builtins.list[Descriptor]:
        """Checkpoint the task with CRIU into the content store.

        Args:
            container_id: The container.
            parent_checkpoint: Digest of a previous checkpoint for an incremental one.
            options: :class:`~pycontainerd.api.types.RuncCheckpointOptions` (e.g. ``exit=True``,
                ``image_path=...`` to keep the images in a directory).
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.

        Returns:
            Descriptors of the written checkpoint blobs.
        """
        request = checkpoint_request(container_id, parent_checkpoint=parent_checkpoint, options=options)
        response = self._conn.unary(self.stub.Checkpoint, request, timeout=timeout, metadata=metadata)
        return checkpoint_result(response)

    def update(
        self,
        container_id: str,
        *,
        resources: Mapping[str, Any] | Packable | None = None,
        annotations: Mapping[str, str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Change a running task's resources (OCI ``LinuxResources``, sent as JSON).

        Args:
            container_id: The container.
            resources: e.g. ``{"memory": {"limit": 64 << 20}}``.
            annotations: Annotations passed to the runtime.
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.
        """
        request = update_request(container_id, resources=resources, annotations=annotations)
        self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)

    def metrics(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[Metric]:
        """Cgroup metrics of the tasks matching ``filters`` (e.g. ``["id==web"]``; empty: all)."""
        request = metrics_request(filters)
        response = self._conn.unary(self.stub.Metrics, request, timeout=timeout, metadata=metadata)
        return metrics_result(response)

    def wait(
        self, container_id: str, exec_id: str = "", *, timeout: float | None = None, metadata: Metadata = ()
    ) -> ExitStatus:
        """Block until the process exits and return how it exited.

        Waiting on a process that already exited returns at once: the shim keeps the exit
        status until the process is deleted.

        Args:
            container_id: The container.
            exec_id: The exec id, ``""`` for the init process.
            timeout: Deadline in seconds (default: none).
            metadata: Extra gRPC metadata.

        Raises:
            DeadlineExceededError: The timeout expired first.
            ConnectionLostError: The daemon went away; wait again once it is back.
        """
        return self.wait_future(container_id, exec_id, timeout=timeout, metadata=metadata).result()

    def wait_future(
        self, container_id: str, exec_id: str = "", *, timeout: float | None = None, metadata: Metadata = ()
    ) -> CallFuture[ExitStatus]:
        """Issue Tasks/Wait and return a future of the :class:`ExitStatus`.

        Call this *before* :meth:`start` (containerd's rule "Wait before Start"). When it
        returns, the channel is connected and the Wait request has been handed to grpc's
        transport, ahead of any call made afterwards on this connection. Even if the Wait
        reaches the shim after a fast process already exited, it still gets the exit
        status: the shim keeps it until Tasks/Delete or DeleteProcess. So the one rule is:
        do not delete the process before the future resolves.

        ``future.result(timeout)`` raises the mapped error (``ConnectionLostError`` if the
        daemon went away, ``NotFoundError`` if the process was deleted first);
        ``future.cancel()`` cancels the RPC.
        """
        request = wait_request(container_id, exec_id)
        return self._conn.unary_future(
            self.stub.Wait, request, wait_result, timeout=timeout, metadata=metadata
        )
