"""The gRPC connection to containerd: channel, metadata, deadlines and error mapping.

One :class:`Connection` per (channel, namespace, lease) view. The channel is created lazily
on first use and shared by every view made with :meth:`Connection.with_namespace` or
:meth:`Connection.with_lease`; each view wraps it in an interceptor that adds the
``containerd-namespace`` (and ``containerd-lease``) metadata to every call, unless the caller
passed its own.

Every call goes through :meth:`Connection.unary`, :meth:`Connection.unary_future` or
:meth:`Connection.stream`, which apply the deadline and send every ``grpc.RpcError`` through
:func:`pycontainerd.errors.from_rpc_error` (the one mapping point), adding what the
client knows about the socket (missing, not a socket, not accessible).

A channel must not cross ``fork()``: grpcio's core is not fork-safe by default. A
connection used in a child process raises :class:`RuntimeError`; create a new client there.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import stat
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, cast

import grpc

from pycontainerd import _rules, _validate, errors

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TIMEOUT",
    "LEASE_HEADER",
    "MAX_MESSAGE_SIZE",
    "NAMESPACE_HEADER",
    "CallFuture",
    "Connection",
    "ResponseStream",
    "Service",
    "call_deadline",
    "channel_options",
    "default_namespace",
    "map_rpc_error",
    "serving",
    "socket_path",
    "validate_namespace",
]

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "default"
NAMESPACE_HEADER = "containerd-namespace"
LEASE_HEADER = "containerd-lease"
# containerd's Go client uses 16 MiB in both directions (defaults.DefaultMaxRecvMsgSize).
MAX_MESSAGE_SIZE = 16 << 20
#: The longest wait between two attempts to reconnect to a daemon that went away.
RECONNECT_BACKOFF_MAX_MS = 3000
DEFAULT_CONNECT_TIMEOUT = 10.0
# A hung shim blocks every call to its task, so unary calls always carry a deadline.
DEFAULT_TIMEOUT = 60.0

HEALTH_CHECK = "/grpc.health.v1.Health/Check"

Metadata = Sequence[tuple[str, str]]
T = TypeVar("T")
R = TypeVar("R")


def socket_path(address: str | None = None) -> str:
    """Resolve a containerd address to a unix socket path.

    Args:
        address: ``/path/to.sock``, ``unix:///path/to.sock`` or ``unix:/path/to.sock``;
            ``None`` means ``$CONTAINERD_ADDRESS``, else ``/run/containerd/containerd.sock``.

    Returns:
        The absolute socket path.

    Raises:
        ValueError: For another scheme, a relative path, or a path longer than 107 bytes
            (the kernel's ``sun_path`` limit).
    """
    if address is None:
        address = os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_ADDRESS
    path = address
    if path.startswith("unix://"):
        path = path[len("unix://") :]
    elif path.startswith("unix:"):
        path = path[len("unix:") :]
    elif "://" in path:
        raise ValueError(f"containerd address {address!r}: only unix sockets are supported")
    if not path.startswith("/"):
        raise ValueError(f"containerd address {address!r} must be an absolute socket path")
    if "\0" in path:
        raise ValueError(f"containerd address {address!r} contains a NUL byte")
    if not _rules.socket_path_fits(path):
        raise ValueError(
            f"containerd socket path {path!r} is {len(os.fsencode(path))} bytes; "
            f"a unix socket path is at most {_rules.MAX_SOCKET_PATH}"
        )
    return path


def validate_namespace(namespace: str) -> str:
    """Check a namespace against containerd's identifier rules.

    Args:
        namespace: The candidate namespace.

    Returns:
        The namespace unchanged.

    Raises:
        ValueError: If it is empty, longer than 76 characters, or not alphanumerics
            separated by single ``.``, ``_`` or ``-``.
    """
    if not isinstance(namespace, str) or not namespace:
        raise ValueError("namespace must be a non-empty string")
    return _rules.identifier(namespace, "namespace")


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _CallDetails(_Details, grpc.ClientCallDetails):  # type: ignore[misc]  # grpc's ABC + NamedTuple
    pass


class _MetadataInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]  # generic only in grpc-stubs
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Adds default metadata (namespace, lease) to every call that does not carry it already."""

    def __init__(self, defaults: Sequence[tuple[str, str]]) -> None:
        self._defaults = tuple(defaults)

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        present = {key for key, _ in metadata}
        metadata.extend((k, v) for k, v in self._defaults if k not in present)
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _SharedChannel:
    """The one grpc channel behind a connection and all its views."""

    def __init__(self, path: str, connect_timeout: float) -> None:
        self.path = path
        checked = _validate.limit(connect_timeout, "connect_timeout")
        if checked is None:
            raise ValueError("connect_timeout must be a finite number of seconds")
        self.connect_timeout = checked
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._pid = 0
        self._closed = False

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError("operation on a closed containerd connection")
        if self._channel is not None and self._pid != os.getpid():
            raise RuntimeError(
                "a pycontainerd connection must not cross fork(); create a new Client in the child"
            )

    def check(self) -> None:
        """Raise if the channel was closed or this is a forked child of its creator.

        Raises:
            ValueError: The connection was closed.
            RuntimeError: Called in a child process after ``fork()``.
        """
        with self._lock:
            self._check_usable()

    def get(self) -> grpc.Channel:
        with self._lock:
            self._check_usable()
            if self._channel is None:
                self._channel = grpc.insecure_channel(f"unix://{self.path}", options=channel_options())
                self._pid = os.getpid()
                # A client nobody closed must not leave its channel to grpc's own
                # __del__ at interpreter teardown, which can hang the exit: close it
                # when this object goes away or at exit, whichever comes first.
                weakref.finalize(self, self._channel.close)
            return self._channel

    def close(self) -> None:
        with self._lock:
            self._closed = True
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def health_check_method(channel: grpc.Channel) -> Any:
    """The callable for ``grpc.health.v1.Health/Check`` on ``channel``: the one place it is built.

    Both the connection's probe below and ``api.health.HealthStub`` call through it.
    """
    # Imported here: only connect(), the daemon's readiness probe and api.health need it.
    from pycontainerd._proto.health.v1 import health_pb2

    return channel.unary_unary(
        HEALTH_CHECK,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )


def _health_check(channel: grpc.Channel, *, timeout: float | None, wait_for_ready: bool) -> bool:
    """The one health check: ``grpc.health.v1.Health/Check``; True when the answer is SERVING.

    Raises:
        grpc.RpcError: The call failed.
    """
    from pycontainerd._proto.health.v1 import health_pb2

    check = health_check_method(channel)
    response = check(health_pb2.HealthCheckRequest(), timeout=timeout, wait_for_ready=wait_for_ready)
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def serving(address: str, timeout: float) -> bool:
    """Whether a containerd serves at the socket ``address`` now: one health check, no error raised.

    A fresh channel per probe: a channel that failed to connect backs off (1 s
    and growing) before it tries again, which would slow start-up detection.

    Args:
        address: The socket path.
        timeout: Seconds the check may take.

    Returns:
        True when the daemon answered SERVING within ``timeout``.
    """
    if socket_problem(address) is not None:
        return False
    with grpc.insecure_channel("unix://" + address) as channel:
        try:
            return _health_check(channel, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError:
            return False


def socket_problem(path: str) -> errors.ContainerdError | None:
    """What the socket path shows is wrong, before or after a failed connection.

    Args:
        path: The containerd socket path.

    Returns:
        :class:`UnavailableError` (missing, not a socket), :class:`PermissionDeniedError`
        (this user may not connect to it), or ``None`` when the path looks usable.
    """
    unavailable = grpc.StatusCode.UNAVAILABLE
    denied = grpc.StatusCode.PERMISSION_DENIED
    try:
        st = os.stat(path)
    except FileNotFoundError:
        hint = ""
        if path == DEFAULT_ADDRESS:
            # No system daemon: say how to run one of our own, as the CLI does.
            hint = (" (no system containerd: start a private one with 'pycontainerd daemon start', "
                    "which Client() then finds, or pass its address)")
        return errors.UnavailableError(
            f"containerd socket {path} does not exist: is containerd running?{hint}", code=unavailable
        )
    except PermissionError:
        return errors.PermissionDeniedError(
            f"permission denied reaching containerd socket {path}: a parent directory is not searchable",
            code=denied,
        )
    except OSError as err:
        return errors.UnavailableError(f"containerd socket {path}: {err.strerror}", code=unavailable)
    if not stat.S_ISSOCK(st.st_mode):
        return errors.UnavailableError(f"{path} is not a unix socket", code=unavailable)
    # access() checks the real uid/gid, which is who connect() is judged as here.
    if not os.access(path, os.R_OK | os.W_OK):
        return errors.PermissionDeniedError(
            f"permission denied connecting to containerd socket {path} "
            f"(mode {stat.S_IMODE(st.st_mode):04o}, owner {st.st_uid}:{st.st_gid}; "
            "run as root or as a member of the socket's group)",
            code=denied,
        )
    return None


def socket_error(path: str, details: str, code: grpc.StatusCode) -> errors.ContainerdError:
    """Explain an UNAVAILABLE status with what the socket path shows.

    Args:
        path: The containerd socket path.
        details: The message grpc gave.
        code: The status code grpc gave.

    Returns:
        :class:`PermissionDeniedError` when this user may not connect to the socket,
        otherwise :class:`UnavailableError` naming the socket and, if known, why.
    """
    problem = socket_problem(path)
    if problem is None:
        return errors.UnavailableError(f"{details} (containerd socket {path})", code=code)
    if isinstance(problem, errors.PermissionDeniedError):
        return errors.PermissionDeniedError(f"{problem.details}: {details}", code=problem.code)
    return errors.UnavailableError(f"{details} ({problem.details})", code=code)


def map_rpc_error(address: str, err: grpc.RpcError, *, long_running: bool = False) -> errors.ContainerdError:
    """Map a grpc error (sync or ``grpc.aio``), adding socket diagnostics to UNAVAILABLE.

    The one place both clients turn a failed call into a
    :class:`~pycontainerd.errors.ContainerdError`.

    Args:
        address: The containerd socket path the call went to.
        err: The error grpc raised.
        long_running: The call was a stream or Wait: UNAVAILABLE then means the
            connection was lost mid-call (:class:`~pycontainerd.errors.ConnectionLostError`).

    Returns:
        The exception to raise ``from err``.
    """
    mapped = errors.from_rpc_error(err)
    if mapped.code is grpc.StatusCode.UNAVAILABLE:
        mapped = socket_error(address, mapped.details, grpc.StatusCode.UNAVAILABLE)
        if long_running and type(mapped) is errors.UnavailableError:
            mapped = errors.ConnectionLostError(mapped.details, code=grpc.StatusCode.UNAVAILABLE)
    return mapped


def call_deadline(timeout: float | None, default: float | None) -> float | None:
    """The deadline grpc gets for a call: ``timeout`` (checked) or ``default``; ``None`` for no limit.

    Raises:
        ValueError: ``timeout`` is negative or NaN.
        TypeError: ``timeout`` is not a number.
    """
    chosen = default if timeout is None else _validate.seconds(timeout, "timeout")
    return None if chosen is None or math.isinf(chosen) else chosen


def channel_options() -> list[tuple[str, int]]:
    """The options of every channel to containerd, sync or asyncio.

    Go's 16 MiB message limits; and libcontainerd dials with its reconnect backoff
    capped at 3 s (grpc's default is 120 s), so a restarted local daemon is found
    again soon.
    """
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MAX_MS),
    ]


def default_namespace(namespace: str | None) -> str:
    """``namespace``, else ``$CONTAINERD_NAMESPACE``, else ``"default"`` (not yet validated)."""
    if namespace is None:
        return os.environ.get("CONTAINERD_NAMESPACE") or DEFAULT_NAMESPACE
    return namespace


class CallFuture(concurrent.futures.Future[T]):
    """A :class:`concurrent.futures.Future` for one unary call issued with ``.future()``.

    The result is converted (to a dataclass) and errors are mapped to
    :class:`~pycontainerd.errors.ContainerdError` subclasses. :meth:`cancel` cancels the RPC.
    It works with :func:`concurrent.futures.wait` and :func:`asyncio.wrap_future`.
    """

    def __init__(
        self,
        call: Any,
        convert: Callable[[Any], T],
        map_error: Callable[[grpc.RpcError], errors.ContainerdError],
    ) -> None:
        super().__init__()
        self._call = call
        self._convert = convert
        self._map_error = map_error
        call.add_done_callback(self._on_done)

    @property
    def call(self) -> Any:
        """The underlying ``grpc.Future``/``grpc.Call`` (power users: metadata, status)."""
        return self._call

    def _on_done(self, call: Any) -> None:
        if self.cancelled():
            return
        try:
            value = self._convert(call.result())
        except grpc.FutureCancelledError:
            super().cancel()
            return
        except grpc.RpcError as err:
            mapped = self._map_error(err)
            mapped.__cause__ = err
            self._settle(exception=mapped)
            return
        except Exception as exc:  # a conversion bug must not vanish in grpc's callback thread
            self._settle(exception=exc)
            return
        self._settle(value=value)

    def _settle(self, *, value: Any = None, exception: BaseException | None = None) -> None:
        try:
            if exception is not None:
                self.set_exception(exception)
            else:
                self.set_result(value)
        except concurrent.futures.InvalidStateError:
            pass  # cancelled concurrently; the cancellation wins

    def cancel(self) -> bool:
        """Cancel the call if it has not completed.

        Returns:
            True if the future is now cancelled.
        """
        cancelled = super().cancel()
        if cancelled:
            self._call.cancel()
        return cancelled


class ResponseStream(Generic[R]):
    """An iterator over a server stream, cancellable from any thread.

    After :meth:`cancel` (or :meth:`close`) iteration ends normally; any other failure
    raises the mapped error, :class:`~pycontainerd.errors.ConnectionLostError` when the
    daemon went away mid-stream. Context manager: leaving the block cancels the stream.
    """

    def __init__(
        self,
        call: Any,
        convert: Callable[[Any], R],
        map_error: Callable[[grpc.RpcError], errors.ContainerdError],
    ) -> None:
        self._call = call
        self._convert = convert
        self._map_error = map_error
        self._cancelled = threading.Event()

    @property
    def call(self) -> Any:
        """The underlying grpc call object."""
        return self._call

    def __iter__(self) -> Iterator[R]:
        return self

    def __next__(self) -> R:
        try:
            message = next(self._call)
        except grpc.RpcError as err:
            if self._cancelled.is_set():
                raise StopIteration from None
            raise self._map_error(err) from err
        return self._convert(message)

    def cancel(self) -> None:
        """Stop the stream; a blocked ``next()`` in another thread returns with StopIteration."""
        self._cancelled.set()
        self._call.cancel()

    close = cancel

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def __enter__(self) -> ResponseStream[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


class Connection:
    """A namespace-bound view of the channel to one containerd.

    Args:
        address: Socket path or ``unix://`` URL; default ``$CONTAINERD_ADDRESS`` or
            ``/run/containerd/containerd.sock``.
        namespace: containerd namespace for every call; default ``$CONTAINERD_NAMESPACE``
            or ``"default"``.
        timeout: Default deadline in seconds for unary calls (``None``: 60 s). Wait and
            streams have no deadline unless one is passed to the call.
        connect_timeout: How long the first call waits for the socket to accept (10 s).
        lease: A lease id sent as ``containerd-lease`` with every call, or ``None``.

    Raises:
        ValueError: For an invalid address or namespace.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        lease: str | None = None,
    ) -> None:
        namespace = default_namespace(namespace)
        self._init(_SharedChannel(socket_path(address), connect_timeout), namespace, timeout, lease)

    def _init(self, shared: _SharedChannel, namespace: str, timeout: float | None, lease: str | None) -> None:
        self._shared = shared
        self._namespace = validate_namespace(namespace)
        if lease is not None and not lease:
            raise ValueError("lease id must not be empty")
        self._lease = lease
        # math.inf is kept (a view inherits it) and means no deadline at the call.
        checked = _validate.seconds(timeout, "timeout")
        self._timeout = DEFAULT_TIMEOUT if checked is None else checked
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stubs: dict[Callable[[grpc.Channel], Any], Any] = {}

    def _view(self, namespace: str, lease: str | None) -> Connection:
        view = Connection.__new__(Connection)
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

    def with_namespace(self, namespace: str) -> Connection:
        """A view on the same channel that sends another namespace.

        Raises:
            ValueError: For an invalid namespace.
        """
        return self._view(namespace, self._lease)

    def with_lease(self, lease: str | None) -> Connection:
        """A view on the same channel that sends ``containerd-lease: lease`` (``None``: no lease)."""
        return self._view(self._namespace, lease)

    @property
    def channel(self) -> grpc.Channel:
        """The channel with this view's metadata interceptor (created on first use)."""
        with self._lock:
            if self._channel is None:
                defaults = [(NAMESPACE_HEADER, self._namespace)]
                if self._lease is not None:
                    defaults.append((LEASE_HEADER, self._lease))
                self._channel = grpc.intercept_channel(self._shared.get(), _MetadataInterceptor(defaults))
            return self._channel

    def stub(self, factory: Callable[[grpc.Channel], T]) -> T:
        """The generated stub built by ``factory`` (e.g. ``TasksStub``) on this view's channel."""
        channel = self.channel
        with self._lock:
            stub = self._stubs.get(factory)
            if stub is None:
                stub = self._stubs[factory] = factory(channel)
            return cast(T, stub)  # keyed by factory, so it is what factory built

    def connect(self, timeout: float | None = None) -> None:
        """Wait until the daemon answers on the socket, instead of learning it on a later call.

        Calls need not do this: the first call connects, and fails fast (UNAVAILABLE, mapped
        with what the socket path shows) when nothing accepts. This waits for a daemon that
        is still starting.

        Args:
            timeout: How long to wait, default the connection's connect timeout (10 s).

        Raises:
            UnavailableError: The socket is missing, not a socket, or no daemon serves on it
                within the timeout.
            PermissionDeniedError: The socket is not accessible to this user.
        """
        self._shared.check()
        limit = self._shared.connect_timeout if timeout is None else _validate.limit(timeout, "timeout")
        problem = socket_problem(self.address)
        if problem is not None:
            raise problem
        try:
            _health_check(self.channel, timeout=limit, wait_for_ready=True)
        except grpc.RpcError as err:
            mapped = self.map_error(err)
            if isinstance(mapped, errors.DeadlineExceededError):
                found = socket_problem(self.address)
                raise found or errors.UnavailableError(
                    f"containerd at {self.address} is not serving after {limit:g} s (connect timeout)",
                    code=grpc.StatusCode.UNAVAILABLE,
                ) from err
            raise mapped from err

    def map_error(self, err: grpc.RpcError, *, long_running: bool = False) -> errors.ContainerdError:
        """Map a grpc error, adding socket diagnostics to UNAVAILABLE (see :func:`map_rpc_error`).

        Args:
            err: The error grpc raised.
            long_running: The call was a stream or Wait.

        Returns:
            The exception to raise ``from err``.
        """
        return map_rpc_error(self.address, err, long_running=long_running)

    def _deadline(self, timeout: float | None, default: float | None) -> float | None:
        return call_deadline(timeout, default)

    def unary(
        self,
        method: Any,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        wait_for_ready: bool | None = None,
    ) -> Any:
        """Call a unary-unary stub method with a deadline and mapped errors.

        Args:
            method: A bound stub attribute, e.g. ``stub.Get``.
            request: The request message.
            timeout: Deadline in seconds; default the connection's.
            metadata: Extra metadata; a ``containerd-namespace`` here overrides the view's.
            wait_for_ready: Queue the call until the channel is ready instead of failing fast.

        Returns:
            The response message.

        Raises:
            ContainerdError: The mapped failure (a subclass per status code).
        """
        self._shared.check()
        try:
            return method(
                request,
                timeout=self._deadline(timeout, self._timeout),
                metadata=tuple(metadata) or None,
                wait_for_ready=wait_for_ready,
            )
        except grpc.RpcError as err:
            raise self.map_error(err) from err

    def unary_future(
        self,
        method: Any,
        request: Any,
        convert: Callable[[Any], T],
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        long_running: bool = True,
    ) -> CallFuture[T]:
        """Start a unary call and return a future of its converted result.

        When this returns the call has been started on the channel (its request handed to
        grpc's core), ahead of any call made afterwards on the same channel; connection
        errors arrive through the future. Long-running calls get no default deadline.

        Args:
            method: A bound stub attribute, e.g. ``stub.Wait``.
            request: The request message.
            convert: Turns the response message into the result.
            timeout: Deadline in seconds (default: none when ``long_running``, else the
                connection's).
            metadata: Extra metadata.
            long_running: UNAVAILABLE means a lost connection, and no default deadline.

        Returns:
            A :class:`CallFuture`.

        Raises:
            ValueError: The connection was closed.
        """
        self._shared.check()
        deadline = self._deadline(timeout, None if long_running else self._timeout)
        call = method.future(request, timeout=deadline, metadata=tuple(metadata) or None)
        return CallFuture(call, convert, lambda err: self.map_error(err, long_running=long_running))

    def stream(
        self,
        method: Any,
        request: Any,
        convert: Callable[[Any], R],
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> ResponseStream[R]:
        """Start a unary-stream call.

        Args:
            method: A bound stub attribute, e.g. ``stub.Subscribe``.
            request: The request message.
            convert: Turns each response message into an item.
            timeout: Deadline in seconds for the whole stream (default: none).
            metadata: Extra metadata.

        Returns:
            A :class:`ResponseStream` of converted items.

        Raises:
            ValueError: The connection was closed.
        """
        self._shared.check()
        call = method(request, timeout=timeout, metadata=tuple(metadata) or None)
        return ResponseStream(call, convert, lambda err: self.map_error(err, long_running=True))

    def close(self) -> None:
        """Close the shared channel (every view of it); pending calls end with CanceledError."""
        self._shared.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called on this connection or any view of it."""
        return self._shared._closed


class Service:
    """Base of the typed wrappers in :mod:`pycontainerd.api`: one per containerd service.

    Subclasses set ``_stub_factory`` to the generated ``*Stub`` class; :attr:`stub` builds it
    (once per connection view) for callers who need a raw RPC.

    Args:
        connection: The namespace-bound connection the calls go through.
    """

    _stub_factory: Callable[[grpc.Channel], Any]

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    @property
    def connection(self) -> Connection:
        """The connection (namespace, lease, deadlines) this service calls through."""
        return self._conn

    @property
    def stub(self) -> Any:
        """The raw generated stub on this connection's channel (namespace metadata included)."""
        return self._conn.stub(type(self)._stub_factory)
