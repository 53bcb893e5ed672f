"""Typed wrapper for ``containerd.services.events.v1.Events``: the daemon's event stream.

:meth:`EventsService.subscribe` yields one frozen dataclass per envelope: a typed event
(:class:`TaskExit`, :class:`TaskStart`, ...) when its payload type is known, otherwise a
:class:`RawEvent` that carries the undecoded payload. Decoding never raises, so one odd
event cannot end a subscription.

Delivery is best effort (containerd keeps no history and may drop, duplicate or reorder
events under failure); reconcile with Tasks/Get or Wait rather than trusting the stream.

Requests are built by the pure functions :func:`subscribe_request` and
:func:`publish_request`, and envelopes converted by :func:`decode_envelope`; an asyncio
client reuses them around its own calls.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2, message

from pycontainerd import typeurl
from pycontainerd._grpc import NAMESPACE_HEADER, Metadata, ResponseStream, Service, validate_namespace
from pycontainerd._proto.events import container_pb2, namespace_pb2, task_pb2
from pycontainerd._proto.services.events.v1 import events_pb2, events_pb2_grpc
from pycontainerd.api._any import Packable, pack
from pycontainerd.api.types import Mount, Runtime, decode_any

__all__ = [
    "ContainerCreate",
    "ContainerDelete",
    "ContainerUpdate",
    "Event",
    "EventStream",
    "EventsService",
    "NamespaceCreate",
    "NamespaceDelete",
    "NamespaceUpdate",
    "RawEvent",
    "TaskCheckpointed",
    "TaskCreate",
    "TaskDelete",
    "TaskExecAdded",
    "TaskExecStarted",
    "TaskExit",
    "TaskIO",
    "TaskOOM",
    "TaskPaused",
    "TaskResumed",
    "TaskStart",
    "decode_envelope",
    "quote",
]


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event carries from its envelope.

    Attributes:
        namespace: The namespace it happened in.
        topic: Its topic, e.g. ``/tasks/exit``.
        timestamp: When it was published.
    """

    namespace: str
    topic: str
    timestamp: _dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class RawEvent(Event):
    """An event whose payload was missing, of an unknown type, or failed to decode.

    Attributes:
        type_url: The payload's type URL ("" when the envelope had none).
        value: The payload's bytes.
        error: Why it was not decoded.
    """

    type_url: str = ""
    value: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class TaskIO:
    """The stdio a task was created with."""

    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False


@dataclass(frozen=True, kw_only=True)
class TaskCreate(Event):
    """``/tasks/create``: a task was created (not yet started)."""

    container_id: str
    bundle: str = ""
    rootfs: tuple[Mount, ...] = ()
    io: TaskIO = field(default_factory=TaskIO)
    checkpoint: str = ""
    pid: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskStart(Event):
    """``/tasks/start``: a task's init process started."""

    container_id: str
    pid: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskExit(Event):
    """``/tasks/exit``: a process exited.

    Attributes:
        container_id: The container.
        id: The process id: the container id for the init process, else the exec id.
        pid: Its pid.
        exit_status: Its exit status (128 + N when killed by signal N).
        exited_at: When it exited.
    """

    container_id: str
    id: str = ""
    pid: int = 0
    exit_status: int = 0
    exited_at: _dt.datetime | None = None

    @property
    def exec_id(self) -> str:
        """The exec id, ``""`` for the init process."""
        return "" if self.id == self.container_id else self.id


@dataclass(frozen=True, kw_only=True)
class TaskOOM(Event):
    """``/tasks/oom``: the task's cgroup hit its memory limit."""

    container_id: str


@dataclass(frozen=True, kw_only=True)
class TaskExecAdded(Event):
    """``/tasks/exec-added``: a process was added to a task."""

    container_id: str
    exec_id: str = ""


@dataclass(frozen=True, kw_only=True)
class TaskExecStarted(Event):
    """``/tasks/exec-started``: an exec'd process started."""

    container_id: str
    exec_id: str = ""
    pid: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskPaused(Event):
    """``/tasks/paused``."""

    container_id: str


@dataclass(frozen=True, kw_only=True)
class TaskResumed(Event):
    """``/tasks/resumed``."""

    container_id: str


@dataclass(frozen=True, kw_only=True)
class TaskDelete(Event):
    """``/tasks/delete``: a task (or, with ``id``, a process) was deleted."""

    container_id: str
    pid: int = 0
    exit_status: int = 0
    exited_at: _dt.datetime | None = None
    id: str = ""


@dataclass(frozen=True, kw_only=True)
class TaskCheckpointed(Event):
    """``/tasks/checkpointed``."""

    container_id: str
    checkpoint: str = ""


@dataclass(frozen=True, kw_only=True)
class ContainerCreate(Event):
    """``/containers/create``."""

    id: str
    image: str = ""
    runtime: Runtime = field(default_factory=lambda: Runtime(""))


@dataclass(frozen=True, kw_only=True)
class ContainerUpdate(Event):
    """``/containers/update``."""

    id: str
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    snapshot_key: str = ""


@dataclass(frozen=True, kw_only=True)
class ContainerDelete(Event):
    """``/containers/delete``."""

    id: str


@dataclass(frozen=True, kw_only=True)
class NamespaceCreate(Event):
    """``/namespaces/create``."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NamespaceUpdate(Event):
    """``/namespaces/update``."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NamespaceDelete(Event):
    """``/namespaces/delete``."""

    name: str


_Envelope = dict[str, Any]
_Decoder = Callable[[Any, _Envelope], Event]


def _ts(msg: Any, name: str) -> _dt.datetime | None:
    return typeurl.field_timestamp(msg, name)


def _runtime(m: Any) -> Runtime:
    return Runtime(m.runtime.name, decode_any(m.runtime.options) if m.runtime.HasField("options") else None)


# type name -> (message class, builder). Builders read only declared fields, so a newer
# daemon's extra fields are ignored rather than breaking decoding.
_DECODERS: dict[str, tuple[type[message.Message], _Decoder]] = {
    "containerd.events.TaskCreate": (
        task_pb2.TaskCreate,
        lambda m, e: TaskCreate(
            **e,
            container_id=m.container_id,
            bundle=m.bundle,
            rootfs=tuple(Mount.from_proto(x) for x in m.rootfs),
            io=TaskIO(m.io.stdin, m.io.stdout, m.io.stderr, m.io.terminal),
            checkpoint=m.checkpoint,
            pid=m.pid,
        ),
    ),
    "containerd.events.TaskStart": (
        task_pb2.TaskStart,
        lambda m, e: TaskStart(**e, container_id=m.container_id, pid=m.pid),
    ),
    "containerd.events.TaskExit": (
        task_pb2.TaskExit,
        lambda m, e: TaskExit(
            **e,
            container_id=m.container_id,
            id=m.id,
            pid=m.pid,
            exit_status=m.exit_status,
            exited_at=_ts(m, "exited_at"),
        ),
    ),
    "containerd.events.TaskOOM": (task_pb2.TaskOOM, lambda m, e: TaskOOM(**e, container_id=m.container_id)),
    "containerd.events.TaskExecAdded": (
        task_pb2.TaskExecAdded,
        lambda m, e: TaskExecAdded(**e, container_id=m.container_id, exec_id=m.exec_id),
    ),
    "containerd.events.TaskExecStarted": (
        task_pb2.TaskExecStarted,
        lambda m, e: TaskExecStarted(**e, container_id=m.container_id, exec_id=m.exec_id, pid=m.pid),
    ),
    "containerd.events.TaskPaused": (
        task_pb2.TaskPaused,
        lambda m, e: TaskPaused(**e, container_id=m.container_id),
    ),
    "containerd.events.TaskResumed": (
        task_pb2.TaskResumed,
        lambda m, e: TaskResumed(**e, container_id=m.container_id),
    ),
    "containerd.events.TaskDelete": (
        task_pb2.TaskDelete,
        lambda m, e: TaskDelete(
            **e,
            container_id=m.container_id,
            pid=m.pid,
            exit_status=m.exit_status,
            exited_at=_ts(m, "exited_at"),
            id=m.id,
        ),
    ),
    "containerd.events.TaskCheckpointed": (
        task_pb2.TaskCheckpointed,
        lambda m, e: TaskCheckpointed(**e, container_id=m.container_id, checkpoint=m.checkpoint),
    ),
    "containerd.events.ContainerCreate": (
        container_pb2.ContainerCreate,
        lambda m, e: ContainerCreate(**e, id=m.id, image=m.image, runtime=_runtime(m)),
    ),
    "containerd.events.ContainerUpdate": (
        container_pb2.ContainerUpdate,
        lambda m, e: ContainerUpdate(
            **e, id=m.id, image=m.image, labels=dict(m.labels), snapshot_key=m.snapshot_key
        ),
    ),
    "containerd.events.ContainerDelete": (
        container_pb2.ContainerDelete,
        lambda m, e: ContainerDelete(**e, id=m.id),
    ),
    "containerd.events.NamespaceCreate": (
        namespace_pb2.NamespaceCreate,
        lambda m, e: NamespaceCreate(**e, name=m.name, labels=dict(m.labels)),
    ),
    "containerd.events.NamespaceUpdate": (
        namespace_pb2.NamespaceUpdate,
        lambda m, e: NamespaceUpdate(**e, name=m.name, labels=dict(m.labels)),
    ),
    "containerd.events.NamespaceDelete": (
        namespace_pb2.NamespaceDelete,
        lambda m, e: NamespaceDelete(**e, name=m.name),
    ),
}


def decode_envelope(envelope: Any) -> Event:
    """Turn an events Envelope (either package name; the wire is the same) into an event.

    Args:
        envelope: A ``containerd.services.events.v1.Envelope`` or ``containerd.types.Envelope``.

    Returns:
        The typed event, or a :class:`RawEvent` when the payload is missing, of an unknown
        type or fails to decode. Never raises for payload problems.
    """
    head: _Envelope = {
        "namespace": envelope.namespace,
        "topic": envelope.topic,
        "timestamp": _ts(envelope, "timestamp"),
    }
    if not envelope.HasField("event"):
        return RawEvent(**head, error="envelope has no event")
    payload: any_pb2.Any = envelope.event
    entry = _DECODERS.get(typeurl.type_name(payload.type_url))
    if entry is None:
        return RawEvent(
            **head, type_url=payload.type_url, value=payload.value, error="unknown event type"
        )
    cls, build = entry
    try:
        decoded = cls.FromString(payload.value)
        return build(decoded, head)
    except Exception as err:  # a corrupt payload must not end the subscription
        return RawEvent(**head, type_url=payload.type_url, value=payload.value, error=f"cannot decode: {err}")


_PLAIN = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def quote(value: str) -> str:
    """Quote a value for a containerd filter expression when it is not a plain word.

    Example:
        >>> quote("a b")
        '"a b"'
    """
    if _PLAIN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def subscribe_request(filters: Sequence[str], *, namespace: str | None) -> Any:
    """A ``SubscribeRequest``; with a ``namespace``, every filter is AND'ed with it.

    containerd does not scope subscriptions by the caller's namespace, so the scoping is a
    ``namespace==<namespace>`` term; ``None`` subscribes to every namespace.
    """
    scoped = list(filters)
    if namespace is not None:
        term = f"namespace=={quote(namespace)}"
        scoped = [f"{term},{f}" for f in scoped] if scoped else [term]
    return events_pb2.SubscribeRequest(filters=scoped)


def publish_request(topic: str, event: Packable) -> Any:
    """A ``PublishRequest`` with the event packed under a bare type URL."""
    return events_pb2.PublishRequest(topic=topic, event=pack(event))


def publish_metadata(namespace: str | None, metadata: Metadata = ()) -> Metadata:
    """The call metadata of a publish: ``namespace`` (if given) ahead of ``metadata``.

    Raises:
        ValueError: ``namespace`` breaks containerd's identifier rules.
    """
    extra = tuple(metadata)
    if namespace is not None:
        extra = ((NAMESPACE_HEADER, validate_namespace(namespace)), *extra)
    return extra


EventStream = ResponseStream[Event]


class EventsService(Service):
    """Subscribe to and publish events."""

    _stub_factory = events_pb2_grpc.EventsStub

    def subscribe(
        self,
        *filters: str,
        all_namespaces: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> EventStream:
        """Stream events as typed dataclasses.

        containerd does not scope subscriptions by the caller's namespace, so unless
        ``all_namespaces`` is set, ``namespace==<this connection's namespace>`` is AND'ed
        into every filter. Filters are OR'ed; the comma-separated terms of one filter AND'ed
        (e.g. ``'topic~=|^/tasks/|'``).

        The stream is an iterator; ``stream.cancel()`` (from any thread) ends the iteration
        normally. Use it as a context manager to cancel on exit.

        Args:
            *filters: containerd filter expressions.
            all_namespaces: Receive every namespace's events.
            timeout: Deadline in seconds for the whole subscription (default: none).
            metadata: Extra gRPC metadata.

        Returns:
            An :class:`EventStream` of :class:`Event` subclasses (:class:`RawEvent` for
            unknown payloads).

        Raises:
            ConnectionLostError: (while iterating) the daemon went away; subscribe again.
        """
        request = subscribe_request(filters, namespace=None if all_namespaces else self._conn.namespace)
        return self._conn.stream(
            self.stub.Subscribe, request, decode_envelope, timeout=timeout, metadata=metadata
        )

    def publish(
        self,
        topic: str,
        event: Packable,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        """Publish an event (packed with a bare type URL) under ``topic`` in the namespace.

        Args:
            topic: ``/``-separated identifiers, e.g. ``/myapp/started``.
            event: The payload message.
            namespace: Publish in another namespace than the connection's.
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.

        Raises:
            InvalidArgumentError: The topic is malformed.
        """
        request = publish_request(topic, event)
        extra = publish_metadata(namespace, metadata)
        self._conn.unary(self.stub.Publish, request, timeout=timeout, metadata=extra)
