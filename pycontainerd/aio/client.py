"""``pycontainerd.aio.Client``: a ``grpc.aio`` connection to containerd and its typed API.

Example:
    >>> async with pycontainerd.aio.Client(namespace="demo") as client:
    ...     print(await client.version())
    Version(version='1.6.20~ds1', revision='1.6.20~ds1-1+b1')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from pycontainerd import _address
from pycontainerd._grpc import DEFAULT_CONNECT_TIMEOUT
from pycontainerd.aio._grpc import AsyncConnection
from pycontainerd.aio._sync import SyncSide
from pycontainerd.aio.api import AsyncAPI
from pycontainerd.api.types import Descriptor, Version

if TYPE_CHECKING:
    from pycontainerd.aio.container import Container
    from pycontainerd.aio.events import EventMonitor
    from pycontainerd.aio.transfer import Transfer
    from pycontainerd.client import Client as SyncClient
    from pycontainerd.images import Image
    from pycontainerd.registry.credentials import AuthSource
    from pycontainerd.registry.progress import Progress, ProgressEvent

__all__ = ["Client"]


class Client:
    """An asyncio client of one containerd daemon, bound to one namespace.

    The same model and names as :class:`pycontainerd.Client`, awaited. The channel is
    made on the first call and belongs to that call's event loop. Use it as an async
    context manager, or ``await client.close()``.

    Args:
        address: The unix socket, as a path or ``unix://`` URL (default: as the sync client).
        namespace: The containerd namespace of every call (default ``$CONTAINERD_NAMESPACE``,
            else ``"default"``).
        timeout: Default deadline in seconds for unary calls (``None``: 60 s).
        connect_timeout: How long :meth:`connect` waits (10 s).

    Raises:
        ValueError: The address or namespace is invalid.
    """

    def __init__(self, address: str | None = None, *, namespace: str | None = None,
                 timeout: float | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        if address is None:
            address = _address.default_address()
        connection = AsyncConnection(address, namespace=namespace, timeout=timeout,
                                     connect_timeout=connect_timeout)
        self._init(connection, SyncSide(connection.address, connection.timeout))

    def _init(self, connection: AsyncConnection, sync: SyncSide) -> None:
        self._connection = connection
        self._api = AsyncAPI(connection)
        self._sync = sync

    @classmethod
    def _from_connection(cls, connection: AsyncConnection, sync: SyncSide) -> Client:
        client = cls.__new__(cls)
        client._init(connection, sync)
        return client

    def _sync_client(self) -> SyncClient:
        """The sync client of this namespace and lease that the image methods run on (made lazily)."""
        return self._sync.client(self.namespace, self.lease)

    @property
    def connection(self) -> AsyncConnection:
        """The underlying connection (channel, metadata, deadlines)."""
        return self._connection

    @property
    def api(self) -> AsyncAPI:
        """The asyncio wrappers of the containerd services, bound to this namespace."""
        return self._api

    @property
    def address(self) -> str:
        """The daemon's socket path."""
        return self._connection.address

    @property
    def namespace(self) -> str:
        """The namespace of every call."""
        return self._connection.namespace

    @property
    def lease(self) -> str | None:
        """The lease id sent with every call, if any."""
        return self._connection.lease

    def with_namespace(self, namespace: str) -> Client:
        """A view of this client in another namespace, sharing its channel.

        Raises:
            ValueError: The namespace breaks containerd's identifier rules.
        """
        return type(self)._from_connection(self._connection.with_namespace(namespace), self._sync)

    def with_lease(self, lease: str | None) -> Client:
        """A view whose calls carry ``containerd-lease: <lease>``, sharing the channel."""
        return type(self)._from_connection(self._connection.with_lease(lease), self._sync)

    async def connect(self, timeout: float | None = None) -> None:
        """Wait until the daemon serves (calls need not: the first call connects).

        Raises:
            UnavailableError: Nothing serves on the socket in time.
            PermissionDeniedError: The socket is not accessible to this user.
        """
        await self._connection.connect(timeout)

    async def version(self, *, timeout: float | None = None) -> Version:
        """The daemon's version and revision.

        Raises:
            UnavailableError: The daemon cannot be reached (the message names the socket).
        """
        return await self._api.version.version(timeout=timeout)

    async def new_container(self, id: str, spec: Mapping[str, Any] | None = None, *, image: Any = None,
                            snapshotter: str | None = None, snapshot: str | None = None,
                            platform: str | None = None, runtime: str = "io.containerd.runc.v2",
                            runtime_options: Any = None, bundle_dir: str | None = None,
                            labels: Mapping[str, str] | None = None, state_dir: str | None = None,
                            timeout: float | None = None, **spec_options: Any) -> Container:
        """Create a container the libcontainerd way, on a rootfs directory or from an image.

        The sync ``Client.new_container``, awaited. With ``image``, the image is prepared
        (unpacked if needed, a snapshot of its top layer, the spec from its config) by the
        sync client's image code in one worker thread, while the loop goes on.

        Args:
            id: The container id (containerd's identifier rules; checked first).
            spec: The OCI runtime spec (see :func:`pycontainerd.oci.build`); required without ``image``.
            image: An image (or its name) to run.
            snapshotter: With ``image``: the snapshotter (default ``overlayfs``).
            snapshot: With ``image``: the snapshot key (default: the container id).
            platform: With ``image``: its platform to run (default: the host's).
            runtime: The runtime (shim) name.
            runtime_options: Runtime options (e.g. :class:`~pycontainerd.api.types.RuncOptions`).
            bundle_dir: Absolute bundle dir; default ``<state_dir>/<namespace>/<id>``.
            labels: Extra labels.
            state_dir: Root of default bundle dirs.
            timeout: Deadline of the Create RPC.
            spec_options: With ``image`` and no ``spec``: ``args``, ``entrypoint``, ``env``,
                ``cwd``, ``user`` and any other :func:`pycontainerd.oci.build` option.

        Returns:
            The container.

        Raises:
            ValueError: A bad id, bundle path or id mapping (nothing is created).
            TypeError: Neither ``spec`` nor ``image``, or image options without ``image``.
            ConflictError: The id is in use.
            NotFoundError: No such image.
        """
        from pycontainerd.aio.container import new_container

        return await new_container(self, id, spec, runtime=runtime, runtime_options=runtime_options,
                                   bundle_dir=bundle_dir, labels=labels, state_dir=state_dir, timeout=timeout,
                                   image=image, snapshotter=snapshotter, snapshot=snapshot, platform=platform,
                                   spec_options=spec_options)

    async def load_container(self, id: str, *, timeout: float | None = None) -> Container:
        """The container with this id.

        Raises:
            NotFoundError: "no such container".
        """
        from pycontainerd.aio.container import load_container

        return await load_container(self, id, timeout=timeout)

    async def containers(self, *filters: str, timeout: float | None = None) -> list[Container]:
        """Every container in the namespace matching the containerd ``filters``."""
        from pycontainerd.aio.container import Container

        return [Container(self, info) for info in await self._api.containers.list(filters, timeout=timeout)]

    # -- images (the sync client's code in worker threads; see pycontainerd.aio.images) --------
    async def import_archive(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        name: str | None = None,
        platform: str | None = None,
        unpack: bool = True,
        snapshotter: str = "overlayfs",
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Image]:
        """Import an OCI image layout tar or a ``docker save`` tar (the sync ``import_archive``, awaited).

        The import runs in a worker thread. Cancelling the call stops it at its next
        read of ``source`` or step and leaves nothing (no image, lease, ingest, blob or
        snapshot); a read blocked on a silent pipe sees the cancel when the pipe next
        delivers or closes. ``source`` is read in the worker thread.

        Args:
            source: The archive's path, or a readable binary stream at its start.
            name: The name of the archive's single image; required when it names none.
            platform: ``"os/arch[/variant]"`` to keep; default the host's.
            unpack: Unpack the layers into ``snapshotter``.
            snapshotter: The snapshotter to unpack into.
            progress: ``progress(file, done, size)``, called on the event loop, in order
                (intermediate ``done`` counts of a file may be skipped when the loop is
                behind; the final one, ``done == size``, never is). An exception it
                raises ends the import, which then leaves nothing.

        Returns:
            The images, in archive order: sync :class:`pycontainerd.images.Image`
            objects (see :mod:`pycontainerd.aio.images` for which of their methods block).

        Raises:
            TruncatedArchiveError: Not a tar, or it ends early.
            ArchiveError: Neither layout, a missing index or file, no name for an unnamed image.
            BlobMismatchError: A blob does not have the digest or size it should.
            NoMatchingPlatformError: No manifest for the platform.
            SnapshotterError: The daemon has no such snapshotter.
            asyncio.CancelledError: The call was cancelled (nothing of the import is left).
        """
        from pycontainerd.aio import images

        return await images.import_archive(self, source, name=name, platform=platform, unpack=unpack,
                                           snapshotter=snapshotter, progress=progress)

    async def export_archive(
        self,
        images: Sequence[Image | str],
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        platforms: Sequence[str] | None = None,
    ) -> None:
        """Write images to an OCI image layout tar (the sync ``export_archive``, in a worker thread).

        A cancel lets the export finish (a path is written to a temporary file and
        renamed, so it is either whole or absent) and then raises.

        Raises:
            ValueError: No images, or a malformed platform.
            NotFoundError: No image of a given name.
            NoMatchingPlatformError: An image has nothing for the platforms.
            MissingBlobError: A blob a selected manifest needs is not in the content store.
        """
        from pycontainerd.aio import images as _images

        await _images.export_archive(self, images, dest, platforms=platforms)

    async def get_image(self, name: str) -> Image:
        """The image ``name``: a sync :class:`pycontainerd.images.Image` (its content methods block).

        Raises:
            NotFoundError: No such image.
        """
        from pycontainerd.aio.images import in_thread

        sync = self._sync_client()
        return await in_thread(lambda: sync.get_image(name))

    async def list_images(self, *filters: str) -> list[Image]:
        """The images matching any of the containerd ``filters`` (every image without one).

        Sync :class:`pycontainerd.images.Image` objects, as :meth:`get_image` returns.
        """
        from pycontainerd.aio.images import in_thread

        sync = self._sync_client()
        return await in_thread(lambda: sync.list_images(*filters))

    async def delete_image(self, name: str, *, sync: bool = False) -> None:
        """Delete the image record ``name`` (``sync``: wait for the garbage collection it triggers).

        Raises:
            NotFoundError: No such image.
        """
        from pycontainerd.aio.images import in_thread

        client = self._sync_client()
        await in_thread(lambda: client.delete_image(name, sync=sync))

    async def tag(self, source: str, target: str, *, force: bool = False) -> Image:
        """Name the image ``source`` also ``target``; the new sync :class:`~pycontainerd.images.Image`.

        Raises:
            NotFoundError: No image ``source``.
            AlreadyExistsError: ``target`` exists (unless ``force``, which re-points it).
        """
        from pycontainerd.aio.images import in_thread

        sync = self._sync_client()
        return await in_thread(lambda: sync.tag(source, target, force=force))

    # -- registries ------------------------------------------------------------------------
    async def pull(
        self,
        ref: str,
        *,
        platform: str | None = None,
        unpack: bool = True,
        snapshotter: str | None = None,
        auth: AuthSource | None = None,
        plain_http: bool = False,
        ca_file: str | None = None,
        progress: Progress | None = None,
        max_concurrent: int = 3,
        timeout: float = 60.0,
    ) -> Image:
        """Pull an image from a registry (the sync ``Client.pull``, in a worker thread).

        Cancelling the call stops the pull promptly, mid-layer too (its sockets are
        shut down, so a stalled read does not hold it), deletes its lease with a
        synchronous garbage collection (no image, lease, ingest, blob or snapshot is
        left) and then raises :class:`asyncio.CancelledError`; the clean-up is shielded
        but bounded by :data:`pycontainerd.aio.transfer.TRANSFER_CANCEL_WAIT`. For the
        events as an async iterator, see :meth:`pulling`.

        Args:
            ref: The image reference.
            platform: ``"os/arch[/variant]"``; default the host's.
            unpack: Unpack the layers into ``snapshotter``.
            snapshotter: The snapshotter (default ``overlayfs``).
            auth: Credentials, ``(user, password)``, or a function of the registry host;
                default: the Docker config's.
            plain_http: Speak HTTP, not HTTPS, to the registry.
            ca_file: A PEM file of CAs to trust besides the system's.
            progress: Called on the event loop with each
                :class:`~pycontainerd.registry.ProgressEvent`, in order (``downloading``
                events of a blob are coalesced when the loop is behind; phase changes
                never are). An exception it raises ends the pull, which leaves nothing.
            max_concurrent: Blobs downloaded at once.
            timeout: Seconds to connect, and between two reads of an answer.

        Returns:
            The image: a sync :class:`pycontainerd.images.Image` (its content methods block).

        Raises:
            InvalidReferenceError: ``ref`` is not a reference (a ``ValueError`` naming the rule).
            RegistryNotFoundError: No such repository, tag or manifest (a ``NotFoundError``).
            RegistryAuthError: Credentials needed, or refused.
            RegistryUnavailableError: The registry cannot be reached or keeps failing.
            BlobMismatchError: Content that does not match its digest or size.
            NoMatchingPlatformError: Nothing for the platform.
            asyncio.CancelledError: The call was cancelled (nothing of the pull is left).
        """
        from pycontainerd.aio import images

        return await images.run(self.pulling(
            ref, platform=platform, unpack=unpack, snapshotter=snapshotter, auth=auth, plain_http=plain_http,
            ca_file=ca_file, max_concurrent=max_concurrent, timeout=timeout), progress)

    def pulling(
        self,
        ref: str,
        *,
        platform: str | None = None,
        unpack: bool = True,
        snapshotter: str | None = None,
        auth: AuthSource | None = None,
        plain_http: bool = False,
        ca_file: str | None = None,
        max_concurrent: int = 3,
        timeout: float = 60.0,
    ) -> Transfer[ProgressEvent, Image]:
        """A pull whose progress is an async iterator; the arguments are :meth:`pull`'s.

        The pull starts when the ``async with`` block is entered; leaving the block by
        an exception (a cancel included) stops it as cancelling :meth:`pull` does.

        Example:
            >>> async with client.pulling(ref, plain_http=True) as transfer:
            ...     async for event in transfer:
            ...         print(event.phase.value, event.digest, event.offset, event.size)
            >>> image = transfer.result()

        Raises:
            ValueError: The client is closed.
        """
        from pycontainerd.aio import images

        return images.pulling(self, ref, platform=platform, unpack=unpack, snapshotter=snapshotter, auth=auth,
                              plain_http=plain_http, ca_file=ca_file, max_concurrent=max_concurrent,
                              timeout=timeout)

    async def push(
        self,
        image: Image | str,
        ref: str | None = None,
        *,
        platform: str | None = None,
        auth: AuthSource | None = None,
        plain_http: bool = False,
        ca_file: str | None = None,
        progress: Progress | None = None,
        max_concurrent: int = 3,
        chunk_size: int = 64 << 20,
        timeout: float = 60.0,
    ) -> Descriptor:
        """Push an image to a registry (the sync ``Client.push``, in a worker thread).

        Cancelling the call stops the push promptly (open requests too) and raises
        :class:`asyncio.CancelledError`; a push writes nothing to containerd before its
        end. ``progress`` is called on the event loop, as for :meth:`pull`; for an
        async iterator see :meth:`pushing`.

        Args:
            image: The image, or its name.
            ref: Where to push (default: the image's name).
            platform: Push only this platform's manifest.
            auth: As for :meth:`pull`.
            plain_http: Speak HTTP, not HTTPS, to the registry.
            ca_file: A PEM file of CAs to trust besides the system's.
            progress: Called on the loop with each :class:`~pycontainerd.registry.ProgressEvent`.
            max_concurrent: Blobs uploaded at once.
            chunk_size: Blobs larger than this are uploaded in chunks of this size.
            timeout: Seconds to connect, and between two reads of an answer.

        Returns:
            The descriptor of what the reference now names (manifest or index).

        Raises:
            NotFoundError: No such image.
            InvalidReferenceError: ``ref`` is not a reference.
            MissingBlobError: Content of the image is not in the store.
            RegistryAuthError, RegistryDeniedError: Not allowed to push.
            RegistryUnavailableError: The registry cannot be reached or keeps failing.
            asyncio.CancelledError: The call was cancelled.
        """
        from pycontainerd.aio import images

        return await images.run(self.pushing(
            image, ref, platform=platform, auth=auth, plain_http=plain_http, ca_file=ca_file,
            max_concurrent=max_concurrent, chunk_size=chunk_size, timeout=timeout), progress)

    def pushing(
        self,
        image: Image | str,
        ref: str | None = None,
        *,
        platform: str | None = None,
        auth: AuthSource | None = None,
        plain_http: bool = False,
        ca_file: str | None = None,
        max_concurrent: int = 3,
        chunk_size: int = 64 << 20,
        timeout: float = 60.0,
    ) -> Transfer[ProgressEvent, Descriptor]:
        """A push whose progress is an async iterator (as :meth:`pulling`); the arguments are :meth:`push`'s.

        Raises:
            ValueError: The client is closed.
        """
        from pycontainerd.aio import images

        return images.pushing(self, image, ref, platform=platform, auth=auth, plain_http=plain_http,
                              ca_file=ca_file, max_concurrent=max_concurrent, chunk_size=chunk_size,
                              timeout=timeout)

    def events(self) -> EventMonitor:
        """The namespace's task events as an async iterator that survives daemon restarts.

        Example:
            >>> async with client.events() as events:
            ...     async for container_id, kind, info in events:
            ...         ...
        """
        from pycontainerd.aio.events import EventMonitor

        return EventMonitor(self)

    async def close(self) -> None:
        """Close the channel, for this client and every view sharing it. Idempotent.

        The sync client the image methods use, if one was made, is closed too.
        """
        self._sync.close()
        await self._connection.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(address={self.address!r}, namespace={self.namespace!r})"
