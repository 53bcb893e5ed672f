"""``pycontainerd.aio.Client``: a ``grpc.aio`` connection to containerd and its typed API.

Example:
    >>> async with pycontainerd.aio.Client(namespace="demo") as client:
    ...     print(await client.version())
    Version(version='1.6.20~ds1', revision='1.6.20~ds1-1+b1')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pycontainerd import _address
from pycontainerd._grpc import DEFAULT_CONNECT_TIMEOUT
from pycontainerd.aio._grpc import AsyncConnection
from pycontainerd.aio.api import AsyncAPI
from pycontainerd.api.types import Version

if TYPE_CHECKING:
    from pycontainerd.aio.container import Container
    from pycontainerd.aio.events import EventMonitor

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
        self._init(AsyncConnection(address, namespace=namespace, timeout=timeout,
                                   connect_timeout=connect_timeout))

    def _init(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._api = AsyncAPI(connection)

    @classmethod
    def _from_connection(cls, connection: AsyncConnection) -> Client:
        client = cls.__new__(cls)
        client._init(connection)
        return client

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
        return type(self)._from_connection(self._connection.with_namespace(namespace))

    def with_lease(self, lease: str | None) -> Client:
        """A view whose calls carry ``containerd-lease: <lease>``, sharing the channel."""
        return type(self)._from_connection(self._connection.with_lease(lease))

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
        """Close the channel, for this client and every view sharing it. Idempotent."""
        await self._connection.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(address={self.address!r}, namespace={self.namespace!r})"
