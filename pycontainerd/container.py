"""``Container``: a containerd container record plus libcontainerd's bundle directory.

A container is created by ``Client.new_container`` the way libcontainerd's
``NewContainer`` does it: the bundle directory that will hold the process
FIFOs is prepared for the container's root user (``prepare_bundle_dir`` with
the spec's user-namespace mapping, so a remapped root can open them), its
path is recorded in the label ``com.docker/engine.bundle.path``, and the OCI
spec is stored as JSON. Every FIFO path of the container's processes is
derived from that label.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import os
import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pycontainerd import _rules, _validate, errors, task
from pycontainerd.api.types import Container as ContainerInfo
from pycontainerd.api.types import Descriptor, Mount, RuncOptions
from pycontainerd.bundle import mkdir_all_and_chown_new, mkdir_and_chown, prepare_bundle_dir
from pycontainerd.idmap import spec_user
from pycontainerd.stdio.strategy import Stdio, null
from pycontainerd.task import Task

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = [
    "BUNDLE_LABEL",
    "DEFAULT_RUNTIME",
    "Container",
    "ContainerRecord",
    "PreparedRecord",
    "check_checkpoint_dir",
    "default_state_dir",
    "delete_checkpoint",
    "new_container",
    "prepare_record",
    "upload_checkpoint",
]

#: The media type of a checkpoint tar in the content store (what the runc shim restores from).
CHECKPOINT_MEDIA_TYPE = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
#: The label holding the bundle dir (the FIFO directory), as moby names it.
BUNDLE_LABEL = "com.docker/engine.bundle.path"
DEFAULT_RUNTIME = "io.containerd.runc.v2"
_RUNC_RUNTIMES = ("io.containerd.runc.v2", "io.containerd.runc.v1")


def default_state_dir() -> str:
    """Where bundle dirs go by default: ``$PYCONTAINERD_STATE_DIR``, else ``/run/pycontainerd``."""
    return os.environ.get("PYCONTAINERD_STATE_DIR") or "/run/pycontainerd"


def _spec_terminal(spec: Any) -> bool:
    process = spec.get("process") if isinstance(spec, Mapping) else None
    return bool(process.get("terminal", False)) if isinstance(process, Mapping) else False


class ContainerRecord:
    """What a container is without talking to the daemon: its record, spec, bundle dir, IO owner.

    The pure half shared by :class:`Container` and ``pycontainerd.aio.Container``.
    """

    def __init__(self, info: ContainerInfo) -> None:
        self._info = info

    @property
    def id(self) -> str:
        """The container id."""
        return self._info.id

    @property
    def info(self) -> ContainerInfo:
        """The record as last fetched (see ``reload``)."""
        return self._info

    @property
    def spec(self) -> dict[str, Any]:
        """The OCI runtime spec."""
        spec = self._info.spec
        return dict(spec) if isinstance(spec, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, str]:
        """The container's labels."""
        return self._info.labels

    @property
    def bundle_dir(self) -> str:
        """The directory holding the process FIFOs (``""`` if the container has none recorded)."""
        return self._info.labels.get(BUNDLE_LABEL, "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, bundle_dir={self.bundle_dir!r})"

    def _io_ids(self) -> tuple[int, int]:
        return spec_user(self.spec)

    def _fifo_dir(self) -> str:
        path = self.bundle_dir
        if not path:
            raise errors.FailedPreconditionError(
                f"container {self.id!r} has no {BUNDLE_LABEL} label: create it with Client.new_container"
            )
        path = _validate.absolute_path(path, f"{BUNDLE_LABEL} label")
        if not os.path.isdir(path):
            # Removed since the container was created (a reattached task's FIFO cleanup
            # removes the emptied bundle dir, as containerd's does): make it again, private
            # and owned by the container's root like the first time.
            uid, gid = self._io_ids()
            if (uid, gid) == (0, 0):
                mkdir_all_and_chown_new(path, 0o700, 0, 0)
            else:
                mkdir_and_chown(path, 0o700, uid, gid)
        return path

    def _task_options(self) -> Any:
        uid, gid = self._io_ids()
        options = self._info.runtime.options
        if isinstance(options, RuncOptions):
            return dataclasses.replace(options, io_uid=uid, io_gid=gid)
        if self._info.runtime.name in _RUNC_RUNTIMES and options is None:
            return RuncOptions(io_uid=uid, io_gid=gid)
        return options

    def _fifo_name(self, fifo_id: str | None) -> str:
        """The process's name in its FIFO paths: the container id, or ``fifo_id`` (checked)."""
        return self.id if fifo_id is None else _rules.identifier(fifo_id, "fifo_id")

    @property
    def _terminal(self) -> bool:
        return _spec_terminal(self.spec)

    @property
    def _has_snapshot(self) -> bool:
        return bool(self._info.snapshotter and self._info.snapshot_key)

    def _remove_bundle(self, namespace: str) -> None:
        """Remove the bundle dir after the record is gone (``LIBCONTAINERD_NOCLEAN=1`` keeps it)."""
        if os.environ.get("LIBCONTAINERD_NOCLEAN") != "1":
            _remove_bundle(self.bundle_dir, self.id, namespace)


class Container(ContainerRecord):
    """A container: its record in containerd and its bundle directory.

    Obtain one from ``Client.new_container``, ``Client.load_container`` or ``Client.containers``.
    """

    def __init__(self, client: Client, info: ContainerInfo) -> None:
        super().__init__(info)
        self._client = client

    def reload(self, *, timeout: float | None = None) -> Container:
        """Fetch the record again; returns self."""
        self._info = _get(self._client, self.id, timeout)
        return self

    def new_task(self, *, stdio: Stdio | None = None, checkpoint_dir: str | None = None,
                 fifo_id: str | None = None, timeout: float | None = None) -> Task:
        """Create the container's task (not started; arm ``task.wait()`` then ``task.start()``).

        The FIFOs ``<bundle>/<fifo_id>-stdin|-stdout|-stderr`` (per the stdin/terminal
        matrix: no stdin FIFO without a stdin source, no stderr FIFO with a terminal)
        are created and opened before the Create RPC; the runc options carry
        ``io_uid``/``io_gid`` = the host ids of the container's root. If anything
        fails, the FIFOs are removed again.

        Args:
            stdio: How stdio is wired (default: :func:`pycontainerd.stdio.null`).
            checkpoint_dir: Restore from a CRIU checkpoint directory: it is uploaded to the
                content store as a tar (``...criu.checkpoint.criu.tar``, gc root label),
                passed as the task's checkpoint, and the blob is deleted afterwards.
            fifo_id: The process id in the FIFO names: the container id by default
                (moby since 2023); ``"init"`` gives the older libcontainerd layout.
            timeout: Deadline of each RPC.

        Returns:
            The created task.

        Raises:
            ConflictError: The container already has a task (checked before any FIFO is touched).
            ValueError: A bad ``fifo_id`` or ``checkpoint_dir`` (before any RPC).
        """
        stdio = stdio if stdio is not None else null()
        name = self._fifo_name(fifo_id)
        terminal = self._terminal
        checkpoint_dir = check_checkpoint_dir(checkpoint_dir)
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = upload_checkpoint(self._client, checkpoint_dir, timeout)
        try:
            return task.new_task(
                self._client, self.id, bundle_dir=self._fifo_dir(), io_ids=self._io_ids(), stdio=stdio,
                terminal=terminal, fifo_name=name, checkpoint=checkpoint, options=self._task_options(),
                timeout=timeout, rootfs=self._rootfs_mounts(timeout),
            )
        finally:
            if checkpoint is not None:
                delete_checkpoint(self._client, checkpoint, timeout)

    def _rootfs_mounts(self, timeout: float | None) -> list[Mount]:
        # A container made from an image: its task's rootfs is its snapshot's mounts.
        if not self._has_snapshot:
            return []
        return self._client.api.snapshots.mounts(self._info.snapshotter, self._info.snapshot_key,
                                                 timeout=timeout)

    def task(self, *, timeout: float | None = None) -> Task:
        """The container's task without attaching its IO.

        Deleting it through this handle still removes its FIFOs (containerd#2421:
        tasks loaded without IO must not leak them).

        Raises:
            NotFoundError: The container has no task.
        """
        return task.load_task(self._client, self.id, bundle_dir=self.bundle_dir, io_ids=self._io_ids(),
                              timeout=timeout)

    def attach_task(self, stdio: Stdio, *, timeout: float | None = None) -> Task:
        """Reattach to the running task (after this process restarted): reopen its FIFOs.

        The FIFO paths come from Tasks/Get. No IO is attached when the task's
        status is UNKNOWN (its shim is unreachable). Only one reader per FIFO
        should exist: detach or close any other client first. Output the task
        wrote while nobody was attached waited in the FIFOs (the shim holds its
        own ends) and is delivered now, once. A task using the zero-copy handoff
        has no FIFOs: it is reconnected to its helper (any sink strategy works).

        Args:
            stdio: How to wire the reattached stdio (its stdin is used only if the
                task was created with a stdin FIFO).
            timeout: Deadline of the Tasks/Get RPC.

        Returns:
            The task; ``wait()`` resolves after its exit once the output is drained.

        Raises:
            NotFoundError: The container has no task.
        """
        return task.attach_task(self._client, self.id, bundle_dir=self.bundle_dir, io_ids=self._io_ids(),
                                stdio=stdio, timeout=timeout)

    def delete(self, *, timeout: float | None = None, snapshot_cleanup: bool = True) -> None:
        """Delete the container and remove its bundle dir (``LIBCONTAINERD_NOCLEAN=1`` keeps it).

        A container made from an image also loses its snapshot (containerd's
        ``WithSnapshotCleanup``) unless ``snapshot_cleanup`` is false; a snapshot
        already gone is fine, so a second delete after an interrupted one finishes it.

        Raises:
            FailedPreconditionError: It still has a task (checked first).
        """
        try:
            self._client.api.tasks.get(self.id, timeout=timeout)
        except errors.NotFoundError:
            pass
        else:
            raise errors.FailedPreconditionError(f"cannot delete container {self.id!r}: it has a task")
        self._client.api.containers.delete(self.id, timeout=timeout)
        if snapshot_cleanup and self._has_snapshot:
            with contextlib.suppress(errors.NotFoundError):
                self._client.api.snapshots.remove(self._info.snapshotter, self._info.snapshot_key,
                                                  timeout=timeout)
        self._remove_bundle(self._client.namespace)


def check_checkpoint_dir(checkpoint_dir: str | None) -> str | None:
    """The ``checkpoint_dir`` of ``new_task``, checked before any RPC (sync and asyncio clients).

    Raises:
        ValueError: Not an absolute path, or not a directory.
    """
    if checkpoint_dir is None:
        return None
    checkpoint_dir = _validate.absolute_path(checkpoint_dir, "checkpoint dir")
    if not os.path.isdir(checkpoint_dir):
        raise ValueError(f"checkpoint dir {checkpoint_dir!r} is not a directory")
    return checkpoint_dir


def delete_checkpoint(client: Client, checkpoint: Descriptor, timeout: float | None) -> None:
    """Delete a restore's checkpoint blob once the task is created; a failure is only logged."""
    try:
        client.api.content.delete(checkpoint.digest, timeout=timeout)
    except errors.ContainerdError as err:
        _log.warning("failed to delete checkpoint blob %s: %s", checkpoint.digest, err)


def upload_checkpoint(client: Client, directory: str, timeout: float | None) -> Descriptor:
    """Tar a CRIU checkpoint directory into the content store (libcontainerd's restore path)."""
    # Imported here: only a restore needs them (and `pycontainerd run` starts faster without).
    import tarfile
    import tempfile
    import uuid

    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for entry in sorted(os.listdir(directory)):
                tar.add(os.path.join(directory, entry), arcname=entry)
        archive.seek(0)
        chunks = iter(lambda: archive.read(1 << 20), b"")
        labels = {"containerd.io/gc.root": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        return client.api.content.write(
            f"checkpoint-{uuid.uuid4().hex}", chunks, labels=labels, media_type=CHECKPOINT_MEDIA_TYPE,
            timeout=timeout,
        )


def _remove_bundle(path: str, container_id: str, namespace: str) -> None:
    # The label is data from the daemon: only remove a directory that is
    # plausibly this container's bundle (absolute, named after the id).
    if not path or not os.path.isabs(path):
        return
    path = path.rstrip("/")
    name = os.path.basename(path)
    if name != container_id and not name.startswith(container_id + "."):
        return
    try:
        os.rmdir(path)  # the common case: the FIFOs went with their process
    except FileNotFoundError:
        pass
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)
    # The default layout is <state>/<namespace>/<id>: drop the namespace level once it
    # is empty, so short-lived namespaces do not pile up (rmdir refuses a non-empty dir).
    parent = os.path.dirname(path)
    parent_name = os.path.basename(parent)
    if parent_name == namespace or parent_name.startswith(namespace + "."):
        with contextlib.suppress(OSError):
            os.rmdir(parent)


def _get(client: Client, id: str, timeout: float | None) -> ContainerInfo:
    try:
        return client.api.containers.get(id, timeout=timeout)
    except errors.NotFoundError as err:
        raise errors.NotFoundError(f"no such container: {id}", code=err.code) from err


def load_container(client: Client, id: str, *, timeout: float | None = None) -> Container:
    """See ``Client.load_container``."""
    _rules.identifier(id, "container id")
    return Container(client, _get(client, id, timeout))


def new_container(client: Client, id: str, spec: Mapping[str, Any] | None = None, *,
                  runtime: str = DEFAULT_RUNTIME, runtime_options: Any = None, bundle_dir: str | None = None,
                  labels: Mapping[str, str] | None = None, state_dir: str | None = None,
                  timeout: float | None = None, image: Any = None, snapshotter: str | None = None,
                  snapshot: str | None = None, platform: str | None = None,
                  spec_options: Mapping[str, Any] | None = None) -> Container:
    """See ``Client.new_container``; with ``image``, :mod:`pycontainerd.images.containers`."""
    def record(spec: Mapping[str, Any], image: str = "", snapshotter: str = "", key: str = "") -> Container:
        return _new_container(client, id, spec, runtime=runtime, runtime_options=runtime_options,
                              bundle_dir=bundle_dir, labels=labels, state_dir=state_dir, timeout=timeout,
                              image=image, snapshotter=snapshotter, snapshot_key=key)

    if image is None:
        if spec_options or snapshotter is not None or snapshot is not None or platform is not None:
            raise TypeError("spec options, snapshotter, snapshot and platform need image=")
        if spec is None:
            raise TypeError("new_container needs a spec or an image")
        return record(spec)
    _rules.identifier(id, "container id")
    from pycontainerd.images.containers import new_image_container

    return new_image_container(client, id, image, record, spec=spec, snapshotter=snapshotter,
                               snapshot=snapshot, platform=platform, spec_options=spec_options)


@dataclasses.dataclass(frozen=True)
class PreparedRecord:
    """A container record ready to be created: checked, its bundle dir made, its labels set.

    The pure-local half of creating a container (no RPC), shared by the sync and asyncio
    clients: :func:`prepare_record` makes it, the caller sends Containers/Create with
    :attr:`labels`, and on failure calls :meth:`undo`.

    Attributes:
        path: The bundle dir (made by :func:`prepare_record`).
        labels: The record's labels, the bundle label included.
        existed: The bundle dir was there before.
        parent_existed: Its parent (the default layout's namespace level) was there before.
    """

    path: str
    labels: dict[str, str]
    existed: bool
    parent_existed: bool

    def undo(self, *, conflict: bool) -> None:
        """Remove what :func:`prepare_record` made after Create failed (``conflict``: the id is taken).

        The id belonging to another container, its bundle may be this very path (left
        alone), else the directory made here is empty and goes.
        """
        if self.existed:
            return
        with contextlib.suppress(OSError):
            if conflict:
                os.rmdir(self.path)
            else:
                shutil.rmtree(self.path)
        if not self.parent_existed:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.path))


def prepare_record(namespace: str, id: str, spec: Mapping[str, Any], *, runtime: str,
                   bundle_dir: str | None, labels: Mapping[str, str] | None,
                   state_dir: str | None) -> PreparedRecord:
    """Check a new container's arguments and prepare its bundle dir (libcontainerd's ``NewContainer``).

    Raises:
        ValueError: A bad id, runtime, label, bundle path or id mapping.
        TypeError: ``spec`` is not a mapping.
    """
    _rules.identifier(id, "container id")
    if not isinstance(spec, Mapping):
        raise TypeError("spec must be an OCI runtime spec mapping (see pycontainerd.oci.build)")
    _validate.runtime_name(runtime)
    _validate.labels(labels or {})
    uid, gid = _validate.spec_root(spec)  # validates the id maps: never silently root
    if bundle_dir is None:
        root = _validate.absolute_path(state_dir or default_state_dir(), "state dir")
        bundle_dir = os.path.join(root, namespace, id)
    else:
        bundle_dir = _validate.absolute_path(bundle_dir, "bundle dir")
    _validate.no_symlinks(bundle_dir, "bundle dir")
    existed = os.path.lexists(bundle_dir)
    # The default layout's namespace level is made on demand: a failed create removes it
    # again when it was made here and nothing else is in it.
    parent_existed = os.path.lexists(os.path.dirname(bundle_dir))
    path = prepare_bundle_dir(bundle_dir, uid, gid)
    if not existed and (uid, gid) == (0, 0):
        # Only the runtime (root) opens the FIFOs: keep the directory private. On an fd
        # opened without following a symlink: a path swapped since the walk is refused.
        dirfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(dirfd, 0o700)
        finally:
            os.close(dirfd)
    all_labels = dict(labels or {})
    all_labels[BUNDLE_LABEL] = path
    return PreparedRecord(path, all_labels, existed, parent_existed)


def _new_container(client: Client, id: str, spec: Mapping[str, Any], *, runtime: str, runtime_options: Any,
                   bundle_dir: str | None, labels: Mapping[str, str] | None, state_dir: str | None,
                   timeout: float | None, image: str = "", snapshotter: str = "",
                   snapshot_key: str = "") -> Container:
    prepared = prepare_record(client.namespace, id, spec, runtime=runtime, bundle_dir=bundle_dir,
                              labels=labels, state_dir=state_dir)
    try:
        info = client.api.containers.create(
            id, spec=spec, runtime=runtime, runtime_options=runtime_options, labels=prepared.labels,
            image=image, snapshotter=snapshotter, snapshot_key=snapshot_key, timeout=timeout,
        )
    except errors.AlreadyExistsError as err:
        prepared.undo(conflict=True)
        raise errors.ConflictError(f"id already in use: {id}") from err
    except BaseException:
        prepared.undo(conflict=False)
        raise
    return Container(client, info)
