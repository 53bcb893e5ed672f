"""The ``grpc.aio`` connection to containerd: the asyncio twin of :mod:`pycontainerd._grpc`.

Everything that does not block is :mod:`pycontainerd._grpc`'s own: the address
resolution (:func:`~pycontainerd._grpc.socket_path`), namespace rules, channel
options, deadlines (:func:`~pycontainerd._grpc.call_deadline`) and the one error
mapping (:func:`~pycontainerd._grpc.map_rpc_error`). Only the call differs: it is
awaited on a ``grpc.aio`` channel.

The channel is created on the first call, in the running event loop, and belongs
to that loop (grpc.aio's rule): a client is used from one loop. Views made with
:meth:`AsyncConnection.with_namespace` share it and send their own
``containerd-namespace`` (and ``containerd-lease``) metadata with every call,
unless the caller passes one.

Cancellation: cancelling the task awaiting a call cancels the RPC (grpc.aio's
own behaviour); :class:`asyncio.CancelledError` propagates unchanged.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar, cast

import grpc
import grpc.aio

from pycontainerd import _validate, errors
from pycontainerd._grpc import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    LEASE_HEADER,
    NAMESPACE_HEADER,
    Metadata,
    call_deadline,
    channel_options,
    default_namespace,
    map_rpc_error,
    socket_path,
    socket_problem,
    validate_namespace,
)

__all__ = ["AsyncConnection", "AsyncResponseStream", "AsyncService"]

# The sentinel a finished stream's read() returns (missing from grpc-stubs).
_EOF: Any = cast(Any, grpc.aio).EOF

T = TypeVar("T")
R = TypeVar("R")


class _SharedChannel:
    """The one ``grpc.aio`` channel behind a connection and all its views."""

    def __init__(self, path: str, connect_timeout: float) -> None:
        self.path = path
        checked = _validate.limit(connect_timeout, "connect_timeout")
        if checked is None:
            raise ValueError("connect_timeout must be a finite number of seconds")
        self.connect_timeout = checked
        self.channel: grpc.aio.Channel | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0
        self.closed = False

    def check(self) -> None:
        if self.closed:
            raise ValueError("operation on a closed containerd connection")
        if self.channel is not None and self.pid != os.getpid():
            raise RuntimeError(
                "a pycontainerd connection must not cross fork(); create a new Client in the child"
            )

    def get(self) -> grpc.aio.Channel:
        self.check()
        if self.channel is None:
            self.loop = asyncio.get_running_loop()
            self.channel = grpc.aio.insecure_channel(f"unix://{self.path}", options=channel_options())
            self.pid = os.getpid()
        elif self.loop is not asyncio.get_running_loop():
            raise RuntimeError("a pycontainerd.aio client belongs to the event loop of its first call")
        return self.channel

    async def close(self) -> None:
        self.closed = True
        channel, self.channel = self.channel, None
        if channel is not None:
            await channel.close(None)


class AsyncResponseStream(Generic[R]):
    """An async iterator over a server stream; :meth:`cancel` ends it normally.

    Any other failure raises the mapped error
    (:class:`~pycontainerd.errors.ConnectionLostError` when the daemon went away).
    An async context manager: leaving the block cancels the stream.
    """

    def __init__(self, call: Any, convert: Callable[[Any], R],
                 map_error: Callable[[grpc.RpcError], errors.ContainerdError]) -> None:
        self._call = call
        self._convert = convert
        self._map_error = map_error
        self._cancelled = False

    @property
    def call(self) -> Any:
        """The underlying ``grpc.aio`` call."""
        return self._call

    def __aiter__(self) -> AsyncIterator[R]:
        return self

    async def __anext__(self) -> R:
        if self._cancelled:
            raise StopAsyncIteration
        try:
            message = await self._call.read()
        except asyncio.CancelledError:
            if self._cancelled:
                raise StopAsyncIteration from None
            raise
        except grpc.RpcError as err:
            if self._cancelled:
                raise StopAsyncIteration from None
            raise self._map_error(err) from err
        if message is _EOF:
            raise StopAsyncIteration
        return self._convert(message)

    def cancel(self) -> None:
        """Stop the stream; a pending ``__anext__`` ends with StopAsyncIteration."""
        self._cancelled = True
        self._call.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    async def __aenter__(self) -> AsyncResponseStream[R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()


class AsyncConnection:
    """A namespace-bound view of the ``grpc.aio`` channel to one containerd.

    Args:
        address: Socket path or ``unix://`` URL; default ``$CONTAINERD_ADDRESS`` or
            ``/run/containerd/containerd.sock``.
        namespace: containerd namespace for every call; default ``$CONTAINERD_NAMESPACE``
            or ``"default"``.
        timeout: Default deadline in seconds for unary calls (``None``: 60 s).
        connect_timeout: How long :meth:`connect` waits by default (10 s).
        lease: A lease id sent as ``containerd-lease`` with every call, or ``None``.

    Raises:
        ValueError: For an invalid address or namespace.
    """

    def __init__(self, address: str | None = None, *, namespace: str | None = None,
                 timeout: float | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 lease: str | None = None) -> None:
        self._init(_SharedChannel(socket_path(address), connect_timeout), default_namespace(namespace),
                   timeout, lease)

    def _init(self, shared: _SharedChannel, namespace: str, timeout: float | None, lease: str | None) -> None:
        self._shared = shared
        self._namespace = validate_namespace(namespace)
        if lease is not None and not lease:
            raise ValueError("lease id must not be empty")
        self._lease = lease
        checked = _validate.seconds(timeout, "timeout")
        self._timeout = DEFAULT_TIMEOUT if checked is None else checked
        defaults = [(NAMESPACE_HEADER, self._namespace)]
        if lease is not None:
            defaults.append((LEASE_HEADER, lease))
        self._defaults = tuple(defaults)
        self._stubs: dict[tuple[Callable[[Any], Any], int], Any] = {}

    def _view(self, namespace: str, lease: str | None) -> AsyncConnection:
        view = AsyncConnection.__new__(AsyncConnection)
        view._init(self._shared, namespace, self._timeout, lease)
        return view

    @property
    def address(self) -> str:
        """The unix socket path."""
        return self._shared.path

    @property
    def namespace(self) -> str:
        """The namespace sent with every call."""
        return self._namespace

    @property
    def lease(self) -> str | None:
        """The lease id sent with every call, if any."""
        return self._lease

    @property
    def timeout(self) -> float:
        """The default deadline for unary calls, in seconds."""
        return self._timeout

    def with_namespace(self, namespace: str) -> AsyncConnection:
        """A view on the same channel that sends another namespace.

        Raises:
            ValueError: For an invalid namespace.
        """
        return self._view(namespace, self._lease)

    def with_lease(self, lease: str | None) -> AsyncConnection:
        """A view on the same channel that sends ``containerd-lease: lease`` (``None``: no lease)."""
        return self._view(self._namespace, lease)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The ``grpc.aio`` channel (created on first use, in the running loop)."""
        return self._shared.get()

    def stub(self, factory: Callable[[Any], T]) -> T:
        """The generated stub built by ``factory`` (e.g. ``TasksStub``) on the channel."""
        channel = self.channel
        key = (factory, id(channel))
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = factory(channel)
        return cast(T, stub)

    def _metadata(self, metadata: Metadata) -> tuple[tuple[str, str], ...]:
        extra = tuple(metadata)
        present = {key for key, _ in extra}
        return extra + tuple((k, v) for k, v in self._defaults if k not in present)

    def map_error(self, err: grpc.RpcError, *, long_running: bool = False) -> errors.ContainerdError:
        """Map a grpc error (see :func:`pycontainerd._grpc.map_rpc_error`)."""
        return map_rpc_error(self.address, err, long_running=long_running)

    async def unary(self, method: Any, request: Any, *, timeout: float | None = None, metadata: Metadata = (),
                    wait_for_ready: bool | None = None, long_running: bool = False) -> Any:
        """Await a unary-unary stub method with a deadline and mapped errors.

        Args:
            method: A bound stub attribute, e.g. ``stub.Get``.
            request: The request message.
            timeout: Deadline in seconds; default the connection's (none when ``long_running``).
            metadata: Extra metadata; a ``containerd-namespace`` here overrides the view's.
            wait_for_ready: Queue the call until the channel is ready instead of failing fast.
            long_running: A Wait: no default deadline, and UNAVAILABLE means a lost connection.

        Returns:
            The response message.

        Raises:
            ContainerdError: The mapped failure (a subclass per status code).
            asyncio.CancelledError: The awaiting task was cancelled (the RPC is cancelled too).
        """
        self._shared.check()
        deadline = call_deadline(timeout, None if long_running else self._timeout)
        try:
            return await method(request, timeout=deadline, metadata=self._metadata(metadata),
                                wait_for_ready=wait_for_ready)
        except grpc.RpcError as err:
            raise self.map_error(err, long_running=long_running) from err

    def stream(self, method: Any, request: Any, convert: Callable[[Any], R], *, timeout: float | None = None,
               metadata: Metadata = ()) -> AsyncResponseStream[R]:
        """Start a unary-stream call.

        Args:
            method: A bound stub attribute, e.g. ``stub.Subscribe``.
            request: The request message.
            convert: Turns each response message into an item.
            timeout: Deadline in seconds for the whole stream (default: none).
            metadata: Extra metadata.

        Returns:
            An :class:`AsyncResponseStream` of converted items.
        """
        self._shared.check()
        call = method(request, timeout=call_deadline(timeout, None), metadata=self._metadata(metadata))
        return AsyncResponseStream(call, convert, lambda err: self.map_error(err, long_running=True))

    async def connect(self, timeout: float | None = None) -> None:
        """Wait until the daemon answers its health check (for a daemon that is still starting).

        Args:
            timeout: How long to wait, default the connection's connect timeout (10 s).

        Raises:
            UnavailableError: The socket is missing, not a socket, or nothing serves in time.
            PermissionDeniedError: The socket is not accessible to this user.
        """
        from pycontainerd.api import health as _health

        self._shared.check()
        limit = self._shared.connect_timeout if timeout is None else _validate.limit(timeout, "timeout")
        problem = socket_problem(self.address)
        if problem is not None:
            raise problem
        stub = self.stub(_health.HealthStub)
        try:
            await self.unary(stub.Check, _health.check_request(), timeout=limit, wait_for_ready=True)
        except errors.DeadlineExceededError as err:
            found = socket_problem(self.address)
            raise found or errors.UnavailableError(
                f"containerd at {self.address} is not serving after {limit:g} s (connect timeout)",
                code=grpc.StatusCode.UNAVAILABLE,
            ) from err

    async def close(self) -> None:
        """Close the shared channel (every view of it); pending calls end with CanceledError."""
        await self._shared.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called on this connection or any view of it."""
        return self._shared.closed


class AsyncService:
    """Base of the asyncio service wrappers: the connection and the raw stub.

    Args:
        connection: The namespace-bound connection the calls go through.
    """

    _stub_factory: Callable[[Any], Any]

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    @property
    def connection(self) -> AsyncConnection:
        """The connection (namespace, lease, deadlines) this service calls through."""
        return self._conn

    @property
    def stub(self) -> Any:
        """The raw generated stub on the ``grpc.aio`` channel (the namespace is added per call here)."""
        return self._conn.stub(type(self)._stub_factory)
