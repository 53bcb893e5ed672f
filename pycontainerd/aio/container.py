"""``Container`` for asyncio: the sync client's container, its record checks and bundle dir shared.

Everything local is :mod:`pycontainerd.container`'s: the argument checks and bundle
dir of a new record (:func:`~pycontainerd.container.prepare_record`), the derived
values of a record (:class:`~pycontainerd.container.ContainerRecord`: FIFO dir, IO
owner, runc options, terminal) and the bundle removal. Only the RPCs are awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pycontainerd import _rules, errors
from pycontainerd.aio import task as _task
from pycontainerd.aio._util import shielded
from pycontainerd.aio.task import Task
from pycontainerd.api.types import Container as ContainerInfo
from pycontainerd.api.types import Descriptor, Mount
from pycontainerd.container import (
    DEFAULT_RUNTIME,
    ContainerRecord,
    check_checkpoint_dir,
    delete_checkpoint,
    prepare_record,
    upload_checkpoint,
)
from pycontainerd.stdio.strategy import Stdio, null

if TYPE_CHECKING:
    from pycontainerd.aio.client import Client

__all__ = ["Container", "load_container", "new_container"]

T = TypeVar("T")


class Container(ContainerRecord):
    """A container: its record in containerd and its bundle directory (asyncio).

    Obtain one from ``await client.new_container(...)``, ``load_container`` or ``containers``.
    """

    def __init__(self, client: Client, info: ContainerInfo) -> None:
        super().__init__(info)
        self._client = client

    async def reload(self, *, timeout: float | None = None) -> Container:
        """Fetch the record again; returns self."""
        self._info = await _get(self._client, self.id, timeout)
        return self

    async def new_task(self, *, stdio: Stdio | None = None, checkpoint_dir: str | None = None,
                       fifo_id: str | None = None, timeout: float | None = None) -> Task:
        """Create the container's task (not started; ``await task.start()``).

        Args:
            stdio: How stdio is wired (default: :func:`pycontainerd.stdio.null`); any
                strategy but ``attach()``.
            checkpoint_dir: Restore from a CRIU checkpoint directory, as the sync client
                does: it is uploaded to the content store as a tar (by the sync client's
                code, in a worker thread), passed as the task's checkpoint, and the blob
                is deleted afterwards, also when the call is cancelled.
            fifo_id: The process id in the FIFO names (default: the container id).
            timeout: Deadline of each RPC.

        Returns:
            The created task.

        Raises:
            ConflictError: The container already has a task (checked before any FIFO is touched).
            ValueError: A bad ``fifo_id`` or ``checkpoint_dir`` (before any RPC).
            TypeError: An ``attach()`` strategy.
        """
        return await self._new_task(stdio=stdio, checkpoint_dir=checkpoint_dir, fifo_id=fifo_id,
                                    timeout=timeout)

    async def _new_task(self, *, stdio: Stdio | None = None, checkpoint_dir: str | None = None,
                        fifo_id: str | None = None, timeout: float | None = None,
                        fresh: bool = False) -> Task:
        # ``fresh``: this container was made by the caller just now (aio.run), see _create_process.
        stdio = stdio if stdio is not None else null()
        name = self._fifo_name(fifo_id)
        checkpoint_dir = check_checkpoint_dir(checkpoint_dir)
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = await _upload_checkpoint(self._client, checkpoint_dir, timeout)
        try:
            return await _task.new_task(
                self._client, self.id, bundle_dir=self._fifo_dir(), io_ids=self._io_ids(), stdio=stdio,
                terminal=self._terminal, fifo_name=name, checkpoint=checkpoint, options=self._task_options(),
                timeout=timeout, rootfs=await self._rootfs_mounts(timeout), fresh=fresh,
            )
        finally:
            if checkpoint is not None:
                await shielded(_in_sync_client(self._client, delete_checkpoint, checkpoint, timeout))

    async def _rootfs_mounts(self, timeout: float | None) -> list[Mount]:
        if not self._has_snapshot:
            return []
        return await self._client.api.snapshots.mounts(self._info.snapshotter, self._info.snapshot_key,
                                                       timeout=timeout)

    async def task(self, *, timeout: float | None = None) -> Task:
        """The container's task without attaching its IO (deleting it still removes its FIFOs).

        Raises:
            NotFoundError: The container has no task.
        """
        return await _task.load_task(self._client, self.id, bundle_dir=self.bundle_dir, io_ids=self._io_ids(),
                                     timeout=timeout)

    async def attach_task(self, stdio: Stdio, *, timeout: float | None = None) -> Task:
        """Reattach to the running task (after this process restarted): reopen its FIFOs or handoff.

        Output written while nobody was attached waited in the FIFOs (or the container's
        pipes) and is delivered now, once.

        Raises:
            NotFoundError: The container has no task.
        """
        return await _task.attach_task(self._client, self.id, bundle_dir=self.bundle_dir,
                                       io_ids=self._io_ids(), stdio=stdio, timeout=timeout)

    async def delete(self, *, timeout: float | None = None, snapshot_cleanup: bool = True) -> None:
        """Delete the container and remove its bundle dir (``LIBCONTAINERD_NOCLEAN=1`` keeps it).

        Raises:
            FailedPreconditionError: It still has a task (checked first).
        """
        await self._delete(timeout=timeout, snapshot_cleanup=snapshot_cleanup)

    async def _delete(self, *, timeout: float | None, snapshot_cleanup: bool = True,
                      task_gone: bool = False) -> None:
        # ``task_gone``: the caller deleted the task a moment ago (aio.run), so the Tasks/Get
        # check, which would find nothing, is skipped.
        api = self._client.api
        if not task_gone:
            try:
                await api.tasks.get(self.id, timeout=timeout)
            except errors.NotFoundError:
                pass
            else:
                raise errors.FailedPreconditionError(f"cannot delete container {self.id!r}: it has a task")
        await api.containers.delete(self.id, timeout=timeout)
        if snapshot_cleanup and self._has_snapshot:
            with contextlib.suppress(errors.NotFoundError):
                await api.snapshots.remove(self._info.snapshotter, self._info.snapshot_key, timeout=timeout)
        self._remove_bundle(self._client.namespace)


async def _in_sync_client(client: Client, work: Callable[..., T], *args: Any) -> T:
    """``work(sync_client, *args)`` in a worker thread, on a sync client of the same daemon and namespace."""
    from pycontainerd.client import Client as SyncClient

    def call() -> T:
        with SyncClient(client.address, namespace=client.namespace) as sync:
            return work(sync, *args)

    return await asyncio.to_thread(call)


async def _upload_checkpoint(client: Client, directory: str, timeout: float | None) -> Descriptor:
    """The sync client's checkpoint upload (tar into the content store) in a worker thread.

    Shielded: a cancel lets the upload finish and deletes its blob before it is re-raised,
    so no gc-rooted checkpoint tar is left in the content store.
    """
    upload = asyncio.ensure_future(_in_sync_client(client, upload_checkpoint, directory, timeout))
    try:
        return await asyncio.shield(upload)
    except asyncio.CancelledError:
        await shielded(_drop_upload(client, upload, timeout))
        raise


async def _drop_upload(client: Client, upload: asyncio.Future[Descriptor], timeout: float | None) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait({upload})
        await _in_sync_client(client, delete_checkpoint, upload.result(), timeout)


async def _get(client: Client, id: str, timeout: float | None) -> ContainerInfo:
    try:
        return await client.api.containers.get(id, timeout=timeout)
    except errors.NotFoundError as err:
        raise errors.NotFoundError(f"no such container: {id}", code=err.code) from err


async def load_container(client: Client, id: str, *, timeout: float | None = None) -> Container:
    """See ``Client.load_container``."""
    _rules.identifier(id, "container id")
    return Container(client, await _get(client, id, timeout))


async def new_container(client: Client, id: str, spec: Mapping[str, Any] | None, *,
                        runtime: str = DEFAULT_RUNTIME, runtime_options: Any = None,
                        bundle_dir: str | None = None, labels: Mapping[str, str] | None = None,
                        state_dir: str | None = None, timeout: float | None = None, image: Any = None,
                        snapshotter: str | None = None, snapshot: str | None = None,
                        platform: str | None = None,
                        spec_options: Mapping[str, Any] | None = None,
                        pull: tuple[str, Mapping[str, Any] | None] | None = None) -> Container:
    """Create a container record and its bundle dir (see ``Client.new_container``).

    On any failure, cancellation included, the bundle dir made here is removed again.
    With ``image``, the sync client's image code prepares it (see :func:`_new_image_container`),
    pulling it first under ``pull`` (``(policy, pull_options)`` of a run) when given.
    """
    if image is not None:
        _rules.identifier(id, "container id")
        return await _new_image_container(
            client, id, spec=spec, image=image, snapshotter=snapshotter, snapshot=snapshot, platform=platform,
            runtime=runtime, runtime_options=runtime_options, bundle_dir=bundle_dir, labels=labels,
            state_dir=state_dir, timeout=timeout, spec_options=spec_options, pull=pull)
    if spec_options or snapshotter is not None or snapshot is not None or platform is not None:
        raise TypeError("spec options, snapshotter, snapshot and platform need image=")
    if spec is None:
        raise TypeError("new_container needs a spec or an image")
    prepared = prepare_record(client.namespace, id, spec, runtime=runtime, bundle_dir=bundle_dir,
                              labels=labels, state_dir=state_dir)
    try:
        info = await client.api.containers.create(id, spec=spec, runtime=runtime,
                                                  runtime_options=runtime_options, labels=prepared.labels,
                                                  timeout=timeout)
    except errors.AlreadyExistsError as err:
        prepared.undo(conflict=True)
        raise errors.ConflictError(f"id already in use: {id}") from err
    except BaseException:
        prepared.undo(conflict=False)
        raise
    return Container(client, info)


#: How long a cancelled image preparation may still run before its clean-up proceeds anyway.
IMAGE_CANCEL_WAIT = 60.0


async def _new_image_container(client: Client, id: str, *, image: Any, **options: Any) -> Container:
    """A container from an image, made by the sync client's image code in one worker thread.

    The image code (unpack, snapshot under a lease, spec from the image config, user
    names from the image's files) is the sync client's; its RPCs and file work run in a
    thread while the loop goes on. The step is shielded: a cancel first lets it finish
    (bounded by :data:`IMAGE_CANCEL_WAIT`), so a clean-up then sees what it made.
    ``options["pull"]`` (``(policy, pull_options)``, from :func:`pycontainerd.aio.run`)
    first settles the image as the sync ``run(pull=...)`` does, in the same thread.
    """
    from pycontainerd.aio._util import wait_for
    from pycontainerd.client import Client as SyncClient

    spec_options = dict(options.pop("spec_options", None) or {})
    pull: tuple[str, Mapping[str, Any] | None] | None = options.pop("pull", None)

    def create() -> None:
        with SyncClient(client.address, namespace=client.namespace) as sync:
            chosen = image
            if pull is not None:
                # The sync run's own pull policy, in this same thread: one shielded step
                # pulls, unpacks and makes the container.
                from pycontainerd.registry.pull import ensure_image

                chosen = ensure_image(sync, image, *pull)
            sync.new_container(id, options.pop("spec"), image=chosen, **options, **spec_options)

    made = asyncio.ensure_future(asyncio.to_thread(create))
    try:
        await asyncio.shield(made)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await wait_for(asyncio.shield(made), IMAGE_CANCEL_WAIT)
        raise
    return await load_container(client, id)
