"""Value types of :mod:`pycontainerd.api`: small frozen dataclasses, not proto messages.

Results, and the runc options callers send (:class:`RuncOptions`,
:class:`RuncCheckpointOptions`). Each has a ``from_proto`` classmethod (and ``to_proto``
where it is also sent), so callers never handle generated messages unless they use a
service's raw ``.stub``. Timestamps are aware UTC datetimes, ``None`` when unset (see
:func:`pycontainerd.typeurl.timestamp`).
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from google.protobuf import any_pb2

from pycontainerd import typeurl
from pycontainerd._proto.runc.options import oci_pb2 as runc_pb2
from pycontainerd._proto.types import descriptor_pb2, mount_pb2, platform_pb2
from pycontainerd._proto.types.task import task_pb2

__all__ = [
    "Container",
    "DeleteResult",
    "Deprecation",
    "Descriptor",
    "ExitStatus",
    "Metric",
    "Mount",
    "Namespace",
    "Platform",
    "Plugin",
    "ProcessInfo",
    "RuncCheckpointOptions",
    "RuncOptions",
    "Runtime",
    "ServerInfo",
    "Status",
    "TaskInfo",
    "Version",
    "decode_any",
]


def decode_any(value: any_pb2.Any) -> Any:
    """Decode an Any for a result field without ever raising.

    JSON types become Python objects; runc options their dataclass (:class:`RuncOptions`,
    :class:`RuncCheckpointOptions`); other known protos messages. An unknown or
    undecodable payload stays the raw ``Any``.
    """
    try:
        decoded = typeurl.unpack_value(value)
    except Exception:  # an unknown type must not break listing; the raw Any is kept
        return value
    if isinstance(decoded, runc_pb2.Options):
        return RuncOptions.from_proto(decoded)
    if isinstance(decoded, runc_pb2.CheckpointOptions):
        return RuncCheckpointOptions.from_proto(decoded)
    return decoded


class Status(str, enum.Enum):
    """A process's state (containerd ``containerd.v1.types.Status``); values are Go's names."""

    UNKNOWN = "unknown"
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    PAUSING = "pausing"

    @classmethod
    def from_proto(cls, value: int) -> Status:
        """The member for a wire enum value; unknown values map to ``UNKNOWN``."""
        return _STATUS_BY_NUMBER.get(value, cls.UNKNOWN)


# Keyed by the generated enum's numbers, so a renumbering in protos/ cannot go unnoticed.
_STATUS_BY_NUMBER: dict[int, Status] = {int(task_pb2.Status.Value(s.name)): s for s in Status}


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended.

    Attributes:
        code: The exit code; 128 + N when killed by signal N (SIGKILL: 137); 255 when
            containerd does not know it (containerd's ``UnknownExitStatus``).
        exited_at: When it exited, ``None`` if unknown.
    """

    code: int
    exited_at: _dt.datetime | None = None


@dataclass(frozen=True)
class Version:
    """The daemon's version (``v1.6.20``) and git revision."""

    version: str
    revision: str


@dataclass(frozen=True)
class TaskInfo:
    """A task's init process or an exec'd process as Tasks/Get and Tasks/List report it.

    Attributes:
        container_id: The container.
        id: The process id: the container id for the init process, else the exec id.
        pid: The host pid (0 when the process never started).
        status: Its state.
        stdin: Its stdin FIFO path as given at create/exec ("" when none).
        stdout: Its stdout FIFO path.
        stderr: Its stderr FIFO path.
        terminal: Whether it has a terminal.
        exit_status: The exit code, meaningful when ``status`` is ``STOPPED``.
        exited_at: When it exited, ``None`` if it has not.
    """

    container_id: str
    id: str
    pid: int
    status: Status
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    exit_status: int = 0
    exited_at: _dt.datetime | None = None

    @property
    def exec_id(self) -> str:
        """The exec id, ``""`` for the init process (what Kill/Start/Wait take)."""
        return "" if self.id == self.container_id else self.id

    @classmethod
    def from_proto(cls, p: Any, container_id: str = "") -> TaskInfo:
        """From a ``containerd.v1.types.Process``.

        Args:
            p: The message.
            container_id: The container asked about; containerd 1.6 leaves the message's
                ``container_id`` empty (then a listed init process's ``id`` is used).
        """
        return cls(
            container_id=p.container_id or container_id or p.id,
            id=p.id,
            pid=p.pid,
            status=Status.from_proto(p.status),
            stdin=p.stdin,
            stdout=p.stdout,
            stderr=p.stderr,
            terminal=p.terminal,
            exit_status=p.exit_status,
            exited_at=typeurl.field_timestamp(p, "exited_at"),
        )


@dataclass(frozen=True)
class ProcessInfo:
    """One pid of a task (Tasks/ListPids).

    Attributes:
        pid: The host pid.
        exec_id: For runc tasks, the exec the pid was started as ("" for the init process
            and its children, ``None`` when the runtime sent no details).
        info: The decoded runtime details, the raw Any if unknown, ``None`` if absent.
    """

    pid: int
    exec_id: str | None = None
    info: Any = None

    @classmethod
    def from_proto(cls, p: Any) -> ProcessInfo:
        """From a ``containerd.v1.types.ProcessInfo``."""
        if not p.HasField("info"):
            return cls(pid=p.pid)
        info = decode_any(p.info)
        exec_id = info.exec_id if isinstance(info, runc_pb2.ProcessDetails) else None
        return cls(pid=p.pid, exec_id=exec_id, info=info)


@dataclass(frozen=True)
class Mount:
    """A mount (``containerd.types.Mount``), e.g. a snapshot's rootfs layer."""

    type: str
    source: str
    target: str = ""
    options: tuple[str, ...] = ()

    @classmethod
    def from_proto(cls, m: Any) -> Mount:
        """From a ``containerd.types.Mount``."""
        return cls(type=m.type, source=m.source, target=m.target, options=tuple(m.options))

    def to_proto(self) -> mount_pb2.Mount:
        """As a ``containerd.types.Mount``."""
        return mount_pb2.Mount(type=self.type, source=self.source, target=self.target, options=self.options)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor (``containerd.types.Descriptor``)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, d: Any) -> Descriptor:
        """From a ``containerd.types.Descriptor``."""
        return cls(media_type=d.media_type, digest=d.digest, size=d.size, annotations=dict(d.annotations))

    def to_proto(self) -> descriptor_pb2.Descriptor:
        """As a ``containerd.types.Descriptor``."""
        return descriptor_pb2.Descriptor(
            media_type=self.media_type, digest=self.digest, size=self.size, annotations=dict(self.annotations)
        )


@dataclass(frozen=True)
class Platform:
    """An OCI platform (``containerd.types.Platform``)."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def from_proto(cls, p: Any) -> Platform:
        """From a ``containerd.types.Platform``."""
        return cls(
            os=p.os,
            architecture=p.architecture,
            variant=p.variant,
            os_version=p.os_version,
            os_features=tuple(p.os_features),
        )

    def to_proto(self) -> platform_pb2.Platform:
        """As a ``containerd.types.Platform``."""
        return platform_pb2.Platform(
            os=self.os,
            architecture=self.architecture,
            variant=self.variant,
            os_version=self.os_version,
            os_features=self.os_features,
        )


@dataclass(frozen=True)
class DeleteResult:
    """What Tasks/Delete and Tasks/DeleteProcess report about the removed process."""

    id: str
    pid: int
    exit: ExitStatus

    @classmethod
    def from_proto(cls, r: Any) -> DeleteResult:
        """From a ``DeleteResponse``."""
        return cls(
            id=r.id, pid=r.pid, exit=ExitStatus(r.exit_status, typeurl.field_timestamp(r, "exited_at"))
        )


@dataclass(frozen=True)
class RuncOptions:
    """Options of the runc shim (``containerd.runc.v1.Options``) for a container or a task.

    Sent as a container's runtime options or with Tasks/Create, under the bare type URL
    ``containerd.runc.v1.Options``. Zero values mean "the shim's default".

    Attributes:
        no_pivot_root: Use ``chroot`` instead of ``pivot_root`` (ramdisk rootfs).
        no_new_keyring: Do not create a session keyring for the container.
        shim_cgroup: The cgroup to put the shim in.
        io_uid: Owner uid of the shim's end of the stdio FIFOs/pipes (the container's
            root on the host under a user namespace).
        io_gid: Owner gid of the same.
        binary_name: The runc binary (name or path) the shim runs.
        root: runc's ``--root`` state directory.
        criu_path: The criu binary (containerd 1.6/1.7; ignored by 2.x).
        systemd_cgroup: Let runc manage cgroups through systemd.
        criu_image_path: CRIU's image directory.
        criu_work_path: CRIU's work directory.
        task_api_address: Address of an alternative task API (containerd 2.x).
        task_api_version: Version of that task API (containerd 2.x).
    """

    no_pivot_root: bool = False
    no_new_keyring: bool = False
    shim_cgroup: str = ""
    io_uid: int = 0
    io_gid: int = 0
    binary_name: str = ""
    root: str = ""
    criu_path: str = ""
    systemd_cgroup: bool = False
    criu_image_path: str = ""
    criu_work_path: str = ""
    task_api_address: str = ""
    task_api_version: int = 0

    @classmethod
    def from_proto(cls, m: Any) -> RuncOptions:
        """From a ``containerd.runc.v1.Options``."""
        return cls(**{f.name: getattr(m, f.name) for f in fields(cls)})

    def to_proto(self) -> runc_pb2.Options:
        """As a ``containerd.runc.v1.Options``."""
        return runc_pb2.Options(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class RuncCheckpointOptions:
    """How the runc shim checkpoints a task with CRIU (``containerd.runc.v1.CheckpointOptions``).

    Attributes:
        exit: Stop the task after checkpointing it.
        open_tcp: Checkpoint established TCP connections.
        external_unix_sockets: Allow external unix sockets.
        terminal: Allow a terminal.
        file_locks: Checkpoint file locks.
        empty_namespaces: Namespaces CRIU should not restore (created empty).
        cgroups_mode: CRIU's cgroup mode (``soft``, ``full``, ``strict``).
        image_path: Write the images into this directory instead of the content store.
        work_path: CRIU's work directory.
        parent_path: A previous checkpoint's directory, for an incremental one (containerd 2.x).
    """

    exit: bool = False
    open_tcp: bool = False
    external_unix_sockets: bool = False
    terminal: bool = False
    file_locks: bool = False
    empty_namespaces: tuple[str, ...] = ()
    cgroups_mode: str = ""
    image_path: str = ""
    work_path: str = ""
    parent_path: str = ""

    @classmethod
    def from_proto(cls, m: Any) -> RuncCheckpointOptions:
        """From a ``containerd.runc.v1.CheckpointOptions``."""
        values = {f.name: getattr(m, f.name) for f in fields(cls)}
        values["empty_namespaces"] = tuple(values["empty_namespaces"])
        return cls(**values)

    def to_proto(self) -> runc_pb2.CheckpointOptions:
        """As a ``containerd.runc.v1.CheckpointOptions``."""
        return runc_pb2.CheckpointOptions(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class Runtime:
    """A container's runtime: its name (``io.containerd.runc.v2``) and decoded options.

    ``options`` is a :class:`RuncOptions` for runc options, another decoded message, the
    raw Any if its type is unknown here, or ``None``.
    """

    name: str
    options: Any = None


@dataclass(frozen=True)
class Container:
    """A container metadata record (Containers service); it holds no running state.

    Attributes:
        id: The container id.
        labels: Its labels.
        image: The image reference it was created from ("" if none).
        runtime: Its runtime.
        spec: The OCI runtime spec as a dict (``None`` if unset; the raw Any if not JSON).
        snapshotter: The snapshotter holding its rootfs ("" when the spec names a rootfs path).
        snapshot_key: The rootfs snapshot key.
        created_at: When it was created.
        updated_at: When it was last updated.
        extensions: Extension name to raw Any.
        sandbox: The sandbox id (containerd 1.7+; "" otherwise).
    """

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    runtime: Runtime = field(default_factory=lambda: Runtime(""))
    spec: Any = None
    snapshotter: str = ""
    snapshot_key: str = ""
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None
    extensions: Mapping[str, any_pb2.Any] = field(default_factory=dict)
    sandbox: str = ""

    @classmethod
    def from_proto(cls, c: Any) -> Container:
        """From a ``containerd.services.containers.v1.Container``."""
        runtime_options = decode_any(c.runtime.options) if c.runtime.HasField("options") else None
        return cls(
            id=c.id,
            labels=dict(c.labels),
            image=c.image,
            runtime=Runtime(c.runtime.name, runtime_options),
            spec=decode_any(c.spec) if c.HasField("spec") else None,
            snapshotter=c.snapshotter,
            snapshot_key=c.snapshot_key,
            created_at=typeurl.field_timestamp(c, "created_at"),
            updated_at=typeurl.field_timestamp(c, "updated_at"),
            extensions={k: _copy_any(v) for k, v in c.extensions.items()},
            sandbox=c.sandbox,
        )


def _copy_any(value: any_pb2.Any) -> any_pb2.Any:
    return any_pb2.Any(type_url=value.type_url, value=value.value)


@dataclass(frozen=True)
class Metric:
    """One metrics sample of a task (Tasks/Metrics).

    Attributes:
        id: The container id.
        timestamp: When it was taken.
        type_url: The payload type: ``io.containerd.cgroups.v1.Metrics`` on cgroup v1 or
            hybrid hosts, ``io.containerd.cgroups.v2.Metrics`` on unified hosts.
        data: The decoded cgroup metrics message (the raw Any if its type is unknown).
    """

    id: str
    timestamp: _dt.datetime | None
    type_url: str
    data: Any

    @classmethod
    def from_proto(cls, m: Any) -> Metric:
        """From a ``containerd.types.Metric``."""
        return cls(
            id=m.id,
            timestamp=typeurl.field_timestamp(m, "timestamp"),
            type_url=m.data.type_url,
            data=decode_any(m.data) if m.HasField("data") else None,
        )


@dataclass(frozen=True)
class Namespace:
    """A containerd namespace and its labels."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, n: Any) -> Namespace:
        """From a ``containerd.services.namespaces.v1.Namespace``."""
        return cls(name=n.name, labels=dict(n.labels))


@dataclass(frozen=True)
class Plugin:
    """A daemon plugin as Introspection/Plugins reports it.

    Attributes:
        type: The plugin type, e.g. ``io.containerd.runtime.v2``.
        id: The plugin id, e.g. ``task``.
        requires: Plugin types it depends on.
        platforms: Platforms it supports.
        exports: Exported properties (e.g. a snapshotter's root).
        capabilities: Declared capabilities.
        init_error: Why it failed to initialise, ``None`` if it loaded.
    """

    type: str
    id: str
    requires: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    exports: Mapping[str, str] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    init_error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the plugin initialised."""
        return self.init_error is None

    @classmethod
    def from_proto(cls, p: Any) -> Plugin:
        """From a ``containerd.services.introspection.v1.Plugin``."""
        init_error = None
        if p.HasField("init_err"):
            init_error = p.init_err.message or f"error code {p.init_err.code}"
        return cls(
            type=p.type,
            id=p.id,
            requires=tuple(p.requires),
            platforms=tuple(Platform.from_proto(x) for x in p.platforms),
            exports=dict(p.exports),
            capabilities=tuple(p.capabilities),
            init_error=init_error,
        )


@dataclass(frozen=True)
class Deprecation:
    """A deprecated feature the daemon saw in use (containerd 1.7+)."""

    id: str
    message: str
    last_occurrence: _dt.datetime | None = None


@dataclass(frozen=True)
class ServerInfo:
    """Introspection/Server: the daemon's UUID; pid, pid namespace and deprecations on 1.7+."""

    uuid: str
    pid: int = 0
    pidns: int = 0
    deprecations: tuple[Deprecation, ...] = ()

    @classmethod
    def from_proto(cls, s: Any) -> ServerInfo:
        """From a ``ServerResponse``."""
        return cls(
            uuid=s.uuid,
            pid=s.pid,
            pidns=s.pidns,
            deprecations=tuple(
                Deprecation(d.id, d.message, typeurl.field_timestamp(d, "last_occurrence"))
                for d in s.deprecations
            ),
        )
