"""The asyncio client's image and registry methods: the sync client's code, in worker threads.

Pulls, pushes and imports stream HTTP (urllib3), tar files and content writes; all of
it blocks, and all of it is the sync client's (:mod:`pycontainerd.images`,
:mod:`pycontainerd.registry`). Rewriting it on asyncio would double the code that must
stay byte-exact with containerd for little gain: the work is I/O bound in threads
that release the GIL. So each method runs the sync implementation in a worker thread
(``asyncio.to_thread``) on the sync client of :mod:`._sync`, and the loop goes on.

Pull, push and import take a :class:`~pycontainerd._cancel.CancelToken` (see
:mod:`.transfer`): a cancel stops them promptly and leaves nothing. The short calls
(get, list, tag, delete, export) have no hook: a cancel lets them finish (shielded,
bounded by :data:`~.transfer.TRANSFER_CANCEL_WAIT`) and then raises, so a caller never
sees them half done.

The images returned are the sync :class:`pycontainerd.images.Image` objects, bound to
that sync client: their ``manifest()``, ``platforms()``, ``config()``, ``layers()``,
``size()``, ``chain_id()``, ``is_unpacked()`` and ``unpack()`` read the content store
and block (call them through ``asyncio.to_thread`` on the loop); their attributes
(``name``, ``target``, ``labels``, ...) do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, TypeVar

from pycontainerd._cancel import CancelToken
from pycontainerd.aio._util import wait_for
from pycontainerd.aio.transfer import TRANSFER_CANCEL_WAIT, Transfer
from pycontainerd.registry.progress import Phase, ProgressEvent

if TYPE_CHECKING:
    from pycontainerd.aio.client import Client
    from pycontainerd.api.types import Descriptor
    from pycontainerd.images import Image
    from pycontainerd.registry.credentials import AuthSource

__all__ = ["ImportProgress", "import_archive", "in_thread", "pulling", "pushing"]

T = TypeVar("T")
E = TypeVar("E")

#: One import progress report: ``(file, done, size)``, as the sync ``progress`` takes it.
ImportProgress = tuple[str, int, int]

_TRANSIENT = frozenset({Phase.DOWNLOADING, Phase.UPLOADING})


async def in_thread(call: Callable[[], T]) -> T:
    """Run a short blocking call in a worker thread; a cancel lets it finish first (bounded)."""
    done = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await wait_for(asyncio.shield(done), TRANSFER_CANCEL_WAIT)
        raise


def _registry_transfer(
    work: Callable[[Callable[[ProgressEvent], None], CancelToken], T],
) -> Transfer[ProgressEvent, T]:
    return Transfer(work, blob=lambda event: event.digest, transient=lambda event: event.phase in _TRANSIENT)


async def _drive(transfer: Transfer[E, T], progress: Callable[[E], None] | None) -> None:
    """Run ``transfer``, handing each event to ``progress`` on the loop, in order."""
    async with transfer:
        async for event in transfer:
            if progress is not None:
                progress(event)


def pulling(client: Client, ref: str, *, platform: str | None, unpack: bool, snapshotter: str | None,
            auth: AuthSource | None, plain_http: bool, ca_file: str | None, max_concurrent: int,
            timeout: float) -> Transfer[ProgressEvent, Image]:
    """A pull of ``ref`` as a :class:`Transfer` (see ``Client.pulling``)."""
    from pycontainerd.registry.pull import pull

    sync = client._sync_client()
    unpack_into = (snapshotter or "overlayfs") if unpack else None
    return _registry_transfer(
        lambda progress, cancel: pull(sync, ref, platform=platform, unpack_into=unpack_into, auth=auth,
                                      plain_http=plain_http, ca_file=ca_file, progress=progress,
                                      max_concurrent=max_concurrent, timeout=timeout, cancel=cancel))


def pushing(client: Client, image: Image | str, ref: str | None, *, platform: str | None,
            auth: AuthSource | None, plain_http: bool, ca_file: str | None, max_concurrent: int,
            chunk_size: int, timeout: float) -> Transfer[ProgressEvent, Descriptor]:
    """A push of ``image`` as a :class:`Transfer` (see ``Client.pushing``)."""
    from pycontainerd.registry.push import push

    sync = client._sync_client()
    return _registry_transfer(
        lambda progress, cancel: push(sync, image, ref, platform=platform, auth=auth, plain_http=plain_http,
                                      ca_file=ca_file, progress=progress, max_concurrent=max_concurrent,
                                      chunk_size=chunk_size, timeout=timeout, cancel=cancel))


async def run(transfer: Transfer[ProgressEvent, T], progress: Callable[[ProgressEvent], None] | None) -> T:
    """Run a pull or push to its end, ``progress`` called on the loop with each event."""
    await _drive(transfer, progress)
    return transfer.result()


async def import_archive(client: Client, source: str | os.PathLike[str] | IO[bytes], *, name: str | None,
                         platform: str | None, unpack: bool, snapshotter: str,
                         progress: Callable[[str, int, int], None] | None) -> list[Image]:
    """Import an archive in a worker thread (see ``Client.import_archive``)."""
    from pycontainerd.images.importer import import_archive as sync_import

    sync = client._sync_client()
    unpack_into = snapshotter if unpack else None

    def work(report: Callable[[ImportProgress], None], cancel: CancelToken) -> list[Image]:
        return sync_import(sync, source, name=name, platform=platform, unpack_into=unpack_into,
                           progress=lambda file, done, size: report((file, done, size)), cancel=cancel)

    transfer: Transfer[ImportProgress, list[Image]] = Transfer(
        work, blob=lambda event: event[0], transient=lambda event: event[1] < event[2])
    await _drive(transfer, None if progress is None else lambda event: progress(*event))
    return transfer.result()


async def export_archive(client: Client, images: Sequence[Image | str],
                         dest: str | os.PathLike[str] | IO[bytes], *,
                         platforms: Sequence[str] | None) -> None:
    """Export images in a worker thread (see ``Client.export_archive``)."""
    from pycontainerd.images.exporter import export_archive as sync_export

    sync = client._sync_client()
    await in_thread(lambda: sync_export(sync, images, dest, platforms=platforms))
